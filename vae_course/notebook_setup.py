"""The setup cell every notebook starts with, so that it runs where it is opened: Colab, Binder, a plain Jupyter.

The cell does nothing where ``vae_course`` is importable (a local install, Binder, the book build). Elsewhere (a
notebook opened in Colab from the book's launch button) it installs the course package from the repository the
course is published under, then carries on; without a repository address it says how to install the package.
The address is the one the launch buttons use, ``VAE_COURSE_REPO_URL``: ``python3 make.py release`` (or
``vae-course setup-cells --repo-url URL``) writes it into every notebook of ``book/`` and ``solutions/`` (and
regenerates ``exercises/`` from them), and ``vae-course setup-cells --check`` (run by the tests) reports any notebook whose cell is missing
or out of date. The cell is tagged ``remove-cell`` (the HTML book does not show it) and :data:`TAG`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from .release import release

__all__ = ["TAG", "FOLDERS", "install_target", "setup_cell_source", "find_setup_cell", "write_setup_cells",
           "stale_setup_cells", "add_arguments", "run"]

TAG = "course-setup"
FOLDERS = ("book", "solutions", "exercises")
_REPO_LINE = "COURSE_REPO = "


def install_target(repo_url: str = "", branch: str = "main") -> str:
    """What the cell passes to ``pip install``: ``vae_course @ git+URL@BRANCH`` for a web address, the path itself
    for a local folder (the tests install from a checkout this way), ``""`` when there is no repository."""
    repo_url = repo_url.strip().rstrip("/")
    if not repo_url:
        return ""
    if repo_url.startswith(("https://", "http://")):
        repo_url = repo_url.removesuffix(".git")
        return f"vae_course @ git+{repo_url}.git@{branch or 'main'}"
    return repo_url


def setup_cell_source(repo_url: str = "", branch: str = "main") -> str:
    """The source of the setup cell for a repository address (``""``: none yet)."""
    target = install_target(repo_url, branch)
    return "\n".join([
        "# Setup for Colab and other fresh environments: installs the course package if it is missing; does nothing",
        "# where it is installed (locally, on Binder). `vae-course setup-cells --repo-url URL` writes COURSE_REPO.",
        "import importlib, importlib.util, subprocess, sys",
        f"{_REPO_LINE}{target!r}",
        "if importlib.util.find_spec(\"vae_course\") is None:",
        "    if not COURSE_REPO:",
        "        raise ModuleNotFoundError(\"vae_course is not installed. Install the course package (README: \"",
        "                                  \"python3 make.py setup), or pip install it from the course's repository.\")",
        "    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"--quiet\", COURSE_REPO], check=True)",
        "    importlib.invalidate_caches()",
    ])


def find_setup_cell(nb: nbformat.NotebookNode) -> int | None:
    """Index of the notebook's setup cell (the code cell tagged :data:`TAG`), or None."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and TAG in cell.get("metadata", {}).get("tags", []):
            return i
    return None


def _with_setup_cell(nb: nbformat.NotebookNode, source: str) -> bool:
    """Put the setup cell with ``source`` before the first code cell (after the title and introduction); True if
    the notebook changed."""
    i = find_setup_cell(nb)
    if i is not None:
        if nb.cells[i].source == source:
            return False
        nb.cells[i].source = source
        return True
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["remove-cell", TAG]})
    cell["id"] = TAG  # a fixed id: the generated files are the same on every run
    first_code = next((j for j, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells.insert(first_code, cell)
    return True


def _notebooks(root: Path, folders=FOLDERS) -> list[Path]:
    return sorted(p for f in folders for p in (root / f).glob("*.ipynb"))


def write_setup_cells(root: str | Path = ".", repo_url: str = "", branch: str = "main", *,
                      folders=("book", "solutions")) -> list[Path]:
    """Give every notebook in ``root/<folders>`` the setup cell for ``repo_url``; returns the files changed.
    ``exercises/`` gets its cells from ``solutions/`` through :mod:`vae_course.release`."""
    source, changed = setup_cell_source(repo_url, branch), []
    for path in _notebooks(Path(root), folders):
        nb = nbformat.read(str(path), as_version=4)
        if _with_setup_cell(nb, source):
            nbformat.write(nb, str(path))
            changed.append(path)
    return changed


def stale_setup_cells(root: str | Path = ".", *, folders=FOLDERS) -> list[str]:
    """Notebooks whose setup cell is missing, not the generated text, or for another repository than the rest
    (sentences, one per problem; empty when every notebook is up to date)."""
    problems, targets = [], {}
    for path in _notebooks(Path(root), folders):
        nb = nbformat.read(str(path), as_version=4)
        i = find_setup_cell(nb)
        rel = path.relative_to(root).as_posix()
        if i is None:
            problems.append(f"{rel}: no setup cell (a code cell tagged {TAG!r})")
            continue
        line = next((ln for ln in nb.cells[i].source.splitlines() if ln.startswith(_REPO_LINE)), None)
        target = eval(line[len(_REPO_LINE):], {}) if line else None  # noqa: S307 - a string literal we wrote
        if not isinstance(target, str) or nb.cells[i].source != _source_for_target(target):
            problems.append(f"{rel}: the setup cell is not the generated one")
        elif i != next(j for j, c in enumerate(nb.cells) if c.cell_type == "code"):
            problems.append(f"{rel}: the setup cell is not the first code cell")
        else:
            targets.setdefault(target, []).append(rel)
    if len(targets) > 1:
        problems.append(f"notebooks install from different repositories: {sorted(targets)}")
    return problems


def _source_for_target(target: str) -> str:
    src = setup_cell_source("", "main")
    return src.replace(f"{_REPO_LINE}''", f"{_REPO_LINE}{target!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``vae-course setup-cells``."""
    parser.add_argument("--repo-url", default="", help="the course repository's address, e.g. https://github.com/OWNER/REPO "
                        "(default: none; the cell then says how to install)")
    parser.add_argument("--branch", default="main", help="the branch to install from (default main)")
    parser.add_argument("--root", default=".", help="the course folder holding book/, solutions/ and exercises/")
    parser.add_argument("--check", action="store_true", help="only report notebooks whose setup cell is out of date")


def run(args: argparse.Namespace) -> int:
    """``vae-course setup-cells``: write (or ``--check``) the setup cell of every notebook."""
    root = Path(args.root)
    if not all((root / f).is_dir() for f in FOLDERS):
        print(f"error: --root: {root.resolve()} has no {'/, '.join(FOLDERS)}/ folders; run from the course folder",
              file=sys.stderr)
        return 2
    if args.check:
        problems = stale_setup_cells(root)
        for p in problems:
            print(p)
        print("setup cells are up to date" if not problems else f"{len(problems)} notebook(s) need `vae-course setup-cells`")
        return 1 if problems else 0
    changed = write_setup_cells(root, args.repo_url, args.branch)
    changed += release(root / "solutions", root / "exercises")
    print(f"{len(changed)} notebook(s) updated; installs from {install_target(args.repo_url, args.branch) or '(no repository)'}")
    return 0
