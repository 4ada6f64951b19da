"""``python -m hpc.cg --method pcg --pc amg`` end to end (launched under mpiexec): the run
validates, its record describes the AMG hierarchy, and the hierarchy and the iteration count
at 3 ranks are the one-rank ones (the default multicolour order)."""
from __future__ import annotations

from conftest import load_json, run_app


def test_cg_pc_amg_record_same_at_1_and_3_ranks(tmp_path):
    recs = []
    for n in (1, 3):
        js = tmp_path / f"r{n}.json"
        p = run_app("cg", n, "--problem", "hpcg:12", "--method", "pcg", "--pc", "amg",
                    "--json", js)
        assert p.returncode == 0, p.stderr
        assert "cg: VALID" in p.stdout
        recs.append(load_json(js))
    one, three = recs
    for rec in recs:
        m, pc = rec["metrics"], rec["solver"]["pc"]
        assert m["converged"] is True and m["final_relres"] <= 1e-8
        assert m["error_vs_exact_inf"] < 1e-6   # hpcg: the exact solution is all ones
        assert pc["type"] == "amg" and pc["order"] == "multicolour" and pc["levels"] >= 2
        assert pc["rows"][0] == 12 ** 3 and pc["rows"][-1] <= 100
    assert three["ranks"] == 3
    assert three["solver"]["pc"]["rows"] == one["solver"]["pc"]["rows"]
    assert three["solver"]["pc"]["nnz"] == one["solver"]["pc"]["nnz"]
    assert three["solver"]["pc"]["colours"] == one["solver"]["pc"]["colours"]
    assert three["metrics"]["iterations"] == one["metrics"]["iterations"]
