"""One entry point for the course's chores; needs only Python 3.10+.

    python3 make.py book      set up .venv and build the executed HTML book in _build/html
    python3 make.py book --instructor
                              the same book plus the solution notebooks, in _build/instructor
    python3 make.py test      set up .venv and run every test (unit tests, notebooks, the book
                              build and its check in a headless browser); extra arguments go to pytest
    python3 make.py pdf       build the book as one page and print it to _build/vae-course.pdf (headless Chromium)
    python3 make.py release   write the notebooks' Colab setup cells and regenerate exercises/ from solutions/
    python3 make.py setup     only create or update .venv
    python3 make.py clean     delete _build and .venv

`make.py test PATH...` passes its arguments to pytest: `python3 make.py test book/05_vae.ipynb` executes one
chapter (nbval); the full run executes every chapter once, in the book build (tests/test_book.py).

The virtual environment lives in .venv and is reinstalled only when requirements.txt or
pyproject.toml change.

Launch buttons: set VAE_COURSE_REPO_URL to the repository the course is published under (e.g.
https://github.com/OWNER/REPO; VAE_COURSE_REPO_BRANCH, default main) and every notebook page gets
Binder and, for a GitHub repository, Colab buttons; `make.py book` and `make.py release` then also write that
address into every notebook's setup cell (which installs the package in Colab). Unset, the book has none.

The book's kernels compute with one thread each (OMP_NUM_THREADS=1 unless set), as CI's build does, so a local
build prints the same numbers as CI's. The execution cache (_build/.nb_cache) is emptied when the package's
source or stored results change, so no chapter shows outputs of an older package.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
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
        env.setdefault("OMP_NUM_THREADS", "1")  # the same numbers as CI's build, whatever the machine's cores
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


def book_command(bin_dir: Path = BIN, *, instructor: bool = False, repo_url: str | None = None,
                 builder: str = "html") -> list[str]:
    """The jupyter-book command for this build; writes the overridden config/toc it needs to _build/.

    Needs PyYAML (run it inside the course's environment) only when something is overridden.
    """
    cmd = [str(bin_dir / "jupyter-book"), "build", "-W", "-n", "--keep-going"]
    if builder != "html":
        cmd += ["--builder", builder]
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


PDF = ROOT / "_build" / "vae-course.pdf"
SINGLE_HTML = ROOT / "_build" / "singlehtml"
NB_CACHE = ROOT / "_build" / ".nb_cache"


def package_fingerprint() -> str:
    """A hash of the package's source and stored results: the chapters' outputs depend on them."""
    h = hashlib.sha256()
    for path in sorted((ROOT / "vae_course").rglob("*")):
        if path.is_file() and path.suffix in {".py", ".csv", ".json", ".pt"}:
            h.update(path.relative_to(ROOT).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def fresh_execution_cache() -> None:
    """Empty the execution cache when the package changed since it was filled (the cache keys on the notebooks'
    code alone, so it would otherwise serve outputs computed by an older package)."""
    stamp, now = NB_CACHE / "package.sha256", package_fingerprint()
    if NB_CACHE.exists() and (not stamp.exists() or stamp.read_text() != now):
        print("the package changed since the last build: re-executing every chapter", flush=True)
        shutil.rmtree(NB_CACHE)
    NB_CACHE.mkdir(parents=True, exist_ok=True)
    stamp.write_text(now)


def _repo_url() -> str:
    return os.environ.get("VAE_COURSE_REPO_URL", "").strip()


def _write_setup_cells() -> None:
    """With a repository address set, write it into every notebook's setup cell (Colab installs from there)."""
    if _repo_url():
        _run(PY, "-m", "vae_course.cli", "setup-cells", "--repo-url", _repo_url(),
             "--branch", os.environ.get("VAE_COURSE_REPO_BRANCH") or "main", env=_env())


def _in_venv() -> bool:
    """True inside .venv; otherwise run this command again there (a build needs PyYAML and the package)."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return True
    _run(PY, Path(__file__).resolve(), *sys.argv[1:], env=_env())
    return False


def book() -> None:
    instructor = "--instructor" in sys.argv[2:]
    unknown = [a for a in sys.argv[2:] if a != "--instructor"]
    if unknown:
        sys.exit(f"make.py book: unknown argument(s) {' '.join(unknown)}; the only option is --instructor")
    setup()
    if not _in_venv():
        return
    start = time.perf_counter()
    _write_setup_cells()
    fresh_execution_cache()
    _run(*book_command(instructor=instructor), env=_env(book=True))
    html = INSTRUCTOR_HTML if instructor else PUBLIC_HTML
    print(f"book built in {time.perf_counter() - start:.0f} s: open {html / 'index.html'}")


def pdf() -> None:
    """The printable edition: the book built as one HTML page, typeset by MathJax in headless Chromium and printed."""
    if sys.argv[2:]:
        sys.exit(f"make.py pdf: unknown argument(s) {' '.join(sys.argv[2:])}; it takes none")
    setup()
    if not _in_venv():
        return
    exe = find_chromium()
    if exe is None:
        sys.exit("make.py pdf: needs Chromium (`apt-get install chromium` on Debian/Ubuntu, or set CHROMIUM=/path/to/chrome)")
    start = time.perf_counter()
    fresh_execution_cache()
    _run(*book_command(builder="singlehtml", repo_url=""), env=_env(book=True))
    pages = print_to_pdf(SINGLE_HTML, PDF, exe)
    print(f"PDF ({pages} pages) written in {time.perf_counter() - start:.0f} s: {PDF}")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@functools.lru_cache(maxsize=1)
def _served(folder: str) -> str:
    """Serve ``folder`` on a free local port for the rest of the process; returns its address."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=folder))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}/"


_TYPESET = r"""
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const t0 = Date.now();
  while (window.MathJax && !(MathJax.startup && MathJax.startup.promise) && Date.now() - t0 < 30000) await sleep(50);
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  await document.fonts.ready;
  while ([...document.images].some(i => !i.complete) && Date.now() - t0 < 60000) await sleep(100);
  await sleep(500);
  return document.querySelectorAll('.math').length;
})()
"""


def _print_page(html_dir: Path) -> str:
    """The one page to print, as a file at the top of ``html_dir``. The singlehtml builder writes the toc's root
    document (e.g. ``book/intro.html``) with links relative to the top folder, and ``index.html`` is only a refresh
    redirect to it: served from its own folder the page finds neither MathJax nor its images, and a page that
    redirects while it is being typeset fails the evaluation. A copy at the top has both right."""
    index = (html_dir / "index.html").read_text(encoding="utf-8")
    m = re.search(r'http-equiv="Refresh" content="\d+;\s*url=([^"]+)"', index, re.I)
    if not m:
        return "index.html"
    shutil.copyfile(html_dir / m.group(1), html_dir / "print.html")
    return "print.html"


def print_to_pdf(html_dir: Path, out: Path, executable: str) -> int:
    """Open ``html_dir/index.html`` in headless Chromium, wait until MathJax has typeset it and every image has
    loaded, and print it to ``out`` (A4, with a document outline); returns the number of pages."""
    chrome = Chromium(executable)
    try:
        session = chrome.new_page()
        n = len(chrome.events.get(session, []))
        chrome.call("Page.navigate", {"url": _served(str(html_dir)) + _print_page(html_dir)}, session=session)
        chrome.wait_event(session, "Page.loadEventFired", n, 120)
        chrome.evaluate(session, _TYPESET, timeout=180)
        data = chrome.call("Page.printToPDF", {"printBackground": True, "paperWidth": 8.27, "paperHeight": 11.69,
                                               "marginTop": 0.5, "marginBottom": 0.5, "marginLeft": 0.5,
                                               "marginRight": 0.5, "generateDocumentOutline": True,
                                               "generateTaggedPDF": True}, session=session, timeout=300)["data"]
    finally:
        chrome.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = base64.b64decode(data)
    out.write_bytes(raw)
    return raw.count(b"/Type /Page") - raw.count(b"/Type /Pages") or raw.count(b"/Type/Page") - raw.count(b"/Type/Pages")


# ------------------------------------------------------------------------------------------------ headless Chromium
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The Chromium to drive: ``CHROMIUM`` if set, else the first of :data:`CHROMIUM_NAMES` on the PATH."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fd 3 in, fd 4 out); POSIX only.

    Messages are JSON objects separated by NUL bytes. One reader thread collects replies (by id)
    and events (by session); :meth:`call` sends a command and waits for its reply. The book's browser test and
    ``make.py pdf`` use it; it needs nothing beyond the standard library.
    """

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
             "--remote-debugging-pipe", "--window-size=1280,900"]

    def __init__(self, executable: str):
        import fcntl  # POSIX only; imported here so make.py itself runs on Windows

        self.profile = tempfile.mkdtemp(prefix="vae-course-chromium-")
        to_child, self._w = os.pipe()
        self._r, from_child = os.pipe()
        # Move the child's ends to fds >= 10, then a tiny Python wrapper puts them on 3 and 4 and execs
        # Chromium (no preexec_fn, so this is safe in a threaded process; no fd clobbers another).
        a, b = fcntl.fcntl(to_child, fcntl.F_DUPFD_CLOEXEC, 10), fcntl.fcntl(from_child, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_child)
        os.close(from_child)
        wire = ("import os, sys; a, b = int(sys.argv[1]), int(sys.argv[2]); os.dup2(a, 3); os.dup2(b, 4); "
                "os.close(a); os.close(b); os.execv(sys.argv[3], sys.argv[3:])")
        self.proc = subprocess.Popen([sys.executable, "-c", wire, str(a), str(b), executable, *self.FLAGS,
                                      f"--user-data-dir={self.profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     pass_fds=(a, b))
        os.close(a)
        os.close(b)
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self.events: dict[str | None, list[dict]] = {}
        self._cv = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.call("Browser.getVersion", timeout=30)

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cv:
                    self._replies[-1] = {"error": {"message": "browser closed the pipe"}}
                    self._cv.notify_all()
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            with self._cv:
                for raw in messages:
                    msg = json.loads(raw)
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self.events.setdefault(msg.get("sessionId"), []).append(msg)
                self._cv.notify_all()

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        self._next_id += 1
        msg_id = self._next_id
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        with self._cv:
            if not self._cv.wait_for(lambda: msg_id in self._replies or -1 in self._replies, timeout):
                raise TimeoutError(f"Chromium did not answer {method} within {timeout} s")
            reply = self._replies.pop(msg_id, None) or self._replies[-1]
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, session: str, method: str, since: int, timeout: float) -> bool:
        with self._cv:
            return self._cv.wait_for(
                lambda: any(e["method"] == method for e in self.events.get(session, [])[since:]), timeout)

    def new_page(self, width: int = 1280, height: int = 900) -> str:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=session)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        return session

    def evaluate(self, session: str, expression: str, timeout: float = 60):
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True},
                           session=session, timeout=timeout)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, session: str, path: Path) -> None:
        data = self.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


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
    _write_setup_cells()
    _run(PY, "-m", "vae_course.release", env=_env())


def clean() -> None:
    for path in (ROOT / "_build", VENV):
        shutil.rmtree(path, ignore_errors=True)


COMMANDS = {"setup": setup, "book": book, "pdf": pdf, "test": test, "release": release, "clean": clean}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]]()
