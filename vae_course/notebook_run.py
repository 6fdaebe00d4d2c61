"""Running notebooks with nbclient without its lost wake-ups: the cause of the book build's rare 300 s stalls.

nbclient waits for a cell's reply with one long ``await shell_channel.get_msg(timeout=T)`` while another coroutine
reads the cell's output messages. When a cell shows an ipywidget, the kernel sends a burst of widget (comm)
messages on the output channel, and now and then the reply's arrival on the shell channel does not wake the
waiting coroutine: the reply sits in the socket until the poll's timeout ends, the poll then finds it, and the
cell "succeeds" after exactly ``T`` seconds (jupyter/nbclient#312). Measured here with a notebook of 25 widget
cells, 20 s timeout, two notebooks running at once on a loaded 2-core machine: 7 cells of 400 stalled for
exactly 20.0 s (kernel time 0.3-0.5 s) before the fix, none of 2,000 after it.

:func:`install` replaces ``AsyncZMQSocketChannel.get_msg`` by one that polls in slices of :data:`SLICE` seconds up
to the same timeout: each new poll reads the socket's state afresh, so a missed wake-up costs at most one slice
and a real timeout still raises ``Empty`` at the same moment. The book build (``book/_ext/course_book.py``) and the
grader install it; the blocking client (nbval) never had the problem.
"""
from __future__ import annotations

import time
from queue import Empty
from typing import Any

from jupyter_client.channels import AsyncZMQSocketChannel

__all__ = ["SLICE", "install", "installed"]

SLICE = 1.0  # seconds: the longest a missed wake-up can now delay a reply


async def _get_msg(self: AsyncZMQSocketChannel, timeout: float | None = None) -> dict[str, Any]:
    """``get_msg`` that polls in slices (module doc): the next message, or ``Empty`` after ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        wait = SLICE if left is None else max(0.0, min(SLICE, left))
        if await self.socket.poll(int(wait * 1000)):
            return await self._recv()
        if left is not None and left <= SLICE:
            raise Empty


def install() -> None:
    """Patch ``jupyter_client``'s asyncio channel in this process (idempotent)."""
    AsyncZMQSocketChannel.get_msg = _get_msg  # type: ignore[method-assign]


def installed() -> bool:
    """True if :func:`install` has patched this process."""
    return AsyncZMQSocketChannel.get_msg is _get_msg
