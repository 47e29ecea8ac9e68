"""`pip install .` in a fresh virtual environment gives a working `snnc` (issue 12, item 5).

Slow (creates a venv and installs the runtime dependencies from the package index; `make test-all`):
`snnc --help`, then the bundled digits model compiled for the emulator target and run on held-out digits.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import DIGITS_MODEL, ROOT

pytestmark = pytest.mark.slow


def run(*command, cwd=None) -> str:
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=1200)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_fresh_venv_install_compiles_and_runs(tmp_path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    run(str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(ROOT))
    snnc = str(venv / "bin" / "snnc")
    assert "compile" in run(snnc, "--help", cwd=tmp_path)
    run(snnc, "compile", str(DIGITS_MODEL), "--target", "emulator", "-o", str(tmp_path / "out"), cwd=tmp_path)
    out = run(snnc, "run", str(tmp_path / "out"), "--digits", "--samples", "50", cwd=tmp_path)
    assert float(out.split("accuracy: ")[1].split()[0]) >= 0.9
