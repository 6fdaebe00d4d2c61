"""The book as a product: it builds cleanly, shows no solution code, and every page of it renders
offline in a real browser.

The book is built ONCE per test session (the ``book_html`` fixture runs the same
``jupyter-book build -W -n --keep-going .`` as ``make.py book``, executing every chapter, into
``_build/html``); the browser checks use that output. Under pytest-xdist ``--dist loadfile`` this
file runs on one worker while the other worker runs the rest of the suite.

The browser is Debian's ``chromium`` (``.ci/run`` installs it), driven headless over the Chrome
DevTools protocol on a pipe (``--remote-debugging-pipe``), so the test needs no package beyond
the standard library and never downloads a browser. Each page is served by a local HTTP server on
127.0.0.1 and must: typeset all its math (no raw TeX left, no MathJax error), load every image,
render every saved widget state, list every chapter in the sidebar, log no console error, and
request nothing from any other host. Screenshots go to ``_build/screenshots/`` for a person to
look at. Without Chromium the browser tests skip (locally) or fail (when ``CI`` is set).
"""
from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("course_make", ROOT / "make.py")
make = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make)

HTML = make.PUBLIC_HTML
SHOTS = ROOT / "_build" / "screenshots"
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
CHAPTERS = [c["file"] for part in TOC["parts"] if part.get("caption") == "Chapters" for c in part.get("chapters", [])]
PAGES = [TOC["root"]] + [c["file"] for part in TOC["parts"] for c in part.get("chapters", [])]
CHROMIUM_NAMES = make.CHROMIUM_NAMES


# ------------------------------------------------------------------------------------------------
# the build


@pytest.fixture(scope="session")
def book_html() -> Path:
    """Build the public book once (executing every chapter) and return its HTML folder."""
    bin_dir = Path(sys.executable).parent
    # repo_url="" keeps the test hermetic: launch buttons are tested separately below.
    cmd = make.book_command(bin_dir, repo_url="")
    make.fresh_execution_cache()  # as make.py book: no outputs of an older package
    env = make._env(venv=Path(sys.prefix), book=True)  # no MPLBACKEND: kernels draw inline figures
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0 and re.search(r"timed out|CellTimeoutError|Execution Failed|execution failed", proc.stdout + proc.stderr):
        # nbclient can, rarely, miss the reply to a cell that displays a widget and wait until the cell
        # timeout (jupyter/nbclient#312). Chapters executed before it are cached, so one retry re-runs only
        # the failed chapter;
        # a real error or a second timeout still fails below.
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = ROOT / "_build" / "book-build.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text(f"$ {' '.join(cmd)}\n# {seconds:.0f} s, exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}", encoding="utf-8")
    if proc.returncode != 0:
        out = proc.stdout + proc.stderr
        problems = [ln for ln in out.splitlines() if re.search(r"WARNING|ERROR|Error|Traceback", ln)]
        pytest.fail(f"`{' '.join(cmd)}` exited {proc.returncode} after {seconds:.0f} s; full log in {log}.\n"
                    + "\n".join(problems[:40] or out.splitlines()[-40:]))
    return HTML


def test_book_builds_cleanly_with_every_page(book_html):
    for page in PAGES:
        assert (book_html / f"{page}.html").is_file(), f"{page}.html missing from the build"
    assert (book_html / "index.html").is_file()


