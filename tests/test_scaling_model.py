"""hpc.scaling.model: fits recover known parameters from synthetic timings; extrapolation."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hpc.scaling import model as M

RANKS = [1, 2, 4, 8, 16, 32, 64]


def _doc(app: str, mode: str, runs: list[dict], cores: int = 1024) -> dict:
    return {"study": {"app": app, "mode": mode, "ranks": [r["ranks"] for r in runs],
                      "app_args": []},
            "machine": {"cores": cores}, "runs": runs}


def _run(p: int, t: float, args: list[str], metrics: dict | None = None, params: dict | None = None,
         oversubscribed: bool = False) -> dict:
    return {"ranks": p, "rep": 1, "args": args, "passed": True, "time_s": t,
            "oversubscribed": oversubscribed,
            "record": {"ranks": p, "params": params or {}, "metrics": metrics or {}}}


BASE_ARGS = {
    "halo": ["--grid", "64", "64", "64", "--radius", "2", "--quantities", "3"],
    "pagerank": ["--generate", "kron:12:16"],
    "spgemm": ["--generate", "rmat:12:8"],
    "cg": ["--problem", "poisson3d:48", "--method", "cg"],
    "kmedoids": ["--data", "blobs:3000:8:5"],
    "train": ["--layers", "4", "--hidden", "128", "--global-batch", "16", "--seq-len", "64",
              "--vocab", "256"],
}


def _synthetic(app: str, truth: dict, mode: str = "strong", ranks=RANKS, cores: int = 1024,
               base: list[str] | None = None):
    """Runs (options grown as the study runner grows them) whose times are the model's."""
    from hpc.core.spec import load
    from hpc.scaling import apps
    from hpc.scaling.argv import find

    lm = load(app).model
    runs = []
    for p in ranks:
        f = p / ranks[0] if mode == "weak" else 1
        args = apps.args_for(app, mode, base or BASE_ARGS[app], p, ranks[0])
        metrics = {"pagerank": {"vertices": 4096.0 * f, "edges": 65536.0 * f, "iterations": 20},
                   "spgemm": {"products": 1e6 * f, "nnz_B": 5e4 * f},
                   "cg": {"iterations": 50}}.get(app, {})
        params = ({"grid": [int(x) for x in find(args, "--grid", 3)], "radius": 2,
                   "quantities": 3} if app == "halo" else {})
        run = _run(p, 0.0, args, metrics, params)
        feats = lm.features(lm.quantities(run), p)
        t = sum(truth[k] * feats[k] for k in truth)
        if lm.per_iteration and "iterations" in metrics:
            t *= metrics["iterations"]
        run["time_s"] = t
        runs.append(run)
    return _doc(app, mode, runs, cores)


TRUTHS = {
    "halo": {"alpha_s": 3e-6, "beta_s_per_B": 1 / 8e9, "gamma_s_per_cell": 2e-10},
    "pagerank": {"gamma_s_per_edge": 3e-9, "beta_s_per_B": 1 / 5e9, "alpha_s": 4e-6},
    "spgemm": {"gamma_s_per_product": 2e-8, "beta_s_per_B": 1 / 6e9, "alpha_s": 5e-6},
    "cg": {"gamma_s_per_nnz": 1.5e-9, "lambda_s": 3e-6, "beta_s_per_B": 1 / 7e9},
    "kmedoids": {"gamma_s_per_pair": 4e-9, "lambda_s": 6e-6},
    "train": {"gamma_s_per_flop": 5e-11, "beta_s_per_B": 1 / 9e9, "lambda_s": 8e-6},
}


# Weak 1D SpGEMM: bytes and messages both grow as p - 1, so they cannot be told apart.
COLLINEAR = {("spgemm", "weak"): "alpha_s"}


@pytest.mark.parametrize("app", sorted(TRUTHS))
@pytest.mark.parametrize("mode", ["strong", "weak"])
def test_linear_models_recover_parameters(app, mode):
    rep = M.model_study(_synthetic(app, TRUTHS[app], mode))
    if (app, mode) in COLLINEAR:
        # the features are proportional over these points: one term keeps its prior, says so,
        # and the fit still reproduces every measured time
        assert rep["params"][COLLINEAR[(app, mode)]]["status"] == "assumed"
        for m in rep["measured"]:
            assert m["model"] == pytest.approx(m["time"], rel=1e-9)
        return
    for k, v in TRUTHS[app].items():
        got = rep["params"][k]
        assert got["status"] == "fitted", (k, got)
        assert got["value"] == pytest.approx(v, rel=1e-6), k
    for m in rep["measured"]:
        assert m["model"] == pytest.approx(m["time"], rel=1e-9)
    assert rep["modelled"][-1]["ranks"] == 10_000


def test_halo_weak_recovers_on_a_non_cubic_block():
    truth = TRUTHS["halo"]  # faces of different sizes separate messages from bytes
    rep = M.model_study(_synthetic("halo", truth, "weak", ranks=[1, 2, 4, 8],
                                   base=["--grid", "64", "32", "16", "--radius", "2"]))
    for k, v in truth.items():
        assert rep["params"][k]["value"] == pytest.approx(v, rel=1e-6)


