"""`python -m hpc.scaling model DIR [DIR...]`: fit a performance model per app, extrapolate.

Models (p ranks, C cores per node, times per run or per iteration where the record counts
iterations):

* stream, bandwidth/roofline: aggregate bandwidth B(p) = nodes(p) * min(r(p) b1, Bnode), with
  r(p) = min(p, C) ranks per node; b1 is one rank's bandwidth, Bnode the node's saturated
  bandwidth. Triad's arithmetic intensity is 2 flops / 24 bytes, so it stays on the roofline's
  memory-bound slope; the attainable GFLOP/s is AI x B(p).
* halo (alpha-beta + compute): T = alpha msgs(p) + beta bytes(p) + gamma cells(p), with the
  block decomposition MPI_Dims_create would choose; msgs and bytes are one rank's exchanges
  with its 26 neighbours (faces, edges, corners), cells its local block (packing work).
* pagerank (per iteration): T = gamma E/p + beta 8V(p-1)/p + alpha log2 p (SpMV, the
  allgather of the rank vector, the allreduce of the residual).
* spgemm: T = gamma products/p + beta 12 nnz(B)(p-1)/p + alpha (p-1) (multiply, fetching B's
  rows from every peer in the 1D layout).
* cg (per iteration): T = gamma nnz/p + beta halo(p) + lambda k log2 p, with k the allreduces
  on the critical path: 2 for cg/pcg, 1 for cg1. Pipelined CG (Ghysels-Vanroose) overlaps its
  one allreduce with the SpMV: T = max(gamma nnz/p, lambda log2 p) + beta halo(p). The fit of
  either is used to predict both, which shows where latency hiding pays.
* kmedoids: T = gamma n^2/p + lambda log2 p; train (per step): T = gamma 6 N tokens/p +
  beta 2 N 8 (dp-1)/dp/(tp pp) + lambda log2 p.

Fitting is non-negative least squares on the points run with ranks <= cores; oversubscribed
points are plotted but never fitted (they measure time-slicing). A parameter the measured
points cannot separate from the others keeps a stated prior and is reported as "assumed", and
any parameter can be fixed with --set NAME=VALUE (e.g. a cluster's network alpha and beta).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import results

MAX_RANKS = 10_000


class ModelError(ValueError):
    """The results lack what a model needs."""


# -- helpers ----------------------------------------------------------------------------
def dims_create(p: int, nd: int = 3) -> list[int]:
    """A balanced factorisation of p into nd factors, largest first (as MPI_Dims_create)."""
    dims = [1] * nd
    n, d, primes = p, 2, []
    while d * d <= n:
        while n % d == 0:
            primes.append(d)
            n //= d
        d += 1
    if n > 1:
        primes.append(n)
    for q in sorted(primes, reverse=True):
        i = min(range(nd), key=lambda j: dims[j])
        dims[i] *= q
    return sorted(dims, reverse=True)


def _log2(p: float) -> float:
    return math.log2(p) if p > 1 else 0.0


def extrapolation_ranks(p0: int, max_ranks: int = MAX_RANKS) -> list[int]:
    out, p = [], p0
    while p <= max_ranks:
        out.append(p)
        p *= 2
    if out[-1] != max_ranks and max_ranks % p0 == 0:
        out.append(max_ranks)
    return out


def _num(d: dict, *keys: str) -> float | None:
    for k in keys:
        v = d.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def _opt(run: dict, name: str, nargs: int = 1) -> list[str] | None:
    from .argv import find

    return find(run.get("args", []), name, nargs)


# -- linear models: T = sum_k theta_k f_k(q, p) -------------------------------------------
@dataclass(frozen=True)
class Term:
    name: str
    unit: str
    what: str
    prior: float


@dataclass
class LinearModel:
    """One app's terms, the problem quantities it reads from a run, and its features."""

    app: str
    terms: list[Term]
    quantities: Callable[[dict], dict]                  # run -> {quantity: value}
    features: Callable[[dict, int], dict]               # (q, p) -> {term: feature}
    grow: Callable[[dict, float], dict]                 # weak scaling: q at p0 -> at f p0
    per_iteration: bool = False
    label: str = "time per run (s)"


def _scale(keys: tuple[str, ...]) -> Callable[[dict, float], dict]:
    def grow(q: dict, f: float) -> dict:
        return {k: (v * f if k in keys else v) for k, v in q.items()}
    return grow