def test_public_book_contains_no_solution_code(book_html):
    """The solution notebooks are not pages of the public book, and no page carries their markers,
    titles or written answers (the release tool's own documentation may name the markers)."""
    titles, answers = [], []
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
        m = re.match(r"#\s+(.+)", first.strip())
        if m:
            titles.append(m.group(1).strip())
        for cell in nb.cells:
            for region in re.findall(r"<!-- BEGIN SOLUTION -->(.*?)<!-- END SOLUTION -->", cell.source, re.S):
                answers += [ln.strip() for ln in region.splitlines() if len(ln.strip()) > 30][:1]
    assert titles, "no solution notebook titles found"
    # pages that document the release tool and the markers themselves
    documents_markers = {"book/api.html", "book/how_to_use.html", "_sources/book/how_to_use.md",
                         "_modules/vae_course/release.html", "_modules/vae_course/grade.html"}
    leaks = []
    for path in book_html.rglob("*"):
        rel = path.relative_to(book_html).as_posix()
        if rel.startswith("solutions/") or rel.startswith("_sources/solutions/"):
            leaks.append(f"{rel}: a solution notebook was built")
        if not path.is_file() or path.suffix not in {".html", ".js", ".txt", ".ipynb", ".md", ".json"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        markers = [*titles, *answers] + ([] if rel in documents_markers else ["BEGIN SOLUTION", "END SOLUTION"])
        leaks += [f"{rel}: {m!r}" for m in markers if m in text]
    assert not leaks, "solution content in the public book:\n" + "\n".join(leaks[:20])


def test_public_book_has_no_launch_buttons_without_a_repository(book_html):
    page = (book_html / f"{CHAPTERS[0]}.html").read_text(encoding="utf-8")
    assert "mybinder.org" not in page and "colab.research.google.com" not in page


# ------------------------------------------------------------------------------------------------
# the printable edition

_RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\end\{")  # math delimiters left for MathJax


@pytest.fixture(scope="session")
def book_pdf(book_html) -> Path:
    """`python3 make.py pdf` after the HTML build (its execution cache makes the one-page build quick)."""
    if make.find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but no Chromium was found: `make.py pdf` needs it")
        pytest.skip("`make.py pdf` needs Chromium")
    make.PDF.unlink(missing_ok=True)
    env = make._env(venv=Path(sys.prefix), book=True)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([sys.executable, str(ROOT / "make.py"), "pdf"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"make.py pdf failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return make.PDF


def _outline_titles(outline) -> list[str]:
    out = []
    for item in outline:
        out += _outline_titles(item) if isinstance(item, list) else [item.title]
    return out


def test_pdf_edition_has_every_chapter_typeset_math_and_figures(book_pdf):
    from pypdf import PdfReader

    reader = PdfReader(str(book_pdf))
    assert len(reader.pages) > 50
    titles = _outline_titles(reader.outline)
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    for chapter in CHAPTERS:
        nb = nbformat.read(ROOT / f"{chapter}.ipynb", as_version=4)
        heading = next(c.source for c in nb.cells if c.cell_type == "markdown").splitlines()[0].lstrip("# ").strip()
        assert any(heading.split(":")[0] in t for t in titles), f"{chapter}: no section {heading!r} in the PDF's outline"
    raw = sorted({m.group(0) for m in _RAW_TEX.finditer(text)})
    assert not raw, f"untypeset TeX in the PDF: {raw}"
    images = sum(len(page.images) for page in reader.pages[:40])
    assert images > 5, "the figures did not make it into the PDF"


# ------------------------------------------------------------------------------------------------
# configuration: launch buttons, instructor build, API reference (cheap, no book build)


def test_overrides_are_empty_by_default(monkeypatch):
    monkeypatch.delenv("VAE_COURSE_REPO_URL", raising=False)
    assert make.book_overrides() == {}
    assert make.book_command(Path("bin")) == [str(Path("bin") / "jupyter-book"), "build", "-W", "-n", "--keep-going", "."]


def test_repository_url_switches_on_launch_buttons(monkeypatch):
    monkeypatch.setenv("VAE_COURSE_REPO_URL", "https://github.com/someone/vae-course.git/")
    over = make.book_overrides()
    assert over["repository"] == {"url": "https://github.com/someone/vae-course", "branch": "main"}
    assert over["launch_buttons"] == {"binderhub_url": make.BINDER_URL, "colab_url": make.COLAB_URL}
    # Colab opens notebooks from GitHub only: another host gets Binder alone
    assert make.book_overrides(repo_url="https://gitlab.com/someone/vae-course")["launch_buttons"]["colab_url"] == ""
    with pytest.raises(SystemExit, match="VAE_COURSE_REPO_URL"):
        make.book_overrides(repo_url="github.com/someone/vae-course")


def test_merged_config_keeps_the_rest_of_config_yml():
    base = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    merged = make.merge_config(base, make.book_overrides(repo_url="https://github.com/o/r", instructor=True))
    assert merged["repository"]["url"] == "https://github.com/o/r"
    assert merged["launch_buttons"]["notebook_interface"] == base["launch_buttons"]["notebook_interface"]
    assert merged["sphinx"] == base["sphinx"] and merged["execute"] == base["execute"]
    assert "solutions" in base["exclude_patterns"] and "solutions" not in merged["exclude_patterns"]
    assert "exercises" in merged["exclude_patterns"]


def test_instructor_build_adds_every_solution_notebook():
    cmd = make.book_command(Path("bin"), instructor=True, repo_url="")
    gen_toc = Path(cmd[cmd.index("--toc") + 1])
    gen_config = Path(cmd[cmd.index("--config") + 1])
    assert Path(cmd[cmd.index("--path-output") + 1]) == make.INSTRUCTOR_DIR
    toc = yaml.safe_load(gen_toc.read_text(encoding="utf-8"))
    config = yaml.safe_load(gen_config.read_text(encoding="utf-8"))
    extra = toc["parts"][-1]
    assert toc["parts"][:-1] == TOC["parts"] and "instructor" in extra["caption"].lower()
    assert [c["file"] for c in extra["chapters"]] == [f"solutions/{p.stem}" for p in sorted((ROOT / "solutions").glob("*.ipynb"))]
    assert "solutions" not in config["exclude_patterns"]
    for path in config["sphinx"]["local_extensions"].values():
        assert Path(path).is_absolute() and Path(path).is_dir()


@pytest.mark.skipif(shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) is None,
                    reason="jupyter-book is not installed next to this Python")
def test_launch_buttons_appear_on_notebook_pages(tmp_path):
    """Build a two-page book (no execution) with the generated settings; Colab and Binder links appear."""
    over = make.book_overrides(repo_url="https://github.com/someone/vae-course")
    config = make.merge_config({"title": "t", "author": "a", "execute": {"execute_notebooks": "off"},
                                "only_build_toc_files": True, "exclude_patterns": ["_build"]}, over)
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": "intro", "chapters": [{"file": "book/nb"}]}))
    (tmp_path / "intro.md").write_text("# Intro\n\nHello.\n")
    (tmp_path / "book").mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A chapter"), nbformat.v4.new_code_cell("1 + 1")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "book" / "nb.ipynb")
    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run([str(jb), "build", "-W", "-n", "--keep-going", "."], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    page = (tmp_path / "_build" / "html" / "book" / "nb.html").read_text(encoding="utf-8")
    assert "https://colab.research.google.com/github/someone/vae-course/blob/main/book/nb.ipynb" in page
    assert "https://mybinder.org/v2/gh/someone/vae-course/main?urlpath=" in page
    assert "https://github.com/someone/vae-course" in page  # the repository button


def _package_modules() -> list[str]:
    import vae_course

    names = ["vae_course"]
    for info in pkgutil.walk_packages(vae_course.__path__, "vae_course."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.append(info.name)
    return names


def test_api_reference_documents_every_module():
    """book/api.md must have an automodule entry for each public module (add one for a new module)."""
    api = (ROOT / "book" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"\.\. automodule:: ([\w.]+)", api))
    missing = [m for m in _package_modules() if m not in documented]
    assert not missing, f"add these modules to book/api.md (one '.. automodule::' block each): {missing}"
    stale = sorted(documented - set(_package_modules()))
    assert not stale, f"book/api.md documents modules that do not exist: {stale}"


def test_toc_lists_every_chapter_notebook():
    on_disk = sorted(p.with_suffix("").relative_to(ROOT).as_posix() for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(CHAPTERS) == on_disk, "every book/NN_*.ipynb must be a chapter in _toc.yml, and only those"


def test_vendored_assets_are_present():
    static = ROOT / "book" / "static"
    for rel in ("mathjax/tex-chtml-full.js", "mathjax/LICENSE", "widgets/embed.js", "widgets/LICENSE", "README.md"):
        assert (static / rel).is_file(), f"book/static/{rel} missing (see book/static/README.md)"
    assert len(list((static / "mathjax/output/chtml/fonts/woff-v2").glob("*.woff"))) >= 20


# ------------------------------------------------------------------------------------------------
# the browser


_find_chromium = make.find_chromium
Chromium = make.Chromium  # the DevTools-over-a-pipe driver, shared with `make.py pdf`


@pytest.fixture(scope="session")
def browser():
    exe = _find_chromium()
    if exe is None:
        how = "install it with `apt-get install chromium` (Debian/Ubuntu) or set CHROMIUM=/path/to/chrome"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but no Chromium was found ({', '.join(CHROMIUM_NAMES)}): {how}; .ci/run does this as root")
        pytest.skip(f"the browser test of the book needs Chromium: {how}")
    chrome = Chromium(exe)
    yield chrome
    chrome.close()


@pytest.fixture(scope="session")
def server(book_html):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(make._QuietHandler, directory=str(book_html)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


# Run in the page once it has loaded: wait for MathJax and the widget manager, then report.
_INSPECT = r"""
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const t0 = Date.now();
  while (window.MathJax && !(MathJax.startup && MathJax.startup.promise) && Date.now() - t0 < 20000) await sleep(50);
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length;
  const rendered = () => [...document.querySelectorAll('.widget-subarea')].filter(d => d.children.length > 0).length;
  while (views > rendered() && Date.now() - t0 < 30000) await sleep(100);
  await sleep(300);  // late MathJax passes and widget layout
  await document.fonts.ready;
  const imgs = [...document.images];
  while (imgs.some(i => !i.complete) && Date.now() - t0 < 30000) await sleep(100);

  // not prose: code, outputs, widgets, and Python signatures (whose string defaults may hold TeX)
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight, .widget-subarea, .cell_output .output, .sig';
  const texPattern = /\\\(|\\\[|\$\$|\\(frac|mathbb|mathcal|mathrm|operatorname|sum|int|log|mid|sigma|theta|begin|left|right)\b|\$[^$\s][^$]*\$/;
  const raw = [];
  const walker = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement && n.parentElement.closest(skip)) continue;
    if (texPattern.test(n.textContent)) raw.push(n.textContent.trim().slice(0, 120));
  }
  const mathEls = [...document.querySelectorAll('.math')];
  const sidebar = [...document.querySelectorAll('nav.bd-docs-nav a, .bd-sidenav a')];
  return {
    title: document.title,
    math: mathEls.length,
    mathUntypeset: mathEls.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
    mathErrors: [...document.querySelectorAll('mjx-merror')].map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 120)),
    rawTex: raw.slice(0, 10),
    images: imgs.length,
    brokenImages: imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src')),
    widgetViews: views,
    widgetsRendered: rendered(),
    widgetErrors: [...document.querySelectorAll('.widget-subarea')].filter(d => /Error displaying widget/.test(d.textContent)).length,
    sidebarLinks: sidebar.map(a => a.href.split('#')[0]),
    sidebarText: sidebar.map(a => a.textContent.trim()),
  };
})()
"""


def _problems_from_events(events: list[dict], base: str) -> list[str]:
    problems = []
    for e in events:
        p = e.get("params", {})
        if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            problems.append(f"console.{p['type']}: {text[:300]}")
        elif e["method"] == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            problems.append(f"uncaught exception: {d.get('exception', {}).get('description', d.get('text'))}"[:400])
        elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            problems.append(f"browser log error: {entry.get('text')} {entry.get('url', '')}"[:300])
        elif e["method"] == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            if not url.startswith((base, "data:", "blob:", "about:")):
                problems.append(f"request to another host (the book must work offline): {url}")
        elif e["method"] == "Network.responseReceived":
            status = p.get("response", {}).get("status", 200)
            if status >= 400:
                problems.append(f"HTTP {status}: {p['response'].get('url')}")
        elif e["method"] == "Network.loadingFailed" and not p.get("canceled"):
            problems.append(f"failed to load ({p.get('errorText')}): request {p.get('requestId')}")
    return problems


def _chapter_title(docname: str) -> str:
    nb = nbformat.read(ROOT / f"{docname}.ipynb", as_version=4)
    first = next(c.source for c in nb.cells if c.cell_type == "markdown")
    return re.match(r"#\s+(.+)", first.strip()).group(1).strip()


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline_in_chromium(page, book_html, browser, server):
    session = browser.new_page()
    try:
        mark = len(browser.events.get(session, []))
        url = f"{server}{page}.html"
        nav = browser.call("Page.navigate", {"url": url}, session=session)
        assert not nav.get("errorText"), f"{url}: {nav.get('errorText')}"
        assert browser.wait_event(session, "Page.loadEventFired", mark, timeout=60), f"{url} did not finish loading in 60 s"
        report = browser.evaluate(session, _INSPECT, timeout=90)

        name = page.replace("/", "_")
        browser.screenshot(session, SHOTS / f"{name}.png")
        if report["widgetViews"]:
            browser.evaluate(session, "document.querySelector('.widget-subarea').scrollIntoView({block: 'center', behavior: 'instant'})")
            time.sleep(0.3)
            browser.screenshot(session, SHOTS / f"{name}_widget.png")
        if report["math"]:
            browser.evaluate(session, "(document.querySelector('main div.math') || document.querySelector('main .math'))"
                                      ".scrollIntoView({block: 'center', behavior: 'instant'})")
            time.sleep(0.3)
            browser.screenshot(session, SHOTS / f"{name}_math.png")

        problems = _problems_from_events(browser.events.get(session, [])[mark:], server)
        if report["mathUntypeset"]:
            problems.append(f"{len(report['mathUntypeset'])} math element(s) not typeset, e.g. {report['mathUntypeset'][:3]}")
        if report["mathErrors"]:
            problems.append(f"MathJax errors: {report['mathErrors'][:5]}")
        if report["rawTex"]:
            problems.append(f"unrendered TeX in the text: {report['rawTex'][:5]}")
        if report["brokenImages"]:
            problems.append(f"images that did not load: {report['brokenImages']}")
        if report["widgetsRendered"] < report["widgetViews"] or report["widgetErrors"]:
            problems.append(f"widgets: {report['widgetsRendered']} of {report['widgetViews']} saved views rendered, "
                            f"{report['widgetErrors']} with an error")
        for chapter in CHAPTERS:
            if f"{server}{chapter}.html" not in report["sidebarLinks"]:
                problems.append(f"the sidebar does not link to {chapter}")
            elif _chapter_title(chapter) not in report["sidebarText"]:
                problems.append(f"the sidebar does not show the title {_chapter_title(chapter)!r}")
        assert not problems, f"{page}.html (screenshot {SHOTS / name}.png):\n" + "\n".join(problems)
        if page in CHAPTERS:
            assert report["math"] > 0 and report["images"] > 0, f"{page}: a chapter with no math or no figure? {report}"
    finally:
        browser.call("Target.closeTarget", {"targetId": browser.call("Target.getTargetInfo", session=session)["targetInfo"]["targetId"]})
