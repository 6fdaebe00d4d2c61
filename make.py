"""One entry point for the course's chores; needs only Python 3.10+.

    python3 make.py book      set up .venv and build the executed HTML book in _build/html
    python3 make.py test      set up .venv and run every test (unit tests and notebooks)
    python3 make.py release   regenerate exercises/ from solutions/
    python3 make.py setup     only create or update .venv

The virtual environment lives in .venv and is reinstalled only when requirements.txt or
pyproject.toml change.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".installed"


def _run(*cmd: str | Path, env: dict | None = None) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env)
    if result.returncode != 0:
        sys.exit(result.returncode)


def _fingerprint() -> str:
    h = hashlib.sha256()
    for name in ("requirements.txt", "pyproject.toml"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def setup() -> None:
    if sys.version_info < (3, 10):
        sys.exit(f"make.py needs Python 3.10 or newer (3.11 recommended); this is {sys.version.split()[0]}")
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    start = time.perf_counter()
    if not PY.exists():
        _run(sys.executable, "-m", "venv", VENV)
    _run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(PY, "-m", "pip", "install", "--quiet", "-r", "requirements.txt")
    _run(PY, "-m", "pip", "install", "--quiet", "--no-deps", "-e", ".")
    STAMP.write_text(_fingerprint())
    print(f"environment ready in {time.perf_counter() - start:.0f} s", flush=True)


def _env(threads: int | None = None) -> dict:
    env = dict(os.environ)
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    # Kernels must come from this environment, not from a kernelspec the user installed elsewhere.
    env["JUPYTER_PATH"] = str(VENV / "share" / "jupyter")
    env.setdefault("MPLBACKEND", "Agg")
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    if threads is not None:
        env.setdefault("OMP_NUM_THREADS", str(threads))
    return env


def book() -> None:
    setup()
    start = time.perf_counter()
    _run(BIN / "jupyter-book", "build", "-W", "-n", "--keep-going", ".", env=_env())
    print(f"book built in {time.perf_counter() - start:.0f} s: open {ROOT / '_build' / 'html' / 'index.html'}")


def test() -> None:
    setup()
    start = time.perf_counter()
    workers = max(1, min(2, os.cpu_count() or 1))
    # One thread per worker: two workers with two BLAS threads each would fight over two cores.
    args = ["-n", str(workers), "--dist", "loadfile"] if workers > 1 else []
    _run(PY, "-m", "pytest", *args, *sys.argv[2:], env=_env(threads=1 if workers > 1 else None))
    print(f"tests finished in {time.perf_counter() - start:.0f} s")


def release() -> None:
    setup()
    _run(PY, "-m", "vae_course.release", env=_env())


def clean() -> None:
    for path in (ROOT / "_build", VENV):
        shutil.rmtree(path, ignore_errors=True)


COMMANDS = {"setup": setup, "book": book, "test": test, "release": release, "clean": clean}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]]()