# halo -----------------------------------------------------------------------------------
def _halo_q(run: dict) -> dict:
    rec = run.get("record") or {}
    params = rec.get("params") or {}
    grid = params.get("grid") or _opt(run, "--grid", 3)
    if not grid or len(grid) != 3:
        raise ModelError("halo model needs the global --grid")
    radius = params.get("radius") or (_opt(run, "--radius") or [1])[0]
    qn = params.get("quantities") or (_opt(run, "--quantities") or [1])[0]
    return {"nx": float(grid[0]), "ny": float(grid[1]), "nz": float(grid[2]),
            "radius": float(radius), "q": float(qn), "itemsize": 8.0}


def _halo_f(q: dict, p: int) -> dict:
    """One rank's exchange with its 26 neighbours (faces, edges, corners) on the process grid.

    A direction is a message when every axis it crosses is split over ranks (otherwise the
    neighbour is the rank itself, a local copy); its size is R per crossed axis times the
    local extent along the others.
    """
    import itertools

    dims = dims_create(p, 3)
    g = sorted([q["nx"], q["ny"], q["nz"]], reverse=True)
    loc = [gi / di for gi, di in zip(g, dims)]
    msgs = 0.0
    nbytes = 0.0
    for d in itertools.product((-1, 0, 1), repeat=3):
        if d == (0, 0, 0) or any(c != 0 and dims[i] == 1 for i, c in enumerate(d)):
            continue
        cells = 1.0
        for i, c in enumerate(d):
            cells *= q["radius"] if c else loc[i]
        msgs += 1
        nbytes += cells * q["q"] * q["itemsize"]
    return {"alpha_s": msgs, "beta_s_per_B": nbytes,
            "gamma_s_per_cell": loc[0] * loc[1] * loc[2] * q["q"]}


def _halo_grow(q: dict, f: float) -> dict:
    from .apps import _prime_factors

    g = [q["nx"], q["ny"], q["nz"]]
    mult = [1, 1, 1]
    for pr in sorted(_prime_factors(int(round(f))), reverse=True):
        i = min(range(3), key=lambda j: (mult[j], j))
        mult[i] *= pr
    return {**q, "nx": g[0] * mult[0], "ny": g[1] * mult[1], "nz": g[2] * mult[2]}


# pagerank --------------------------------------------------------------------------------
def _pr_q(run: dict) -> dict:
    rec = run.get("record") or {}
    m = rec.get("metrics") or {}
    v = _num(m, "vertices", "num_vertices", "n", "nodes")
    e = _num(m, "edges", "num_edges", "nnz", "arcs")
    if v is None or e is None:
        gen = _opt(run, "--generate")
        mm = re.fullmatch(r"kron:(\d+):(\d+)", gen[0]) if gen else None
        if not mm:
            raise ModelError("pagerank model needs vertex/edge counts (metrics) or kron:S:EF")
        v = float(2 ** int(mm.group(1)))
        e = v * int(mm.group(2))
    return {"V": v, "E": e}


def _pr_f(q: dict, p: int) -> dict:
    return {"gamma_s_per_edge": q["E"] / p, "beta_s_per_B": 8 * q["V"] * (p - 1) / p,
            "alpha_s": _log2(p)}


# spgemm ----------------------------------------------------------------------------------
def _sp_q(run: dict) -> dict:
    m = (run.get("record") or {}).get("metrics") or {}
    prod = _num(m, "products")
    nnzb = _num(m, "nnz_B", "nnz_b", "nnz_A", "nnz_a", "nnz")
    if prod is None:
        raise ModelError("spgemm model needs the metric 'products'")
    if nnzb is None:
        nnzc = _num(m, "nnz_C")
        nnzb = nnzc if nnzc is not None else prod
    return {"products": prod, "nnzB": nnzb}


def _sp_f(q: dict, p: int) -> dict:
    return {"gamma_s_per_product": q["products"] / p,
            "beta_s_per_B": 12 * q["nnzB"] * (p - 1) / p, "alpha_s": float(p - 1)}


# cg --------------------------------------------------------------------------------------
_STENCIL = {"poisson2d": (5, 2), "poisson3d": (7, 3), "hpcg": (27, 3)}


