"""The Colab setup cell: every notebook has the generated one, first among its code cells; writing it is
idempotent; the address becomes the right pip target; the cell does nothing where the package is importable."""
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from vae_course import notebook_setup as S

ROOT = Path(__file__).resolve().parents[1]


def test_every_notebook_of_the_course_has_an_up_to_date_setup_cell():
    assert S.stale_setup_cells(ROOT) == [], "run `vae-course setup-cells` (or `python3 make.py release`) and commit"


@pytest.mark.parametrize("url, target", [
    ("", ""),
    ("https://github.com/someone/vae-course", "vae_course @ git+https://github.com/someone/vae-course.git@main"),
    ("https://github.com/someone/vae-course.git/", "vae_course @ git+https://github.com/someone/vae-course.git@main"),
    ("/home/me/vae-course", "/home/me/vae-course"),
])
def test_the_address_becomes_a_pip_target(url, target):
    assert S.install_target(url) == target
    assert repr(target) in S.setup_cell_source(url)


def test_writing_is_idempotent_and_puts_the_cell_first_among_code_cells(tmp_path):
    for folder in S.FOLDERS:
        (tmp_path / folder).mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T"), nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(nb, str(tmp_path / "solutions" / "t.ipynb"))
    nbformat.write(nb, str(tmp_path / "book" / "t.ipynb"))
    assert len(S.write_setup_cells(tmp_path, "https://github.com/a/b")) == 2
    assert S.write_setup_cells(tmp_path, "https://github.com/a/b") == []  # second run: nothing to do
    got = nbformat.read(str(tmp_path / "book" / "t.ipynb"), as_version=4)
    assert [c.cell_type for c in got.cells] == ["markdown", "code", "code"] and S.find_setup_cell(got) == 1
    assert "git+https://github.com/a/b.git@main" in got.cells[1].source
    (tmp_path / "exercises" / "t.ipynb").write_text(nbformat.writes(got))
    assert S.stale_setup_cells(tmp_path) == []
    S.write_setup_cells(tmp_path, "https://github.com/c/d", folders=("book",))
    assert any("different repositories" in p for p in S.stale_setup_cells(tmp_path))


def test_the_cell_does_nothing_where_the_package_is_installed():
    for url in ("", "https://github.com/a/b"):
        proc = subprocess.run([sys.executable, "-c", S.setup_cell_source(url)], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""


def test_the_command_checks_and_refuses_a_folder_without_notebooks(tmp_path):
    from vae_course.cli import main

    assert main(["setup-cells", "--check", "--root", str(ROOT)]) == 0
    assert main(["setup-cells", "--root", str(tmp_path)]) == 2
