"""The README's student commands work: `make.py setup` installs JupyterLab, and `jupyter lab exercises/` serves the
exercise notebooks (started headless on a free local port, asked over HTTP, then stopped)."""
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_the_readme_names_the_command_that_the_environment_has():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ".venv/bin/jupyter lab exercises/" in readme
    assert (BIN / "jupyter-lab").is_file(), "JupyterLab is not installed: it must be pinned in requirements.txt"
    pins = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(r"^jupyterlab==\d", pins, re.M), "requirements.txt must pin jupyterlab"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyter_lab_serves_the_exercises(tmp_path):
    port, token = _free_port(), "vae-course-test"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "JUPYTER_DATA_DIR": str(tmp_path / "data"), "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter")}
    cmd = [str(BIN / "jupyter"), "lab", "exercises/", "--no-browser", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", "--ServerApp.ip=127.0.0.1"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI runs as root; Jupyter refuses root without this flag
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, listing, lab = time.monotonic() + 60, None, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=5) as r:
                    listing = json.load(r)
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=5) as r:
                    lab = r.read().decode("utf-8", "replace")
                break
            except OSError:
                time.sleep(0.5)
        assert listing is not None, f"jupyter lab did not answer on port {port}: {proc.stderr.read() if proc.poll() is not None else ''}"
        names = {item["name"] for item in listing["content"]}
        assert {p.name for p in (ROOT / "exercises").glob("*.ipynb")} <= names  # the server's root is exercises/
        assert "JupyterLab" in lab
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
