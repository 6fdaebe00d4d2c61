"""The command line never prints a traceback for a user's mistake: one line on stderr naming the option, what it
got and what it needs, and exit status 2. Run through the real entry point, ``vae_course.cli.main``, and (a few
cases) the installed ``vae-course`` script in a fresh process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vae_course.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse ends a bad option with SystemExit(2)
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.fixture
def a_file(tmp_path) -> Path:
    f = tmp_path / "plain_file"
    f.write_text("not a folder")
    return f


# (argv, the option that must be named, what the message must quote)
CASES = [
    (["train", "--epochs", "-1"], "--epochs", "-1"),
    (["train", "--epochs", "0"], "--epochs", "0"),
    (["train", "--epochs", "ten"], "--epochs", "ten"),
    (["train", "--batch-size", "0"], "--batch-size", "0"),
    (["train", "--lr", "-1"], "--lr", "-1"),
    (["train", "--lr", "nan"], "--lr", "nan"),
    (["train", "--lr", "0"], "--lr", "0"),
    (["train", "--lr", "inf"], "--lr", "inf"),
    (["train", "--z-dim", "0"], "--z-dim", "0"),
    (["train", "--hidden", "-3"], "--hidden", "-3"),
    (["train", "--seed", "-1"], "--seed", "-1"),
    (["train", "--device", "quantum"], "--device", "quantum"),
    (["train", "--out", "{file}/run"], "--out", "is a file"),
    (["evaluate", "ckpt.pt", "--k", "0"], "--k", "0"),
    (["evaluate", "ckpt.pt", "--k", "-5"], "--k", "-5"),
    (["evaluate", "ckpt.pt", "--n", "0"], "--n", "0"),
    (["evaluate", "ckpt.pt", "--n", "-5"], "--n", "-5"),
    (["evaluate", "ckpt.pt", "--seed", "-2"], "--seed", "-2"),
    (["bench", "--rounds", "0"], "--rounds", "0"),
    (["bench", "--rounds", "-2"], "--rounds", "-2"),
    (["bench", "--quality", "-1"], "--quality", "-1"),
    (["collapse-sweep", "--lams", "-1"], "--lams", "-1"),
    (["collapse-sweep", "--lams", "0.1", "nan"], "--lams", "nan"),
    (["collapse-sweep", "--epochs", "0"], "--epochs", "0"),
    (["collapse-sweep", "--k", "0"], "--k", "0"),
    (["collapse-sweep", "--seeds", "-1"], "--seeds", "-1"),
    (["collapse-sweep", "--out", "{file}/sweep.json"], "--out", "is a file"),
    (["sweep-beta", "--betas", "-1"], "--betas", "-1"),
    (["sweep-beta", "--betas", "1", "inf"], "--betas", "inf"),
    (["sweep-beta", "--epochs", "0"], "--epochs", "0"),
    (["sweep-beta", "--batch-size", "0"], "--batch-size", "0"),
    (["sweep-beta", "--lr", "-1"], "--lr", "-1"),
    (["sweep-beta", "--z-dim", "0"], "--z-dim", "0"),
    (["sweep-beta", "--seeds", "-1"], "--seeds", "-1"),
    (["sweep-beta", "--out", "{dir}"], "--out", "is a folder"),
    (["grade", "{dir}", "--timeout", "0"], "--timeout", "0"),
    (["grade", "{dir}", "--timeout", "-5"], "--timeout", "-5"),
    (["grade", "{dir}", "--timeout", "nan"], "--timeout", "nan"),
    (["grade", "{dir}", "--timeout", "inf"], "--timeout", "inf"),
]


@pytest.mark.parametrize("argv, option, quoted", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_a_bad_option_is_one_line_naming_it(argv, option, quoted, capsys, tmp_path, a_file):
    argv = [a.format(file=a_file, dir=tmp_path) for a in argv]
    code, err = _run(argv, capsys)
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert option in lines[0] and quoted in lines[0] and "need" in lines[0], lines[0]


def test_a_missing_checkpoint_or_data_folder_is_one_line(tmp_path, capsys):
    code, err = _run(["evaluate", str(tmp_path / "missing.pt")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "missing.pt" in err
    code, err = _run(["train", "--idx-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--idx-dir" in err


@pytest.mark.parametrize("argv, option", [(["evaluate", "ckpt.pt", "--n", "-5"], "--n")])  # a fresh process imports torch:
def test_the_installed_script_prints_no_traceback(argv, option):                             # one case is enough
    script = Path(sys.executable).with_name("vae-course")
    if not script.exists():
        pytest.skip(f"no installed console script next to {sys.executable}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(script), *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and option in done.stderr, done.stderr
    assert done.stdout == ""
