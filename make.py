"""One entry point for the course's chores; needs only Python 3.10+.

    python3 make.py book      set up .venv and build the executed HTML book in _build/html
    python3 make.py book --instructor
                              the same book plus the solution notebooks, in _build/instructor
    python3 make.py test      set up .venv and run every test (unit tests, notebooks, the book
                              build and its check in a headless browser); extra arguments go to pytest
    python3 make.py release   regenerate exercises/ from solutions/
    python3 make.py setup     only create or update .venv
    python3 make.py clean     delete _build and .venv

The virtual environment lives in .venv and is reinstalled only when requirements.txt or
pyproject.toml change.

Launch buttons: set VAE_COURSE_REPO_URL to the repository the course is published under (e.g.
https://github.com/OWNER/REPO; VAE_COURSE_REPO_BRANCH, default main) and every notebook page gets
Binder and, for a GitHub repository, Colab buttons. Unset, the book has none.
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


def _env(threads: int | None = None, venv: Path = VENV, *, book: bool = False) -> dict:
    env = dict(os.environ)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    env["PATH"] = str(bin_dir) + os.pathsep + env.get("PATH", "")
    # Kernels must come from this environment, not from a kernelspec the user installed elsewhere.
    env["JUPYTER_PATH"] = str(venv / "share" / "jupyter")
    if book:
        # kernels must use matplotlib's inline backend, or the book's figures are lost
        env.pop("MPLBACKEND", None)
    else:
        env.setdefault("MPLBACKEND", "Agg")
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    if threads is not None:
        env.setdefault("OMP_NUM_THREADS", str(threads))
    return env


PUBLIC_HTML = ROOT / "_build" / "html"
INSTRUCTOR_DIR = ROOT / "_build" / "instructor"          # jupyter-book writes its HTML to .../_build/html
INSTRUCTOR_HTML = INSTRUCTOR_DIR / "_build" / "html"
BINDER_URL = "https://mybinder.org"
COLAB_URL = "https://colab.research.google.com"


def book_overrides(*, instructor: bool = False, repo_url: str | None = None, branch: str | None = None) -> dict:
    """What a build changes in _config.yml: nothing by default (an empty dict).

    ``repo_url`` (default: the environment variable VAE_COURSE_REPO_URL) switches on the launch
    buttons: Binder always, Colab for a GitHub repository (Colab opens notebooks from GitHub only).
    ``instructor`` adds the solution notebooks (see :func:`instructor_toc`) and a title that says so.
    """
    if repo_url is None:
        repo_url = os.environ.get("VAE_COURSE_REPO_URL", "")
    repo_url = repo_url.strip().rstrip("/")
    if repo_url.endswith(".git"):
        repo_url = repo_url[:-4]
    over: dict = {}
    if repo_url:
        if not repo_url.startswith(("https://", "http://")):
            sys.exit(f"VAE_COURSE_REPO_URL: got {repo_url!r}; need the repository's web address, e.g. https://github.com/OWNER/REPO")
        branch = branch or os.environ.get("VAE_COURSE_REPO_BRANCH") or "main"
        github = repo_url.startswith("https://github.com/")
        over["repository"] = {"url": repo_url, "branch": branch}
        over["launch_buttons"] = {"binderhub_url": BINDER_URL, "colab_url": COLAB_URL if github else ""}
        over["html"] = {"use_repository_button": True}
    if instructor:
        over["title"] = "VAE Course: instructor edition"
        over["exclude_patterns"] = {"remove": ["solutions"]}
    return over


def merge_config(base: dict, over: dict) -> dict:
    """``base`` updated by ``over`` recursively; ``{"remove": [...]}`` on a list removes items."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and set(value) == {"remove"} and isinstance(out.get(key), list):
            out[key] = [item for item in out[key] if item not in value["remove"]]
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = value
    return out


def instructor_toc(toc: dict, solutions: list[str]) -> dict:
    """The table of contents plus a part with the solution notebooks (paths without suffix)."""
    out = dict(toc)
    out["parts"] = [*toc.get("parts", []),
                    {"caption": "Solutions (instructors only)", "chapters": [{"file": s} for s in solutions]}]
    return out


def book_command(bin_dir: Path = BIN, *, instructor: bool = False, repo_url: str | None = None) -> list[str]:
    """The jupyter-book command for this build; writes the overridden config/toc it needs to _build/.

    Needs PyYAML (run it inside the course's environment) only when something is overridden.
    """
    cmd = [str(bin_dir / "jupyter-book"), "build", "-W", "-n", "--keep-going"]
    over = book_overrides(instructor=instructor, repo_url=repo_url)
    if over:
        import yaml  # in .venv: jupyter-book depends on it

        config = merge_config(yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8")), over)
        # the generated file lives in _build/, so paths that jupyter-book reads relative to it become absolute
        for name, path in config.get("sphinx", {}).get("local_extensions", {}).items():
            config["sphinx"]["local_extensions"][name] = str(ROOT / path)
        gen = ROOT / "_build" / ("config-instructor" if instructor else "config")
        gen.mkdir(parents=True, exist_ok=True)
        (gen / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        cmd += ["--config", str(gen / "_config.yml")]
        if instructor:
            toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
            solutions = [p.relative_to(ROOT).with_suffix("").as_posix() for p in sorted((ROOT / "solutions").glob("*.ipynb"))]
            (gen / "_toc.yml").write_text(yaml.safe_dump(instructor_toc(toc, solutions), sort_keys=False), encoding="utf-8")
            cmd += ["--toc", str(gen / "_toc.yml"), "--path-output", str(INSTRUCTOR_DIR)]
    return cmd + ["."]


def book() -> None:
    instructor = "--instructor" in sys.argv[2:]
    unknown = [a for a in sys.argv[2:] if a != "--instructor"]
    if unknown:
        sys.exit(f"make.py book: unknown argument(s) {' '.join(unknown)}; the only option is --instructor")
    setup()
    if Path(sys.prefix).resolve() != VENV.resolve():
        # generating an overridden config needs PyYAML: run this command again inside .venv
        _run(PY, Path(__file__).resolve(), *sys.argv[1:], env=_env())
        return
    start = time.perf_counter()
    _run(*book_command(instructor=instructor), env=_env(book=True))
    html = INSTRUCTOR_HTML if instructor else PUBLIC_HTML
    print(f"book built in {time.perf_counter() - start:.0f} s: open {html / 'index.html'}")


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
