"""solutions/ -> exercises/: stubs replace solution regions, everything else is kept."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from vae_course import release as R

ROOT = Path(__file__).resolve().parents[1]

CODE = '''import torch

def entropy(p):
    """H(p)."""
    ### BEGIN SOLUTION
    return -(p * p.log()).sum(-1)
    ### END SOLUTION

x = 1'''


def test_strip_code_region_keeps_indent_and_rest():
    out = R.strip_solutions(CODE)
    assert "p.log()" not in out
    assert '    raise NotImplementedError("Exercise: write `entropy`' in out
    assert out.startswith("import torch") and out.endswith("x = 1")
    assert '"""H(p)."""' in out


def test_a_derivations_answer_becomes_the_name_set_to_ellipsis():
    src = "### BEGIN SOLUTION\ngap_nats = 0.5 * math.log(45 / 29)\n### END SOLUTION\n"
    out = R.strip_solutions(src)
    assert out.startswith("gap_nats = ...  # your answer") and "45 / 29" not in out and "NotImplementedError" not in out
    ns: dict = {}
    exec(out, ns)  # noqa: S102 (the stub runs: the unsolved notebook executes cleanly)
    assert ns["gap_nats"] is Ellipsis


def test_a_top_level_region_that_is_not_only_assignments_still_raises():
    out = R.strip_solutions("### BEGIN SOLUTION\nx = 1\nprint(x)\n### END SOLUTION")
    assert 'raise NotImplementedError("Exercise: fill in this cell' in out
    inside = R.strip_solutions("def f():\n    ### BEGIN SOLUTION\n    y = 2\n    ### END SOLUTION")
    assert 'raise NotImplementedError("Exercise: write `f`' in inside


def test_strip_markdown_region():
    md = "Why?\n<!-- BEGIN SOLUTION -->\nBecause.\n<!-- END SOLUTION -->\nNext."
    assert R.strip_solutions(md, cell_type="markdown") == f"Why?\n{R.MD_STUB}\nNext."


@pytest.mark.parametrize(
    "src, match",
    [
        ("### BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n### END SOLUTION", "without a matching"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another"),
    ],
)
def test_unbalanced_markers_are_errors_naming_the_cell(src, match):
    with pytest.raises(R.ReleaseError, match=f"my.ipynb, cell 0: line .*{match}"):
        R.release_notebook(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src)]), name="my.ipynb")


def _solution_nb():
    code = nbformat.v4.new_code_cell(CODE, outputs=[nbformat.v4.new_output("stream", text="hi")], execution_count=3)
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Ex"), code, nbformat.v4.new_code_cell("check(entropy)")])


def test_release_writes_stubbed_notebooks_without_outputs(tmp_path):
    sol, ex = tmp_path / "solutions", tmp_path / "exercises"
    sol.mkdir()
    nbformat.write(_solution_nb(), sol / "00_x.ipynb")
    assert R.release(sol, ex) == [ex / "00_x.ipynb"]
    nb = nbformat.read(ex / "00_x.ipynb", as_version=4)
    assert nb.cells[1].outputs == [] and nb.cells[1].execution_count is None
    assert "NotImplementedError" in nb.cells[1].source and "p.log()" not in nb.cells[1].source
    assert nb.cells[2].source == "check(entropy)"
    # idempotent: a second run writes nothing, and --check agrees
    assert R.release(sol, ex) == []
    assert R.release(sol, ex, check=True) == []
    # a stale or extra exercise is reported by --check
    (ex / "99_orphan.ipynb").write_text("{}")
    assert R.release(sol, ex, check=True) == [ex / "99_orphan.ipynb"]


def test_release_rejects_notebook_without_markers(tmp_path):
    (tmp_path / "s").mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), tmp_path / "s" / "a.ipynb")
    with pytest.raises(R.ReleaseError, match="no solution regions"):
        R.release(tmp_path / "s", tmp_path / "e")


def test_release_missing_folder_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="solutions_dir"):
        R.release(tmp_path / "nope", tmp_path / "e")


def test_committed_exercises_are_exactly_what_release_generates():
    stale = R.release(ROOT / "solutions", ROOT / "exercises", check=True)
    assert stale == [], f"exercises/ is out of date for {stale}: run `vae-course release` and commit exercises/"


def test_cli_release_check_and_help(tmp_path):
    out = subprocess.run([sys.executable, "-m", "vae_course", "release", "--check", str(ROOT / "solutions"), str(ROOT / "exercises")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "up to date" in out.stdout
    for sub in ([], ["release"], ["info"]):
        h = subprocess.run([sys.executable, "-m", "vae_course", *sub, "--help"], capture_output=True, text=True)
        assert h.returncode == 0 and "usage: vae-course" in h.stdout


def test_cli_info_reports_device():
    out = subprocess.run([sys.executable, "-m", "vae_course", "info", "--device", "cpu"], capture_output=True, text=True)
    assert out.returncode == 0 and "device     cpu" in out.stdout