def test_noisy_fit_is_close():
    rng = np.random.default_rng(0)
    doc = _synthetic("pagerank", TRUTHS["pagerank"], "strong", ranks=RANKS + [128, 256])
    for run in doc["runs"]:
        run["time_s"] *= 1 + 0.01 * rng.standard_normal()
    rep = M.model_study(doc)
    assert rep["params"]["gamma_s_per_edge"]["value"] == pytest.approx(3e-9, rel=0.05)
    assert rep["params"]["alpha_s"]["value"] == pytest.approx(4e-6, rel=0.3)


def test_oversubscribed_points_are_not_fitted():
    doc = _synthetic("spgemm", TRUTHS["spgemm"], ranks=RANKS + [128, 256], cores=64)
    for run in doc["runs"]:
        if run["ranks"] > 64:
            run["time_s"] *= 50  # time-slicing, not scaling
            run["oversubscribed"] = True
    rep = M.model_study(doc)
    for k, v in TRUTHS["spgemm"].items():
        assert rep["params"][k]["value"] == pytest.approx(v, rel=1e-6)
    over = [m for m in rep["measured"] if m["oversubscribed"]]
    assert len(over) == 2 and not any(m["fitted"] for m in over)
    text = M.format_report(rep)
    assert "exceed them (oversubscribed)" in text and "[128, 256]" in text


def test_unidentifiable_terms_keep_their_prior():
    doc = _synthetic("cg", TRUTHS["cg"], ranks=[1, 2])  # two points, three terms
    rep = M.model_study(doc)
    statuses = {k: v["status"] for k, v in rep["params"].items()}
    assert list(statuses.values()).count("fitted") == 2
    assert "assumed" in statuses.values()
    assert rep["params"]["gamma_s_per_nnz"]["value"] == pytest.approx(1.5e-9, rel=1e-6)


def test_set_fixes_a_parameter():
    doc = _synthetic("halo", TRUTHS["halo"])
    rep = M.model_study(doc, fixed={"alpha_s": 1e-5})
    assert rep["params"]["alpha_s"] == {"value": 1e-5, "unit": "s", "what": "latency per message",
                                        "status": "set"}


def test_pipelined_cg_hides_the_allreduce():
    rep = M.model_study(_synthetic("cg", TRUTHS["cg"]))
    cg, pipe = rep["variants"]["cg"], rep["variants"]["pipecg"]
    assert all(b <= a * (1 + 1e-12) for a, b in zip(cg, pipe))
    # at 10^4 ranks the SpMV is tiny: CG pays 2 latencies per iteration, pipelined CG ~1
    lat = 3e-6 * math.log2(10_000)
    assert cg[-1] == pytest.approx(2 * lat + 1.5e-9 * 7 * 48**3 / 1e4 + 2 * 48**2 * 8 / 7e9,
                                   rel=1e-6)
    assert 1.5 < cg[-1] / pipe[-1] < 2.0


def test_stream_bandwidth_model_recovers_b1_and_saturation():
    b1, bnode, cores, n = 6e9, 15e9, 4, 1_000_000
    runs = []
    for p in range(1, 17):
        nodes, r = math.ceil(p / cores), min(p, cores)
        bw = nodes * min(r * b1, bnode)
        runs.append(_run(p, 3 * 8 * n * p / bw, ["--arraysize", str(n)],
                         {"bytes_per_array_per_rank": 8 * n}))
    rep = M.model_study(_doc("stream", "weak", runs, cores=cores))
    assert rep["params"]["b1_Bps"]["value"] == pytest.approx(b1, rel=1e-4)
    assert rep["params"]["Bnode_Bps"]["value"] == pytest.approx(bnode, rel=1e-4)
    assert rep["params"]["Bnode_Bps"]["status"] == "fitted"
    last = rep["modelled"][-1]
    assert last["bandwidth_GBps"] == pytest.approx(2500 * 15, rel=1e-4)  # 10^4 / 4 nodes
    assert rep["roofline"]["arithmetic_intensity_flop_per_B"] == pytest.approx(1 / 12)


def test_stream_without_saturation_reports_a_lower_bound():
    runs = [_run(p, 3 * 8 * 1000 * p / (p * 5e9), [], {"bytes_per_array_per_rank": 8000})
            for p in (1, 2)]
    rep = M.model_study(_doc("stream", "weak", runs, cores=2))
    assert rep["params"]["b1_Bps"]["value"] == pytest.approx(5e9, rel=1e-4)
    assert rep["params"]["Bnode_Bps"]["status"].startswith("lower bound")


def test_dims_create_balanced():
    assert M.dims_create(8) == [2, 2, 2]
    assert M.dims_create(12) == [3, 2, 2]
    assert M.dims_create(7) == [7, 1, 1]
    assert math.prod(M.dims_create(10_000)) == 10_000
