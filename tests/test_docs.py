"""The documentation site builds without a warning (Sphinx -W), so it cannot rot silently."""
from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_docs_build_without_warnings(tmp_path):
    r = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                        "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(tmp_path / "html")],
                       capture_output=True, text=True, timeout=600, cwd=str(ROOT))
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert (tmp_path / "html" / "api.html").exists()


def test_contract_lives_in_docs():
    text = (ROOT / "docs" / "contract.md").read_text()
    assert "## Exit status and errors" in text and "## The Python API" in text
