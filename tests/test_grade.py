"""vae_course.grade on a folder of deliberately broken submissions written into tmp_path.

Each submission is a copy of exercises/00_preliminaries.ipynb whose first stub (`entropy`) is
replaced by: a correct answer, a wrong answer, an infinite loop (short timeout), os._exit(1),
invalid JSON, or an exception in the setup cell. The grader must give every file its rows and
carry on with the batch.
"""
import csv
from pathlib import Path

import nbformat
import pytest

from vae_course import grade
from vae_course.checks import FAIL, NOT_IMPLEMENTED, PASS, exercises_for

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "exercises"
TOPIC = "00_preliminaries.ipynb"
EXERCISES = grade.expected_exercises(REFERENCE / TOPIC)
ENTROPY = EXERCISES[0]
STUB = 'raise NotImplementedError("Exercise: write `entropy`, then run the check cell below")'


def _submission(folder: Path, name: str, body: str | None = None, setup_extra: str = "") -> Path:
    nb = nbformat.read(REFERENCE / TOPIC, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    if body is not None:
        target = next(c for c in cells if STUB in c.source)
        target.source = target.source.replace(STUB, body)
    if setup_extra:
        cells[0].source += "\n" + setup_extra
    path = folder / name
    nbformat.write(nb, path)
    return path


def _rows(csv_path: Path) -> dict[str, dict[str, dict]]:
    with csv_path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(grade.COLUMNS)
    by_file: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_file.setdefault(r["file"], {})[r["exercise"]] = r
    return by_file


def test_reference_lists_the_exercises_in_order():
    assert len(EXERCISES) == 3 and "entropy" in ENTROPY.lower()


def test_expected_exercises_come_from_the_registry_without_reading_the_notebook(tmp_path):
    assert grade.expected_exercises(tmp_path / TOPIC) == [e.name for e in exercises_for(TOPIC)] == EXERCISES
    assert grade.expected_exercises(tmp_path / "09_extra.ipynb") == []


@pytest.mark.parametrize("name, expected", [
    ("alice_00_preliminaries.ipynb", (TOPIC, "alice")),
    ("00_preliminaries.ipynb", (TOPIC, "")),
    ("s123-00_Preliminaries.ipynb", (TOPIC, "s123")),
    ("Alice Smith 00_preliminaries.ipynb", (TOPIC, "Alice Smith")),
    ("x00_preliminaries.ipynb", None),        # no separator before the topic
    ("alice_00_preliminaries_v2.ipynb", None),
])
def test_file_names_match_reference_notebooks(name, expected):
    assert grade.match_reference(name, [TOPIC, "01_probabilistic_generators.ipynb"]) == expected


def test_broken_batch_gets_a_row_for_every_file_and_exercise(tmp_path, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    _submission(subs, "alice_00_preliminaries.ipynb", "return -torch.xlogy(p, p).sum(-1)")
    _submission(subs, "bob_00_preliminaries.ipynb", "return torch.xlogy(p, p).sum(-1)")  # sign flipped
    _submission(subs, "dave_00_preliminaries.ipynb", "import os\n    os._exit(1)")
    _submission(subs, "frank_00_preliminaries.ipynb", setup_extra='raise RuntimeError("broken setup")')
    (subs / "erin_00_preliminaries.ipynb").write_text('{"cells": [ this is not json', encoding="utf-8")
    out = tmp_path / "results.csv"

    assert grade.main([str(subs), "--out", str(out), "--timeout", "120", "--reference", str(REFERENCE)]) == 0
    printed = capsys.readouterr().out
    rows = _rows(out)
    assert sorted(rows) == sorted(p.name for p in subs.iterdir())

    alice = rows["alice_00_preliminaries.ipynb"]
    assert alice[ENTROPY]["status"] == PASS and alice[ENTROPY]["student"] == "alice"
    assert [alice[e]["status"] for e in EXERCISES[1:]] == [NOT_IMPLEMENTED] * 2   # stubs left alone
    assert grade.NOTEBOOK_ROW not in alice                                          # it ran to the end

    bob = rows["bob_00_preliminaries.ipynb"]
    assert bob[ENTROPY]["status"] == FAIL and "expected" in bob[ENTROPY]["message"]

    dave = rows["dave_00_preliminaries.ipynb"]
    assert dave[grade.NOTEBOOK_ROW]["status"] == "kernel_died"
    assert [dave[e]["status"] for e in EXERCISES] == [grade.NOT_RUN] * 3

    frank = rows["frank_00_preliminaries.ipynb"]
    assert frank[grade.NOTEBOOK_ROW]["status"] == "error"
    assert "RuntimeError" in frank[grade.NOTEBOOK_ROW]["message"] and "broken setup" in frank[grade.NOTEBOOK_ROW]["message"]
    assert [frank[e]["status"] for e in EXERCISES] == [grade.NOT_RUN] * 3
    assert "RuntimeError" in frank[EXERCISES[2]]["message"]                       # says why it was not run

    erin = rows["erin_00_preliminaries.ipynb"]
    assert erin[grade.NOTEBOOK_ROW]["status"] == "invalid" and "notebook" in erin[grade.NOTEBOOK_ROW]["message"]
    assert [erin[e]["status"] for e in EXERCISES] == [grade.NOT_RUN] * 3

    # the summary table: a header and one line per file
    table = printed[printed.index("file"):]
    for name in rows:
        assert name in table
    assert "kernel_died" in table and "invalid" in table


def test_a_notebook_that_loops_forever_times_out_and_the_batch_carries_on(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    _submission(subs, "carol_00_preliminaries.ipynb", "while True:\n        pass")
    (subs / "erin_00_preliminaries.ipynb").write_text("not a notebook", encoding="utf-8")   # graded after carol
    results = grade.grade_folder(subs, reference_dir=REFERENCE, timeout=8)
    carol, erin = results
    assert carol.file == "carol_00_preliminaries.ipynb" and carol.problem.startswith("timeout")
    status = {r.exercise: r.status for r in carol.rows}
    assert status[grade.NOTEBOOK_ROW] == "timeout" and [status[e] for e in EXERCISES] == [grade.NOT_RUN] * 3
    assert carol.seconds < 60, "the timeout must stop the notebook"
    assert erin.problem.startswith("invalid")


def test_errors_are_reported_without_a_traceback(tmp_path, capsys):
    assert grade.main([str(tmp_path / "nowhere")]) == 2
    assert "submissions_dir" in capsys.readouterr().err
    assert grade.main([str(tmp_path)]) == 2          # an empty folder
    assert grade.main([str(tmp_path), "--timeout", "0"]) == 2


def test_a_file_that_matches_no_exercise_is_graded_by_what_it_displays(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "notes.ipynb")
    sub = grade.grade_notebook(tmp_path / "notes.ipynb", timeout=60)
    assert sub.rows == [] and sub.problem == ""
    assert "no matching exercise notebook" in grade.summary_table([sub])


def test_a_reference_without_registered_exercises_grades_by_the_checks_displayed(tmp_path):
    (tmp_path / "ref").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "ref" / "09_extra.ipynb")
    (tmp_path / "subs").mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import torch\nimport vae_course as vc\nvc.checks.ch00.check_entropy(lambda p: -torch.xlogy(p, p).sum(-1))")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "subs" / "alice_09_extra.ipynb")
    (sub,) = grade.grade_folder(tmp_path / "subs", reference_dir=tmp_path / "ref", timeout=120)
    assert (sub.notebook, sub.student, sub.problem) == ("09_extra.ipynb", "alice", "")
    assert [(r.exercise, r.status) for r in sub.rows] == [(ENTROPY, PASS)]


def test_cli_has_the_grade_subcommand(capsys):
    from vae_course import cli

    with pytest.raises(SystemExit) as stop:
        cli.main(["grade", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "--timeout" in out and "--out" in out
