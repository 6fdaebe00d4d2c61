"""Generate the student notebooks in ``exercises/`` from the solutions in ``solutions/``.

Each solution notebook is the single source of its exercises. Solution code sits between
marker lines, and the generated exercise keeps everything else::

    def entropy(p):                          def entropy(p):
        ### BEGIN SOLUTION                       raise NotImplementedError("Exercise: write `entropy`")
        return -(p * p.log()).sum(-1)    ->
        ### END SOLUTION

A region at the top level of a cell that only assigns numbers to names (the answer of a derivation) becomes
the same names set to ``...``, so the unsolved notebook still runs and its check reports "not answered yet"::

    ### BEGIN SOLUTION                        gap_nats = ...  # your answer: a number
    gap_nats = 0.5 * math.log(45 / 29)  ->
    ### END SOLUTION

Markdown answers use ``<!-- BEGIN SOLUTION -->`` ... ``<!-- END SOLUTION -->`` and become
"*Write your answer here.*". Outputs and execution counts are dropped. The output is
deterministic, so a test can check that ``exercises/`` is exactly what this module generates.

Usage: ``vae-course release`` or ``python -m vae_course.release [--check] [SOLUTIONS_DIR EXERCISES_DIR]``.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import nbformat

__all__ = ["strip_solutions", "release_notebook", "release", "ReleaseError"]

CODE_BEGIN, CODE_END = "### BEGIN SOLUTION", "### END SOLUTION"
MD_BEGIN, MD_END = "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"
MD_STUB = "*Write your answer here.*"
VALUE_STUB = "{name} = ...  # your answer: a number (or an arithmetic expression such as 2 * math.log(3))"
GENERATED_NOTE = "generated from solutions/ by `vae-course release`; edit the solution notebook instead"


class ReleaseError(ValueError):
    """A solution notebook whose markers are unbalanced or nested."""


def _enclosing_name(lines: list[str], index: int) -> str | None:
    """The name of the innermost ``def`` above line ``index`` (used in the stub's message)."""
    for line in reversed(lines[:index]):
        m = re.match(r"\s*def\s+(\w+)", line)
        if m:
            return m.group(1)
    return None


def _answer_names(region: list[str]) -> list[str] | None:
    """The names a top-level region assigns, if it is nothing but ``name = expression`` lines; else None."""
    try:
        tree = ast.parse("\n".join(region))
    except SyntaxError:
        return None
    names = []
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            return None
        names.append(node.targets[0].id)
    return names or None


def strip_solutions(source: str, *, cell_type: str = "code", where: str = "cell") -> str:
    """Replace every solution region of one cell's ``source`` with a stub.

    Args:
        source: the cell's text.
        cell_type: ``"code"`` (``### BEGIN/END SOLUTION`` lines) or ``"markdown"`` (HTML comments).
        where: a description of the cell for error messages (e.g. ``"solutions/00_x.ipynb, cell 5"``).
    Raises:
        ReleaseError: for a BEGIN without END, an END without BEGIN, or nested regions.
    """
    begin, end = (CODE_BEGIN, CODE_END) if cell_type == "code" else (MD_BEGIN, MD_END)
    lines = source.split("\n")
    out: list[str] = []
    start: int | None = None
    region: list[str] = []
    indent = ""
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped == begin:
            if start is not None:
                raise ReleaseError(f"{where}: line {i + 1}: '{begin}' inside another solution region")
            start, region = i, []
            indent = line[: len(line) - len(line.lstrip())]
        elif stripped == end:
            if start is None:
                raise ReleaseError(f"{where}: line {i + 1}: '{end}' without a matching '{begin}'")
            out += _stub(lines, start, region, indent, cell_type)
            start = None
        elif start is None:
            out.append(line)
        else:
            region.append(line)
    if start is not None:
        raise ReleaseError(f"{where}: line {start + 1}: '{begin}' is never closed by '{end}'")
    return "\n".join(out)


def _stub(lines: list[str], start: int, region: list[str], indent: str, cell_type: str) -> list[str]:
    """What replaces one solution region (see the module docstring)."""
    if cell_type != "code":
        return [indent + MD_STUB]
    names = _answer_names(region) if indent == "" else None
    if names:
        return [VALUE_STUB.format(name=n) for n in names]
    name = _enclosing_name(lines, start)
    what = f"write `{name}`" if name else "fill in this cell"
    return [f'{indent}raise NotImplementedError("Exercise: {what}, then run the check cell below")']


def release_notebook(nb: nbformat.NotebookNode, *, name: str = "notebook") -> nbformat.NotebookNode:
    """Return the exercise version of solution notebook ``nb`` (the input is not modified)."""
    ex = nbformat.from_dict(nb)
    n_regions = 0
    for i, cell in enumerate(ex.cells):
        where = f"{name}, cell {i}"
        before = cell.source
        if cell.cell_type in ("code", "markdown"):
            cell.source = strip_solutions(cell.source, cell_type=cell.cell_type, where=where)
        n_regions += before != cell.source
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.get("metadata", {}).pop("execution", None)
    if n_regions == 0:
        raise ReleaseError(f"{name}: no solution regions found; mark them with '{CODE_BEGIN}' / '{CODE_END}'")
    ex.metadata["vae_course"] = {"generated": GENERATED_NOTE}
    ex.metadata.pop("widgets", None)
    return ex


def release(solutions_dir: str | Path = "solutions", exercises_dir: str | Path = "exercises", *, check: bool = False) -> list[Path]:
    """Write (or with ``check=True`` only compare) one exercise notebook per solution notebook.

    Returns the exercise paths that were written, or that differ from what would be written when
    ``check`` is true. Exercise notebooks without a solution are reported as differing too.
    """
    src, dst = Path(solutions_dir), Path(exercises_dir)
    if not src.is_dir():
        raise FileNotFoundError(f"solutions_dir: {src} is not a folder; run from the course's root or pass the path")
    sources = sorted(src.glob("*.ipynb"))
    if not sources:
        raise FileNotFoundError(f"solutions_dir: {src} holds no .ipynb files")
    changed: list[Path] = []
    for path in sources:
        nb = nbformat.read(path, as_version=4)
        text = nbformat.writes(release_notebook(nb, name=str(path)))
        target = dst / path.name
        if target.exists() and target.read_text(encoding="utf-8") == text + "\n":
            continue
        changed.append(target)
        if not check:
            dst.mkdir(parents=True, exist_ok=True)
            target.write_text(text + "\n", encoding="utf-8")
    if check and dst.is_dir():
        wanted = {p.name for p in sources}
        changed += [p for p in sorted(dst.glob("*.ipynb")) if p.name not in wanted]
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vae-course release", description="Generate exercises/ from solutions/.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("solutions_dir", nargs="?", default="solutions", help="folder of solution notebooks (default: solutions)")
    parser.add_argument("exercises_dir", nargs="?", default="exercises", help="folder to write exercises to (default: exercises)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if exercises/ is out of date")


def run(args: argparse.Namespace) -> int:
    try:
        changed = release(args.solutions_dir, args.exercises_dir, check=args.check)
    except (ReleaseError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.check:
        for path in changed:
            print(f"out of date: {path}")
        print("exercises are up to date" if not changed else "run `vae-course release` and commit exercises/")
        return 1 if changed else 0
    for path in changed:
        print(f"wrote {path}")
    print(f"{len(changed)} exercise notebook(s) written" if changed else "exercises already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
