"""vae_course.grade on a folder of deliberately broken submissions written into tmp_path.

Each submission is a copy of exercises/00_preliminaries.ipynb whose first stub (`entropy`) is
replaced by: a correct answer, a wrong answer, an infinite loop (short timeout), os._exit(1),
invalid JSON, or an exception in the setup cell. The grader must give every file its rows and
carry on with the batch.

Then submissions written by a dishonest student: one that patches a check, one that displays forged check
results with the checks' MIME type, one that redefines `vc`, one that deletes the files around it, one whose
function replaces torch.allclose, one whose definition patches the engine. Each grades as not passed and the
honest submission in the same batch is unaffected: the grader judges the student's definitions itself, in a
fresh process, and ignores what the notebook displays. Finally --strict, and the build-task and derivation
columns of the CSV.

Adapted to the new design (the assertions are otherwise those of the first version): the chapter-0 notebook
now has four exercises (a derivation was added), so the counts are len(EXERCISES) instead of 3; a notebook
without registered exercises is no longer graded by the check results it displays (it gets no exercise rows).
"""
import csv
import json
from pathlib import Path

import nbformat
import pytest

from vae_course import grade
from vae_course.checks import FAIL, MIME_TYPE, NOT_IMPLEMENTED, PASS, exercises_for

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
    assert len(EXERCISES) == 4 and "entropy" in ENTROPY.lower()


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
    assert [alice[e]["status"] for e in EXERCISES[1:]] == [NOT_IMPLEMENTED] * (len(EXERCISES) - 1)  # stubs left alone
    assert grade.NOTEBOOK_ROW not in alice                                          # it ran to the end

    bob = rows["bob_00_preliminaries.ipynb"]
    assert bob[ENTROPY]["status"] == FAIL and "expected" in bob[ENTROPY]["message"]

    dave = rows["dave_00_preliminaries.ipynb"]
    assert dave[grade.NOTEBOOK_ROW]["status"] == "kernel_died"
    assert [dave[e]["status"] for e in EXERCISES] == [grade.NOT_RUN] * len(EXERCISES)

    frank = rows["frank_00_preliminaries.ipynb"]
    assert frank[grade.NOTEBOOK_ROW]["status"] == "error"
    assert "RuntimeError" in frank[grade.NOTEBOOK_ROW]["message"] and "broken setup" in frank[grade.NOTEBOOK_ROW]["message"]
    assert [frank[e]["status"] for e in EXERCISES] == [grade.NOT_RUN] * len(EXERCISES)
    assert "RuntimeError" in frank[EXERCISES[2]]["message"]                       # says why it was not run

    erin = rows["erin_00_preliminaries.ipynb"]
    assert erin[grade.NOTEBOOK_ROW]["status"] == "invalid" and "notebook" in erin[grade.NOTEBOOK_ROW]["message"]
    assert [erin[e]["status"] for e in EXERCISES] == [grade.NOT_RUN] * len(EXERCISES)

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
    assert status[grade.NOTEBOOK_ROW] == "timeout" and [status[e] for e in EXERCISES] == [grade.NOT_RUN] * len(EXERCISES)
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


def test_a_reference_without_registered_exercises_is_not_graded_by_the_checks_displayed(tmp_path):
    (tmp_path / "ref").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "ref" / "09_extra.ipynb")
    (tmp_path / "subs").mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import torch\nimport vae_course as vc\nvc.checks.ch00.check_entropy(lambda p: -torch.xlogy(p, p).sum(-1))")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "subs" / "alice_09_extra.ipynb")
    (sub,) = grade.grade_folder(tmp_path / "subs", reference_dir=tmp_path / "ref", timeout=120)
    assert (sub.notebook, sub.student, sub.problem) == ("09_extra.ipynb", "alice", "")
    assert sub.rows == []  # it displays a passing check, but there is nothing registered to judge: no evidence