def _cg_q(run: dict) -> dict:
    rec = run.get("record") or {}
    m = rec.get("metrics") or {}
    params = rec.get("params") or {}
    method = str(params.get("method") or (_opt(run, "--method") or ["cg"])[0])
    prob = params.get("problem") or (_opt(run, "--problem") or [None])[0]
    nnz = _num(m, "nnz", "nnz_A")
    n = _num(m, "n", "rows", "unknowns")
    plane, dim = None, 3.0
    mm = re.fullmatch(r"(poisson2d|poisson3d|hpcg):(\d+)", str(prob)) if prob else None
    if mm:
        pts, dim = _STENCIL[mm.group(1)]
        side = int(mm.group(2))
        n = n or float(side ** dim)
        nnz = nnz or float(pts * side ** dim)
        plane = float(side ** (dim - 1))
        dim = float(dim)
    if nnz is None or n is None:
        raise ModelError("cg model needs nnz and n (metrics) or a generated --problem")
    return {"nnz": nnz, "n": n, "plane": plane if plane is not None else n ** (2 / 3),
            "dim": dim, "k": {"cg": 2.0, "pcg": 2.0, "cg1": 1.0, "pipecg": 1.0}.get(method, 2.0),
            "method": method}


def _cg_f(q: dict, p: int) -> dict:
    return {"gamma_s_per_nnz": q["nnz"] / p,
            "beta_s_per_B": (2 * q["plane"] * 8 if p > 1 else 0.0),
            "lambda_s": q["k"] * _log2(p)}


def _cg_grow(q: dict, f: float) -> dict:
    """Weak scaling: unknowns and nonzeros grow by f, a grid plane by f^((dim-1)/dim)."""
    dim = q.get("dim", 3.0)
    return {**q, "nnz": q["nnz"] * f, "n": q["n"] * f,
            "plane": q["plane"] * f ** ((dim - 1) / dim)}


# kmedoids / train ------------------------------------------------------------------------
def _km_q(run: dict) -> dict:
    m = (run.get("record") or {}).get("metrics") or {}
    n = _num(m, "n", "rows", "points")
    if n is None:
        for opt in ("--data", "--generate"):
            val = _opt(run, opt)
            mm = re.fullmatch(r"(?:blobs|uniform):(\d+).*", val[0]) if val else None
            if mm:
                n = float(mm.group(1))
    if n is None:
        raise ModelError("kmedoids model needs the number of rows (metric n, or a generator)")
    return {"n2": n * n}


def _km_f(q: dict, p: int) -> dict:
    return {"gamma_s_per_pair": q["n2"] / p, "lambda_s": _log2(p)}


def _tr_q(run: dict) -> dict:
    rec = run.get("record") or {}
    prm = rec.get("params") or {}

    def val(name: str, default: float) -> float:
        v = prm.get(name.lstrip("-").replace("-", "_"))
        if v is None:
            v = (_opt(run, name) or [default])[0]
        return float(v)

    L, h, V = val("--layers", 2), val("--hidden", 64), val("--vocab", 256)
    N = 12 * L * h * h + V * h
    tokens = val("--global-batch", 8) * val("--seq-len", 32)
    return {"N": N, "tokens": tokens, "tp": val("--tp", 1), "pp": val("--pp", 1)}


def _tr_f(q: dict, p: int) -> dict:
    dp = max(1.0, p / (q["tp"] * q["pp"]))
    return {"gamma_s_per_flop": 6 * q["N"] * q["tokens"] / p,
            "beta_s_per_B": 2 * q["N"] * 8 * (dp - 1) / dp / (q["tp"] * q["pp"]),
            "lambda_s": _log2(p)}


ALPHA = Term("alpha_s", "s", "latency per message", 2e-6)
BETA = Term("beta_s_per_B", "s/B", "inverse bandwidth", 1 / 10e9)
LAMBDA = Term("lambda_s", "s", "allreduce latency per log2(p) level", 2e-6)

