"""hpc.suite: the main job runs every workload in one MPI job and every run validates."""
from __future__ import annotations

import sys

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
    # the suite's record and every app's record in it match the shipped JSON Schema
    jsonschema = pytest.importorskip("jsonschema")
    from hpc.core.provenance import schema

    jsonschema.Draft202012Validator(schema()).validate(rec)
    assert rec["provenance"]["hosts"][0]["ranks"] == list(range(ranks))


def test_suite_list_and_only():
    r = run_app("suite", 1, "--list")
    assert r.returncode == 0 and "stream/native" in r.stdout and "train" in r.stdout
    r = run_app("suite", 2, "--only", "stream/numpy")
    assert r.returncode == 0 and "1 VALID" in r.stdout


# -- the workload specs the suite, hpc.scaling and hpc.jobs read -----------------------------
def test_specs_are_discovered_in_order():
    import hpc
    from hpc.core import backends
    from hpc.core.spec import WorkloadSpec, all_specs, load, names
    from hpc.scaling.rules import BandwidthModel, LinearModel

    order = ["stream", "halo", "pagerank", "kmedoids", "spgemm", "cg", "train"]
    assert names() == order
    assert {s.name: s.description for s in all_specs()} == hpc.WORKLOADS
    for s in all_specs():
        assert isinstance(s, WorkloadSpec) and load(s.name) is s
        assert s.suite and s.headline and s.study_args and s.job_args and s.gpu_args
        assert isinstance(s.model, (LinearModel, BandwidthModel)) and s.weak is not None
        for row in s.suite:
            assert row.label.split("/")[0] == s.name
            assert row.backend is None or row.backend in backends.REGISTRY
            assert row.rank_problem(4) is None  # every row runs at make demo's 4 ranks
    assert [r.label for r in load("spgemm").suite if r.rank_problem(2)] == ["spgemm/2d"]
    assert load("train").suite[1].rank_problem(6) == "needs a multiple of 4 ranks, not 6"


def test_unknown_workload_is_a_clear_value_error():
    from hpc.core.spec import load

    with pytest.raises(ValueError, match=r"unknown app 'nope' \(one of: stream, halo"):
        load("nope")
    with pytest.raises(ValueError, match="unknown app"):
        load("core")  # the runtime, not a workload


def test_a_new_workload_is_one_folder(tmp_path, monkeypatch):
    """A package with a spec.py beside the others is found, listed and used by hpc.scaling."""
    import hpc
    from hpc.core import spec as S
    from hpc.scaling import apps

    pkg = tmp_path / "toy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "spec.py").write_text(
        "from hpc.core.spec import Metric, SuiteRow, WorkloadSpec\n"
        "from hpc.scaling import argv as A\n"
        "def weak(argv, p, p0):\n"
        "    return A.replace(argv, '--n', str(int(A.find(argv, '--n')[0]) * p // p0))\n"
        "SPEC = WorkloadSpec(name='toy', description='a toy', order=15,\n"
        "                    suite=(SuiteRow('toy', ('--n', '4')),), headline=Metric('x', 'x'),\n"
        "                    study_args=('--n', '4'), weak=weak)\n")
    monkeypatch.setattr(hpc, "__path__", [*hpc.__path__, str(tmp_path)])
    S.clear_cache()
    try:
        assert S.names()[:3] == ["stream", "toy", "halo"]
        assert apps.args_for("toy", "weak", [], 8, 2) == ["--n", "16"]
        assert apps.args_for("toy", "strong", ["--n", "3"], 8, 2) == ["--n", "3"]
    finally:
        monkeypatch.undo()
        S.clear_cache()
        sys.modules.pop("hpc.toy.spec", None)
        sys.modules.pop("hpc.toy", None)
    assert "toy" not in S.names()
