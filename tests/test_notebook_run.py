"""The fix for nbclient's lost wake-ups (vae_course.notebook_run): installed where the book and the grader run
notebooks, and a patched channel that still times out on time and returns a message as soon as it is there."""
import asyncio
import importlib.util
import time
from pathlib import Path
from queue import Empty

import pytest
import zmq
import zmq.asyncio
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session

from vae_course import notebook_run

ROOT = Path(__file__).resolve().parents[1]


def test_the_book_build_and_the_grader_install_it():
    spec = importlib.util.spec_from_file_location("course_book", ROOT / "book" / "_ext" / "course_book.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)

    class App:  # the parts of Sphinx's app that setup() calls
        def __getattr__(self, name):
            return lambda *a, **k: None

    original = AsyncZMQSocketChannel.get_msg
    try:
        AsyncZMQSocketChannel.get_msg = original if not notebook_run.installed() else (lambda *a, **k: None)
        assert not notebook_run.installed()
        ext.setup(App())
        assert notebook_run.installed()
    finally:
        notebook_run.install()
    grade = (ROOT / "vae_course" / "grade" / "__init__.py").read_text()  # where the grader runs submissions
    assert "notebook_run.install()" in grade


def test_the_patched_channel_returns_messages_at_once_and_times_out_on_time():
    notebook_run.install()

    async def scenario():
        ctx = zmq.asyncio.Context()
        push, pull = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
        port = pull.bind_to_random_port("tcp://127.0.0.1")
        push.connect(f"tcp://127.0.0.1:{port}")
        session = Session(key=b"")
        channel = AsyncZMQSocketChannel(pull, session)
        t0 = time.monotonic()
        with pytest.raises(Empty):
            await channel.get_msg(timeout=2.3)  # no message: Empty after the full timeout, not a slice
        waited = time.monotonic() - t0

        async def later():
            await asyncio.sleep(0.2)
            session.send(push, "ping", content={"n": 1})

        t1 = time.monotonic()
        _, msg = await asyncio.gather(later(), channel.get_msg(timeout=30))
        got = time.monotonic() - t1
        push.close(0)
        pull.close(0)
        ctx.term()
        return waited, msg, got

    waited, msg, got = asyncio.run(scenario())
    assert 2.25 <= waited < 3.5
    assert msg["header"]["msg_type"] == "ping" and msg["content"] == {"n": 1} and got < 1.5