MODELS: dict[str, LinearModel] = {
    "halo": LinearModel("halo", [Term("gamma_s_per_cell", "s", "packing per local cell", 0.0),
                                 BETA, ALPHA], _halo_q, _halo_f, _halo_grow,
                        label="time per exchange (s)"),
    "pagerank": LinearModel("pagerank", [Term("gamma_s_per_edge", "s", "SpMV per edge", 2e-9),
                                         BETA, ALPHA], _pr_q, _pr_f, _scale(("V", "E")),
                            per_iteration=True, label="time per iteration (s)"),
    "spgemm": LinearModel("spgemm", [Term("gamma_s_per_product", "s", "per scalar product", 1e-8),
                                     BETA, ALPHA], _sp_q, _sp_f, _scale(("products", "nnzB"))),
    "cg": LinearModel("cg", [Term("gamma_s_per_nnz", "s", "SpMV + vector work per nonzero", 2e-9),
                             LAMBDA, BETA], _cg_q, _cg_f, _cg_grow, per_iteration=True,
                      label="time per iteration (s)"),
    "kmedoids": LinearModel("kmedoids", [Term("gamma_s_per_pair", "s", "per distance pair", 1e-8),
                                         LAMBDA], _km_q, _km_f, _scale(("n2",))),
    "train": LinearModel("train", [Term("gamma_s_per_flop", "s", "inverse FLOP rate", 1e-10),
                                   BETA, LAMBDA], _tr_q, _tr_f, _scale(("tokens",)),
                         label="time per step (s)"),
}


def fit_linear(X: np.ndarray, y: np.ndarray, priors: np.ndarray,
               fixed: dict[int, float] | None = None) -> tuple[np.ndarray, list[str]]:
    """Non-negative least squares on the identifiable columns; the rest keep their prior.

    Columns are taken in order while each adds rank (so earlier terms win a tie); fixed
    columns (--set) are subtracted first. Returns parameters and each one's status.
    """
    from scipy.optimize import nnls

    fixed = fixed or {}
    ncol = X.shape[1]
    theta = priors.astype(float).copy()
    status = ["assumed"] * ncol
    for j, v in fixed.items():
        theta[j] = v
        status[j] = "set"
    scale = np.abs(X).max(axis=0)
    scale[scale == 0] = 1.0
    Xs = X / scale
    chosen: list[int] = []
    for j in range(ncol):
        if j in fixed or not np.any(X[:, j]):
            continue
        trial = chosen + [j]
        if np.linalg.matrix_rank(Xs[:, trial], tol=1e-9) == len(trial):
            chosen = trial
    rest = [j for j in range(ncol) if j not in chosen]
    resid = y - (X[:, rest] @ theta[rest] if rest else 0.0)
    if chosen:
        sol, _ = nnls(Xs[:, chosen], resid)
        for k, j in enumerate(chosen):
            theta[j] = sol[k] / scale[j]
            status[j] = "fitted"
    return theta, status


def _measured(doc: dict, per_iteration: bool, iterations_key: str | None) -> list[dict]:
    """One point per rank count: the best valid repeat (per iteration when asked)."""
    out = []
    for p, d in results.best_times(doc).items():
        run = min(d["runs"], key=lambda r: r["time_s"])
        t = float(run["time_s"])
        if per_iteration and iterations_key:
            it = ((run.get("record") or {}).get("metrics") or {}).get(iterations_key)
            if isinstance(it, (int, float)) and it > 0:
                t /= float(it)
        out.append({"ranks": p, "time": t, "oversubscribed": d["oversubscribed"], "run": run})
    return out


