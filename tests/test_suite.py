"""hpc.suite: the main job runs every workload in one MPI job and every run validates."""
from __future__ import annotations

import pytest

from conftest import load_json, run_app


@pytest.mark.parametrize("ranks", [3, 4])
def test_suite_all_valid(ranks, tmp_path):
    out = tmp_path / "suite.json"
    r = run_app("suite", ranks, "--json", out, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rec = load_json(out)
    assert rec["validation"]["passed"] is True
    verdicts = {run["label"]: run["verdict"] for run in rec["runs"]}
    apps = {label.split("/")[0] for label, v in verdicts.items() if v == "VALID"}
    assert {"stream", "halo", "pagerank", "kmedoids", "spgemm", "cg", "train"} <= apps
    assert all(v in ("VALID", "SKIPPED") for v in verdicts.values()), verdicts
    assert verdicts["train/tp2xpp2"] == ("VALID" if ranks % 4 == 0 else "SKIPPED")
    assert "VALID" in r.stdout and "workload" in r.stdout


def test_suite_list_and_only():
    r = run_app("suite", 1, "--list")
    assert r.returncode == 0 and "stream/native" in r.stdout and "train" in r.stdout
    r = run_app("suite", 2, "--only", "stream/numpy")
    assert r.returncode == 0 and "1 VALID" in r.stdout
