"""Grade a folder of submitted exercise notebooks: ``vae-course grade SUBMISSIONS_DIR --out results.csv``.

Each submission runs top to bottom in a fresh Jupyter kernel, in a temporary working folder, with
a time limit for the whole notebook. Every check cell displays its outcome as a JSON record under
the MIME type :data:`vae_course.checks.MIME_TYPE` (exercise, status, message); the grader collects
them and writes one CSV row per submission and exercise, with the columns :data:`COLUMNS`:

* ``status`` is ``pass``, ``fail`` or ``not_implemented`` as the check reported it, or
  ``not_run`` when the check cell never ran (an earlier cell raised, the time ran out, the kernel
  died, the file is not a notebook, or the student deleted the check cell);
* a submission that did not run to its end also gets one row with ``exercise`` ``(notebook)``
  whose status says why: ``error`` (a cell raised), ``timeout``, ``kernel_died`` or ``invalid``
  (not valid notebook JSON). The batch always carries on with the next file.

Naming rule. A submission's file name must end with the name of the exercise notebook it answers
(``NN_topic.ipynb``), optionally after a student identifier and one separator (``_``, ``-``, ``.``
or a space): ``alice_00_preliminaries.ipynb``, ``s1234567-01_probabilistic_generators.ipynb`` and
``00_preliminaries.ipynb`` all match ``00_preliminaries.ipynb``; the ``student`` column gets the
part before the separator. The reference notebooks are the ones in ``exercises/`` (by default);
the exercises that :mod:`vae_course.checks.registry` lists for the matching one are the rows every
submission of that notebook gets, so an exercise that a submission never reached is still listed.
A file that matches no reference notebook, or one without registered exercises, is graded by the
checks it displays alone.

Grading runs the students' code with your permissions and does not sandbox it: run it in a
container or a throwaway account. It needs no network.
"""
from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from .checks import MIME_TYPE, exercises_for

__all__ = ["COLUMNS", "Row", "Submission", "match_reference", "expected_exercises", "grade_notebook", "grade_folder",
           "write_csv", "summary_table", "main", "add_arguments", "run"]

COLUMNS = ("file", "student", "notebook", "exercise", "status", "message")
NOTEBOOK_ROW = "(notebook)"
NOT_RUN = "not_run"
SEPARATORS = "_-. "


@dataclass
class Row:
    """One line of the results: a submission file and one exercise (or the notebook itself)."""

    file: str
    student: str
    notebook: str
    exercise: str
    status: str
    message: str

    def as_list(self) -> list[str]:
        return [getattr(self, c) for c in COLUMNS]


@dataclass
class Submission:
    """The outcome of one submission file: its rows and, if it did not run to its end, why."""

    file: str
    student: str
    notebook: str
    rows: list[Row] = field(default_factory=list)
    problem: str = ""
    seconds: float = 0.0


def match_reference(filename: str, references: list[str]) -> tuple[str, str] | None:
    """The reference notebook a submission answers, and the student part of its name.

    ``references`` are notebook file names (``00_preliminaries.ipynb``). The longest reference
    that the file name ends with, after nothing or after a separator, wins; None if none matches.
    """
    name = filename.lower()
    for ref in sorted(references, key=len, reverse=True):
        r = ref.lower()
        if name == r:
            return ref, ""
        if name.endswith(r) and name[-len(r) - 1] in SEPARATORS:
            return ref, filename[: -len(r) - 1]
    return None


def expected_exercises(reference: str | Path) -> list[str]:
    """The display names of a reference notebook's exercises, in order, as their checks report them.

    They come from :data:`vae_course.checks.registry.EXERCISES` by the notebook's file name (the file is not
    read); empty for a notebook without registered exercises.
    """
    return [e.name for e in exercises_for(reference)]


def _outcomes(nb: nbformat.NotebookNode) -> dict[str, dict]:
    """The last check record per exercise that the executed notebook displays."""
    found: dict[str, dict] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            record = out.get("data", {}).get(MIME_TYPE)
            if isinstance(record, dict) and "exercise" in record:
                found[str(record["exercise"])] = record
    return found


def _one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text))  # ANSI colours of tracebacks
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _execute(nb: nbformat.NotebookNode, timeout: float, kernel_name: str) -> tuple[str, str]:
    """Run every cell in order within ``timeout`` seconds in all; stop at the first error.

    Returns ``(status, message)``: ``("", "")`` when every cell ran, else ``error``, ``timeout``
    or ``kernel_died`` and a sentence saying where.
    """
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="vae-course-grade-") as workdir:
        client = NotebookClient(nb, timeout=max(1, int(timeout)), kernel_name=kernel_name, allow_errors=False,
                                resources={"metadata": {"path": workdir}}, record_timing=False)
        try:
            # the kernel's own log (and a dying kernel's traceback) would drown the summary
            with client.setup_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type != "code":
                        continue
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return "timeout", f"the notebook ran out of its {timeout:g} s before cell {index}"
                    client.timeout = max(1, int(left + 0.999))
                    try:
                        client.execute_cell(cell, index)
                    except CellTimeoutError:
                        return "timeout", f"cell {index} was still running when the notebook's {timeout:g} s ran out"
                    except DeadKernelError:
                        return "kernel_died", f"the kernel died while running cell {index} (e.g. os._exit, a crash or out of memory)"
                    except CellExecutionError as err:
                        ename = getattr(err, "ename", "") or "an exception"
                        evalue = getattr(err, "evalue", "")
                        return "error", f"cell {index} raised {ename}: {_one_line(evalue, 200)}"
        except DeadKernelError:
            return "kernel_died", "the kernel died"
        except RuntimeError as err:  # e.g. the kernel failed to start
            return "kernel_died", f"the kernel could not run the notebook: {_one_line(err)}"
    return "", ""