def model_study(doc: dict, cores_per_node: int | None = None, fixed: dict[str, float] | None = None,
                max_ranks: int = MAX_RANKS) -> dict:
    """Fit the app's model to one study and extrapolate; a JSON-able report."""
    from .apps import APPS

    st = doc["study"]
    app, mode = st["app"], st["mode"]
    cores = int(cores_per_node or doc["machine"]["cores"])
    if app == "stream":
        return _model_stream(doc, cores, fixed or {}, max_ranks)
    if app not in MODELS:
        raise ModelError(f"no model for app {app!r}")
    lm = MODELS[app]
    pts = _measured(doc, lm.per_iteration, APPS[app].iterations_key)
    if not pts:
        raise ModelError("no valid runs to fit")
    for pt in pts:
        pt["q"] = lm.quantities(pt["run"])
    names = [t.name for t in lm.terms]
    fitpts = [pt for pt in pts if not pt["oversubscribed"]]
    X = np.array([[lm.features(pt["q"], pt["ranks"])[n] for n in names] for pt in fitpts])
    y = np.array([pt["time"] for pt in fitpts])
    fx = {names.index(k): v for k, v in (fixed or {}).items() if k in names}
    theta, status = fit_linear(X.reshape(len(fitpts), len(names)), y,
                               np.array([t.prior for t in lm.terms]), fx)
    params = {t.name: {"value": float(v), "unit": t.unit, "what": t.what, "status": s}
              for t, v, s in zip(lm.terms, theta, status)}
    p0 = pts[0]["ranks"]
    q0 = pts[0]["q"]

    def predict(p: int, method: str | None = None, q: dict | None = None) -> float:
        if q is None:
            q = lm.grow(q0, p / p0) if mode == "weak" else q0
        f = lm.features(q, p)
        if app == "cg" and method == "pipecg":  # the allreduce hides behind the SpMV
            comp = theta[names.index("gamma_s_per_nnz")] * f["gamma_s_per_nnz"]
            lat = theta[names.index("lambda_s")] * _log2(p)
            return max(comp, lat) + theta[names.index("beta_s_per_B")] * f["beta_s_per_B"]
        if app == "cg" and method is not None:
            f["lambda_s"] = {"cg": 2.0, "pcg": 2.0, "cg1": 1.0}.get(method, 2.0) * _log2(p)
        return float(sum(theta[i] * f[n] for i, n in enumerate(names)))

    report = _report_common(doc, app, mode, cores, pts, params, predict, max_ranks, lm.label,
                            at_measured=lambda pt: predict(pt["ranks"], q=pt["q"]))
    if app == "cg":
        ext = extrapolation_ranks(p0, max_ranks)
        report["variants"] = {m: [predict(p, m) for p in ext] for m in ("cg", "pipecg")}
        report["method"] = q0.get("method")
    return report


def _report_common(doc, app, mode, cores, pts, params, predict, max_ranks, label,
                   at_measured) -> dict:
    """Measured points (with the model at their own problem sizes) and the extrapolation."""
    p0 = pts[0]["ranks"]
    ext = extrapolation_ranks(p0, max_ranks)
    measured = [{"ranks": pt["ranks"], "time": pt["time"], "model": at_measured(pt),
                 "oversubscribed": pt["oversubscribed"],
                 "fitted": not pt["oversubscribed"]} for pt in pts]
    t0 = predict(p0)
    modelled = []
    for p in ext:
        t = predict(p)
        sp = (p * t0 / t) if mode == "weak" else (p0 * t0 / t)
        modelled.append({"ranks": p, "time": t, "speedup": sp,
                         "efficiency": (t0 / t) if mode == "weak" else sp / p})
    return {"app": app, "mode": mode, "cores_per_node": cores, "label": label,
            "params": params, "measured": measured, "modelled": modelled,
            "max_measured_ranks": max(pt["ranks"] for pt in pts)}


