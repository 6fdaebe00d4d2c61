"""vae_course.checks.registry: complete (every check of every chapter registered once), consistent with
the notebooks (each solution and exercise notebook calls the registered checks on the registered
functions, in registry order), its lookups, and its validation of entries."""
import ast
import collections
import os
import pkgutil
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import vae_course.checks as checks
from vae_course.checks import EXERCISES, NOT_IMPLEMENTED, NOTEBOOKS, by_chapter, exercises_for, registry

from _solutions import ROOT, code_cells

CHAPTER_MODULES = [getattr(checks, m.name) for m in pkgutil.iter_modules(checks.__path__) if re.fullmatch(r"ch\d\d", m.name)]
NOTEBOOK_FILES = sorted({p.name for folder in ("solutions", "exercises") for p in (ROOT / folder).glob("*.ipynb")})


def _defined_checks(module) -> list[str]:
    return sorted(n for n, v in vars(module).items()
                  if n.startswith("check_") and callable(v) and getattr(v, "__module__", "") == module.__name__)


def _check_calls(notebook: str, folder: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """``(module, check, arguments)`` of every ``vc.checks.<module>.<check>(...)`` call in the code cells, in order."""
    calls = []
    for source in code_cells(notebook, folder):
        in_cell = []
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Call):
                continue
            chain, f = [], node.func
            while isinstance(f, ast.Attribute):
                chain.insert(0, f.attr)
                f = f.value
            if isinstance(f, ast.Name) and [f.id, *chain[:1]] == ["vc", "checks"] and len(chain) == 3:
                args = [ast.unparse(a) for a in node.args] + [f"{k.arg}={ast.unparse(k.value)}" for k in node.keywords]
                in_cell.append(((node.lineno, node.col_offset), (chain[1], chain[2], tuple(args))))
        calls += [call for _, call in sorted(in_cell)]  # ast.walk is breadth-first
    return calls


# ---------------------------------------------------------------- complete
def test_the_chapter_modules_are_ch00_to_ch10():
    assert [m.__name__.rsplit(".", 1)[1] for m in CHAPTER_MODULES] == [f"ch{n:02d}" for n in range(11)]  # 10: appendix A


def test_every_check_function_is_registered_exactly_once():
    registered = collections.Counter(f"{e.check.__module__}.{e.check.__name__}" for e in EXERCISES)
    defined = {f"{m.__name__}.{n}" for m in CHAPTER_MODULES for n in _defined_checks(m)}
    assert set(registered) == defined
    assert [name for name, count in registered.items() if count != 1] == []


@pytest.mark.parametrize("module", CHAPTER_MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_each_module_names_exactly_its_checks(module):
    assert sorted(module.EXERCISE_NAMES) == _defined_checks(module) == sorted(module.__all__)


# ---------------------------------------------------------------- consistent with the notebooks
@pytest.mark.parametrize("folder", ["solutions", "exercises"])
@pytest.mark.parametrize("notebook", NOTEBOOK_FILES)
def test_the_notebook_calls_the_registered_checks_on_the_registered_functions_in_order(notebook, folder):
    expected = [(f"ch{e.chapter:02d}", e.check.__name__, (e.function,)) for e in exercises_for(notebook)]
    assert _check_calls(notebook, folder) == expected


def test_every_registered_notebook_exists_in_solutions_and_exercises():
    for folder in ("solutions", "exercises"):
        assert [nb for nb in NOTEBOOKS if not (ROOT / folder / nb).is_file()] == [], folder


def test_chapter_numbers_match_the_notebook_and_the_check_module():
    for e in EXERCISES:
        assert e.notebook.startswith(f"{e.chapter:02d}_"), e.id
        assert e.check.__module__ == f"vae_course.checks.ch{e.chapter:02d}", e.id


def test_exercises_are_in_chapter_order_and_numbered_from_one_in_each_notebook():
    assert list(EXERCISES) == sorted(EXERCISES, key=lambda e: (e.chapter, e.number))
    for nb in NOTEBOOKS:
        assert [e.number for e in exercises_for(nb)] == list(range(1, len(exercises_for(nb)) + 1)), nb
    assert len({e.id for e in EXERCISES}) == len(EXERCISES)


def test_display_names_are_unique_within_a_notebook():
    # the grader keys a notebook's check records by this name
    for nb in NOTEBOOKS:
        names = [e.name for e in exercises_for(nb)]
        assert len(set(names)) == len(names), nb


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.id)
def test_a_stub_reports_the_registered_display_name(exercise):
    def stub(*args, **kwargs):
        raise NotImplementedError(f"Exercise: write `{exercise.function}`, then run the check cell below")

    result = exercise.check(... if exercise.kind == "value" else stub)  # a derivation's release stub is `...`
    assert result.status == NOT_IMPLEMENTED
    assert result.exercise == exercise.name


# ---------------------------------------------------------------- lookups
def test_exercises_for_takes_a_file_name_or_a_path():
    ch05 = exercises_for("05_vae.ipynb")
    assert [e.function for e in ch05] == ["reparameterize", "negative_elbo", "iwae_bound", "TinyVAE", "bits_per_dim_answer"]
    assert [e.kind for e in ch05] == ["function", "function", "function", "build", "value"]
    assert exercises_for(Path("exercises") / "05_vae.ipynb") == ch05 == exercises_for("solutions/05_vae.ipynb")
    assert exercises_for("99_notes.ipynb") == ()


def test_by_chapter_gives_the_chapter_in_notebook_order():
    assert by_chapter(5) == exercises_for("05_vae.ipynb")
    assert [len(by_chapter(n)) for n in range(11)] == [4, 4, 6, 5, 5, 5, 5, 5, 6, 5, 5]


def test_lookups_name_the_argument_on_bad_input():
    with pytest.raises(TypeError, match="notebook"):
        exercises_for(5)
    with pytest.raises(ValueError, match="chapter: got 99"):
        by_chapter(99)
    with pytest.raises(TypeError, match="chapter"):
        by_chapter("5")


def test_the_registry_is_reexported_from_vc_checks():
    import vae_course as vc

    assert vc.checks.EXERCISES is registry.EXERCISES and vc.checks.exercises_for is registry.exercises_for
    assert vc.checks.by_chapter is registry.by_chapter and vc.checks.Exercise is registry.Exercise


@pytest.mark.parametrize("field, value, error", [
    ("chapter", -1, ValueError), ("chapter", "5", TypeError), ("number", True, TypeError),
    ("notebook", "solutions/05_vae.ipynb", ValueError), ("notebook", "05_vae", ValueError),
    ("number", 0, ValueError), ("function", "two words", ValueError),
    ("check", "check_entropy", TypeError), ("name", "", ValueError), ("kind", "task", ValueError),
    ("kind", 3, TypeError),
])
def test_a_bad_entry_is_refused_naming_the_field(field, value, error):
    with pytest.raises(error, match=f"^{field}: got"):
        replace(EXERCISES[0], **{field: value})


def test_importing_and_querying_the_registry_opens_no_notebook():
    code = (
        "import sys\n"
        "opened = []\n"
        "sys.addaudithook(lambda event, args: opened.append(args[0]) if event == 'open' and str(args[0]).endswith('.ipynb') else None)\n"
        "from vae_course.checks import registry\n"
        "registry.exercises_for('05_vae.ipynb'); registry.by_chapter(8)\n"
        "assert registry.__file__.startswith(sys.argv[1]), registry.__file__\n"
        "print(len(registry.EXERCISES), opened)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-c", code, str(ROOT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(len(EXERCISES)), "[]"]