def grade_notebook(path: str | Path, *, expected: list[str] | None = None, notebook: str = "", student: str = "",
                   timeout: float = 300, kernel_name: str = "python3") -> Submission:
    """Execute one submission and turn its check records into rows (see the module docstring)."""
    path = Path(path)
    sub = Submission(file=path.name, student=student, notebook=notebook)
    start = time.perf_counter()
    try:
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # not JSON, not a notebook, or an unreadable file
        sub.problem = f"invalid: not a valid notebook ({type(err).__name__}: {_one_line(err, 200)})"
        status, message = "invalid", sub.problem.split(": ", 1)[1]
        found: dict[str, dict] = {}
    else:
        status, message = _execute(nb, timeout, kernel_name)
        found = _outcomes(nb)
        if status:
            sub.problem = f"{status}: {message}"
    sub.seconds = time.perf_counter() - start

    def row(exercise: str, st: str, msg: str) -> Row:
        return Row(sub.file, sub.student, sub.notebook, exercise, st, msg)

    if status:
        sub.rows.append(row(NOTEBOOK_ROW, status, message))
    why = f"not run: {message}" if status else "not run: no check output (the check cell is missing or was changed)"
    for exercise in expected or []:
        record = found.pop(exercise, None)
        if record is None:
            sub.rows.append(row(exercise, NOT_RUN, why))
        else:
            sub.rows.append(row(exercise, str(record.get("status", "")), _one_line(record.get("message", ""), 1000)))
    for exercise, record in found.items():  # checks the reference does not list (or no reference)
        sub.rows.append(row(exercise, str(record.get("status", "")), _one_line(record.get("message", ""), 1000)))
    return sub


def _default_reference_dir() -> Path:
    here = Path.cwd() / "exercises"
    return here if here.is_dir() else Path(__file__).resolve().parents[1] / "exercises"


def grade_folder(submissions: str | Path, *, reference_dir: str | Path | None = None, timeout: float = 300,
                 kernel_name: str = "python3", progress=None) -> list[Submission]:
    """Grade every ``*.ipynb`` in ``submissions`` (sorted by name); see the module docstring."""
    folder = Path(submissions)
    if not folder.is_dir():
        raise FileNotFoundError(f"submissions_dir: {folder} is not a folder")
    files = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    if not files:
        raise FileNotFoundError(f"submissions_dir: {folder} holds no .ipynb files")
    ref_dir = Path(reference_dir) if reference_dir is not None else _default_reference_dir()
    references = sorted(p.name for p in ref_dir.glob("*.ipynb")) if ref_dir.is_dir() else []
    results = []
    for path in files:
        match = match_reference(path.name, references)
        notebook, student = (match[0], match[1]) if match else ("", "")
        sub = grade_notebook(path, expected=expected_exercises(notebook) if notebook else None, notebook=notebook,
                             student=student, timeout=timeout, kernel_name=kernel_name)
        results.append(sub)
        if progress is not None:
            progress(sub)
    return results


def write_csv(results: list[Submission], out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for sub in results:
            writer.writerows(r.as_list() for r in sub.rows)
    return out


def summary_table(results: list[Submission]) -> str:
    """One line per submission: counts of each status and what went wrong, if anything."""
    head = ("file", "pass", "fail", "todo", "not run", "time", "problem")
    lines = []
    for sub in results:
        ex = [r for r in sub.rows if r.exercise != NOTEBOOK_ROW]
        count = {s: sum(r.status == s for r in ex) for s in ("pass", "fail", "not_implemented", NOT_RUN)}
        note = sub.problem or ("" if sub.notebook else "no matching exercise notebook")
        lines.append((sub.file, str(count["pass"]), str(count["fail"]), str(count["not_implemented"]),
                      str(count[NOT_RUN]), f"{sub.seconds:.0f} s", _one_line(note, 70)))
    widths = [max(len(h), *(len(ln[i]) for ln in lines)) for i, h in enumerate(head)]
    fmt = lambda cols: "  ".join(c.ljust(w) if i in (0, 6) else c.rjust(w) for i, (c, w) in enumerate(zip(cols, widths)))
    return "\n".join(fmt(ln).rstrip() for ln in [head, tuple("-" * w for w in widths), *lines])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submissions_dir", help="folder of submitted notebooks, named e.g. alice_00_preliminaries.ipynb")
    parser.add_argument("--out", default="results.csv", help="CSV file to write (default: results.csv)")
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds each notebook may run in all before it is stopped (default: 300)")
    parser.add_argument("--reference", default=None,
                        help="folder of the exercise notebooks that submissions are matched against by name; "
                             "the exercise registry gives each one's list of exercises "
                             "(default: ./exercises, else the course's exercises/)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel to run the notebooks in (default: python3)")


def run(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        print(f"error: --timeout: got {args.timeout:g}; need a positive number of seconds", file=sys.stderr)
        return 2
    try:
        results = grade_folder(args.submissions_dir, reference_dir=args.reference, timeout=args.timeout,
                               kernel_name=args.kernel,
                               progress=lambda s: print(f"graded {s.file} ({s.seconds:.0f} s)"
                                                        + (f": {s.problem}" if s.problem else ""), flush=True))
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = write_csv(results, args.out)
    print()
    print(summary_table(results))
    print(f"\n{sum(len(s.rows) for s in results)} rows for {len(results)} submission(s) written to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vae-course grade", description="Grade submitted exercise notebooks into a CSV file.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
