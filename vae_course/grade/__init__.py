"""Grade a folder of submitted exercise notebooks: ``vae-course grade SUBMISSIONS_DIR --out results.csv``.

The grader does not trust what a notebook says about itself. Every file is read before anything runs. Each
submission then

1. runs top to bottom in a fresh Jupyter kernel, in a temporary working folder, with a time limit for the whole
   notebook: this only tells how far it ran (the check results it displays are ignored);
2. is reduced to the student's definitions and answers (:mod:`vae_course.grade.answers`: imports, ``def`` and
   ``class`` statements, numbers; nothing else of the notebook);
3. is judged by the instructor's checks in a fresh process (:mod:`vae_course.grade.judge`), where the student's
   other cells cannot reach the checks, optionally with extra randomized cases (``--strict``).

One CSV row per submission and exercise, with the columns :data:`COLUMNS`:

* ``status`` is ``pass``, ``fail``, ``not_implemented`` or ``timeout`` as the judge found it, or ``not_run``
  when the notebook's run stopped before the exercise (an earlier cell raised, the time ran out, the kernel
  died, the file is not a notebook) or the exercise is not in the notebook;
* ``kind`` is ``function``, ``build`` or ``value``; ``measured`` is a build task's measured outcome or a
  derivation's answer, and ``band`` the band it had to reach (:mod:`vae_course.checks.outcomes`);
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
A file that matches no reference notebook, or one without registered exercises, gets no exercise rows:
there is nothing the grader can check (what it displays is not evidence).

Grading runs the students' code with your permissions and does not sandbox it: run it in a
container or a throwaway account. It needs no network.
"""
from __future__ import annotations

import argparse
import csv
import re
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from .. import notebook_run
from .._args import finite_float
from ..checks import exercises_for
from .answers import Answer, Extracted, extract, setup_source
from .judge import judge

__all__ = ["COLUMNS", "Row", "Submission", "match_reference", "expected_exercises", "grade_notebook", "grade_folder",
           "write_csv", "summary_table", "main", "add_arguments", "run"]

COLUMNS = ("file", "student", "notebook", "exercise", "kind", "status", "measured", "band", "message")
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
    kind: str = ""
    measured: str = ""
    band: str = ""

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


def _one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text))  # ANSI colours of tracebacks
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _execute(nb: nbformat.NotebookNode, timeout: float, kernel_name: str) -> tuple[str, str, int]:
    """Run every cell in order within ``timeout`` seconds in all; stop at the first error.

    Returns ``(status, message, stop)``: ``("", "", len(cells))`` when every cell ran, else ``error``,
    ``timeout`` or ``kernel_died``, a sentence saying where, and the index of the cell that did not finish.
    """
    status, message, stop = _run_cells(nb, timeout, kernel_name)
    return status, message, stop


def _run_cells(nb: nbformat.NotebookNode, timeout: float, kernel_name: str) -> tuple[str, str, int]:
    notebook_run.install()  # no lost wake-ups while a submission runs
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
                        return "timeout", f"the notebook ran out of its {timeout:g} s before cell {index}", index
                    client.timeout = max(1, int(left + 0.999))
                    try:
                        client.execute_cell(cell, index)
                    except CellTimeoutError:
                        return "timeout", f"cell {index} was still running when the notebook's {timeout:g} s ran out", index
                    except DeadKernelError:
                        return ("kernel_died", f"the kernel died while running cell {index} (e.g. os._exit, a crash or "
                                "out of memory)", index)
                    except CellExecutionError as err:
                        ename = getattr(err, "ename", "") or "an exception"
                        evalue = getattr(err, "evalue", "")
                        return "error", f"cell {index} raised {ename}: {_one_line(evalue, 200)}", index
        except DeadKernelError:
            return "kernel_died", "the kernel died", 0
        except RuntimeError as err:  # e.g. the kernel failed to start
            return "kernel_died", f"the kernel could not run the notebook: {_one_line(err)}", 0
    return "", "", len(nb.cells)


