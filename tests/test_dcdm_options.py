"""The DCDM options of hpc.cg's command line reach the solver."""
from __future__ import annotations

from conftest import load_json, run_app


def test_dcdm_keep_and_backend_options(tmp_path):
    out = tmp_path / "r.json"
    r = run_app("cg", 2, "--problem", "poisson3d:16", "--method", "dcdm", "--rtol", "1e-6",
                "--dcdm-keep", "4", "--dcdm-backend", "numpy", "--json", out)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = load_json(out)
    assert rec["params"]["dcdm_keep"] == 4 and rec["validation"]["passed"]


def test_dcdm_missing_model_is_a_usage_error(tmp_path):
    r = run_app("cg", 2, "--problem", "poisson3d:16", "--method", "dcdm",
                "--dcdm-model", str(tmp_path / "none.h5"))
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "none.h5" in lines[0]
