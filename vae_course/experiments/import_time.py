"""How much ``import vae_course`` adds to ``import torch``: ``python -m vae_course.experiments.import_time``.

Each round starts three fresh interpreters, in turn: one that imports torch, one that imports torch and then
``vae_course``, and one that imports torch and then a chapter's working set (``vae_course.models``,
``vae_course.train`` and ``vae_course.plotting``). The rounds alternate so that a shared machine's load hits all
three alike; the medians and their differences are printed. The package loads its submodules on first use
(PEP 562), so the first difference should be a few milliseconds.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

__all__ = ["time_imports", "main"]

CASES = {
    "torch": "import torch",
    "torch + vae_course": "import torch, vae_course",
    "torch + models, train, plotting": "import torch, vae_course.models, vae_course.train, vae_course.plotting",
}


def _seconds(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def time_imports(rounds: int = 7) -> dict[str, list[float]]:
    """Wall times in seconds of each case of :data:`CASES` over ``rounds`` alternating rounds (after one warm-up)."""
    if rounds < 1:
        raise ValueError(f"rounds: got {rounds}; need an int >= 1")
    for code in CASES.values():  # warm-up: the file cache
        _seconds(code)
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(rounds):
        for name, code in CASES.items():
            times[name].append(_seconds(code))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_course.experiments.import_time", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    args = parser.parse_args(argv)
    times = time_imports(args.rounds)
    base = statistics.median(times["torch"])
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:34s} median {med:6.3f} s  (min {min(values):.3f}, max {max(values):.3f})  "
              f"{'' if name == 'torch' else f'+{med - base:.3f} s over torch'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