def _model_stream(doc: dict, cores: int, fixed: dict[str, float], max_ranks: int) -> dict:
    """Aggregate triad bandwidth B(p) = nodes * min(r b1, Bnode); time = bytes / B."""
    from scipy.optimize import least_squares

    mode = doc["study"]["mode"]
    pts = _measured(doc, False, None)
    if not pts:
        raise ModelError("no valid runs to fit")
    for pt in pts:
        m = (pt["run"].get("record") or {}).get("metrics") or {}
        per_rank = _num(m, "bytes_per_array_per_rank")
        if per_rank is None:
            n = int((_opt(pt["run"], "--arraysize") or ["0"])[0])
            per_rank = 8.0 * n
        pt["bytes"] = 3 * per_rank * pt["ranks"]  # triad moves three arrays
        pt["bw"] = pt["bytes"] / pt["time"]

    def bw(p: float, b1: float, bnode: float) -> float:
        nodes = math.ceil(p / cores)
        r = min(p, cores)
        return nodes * min(r * b1, bnode)

    fitpts = [pt for pt in pts if not pt["oversubscribed"]]
    if not fitpts:
        raise ModelError("every run was oversubscribed: nothing to fit")
    b1_0 = fitpts[0]["bw"] / fitpts[0]["ranks"]
    bn_0 = max(pt["bw"] / math.ceil(pt["ranks"] / cores) for pt in fitpts)
    status = {"b1_Bps": "fitted", "Bnode_Bps": "fitted"}
    if "b1_Bps" in fixed:
        b1_0, status["b1_Bps"] = fixed["b1_Bps"], "set"
    if "Bnode_Bps" in fixed:
        bn_0, status["Bnode_Bps"] = fixed["Bnode_Bps"], "set"
    free = [k for k in ("b1_Bps", "Bnode_Bps") if status[k] == "fitted"]
    vals = {"b1_Bps": b1_0, "Bnode_Bps": bn_0}
    if free:
        def resid(x):
            v = dict(vals)
            v.update(zip(free, np.exp(x)))
            return [math.log(bw(pt["ranks"], v["b1_Bps"], v["Bnode_Bps"]) / pt["bw"])
                    for pt in fitpts]
        sol = least_squares(resid, np.log([vals[k] for k in free]), method="lm"
                            if len(fitpts) >= len(free) else "trf")
        vals.update(zip(free, np.exp(sol.x)))
    # Saturation is only identified if some fitted point sits on the flat part.
    if status["Bnode_Bps"] == "fitted" and not any(
            min(pt["ranks"], cores) * vals["b1_Bps"] > vals["Bnode_Bps"] * 1.001
            for pt in fitpts):
        vals["Bnode_Bps"] = max(pt["bw"] / math.ceil(pt["ranks"] / cores) for pt in fitpts)
        status["Bnode_Bps"] = "lower bound (no saturation measured)"
    if status["b1_Bps"] == "fitted" and all(
            min(pt["ranks"], cores) * vals["b1_Bps"] > vals["Bnode_Bps"] * 1.001 for pt in fitpts):
        status["b1_Bps"] = "lower bound (saturated at every point)"
    params = {"b1_Bps": {"value": vals["b1_Bps"], "unit": "B/s", "what": "one rank's bandwidth",
                         "status": status["b1_Bps"]},
              "Bnode_Bps": {"value": vals["Bnode_Bps"], "unit": "B/s",
                            "what": "a node's saturated bandwidth",
                            "status": status["Bnode_Bps"]}}
    p0 = pts[0]["ranks"]
    total0 = pts[0]["bytes"]

    def predict(p: int) -> float:
        total = total0 * p / p0 if mode == "weak" else total0
        return total / bw(p, vals["b1_Bps"], vals["Bnode_Bps"])

    rep = _report_common(doc, "stream", mode, cores, pts, params, predict, max_ranks,
                         "triad time (s)", at_measured=lambda pt: pt["bytes"] / bw(
                             pt["ranks"], vals["b1_Bps"], vals["Bnode_Bps"]))
    rep["roofline"] = {"arithmetic_intensity_flop_per_B": 2 / 24,
                       "attainable_GFLOPs_per_node": vals["Bnode_Bps"] * (2 / 24) / 1e9}
    for row in rep["modelled"]:
        row["bandwidth_GBps"] = bw(row["ranks"], vals["b1_Bps"], vals["Bnode_Bps"]) / 1e9
    for row in rep["measured"]:
        pt = next(q for q in pts if q["ranks"] == row["ranks"])
        row["bandwidth_GBps"] = pt["bw"] / 1e9
    return rep


# -- output --------------------------------------------------------------------------------
def format_report(rep: dict) -> str:
    cores = rep["cores_per_node"]
    lines = [f"model for hpc.{rep['app']} ({rep['mode']} scaling), {cores} cores per node"]
    over = [m["ranks"] for m in rep["measured"] if m["oversubscribed"]]
    if over:
        lines.append(f"NOTE: this host has {cores} cores; runs at ranks {over} exceed them "
                     f"(oversubscribed): shown as measured, excluded from the fit")
    lines.append("parameters:")
    for k, v in rep["params"].items():
        lines.append(f"  {k:<22} {v['value']:.4g} {v['unit']:<4} {v['status']:<8} ({v['what']})")
    if "roofline" in rep:
        r = rep["roofline"]
        lines.append(f"  roofline: triad AI = {r['arithmetic_intensity_flop_per_B']:.4f} flop/B, "
                     f"memory-bound; attainable {r['attainable_GFLOPs_per_node']:.3g} GFLOP/s "
                     f"per node")
    lines.append(f"MEASURED ({rep['label']}):")
    lines.append(f"  {'ranks':>6} {'measured':>12} {'model':>12}  note")
    for m in rep["measured"]:
        note = "oversubscribed, not fitted" if m["oversubscribed"] else "fitted"
        lines.append(f"  {m['ranks']:>6} {m['time']:>12.4g} {m['model']:>12.4g}  {note}")
    lines.append(f"MODELLED (extrapolation to {rep['modelled'][-1]['ranks']} ranks, "
                 f"{cores} ranks per node; not measured):")
    extra = "  bandwidth" if rep["app"] == "stream" else ""
    head = f"  {'ranks':>6} {'time':>12} {'speedup':>10} {'efficiency':>10}"
    if "variants" in rep:
        head += f" {'cg':>12} {'pipecg':>12}"
    lines.append(head + extra)
    for i, m in enumerate(rep["modelled"]):
        row = (f"  {m['ranks']:>6} {m['time']:>12.4g} {m['speedup']:>10.4g} "
               f"{m['efficiency']:>10.3f}")
        if "variants" in rep:
            row += f" {rep['variants']['cg'][i]:>12.4g} {rep['variants']['pipecg'][i]:>12.4g}"
        if rep["app"] == "stream":
            row += f"  {m['bandwidth_GBps']:.4g} GB/s"
        lines.append(row)
    return "\n".join(lines)


