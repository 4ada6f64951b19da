"""hpc.halo end to end under mpiexec: validity on 1-8 ranks, the record, auto, bad input.

Grids are tiny: 8 ranks share 2 cores here.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import load_json, run_app

FAST = ["--iterations", "2", "--repeat", "1", "--quiet"]


def _ok(r):
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]


@pytest.mark.parametrize("n, grid, radius, q, method, extra", [
    (1, [5, 4, 3], 1, 1, "pack", []),
    (2, [7, 5, 6], 2, 2, "datatype", []),
    (3, [9, 7, 5], 1, 3, "pack", ["--backend", "numpy"]),
    (4, [10, 9, 7], 2, 1, "pack", ["--nonperiodic"]),
    (5, [11, 6, 5], 1, 2, "datatype", ["--typebuild", "hvector"]),
    (6, [7, 8, 9], 1, 1, "pack", ["--backend", "numba", "--transport", "alltoallw"]),
    (8, [6, 6, 7], 3, 1, "pack", ["--transport", "p2p"]),
])
def test_every_ghost_cell_equals_its_owner(tmp_path, n, grid, radius, q, method, extra):
    out = tmp_path / "r.json"
    r = run_app("halo", n, "--grid", *map(str, grid), "--radius", str(radius),
                "--quantities", str(q), "--method", method, "--json", str(out), *FAST, *extra,
                timeout=240)
    _ok(r)
    rec = load_json(out)
    v = rec["validation"]
    assert v["passed"] is True
    for k, val in v.items():
        if k.startswith("wrong_ghost_cells"):
            assert val == 0
    assert rec["ranks"] == n
    dims = rec["decomposition"]["dims_xyz"]
    assert dims[0] * dims[1] * dims[2] == n
    m = rec["metrics"]
    assert m["exchange_us"] > 0 and m["pack_GBps"] >= 0
    assert rec["strategy"]["method"] == method
    assert len(rec["strategy"]["choices"]) == 26


def test_record_metrics_and_pack_matches_library(tmp_path):
    out = tmp_path / "r.json"
    r = run_app("halo", 2, "--grid", "12", "10", "8", "--quantities", "2", "--json", str(out),
                "--iterations", "3", "--repeat", "2")
    _ok(r)
    assert "halo: VALID" in r.stdout
    rec = load_json(out)
    m = rec["metrics"]
    for key in ("exchange_us", "exchange_us_p2p", "exchange_us_alltoallw", "pack_GBps",
                "pack_GBps_mpi", "strategy"):
        assert key in m
    assert m["pack_GBps"] > 0 and m["pack_GBps_mpi"] > 0
    assert set(rec["timings"]) == {"exchange_p2p", "exchange_alltoallw"}
    assert rec["params"]["grid"] == [12, 10, 8]


def test_struct_faces_fall_back_and_the_record_says_so(tmp_path):
    out = tmp_path / "r.json"
    r = run_app("halo", 2, "--grid", "6", "6", "6", "--typebuild", "struct", "--json",
                str(out), *FAST)
    _ok(r)
    s = load_json(out)["strategy"]
    assert s["faces"] == {"datatype": 26}
    assert "general struct" in s["fallback"]


def test_auto_measures_once_then_uses_the_cached_model(tmp_path):
    model = tmp_path / "model.json"
    env = {"HPC_HALO_MODEL": str(model)}
    out = tmp_path / "r.json"
    r = run_app("halo", 2, "--grid", "8", "8", "8", "--method", "auto", "--json", str(out),
                *FAST, env=env)
    _ok(r)
    s = load_json(out)["strategy"]
    assert "measured now" in s["model"] and model.exists()
    assert all(c["reason"] for c in s["choices"])
    assert all("the model alone" in c["reason"] for c in s["choices"])
    assert min(s["autotune_us"], key=s["autotune_us"].get) in s["choices"][0]["reason"]
    r = run_app("halo", 2, "--grid", "8", "8", "8", "--method", "auto", "--json", str(out),
                *FAST, env=env)
    _ok(r)
    assert load_json(out)["strategy"]["model"].startswith("cached model")


def test_auto_replaces_a_cache_of_the_wrong_structure(tmp_path):
    model = tmp_path / "model.json"
    model.write_text('[{"version": 1}]')  # well-formed JSON, not a model: aborted every run
    out = tmp_path / "r.json"
    r = run_app("halo", 1, "--grid", "8", "8", "8", "--method", "auto", "--json", str(out),
                *FAST, env={"HPC_HALO_MODEL": str(model)})
    _ok(r)
    src = load_json(out)["strategy"]["model"]
    assert "cached model not used" in src and "a model is a JSON object" in src
    assert isinstance(json.loads(model.read_text()), dict)  # replaced by a valid model


def test_measure_refuses_a_directory_of_someone_else(tmp_path):
    import os

    if os.geteuid() == 0:  # root: hand a directory to nobody
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o755)
        os.chown(theirs, 65534, 65534)
    else:
        theirs = Path("/")  # root's, not ours
    r = run_app("halo", 2, "measure", "--quick", "--model", str(theirs / "m.json"))
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert errs and "belongs to uid" in errs[0] and not (theirs / "m.json").exists()


@pytest.mark.parametrize("n, extra", [
    (3, ["--compute", "stencil27", "--wait", "any", "--transport", "p2p"]),
    (2, ["--compute", "stencil7", "--transport", "alltoallw", "--reorder", "--nonperiodic"]),
])
def test_overlapped_stencil_and_phase_breakdown_in_the_record(tmp_path, n, extra):
    out = tmp_path / "r.json"
    r = run_app("halo", n, "--grid", "12", "10", "9", "--radius", "1", "2", "1", "-q", "2",
                "--json", str(out), *FAST, *extra)
    _ok(r)
    d = load_json(out)
    v, m = d["validation"], d["metrics"]
    kind = extra[1]
    assert v["passed"] and v[f"{kind}_wrong_cells"] == 0 and v[f"{kind}_overlap_equals_plain"]
    ov = m["overlap"]
    assert 0.0 <= ov["hidden_fraction"] <= 1.0 and ov["compute"] == kind
    assert ov["plain_us"] > 0 and ov["overlapped_us"] > 0 and ov["exchange_us"] > 0
    tr = extra[extra.index("--transport") + 1]
    ph = m[f"phases_us_{tr}"]
    assert set(ph) == {"post_recv", "pack", "post_send", "wait_recv", "unpack", "wait_send"}
    assert m[f"phases_sum_us_{tr}"] == pytest.approx(sum(ph.values()))
    if "--reorder" in extra:
        assert isinstance(m["reordered"], bool)


def test_measure_subcommand_writes_a_stable_model(tmp_path):
    model = tmp_path / "m.json"
    out = tmp_path / "r.json"
    r = run_app("halo", 2, "measure", "--quick", "--model", str(model), "--json", str(out))
    _ok(r)
    d = json.loads(model.read_text())
    assert d["sizes"] and d["blocks"]
    assert len(d["contig"]["same_host"]) == len(d["sizes"])
    for b in d["blocks"]:
        assert all(t > 0 for t in d["pack"][str(b)] + d["datatype"]["same_host"][str(b)])
    assert "trimean" in d["meta"]["statistic"]
    assert load_json(out)["validation"]["cache_roundtrip"] is True


@pytest.mark.parametrize("n, args, needle", [
    (2, ["--grid", "4", "4", "4", "--radius", "3"], "radius 3 is larger"),
    (1, ["--grid", "0", "4", "4"], "argument --grid"),
    (2, ["--grid", "1", "1", "1"], "smaller than the 2 ranks"),
    (1, ["--grid", "4", "4", "4", "--method", "bogus"], "invalid choice"),
    (1, ["--grid", "4", "4", "4", "--backend", "fortran"], "fortran"),
    (1, ["--grid", "4", "4", "4", "--radius", "1", "2"], "one width or three"),
    (3, ["--grid", "9", "9", "9", "--radius", "4", "1", "1"], "along dimension 0"),
    (1, ["--grid", "4", "4", "4", "--compute", "stencil5"], "invalid choice"),
])
def test_bad_input_exits_2_with_one_line(n, args, needle):
    r = run_app("halo", n, *args, "--quiet", timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def _gpu() -> bool:
    from hpc.halo import gpu

    return gpu.why_unavailable("gpu-staged") is None


def test_gpu_method_without_a_device_is_a_clear_error():
    if _gpu():
        pytest.skip("a CUDA device is present")
    r = run_app("halo", 1, "--grid", "4", "4", "4", "--method", "gpu-oneshot", "--quiet")
    assert r.returncode == 2 and "not available here" in r.stderr


@pytest.mark.parametrize("method", ["gpu-oneshot", "gpu-staged"])
def test_gpu_paths_validate(tmp_path, method):
    if not _gpu():
        pytest.skip("no CUDA device here")
    out = tmp_path / "r.json"
    r = run_app("halo", 2, "--grid", "16", "12", "10", "--radius", "2", "--quantities", "3",
                "--method", method, "--json", str(out), *FAST)
    _ok(r)
    assert load_json(out)["validation"]["wrong_ghost_cells_p2p"] == 0


def test_help_names_every_option():
    r = run_app("halo", 1, "--help")
    assert r.returncode == 0
    for opt in ("--grid", "--radius", "--quantities", "--method", "--transport", "--backend",
                "--json", "--typebuild", "measure"):
        assert opt in r.stdout


def test_exchange_is_the_default_verb_and_can_be_named(tmp_path):
    out = tmp_path / "r.json"
    r = run_app("halo", 2, "exchange", "--grid", "6", "5", "4", "--transport", "p2p",
                "--json", str(out), *FAST)
    _ok(r)
    rec = load_json(out)
    assert rec["validation"]["wrong_ghost_cells_p2p"] == 0
    assert set(rec["timings"]) == {"exchange_p2p"}
    r = run_app("halo", 1, "bogus", "--quiet")
    assert r.returncode == 2 and r.stderr.strip().startswith("error:")
    assert "bogus" in r.stderr