def test_cli_has_the_grade_subcommand(capsys):
    from vae_course import cli

    with pytest.raises(SystemExit) as stop:
        cli.main(["grade", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "--timeout" in out and "--out" in out


# ---------------------------------------------------------------- a dishonest student
PATCH_CHECK = """
_original_check = vc.checks.ch00.check_entropy
vc.checks.ch00.check_entropy = lambda fn: _original_check(lambda p: -torch.xlogy(p, p).sum(-1))
"""
FORGE = """
from IPython.display import display
for name in NAMES:
    display({MIME: {"exercise": name, "status": "pass", "message": "correct on all 7 test inputs."}}, raw=True)
"""
REDEFINE_VC = """
import types
_result = vc.checks.CheckResult
_pass = lambda fn: _result(NAMES[0], "pass", "correct")
vc = types.SimpleNamespace(checks=types.SimpleNamespace(ch00=types.SimpleNamespace(
    check_entropy=_pass, check_kl_categorical=_pass, check_bernoulli_log_likelihood=_pass, check_image_code_length=_pass)))
"""
DELETE = """
import pathlib
for folder in FOLDERS:
    for f in pathlib.Path(folder).glob("*"):
        if f.name != "results.csv":
            f.unlink()
"""


def _attack(folder: Path, name: str, extra: str, *, at_top: bool = True, body: str | None = None) -> Path:
    """An unsolved chapter-0 notebook with the cell ``extra`` added at the top (after the setup) or at the end."""
    path = _submission(folder, name, body)
    nb = nbformat.read(path, as_version=4)
    cell = nbformat.v4.new_code_cell(extra)
    cell["id"] = "attack"
    setup = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "import vae_course" in c.source)
    nb.cells.insert(setup + 1, cell) if at_top else nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def test_submissions_that_patch_forge_redefine_or_delete_grade_as_not_passed(tmp_path):
    subs, ref = tmp_path / "subs", tmp_path / "ref"
    subs.mkdir()
    ref.mkdir()
    (ref / TOPIC).write_text((REFERENCE / TOPIC).read_text(encoding="utf-8"), encoding="utf-8")
    names = f"NAMES = {json.dumps(EXERCISES)}\nMIME = {MIME_TYPE!r}\n"
    _attack(subs, "mallory1_00_preliminaries.ipynb", PATCH_CHECK)
    _attack(subs, "mallory2_00_preliminaries.ipynb", names + FORGE, at_top=False)
    _attack(subs, "mallory3_00_preliminaries.ipynb", names + REDEFINE_VC)
    _attack(subs, "aaron_00_preliminaries.ipynb", f"FOLDERS = {json.dumps([str(subs), str(ref)])}\n" + DELETE)
    _submission(subs, "mallory4_00_preliminaries.ipynb",  # a wrong answer that makes every comparison pass
                "torch.allclose = lambda *args, **kwargs: True\n    return p.sum(-1)")
    _submission(subs, "mallory5_00_preliminaries.ipynb",  # a definition that patches the engine when it is defined
                "return p.sum(-1)\n\ndef kl_categorical(p, q, _=setattr(vc.checks._core, 'FAIL', 'pass')):\n    return p.sum(-1)")
    _submission(subs, "zoe_00_preliminaries.ipynb", "return -torch.xlogy(p, p).sum(-1)")
    out = tmp_path / "results.csv"

    assert grade.main([str(subs), "--out", str(out), "--timeout", "120", "--reference", str(ref)]) == 0
    rows = _rows(out)
    assert len(rows) == 7, sorted(rows)  # every file was graded although aaron deleted them all
    for name, got in rows.items():
        if name.startswith(("mallory", "aaron")):
            statuses = [got[e]["status"] for e in EXERCISES]
            assert PASS not in statuses, (name, statuses)
    assert rows["mallory1_00_preliminaries.ipynb"][ENTROPY]["status"] == NOT_IMPLEMENTED  # the stub, whatever was shown
    assert [rows["mallory2_00_preliminaries.ipynb"][e]["status"] for e in EXERCISES] == [NOT_IMPLEMENTED] * len(EXERCISES)
    assert rows["mallory3_00_preliminaries.ipynb"][ENTROPY]["status"] == NOT_IMPLEMENTED
    assert "torch.allclose" in rows["mallory4_00_preliminaries.ipynb"][ENTROPY]["message"]
    assert "changed the course's code" in rows["mallory5_00_preliminaries.ipynb"][ENTROPY]["message"]
    zoe = rows["zoe_00_preliminaries.ipynb"]
    assert zoe[ENTROPY]["status"] == PASS and zoe[ENTROPY]["kind"] == "function"
    assert [zoe[e]["status"] for e in EXERCISES[1:]] == [NOT_IMPLEMENTED] * (len(EXERCISES) - 1)


def test_strict_grading_adds_cases_and_the_csv_reports_builds_and_derivations(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    path = _submission(subs, "alice_00_preliminaries.ipynb", "return -torch.xlogy(p, p).sum(-1)")
    nb = nbformat.read(path, as_version=4)
    answer = next(c for c in nb.cells if c.source.startswith("code_length_nats = ..."))
    answer.source = "code_length_nats = -(100 * math.log(0.1) + 684 * math.log(0.9))"
    nbformat.write(nb, path)
    (subs / "grace_04_gradient_estimators.ipynb").write_text(
        (ROOT / "solutions" / "04_gradient_estimators.ipynb").read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "results.csv"
    assert grade.main([str(subs), "--seed", "3", "--out", str(out)]) == 2  # --seed needs --strict
    assert grade.main([str(subs), "--strict", "--seed", "3", "--out", str(out), "--timeout", "200",
                       "--reference", str(REFERENCE)]) == 0
    rows = _rows(out)
    alice, grace = rows["alice_00_preliminaries.ipynb"], rows["grace_04_gradient_estimators.ipynb"]
    assert alice[ENTROPY]["message"] == "correct on all 15 test inputs."  # 7 in the student's copy, 8 from seed 3
    derivation = alice[EXERCISES[-1]]
    assert (derivation["kind"], derivation["status"], derivation["measured"]) == ("value", PASS, "302.325")
    assert derivation["band"].startswith("302.325 nats")
    build = next(r for r in grace.values() if r["kind"] == "build")
    assert build["status"] == PASS and float(build["measured"]) >= 5 and build["band"].startswith(">= 5")
    assert all(r["status"] == PASS for r in grace.values()), grace