def plot_report(reps: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    variants_drawn = False
    for i, rep in enumerate(reps):
        c = f"C{i}"
        tag = f"{rep['app']} {rep['mode']}" + (f" ({rep.get('method')})" if rep.get("method") else "")
        ax.plot([m["ranks"] for m in rep["modelled"]], [m["time"] for m in rep["modelled"]],
                "-", color=c, label=f"{tag}: model")
        fit = [m for m in rep["measured"] if m["fitted"]]
        ov = [m for m in rep["measured"] if not m["fitted"]]
        ax.plot([m["ranks"] for m in fit], [m["time"] for m in fit], "o", color=c,
                label=f"{tag}: measured, fitted")
        if ov:
            ax.plot([m["ranks"] for m in ov], [m["time"] for m in ov], "o", mfc="none",
                    color=c, label=f"{tag}: measured, oversubscribed")
        if "variants" in rep and not variants_drawn:
            variants_drawn = True
            r = [m["ranks"] for m in rep["modelled"]]
            ax.plot(r, rep["variants"]["cg"], ":", color="C7",
                    label=f"{tag} fit -> classic CG (2 allreduces)")
            ax.plot(r, rep["variants"]["pipecg"], "--", color="C8",
                    label=f"{tag} fit -> pipelined CG (1 hidden allreduce)")
    cores = reps[0]["cores_per_node"]
    ax.axvline(cores, color="0.5", lw=0.8)
    ax.axvspan(max(m["ranks"] for r in reps for m in r["measured"]) * 1.05,
               reps[0]["modelled"][-1]["ranks"], color="0.93", zorder=0)
    ax.text(0.02, 0.98, "shaded: extrapolated (not measured)", transform=ax.transAxes,
            ha="left", va="top", fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"MPI ranks ({cores} cores on this host: line)")
    ax.set_ylabel(reps[0]["label"])
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6)
    ax.set_title("fitted model and extrapolation to 10^4 ranks", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def model_dirs(dirs: list[str], cores_per_node: int | None = None,
               fixed: dict[str, float] | None = None, out: str | None = None,
               max_ranks: int = MAX_RANKS) -> tuple[list[dict], str, Path]:
    """Fit every study; write model.json beside each and one model.png; return the text."""
    reps, texts = [], []
    for d in dirs:
        doc = results.load(d)
        rep = model_study(doc, cores_per_node, fixed, max_ranks)
        reps.append(rep)
        texts.append(format_report(rep))
        folder = Path(d) if Path(d).is_dir() else Path(d).parent
        (folder / "model.json").write_text(json.dumps(rep, indent=1) + "\n")
    first = Path(dirs[0]) if Path(dirs[0]).is_dir() else Path(dirs[0]).parent
    png = plot_report(reps, Path(out) if out else first / "model.png")
    return reps, "\n\n".join(texts), png


def parse_set(items: list[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for it in items or []:
        name, sep, val = it.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            raise ModelError(f"--set expects NAME=VALUE, got {it!r}")
        try:
            out[name] = float(val)
        except ValueError:
            raise ModelError(f"--set {name}: not a number: {val!r}") from None
    return out