def grade_notebook(path: str | Path, *, expected: list[str] | None = None, notebook: str = "", student: str = "",
                   timeout: float = 300, kernel_name: str = "python3", reference: nbformat.NotebookNode | None = None,
                   content: str | None = None, strict: int | None = None, check_timeout: float = 300) -> Submission:
    """Run one submission, extract its answers and judge them (see the module docstring).

    Args:
        path: the submission (its name goes into the rows); ``content``: its text, if already read.
        expected: the display names of the exercises to report (default: the registry's for ``notebook``).
        notebook: the reference notebook's file name; ``reference``: that notebook (its setup cell is the judge's).
        timeout: seconds for the notebook's run; ``check_timeout``: seconds for each exercise's check.
        strict: a seed for extra randomized cases (:func:`vae_course.checks.set_strict`), or None.
    """
    path = Path(path)
    sub = Submission(file=path.name, student=student, notebook=notebook)
    start = time.perf_counter()
    registered = list(exercises_for(notebook)) if notebook else []
    if expected is not None:
        registered = [e for e in registered if e.name in expected]
    try:
        nb = nbformat.reads(content if content is not None else path.read_text(encoding="utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # not JSON, not a notebook, or an unreadable file
        sub.problem = f"invalid: not a valid notebook ({type(err).__name__}: {_one_line(err, 200)})"
        status, message, stop = "invalid", sub.problem.split(": ", 1)[1], 0
        nb = None
    else:
        status, message, stop = _execute(nbformat.from_dict(nb), timeout, kernel_name)
        if status:
            sub.problem = f"{status}: {message}"

    def row(exercise: str, st: str, msg: str, kind: str = "", measured=None, band: str = "") -> Row:
        shown = "" if measured is None else f"{measured:.6g}"
        return Row(sub.file, sub.student, sub.notebook, exercise, st, _one_line(msg, 1000), kind, shown, band)

    if status:
        sub.rows.append(row(NOTEBOOK_ROW, status, message))
    records = {}
    found = extract(nb, registered) if nb is not None else Extracted(answers=[Answer(e) for e in registered])
    reached = [a for a in found.answers if a.cell is not None and max(a.cell, a.check_cell or a.cell) < stop]
    if reached and reference is not None:
        todo = [{"id": a.exercise.id, "value_source": a.value_source, "problem": a.problem} for a in reached]
        records = judge(notebook, setup_source(reference), found.sources, todo, strict=strict, timeout=check_timeout)
    for a in found.answers:
        e = a.exercise
        record = records.get(e.id)
        if record is None:
            if status and (a.cell is None or max(a.cell, a.check_cell or a.cell) >= stop):
                why = f"not run: {message}"
            elif a.cell is None:
                why = f"not run: the notebook does not define `{e.function}` (a def, class or assignment at the top of a cell)"
            else:
                why = "not run: the reference notebook is not available to the grader"
            sub.rows.append(row(e.name, NOT_RUN, why, e.kind))
        else:
            sub.rows.append(row(e.name, str(record.get("status", "")), str(record.get("message", "")), e.kind,
                                record.get("measured"), str(record.get("band", "") or "")))
    sub.seconds = time.perf_counter() - start
    return sub


def _default_reference_dir() -> Path:
    here = Path.cwd() / "exercises"
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "exercises"


def grade_folder(submissions: str | Path, *, reference_dir: str | Path | None = None, timeout: float = 300,
                 kernel_name: str = "python3", progress=None, strict: int | None = None,
                 check_timeout: float = 300) -> list[Submission]:
    """Grade every ``*.ipynb`` in ``submissions`` (sorted by name); see the module docstring.

    Every submission and reference notebook is read before the first one runs, so a submission that deletes
    files around it changes nothing for the rest of the batch."""
    folder = Path(submissions)
    if not folder.is_dir():
        raise FileNotFoundError(f"submissions_dir: {folder} is not a folder")
    files = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    if not files:
        raise FileNotFoundError(f"submissions_dir: {folder} holds no .ipynb files")
    ref_dir = Path(reference_dir) if reference_dir is not None else _default_reference_dir()
    references: dict[str, nbformat.NotebookNode | None] = {}
    for p in sorted(ref_dir.glob("*.ipynb")) if ref_dir.is_dir() else []:
        try:
            references[p.name] = nbformat.read(str(p), as_version=4)
        except Exception:
            references[p.name] = None
    contents = {}
    for path in files:
        try:
            contents[path] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            contents[path] = ""
    results = []
    for path in files:
        match = match_reference(path.name, list(references))
        notebook, student = (match[0], match[1]) if match else ("", "")
        sub = grade_notebook(path, notebook=notebook, student=student, timeout=timeout, kernel_name=kernel_name,
                             reference=references.get(notebook), content=contents[path], strict=strict,
                             check_timeout=check_timeout)
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
        count["fail"] += sum(r.status == "timeout" for r in ex)
        note = sub.problem or ("" if sub.notebook else "no matching exercise notebook")
        lines.append((sub.file, str(count["pass"]), str(count["fail"]), str(count["not_implemented"]),
                      str(count[NOT_RUN]), f"{sub.seconds:.0f} s", _one_line(note, 70)))
    widths = [max(len(h), *(len(ln[i]) for ln in lines)) for i, h in enumerate(head)]
    fmt = lambda cols: "  ".join(c.ljust(w) if i in (0, 6) else c.rjust(w) for i, (c, w) in enumerate(zip(cols, widths)))
    return "\n".join(fmt(ln).rstrip() for ln in [head, tuple("-" * w for w in widths), *lines])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submissions_dir", help="folder of submitted notebooks, named e.g. alice_00_preliminaries.ipynb")
    parser.add_argument("--out", default="results.csv", help="CSV file to write (default: results.csv)")
    parser.add_argument("--timeout", type=finite_float, default=300,
                        help="seconds each notebook may run in all before it is stopped (default: 300)")
    parser.add_argument("--reference", default=None,
                        help="folder of the exercise notebooks that submissions are matched against by name; "
                             "the exercise registry gives each one's list of exercises "
                             "(default: ./exercises, else the course's exercises/)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel to run the notebooks in (default: python3)")
    parser.add_argument("--check-timeout", type=float, default=300,
                        help="seconds each exercise's check may take (a build task trains; default: 300)")
    parser.add_argument("--strict", action="store_true",
                        help="add randomized cases that are not in the students' copy of the checks (drawn from --seed)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the --strict cases (default: a fresh random one, printed, for the record)")


def run(args: argparse.Namespace) -> int:
    for flag, value in (("--timeout", args.timeout), ("--check-timeout", args.check_timeout)):
        if value <= 0:
            print(f"error: {flag}: got {value:g}; need a positive number of seconds", file=sys.stderr)
            return 2
    if args.seed is not None and not args.strict:
        print("error: --seed: only used with --strict", file=sys.stderr)
        return 2
    strict = (args.seed if args.seed is not None else secrets.randbelow(2**31)) if args.strict else None
    if strict is not None:
        print(f"strict grading: extra randomized cases from seed {strict} (rerun with --strict --seed {strict})")
    try:
        results = grade_folder(args.submissions_dir, reference_dir=args.reference, timeout=args.timeout,
                               kernel_name=args.kernel, strict=strict, check_timeout=args.check_timeout,
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
