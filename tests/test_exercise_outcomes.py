"""Solutions pass every check; the generated exercises run cleanly and report "not implemented".

nbval (run over book/, exercises/ and solutions/) proves the notebooks execute; this file reads the
check outcomes that the notebooks display (the MIME type vae_course.checks.MIME_TYPE).
"""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from vae_course.checks import MIME_TYPE, NOT_IMPLEMENTED, PASS

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def _outcomes(path: Path) -> list[dict]:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return [o["data"][MIME_TYPE] for c in nb.cells if c.cell_type == "code" for o in c.outputs if MIME_TYPE in o.get("data", {})]


def test_there_are_solution_notebooks():
    assert len(SOLUTIONS) >= 2


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_passes_all_checks_and_exercise_reports_not_implemented(path):
    solved = _outcomes(path)
    assert 2 <= len(solved) <= 8, f"{path.name}: expected 2-4 exercises' checks, found {len(solved)}"
    failing = [o for o in solved if o["status"] != PASS]
    assert not failing, f"{path.name}: solution fails its own checks: {failing}"
    unsolved = _outcomes(ROOT / "exercises" / path.name)
    assert [o["exercise"] for o in unsolved] == [o["exercise"] for o in solved]
    assert all(o["status"] == NOT_IMPLEMENTED for o in unsolved), unsolved
