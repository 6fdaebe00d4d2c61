"""The course outside its checkout's environment: a fresh virtual environment with only the package's declared
dependencies (what Binder installs from binder/requirements.txt), in which

1. a notebook opened "in Colab" (the package not installed) installs it through its setup cell, from a local path
   standing in for the repository, and then runs;
2. Binder's steps replayed (binder/requirements.txt, then binder/postBuild) give an environment that executes a
   chapter with the chapter's folder as working directory;
3. the wheel built by ``python -m build`` installs alone, imports every module, finds its stored results as package
   data, and runs a chapter's code from a folder outside the repository.

The environment is built once for the three (about a minute from pip's cache); the tests run in file order.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

from vae_course.notebook_setup import TAG, setup_cell_source

ROOT = Path(__file__).resolve().parents[1]
PIP_ENV = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


def _names(lines):
    out = set()
    for line in lines:
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            out.add(line.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower())
    return out


def test_binder_requirements_are_the_declared_dependencies_and_the_kernel():
    declared = _names(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    binder = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    assert _names(binder) == declared | {"ipykernel"}, "binder/requirements.txt must list pyproject's dependencies + ipykernel"
    assert "-c ../requirements.txt" in binder  # the versions CI tests
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install" in post and os.access(ROOT / "binder" / "postBuild", os.X_OK)


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh virtual environment with binder/requirements.txt installed (no vae_course)."""
    path = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    py = path / "bin" / "python"
    _run(py, "-m", "pip", "install", "--quiet", "-r", str(ROOT / "binder" / "requirements.txt"), cwd=ROOT)
    assert _python(py, "import importlib.util; print(importlib.util.find_spec('vae_course'))").strip() == "None"
    return path


def _run(*cmd, cwd, env=None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env={**os.environ, **PIP_ENV, **(env or {})},
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _python(py: Path, code: str, cwd: Path = ROOT) -> str:
    # -I: isolated mode, so the current folder (the checkout) is not on sys.path
    return _run(py, "-I", "-c", code, cwd=cwd).stdout


def _execute(venv: Path, notebook: Path, cwd: Path) -> nbformat.NotebookNode:
    """Run ``notebook`` in a kernel of ``venv`` with ``cwd`` as its working directory; returns the executed notebook."""
    py = venv / "bin" / "python"
    out = cwd / f"executed-{notebook.name}"
    code = ("import sys, nbformat; from nbclient import NotebookClient\n"
            "nb = nbformat.read(sys.argv[1], as_version=4)\n"
            "NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': sys.argv[2]}}).execute()\n"
            "nbformat.write(nb, sys.argv[3])\n")
    env = {"JUPYTER_PATH": str(venv / "share" / "jupyter"), "MPLBACKEND": "Agg", "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
           "PYTHONPATH": "", "OMP_NUM_THREADS": "1"}
    _run(py, "-I", "-c", code, str(notebook), str(cwd), str(out), cwd=cwd, env=env)
    return nbformat.read(str(out), as_version=4)


def _uninstall(venv: Path) -> None:
    _run(venv / "bin" / "python", "-m", "pip", "uninstall", "--yes", "--quiet", "vae_course", cwd=ROOT)


def test_colab_setup_cell_installs_the_package_and_the_notebook_runs(venv, tmp_path):
    nb = nbformat.read(str(ROOT / "exercises" / "01_probabilistic_generators.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if TAG in c.get("metadata", {}).get("tags", []))
    cell.source = setup_cell_source(str(ROOT))  # a local path stands in for the repository's address
    path = tmp_path / "colab.ipynb"
    nbformat.write(nb, str(path))
    done = _execute(venv, path, tmp_path)
    errors = [o for c in done.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert "vae_course" in _python(venv / "bin" / "python", "import vae_course, os; print(vae_course.__name__)", tmp_path)
    # without an address the cell stops with a sentence that says how to install
    _uninstall(venv)
    cell.source = setup_cell_source("")
    nbformat.write(nb, str(path))
    with pytest.raises(AssertionError, match="vae_course is not installed"):
        _execute(venv, path, tmp_path)


def test_binder_replay_builds_an_environment_that_runs_a_chapter(venv, tmp_path):
    _uninstall(venv)
    env = {"PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    _run("bash", str(ROOT / "binder" / "postBuild"), cwd=ROOT, env=env)  # repo2docker runs it from the repository
    chapter = ROOT / "book" / "01_probabilistic_generators.ipynb"
    work = tmp_path / "book"
    shutil.copytree(ROOT / "book", work, ignore=shutil.ignore_patterns("static", "_ext", "*.md", "*.bib"))
    done = _execute(venv, work / chapter.name, work)
    assert not [o for c in done.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]


def test_the_wheel_installs_alone_and_runs_outside_the_repository(venv, tmp_path):
    _uninstall(venv)
    dist, src = tmp_path / "dist", tmp_path / "src"
    files = _run("git", "ls-files", cwd=ROOT).stdout.split()  # build from a copy: setuptools writes build/ into it
    for name in files:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    _run(sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(src), cwd=src)
    (wheel,) = dist.glob("vae_course-*.whl")
    py = venv / "bin" / "python"
    _run(py, "-m", "pip", "install", "--quiet", "--no-deps", str(wheel), cwd=tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    code = ("import importlib, pkgutil, vae_course, json\n"
            "mods = [m.name for m in pkgutil.walk_packages(vae_course.__path__, 'vae_course.') if not m.name.endswith('__main__')]\n"
            "[importlib.import_module(m) for m in mods]\n"
            "import vae_course.disentangle as D, vae_course.collapse as C\n"
            "print(json.dumps({'file': vae_course.__file__, 'n': len(mods), 'sweep': len(D.read_sweep()),"
            " 'collapse': len(C.load_sweep()['rows'])}))\n")
    info = json.loads(_python(py, code, outside).strip().splitlines()[-1])
    assert "site-packages" in info["file"] and info["n"] > 60 and info["sweep"] > 0 and info["collapse"] > 0
    done = _execute(venv, ROOT / "book" / "03_elbo.ipynb", outside)
    assert not [o for c in done.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
