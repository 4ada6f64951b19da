"""`python -m hpc.scaling model DIR [DIR...]`: fit a performance model per app, extrapolate.

Each workload declares its model in its spec (``hpc/<app>/spec.py``, ``SPEC.model``): a
LinearModel's terms, quantities and features, or stream's BandwidthModel; this module fits
them. Models (p ranks, C cores per node, times per run or per iteration where the record counts
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

import math
import re
from pathlib import Path

import numpy as np

from hpc.core.atomic import atomic_path, write_json
from hpc.core.spec import load

from . import results
from .rules import BandwidthModel, LinearModel, ModelError, dims_create  # noqa: F401 (API)

MAX_RANKS = 10_000


def extrapolation_ranks(p0: int, max_ranks: int = MAX_RANKS) -> list[int]:
    out, p = [], p0
    while p <= max_ranks:
        out.append(p)
        p *= 2
    if out[-1] != max_ranks and max_ranks % p0 == 0:
        out.append(max_ranks)
    return out


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
    """Fit the app's model (its spec's ``model``) to one study and extrapolate; a JSON-able
    report."""
    st = doc["study"]
    app, mode = st["app"], st["mode"]
    cores = int(cores_per_node or doc["machine"]["cores"])
    try:
        spec = load(app)
    except ValueError:
        raise ModelError(f"no model for app {app!r}") from None
    lm = spec.model
    if isinstance(lm, BandwidthModel):
        return _model_bandwidth(doc, lm, cores, fixed or {}, max_ranks)
    if not isinstance(lm, LinearModel):
        raise ModelError(f"no model for app {app!r}")
    pts = _measured(doc, lm.per_iteration, spec.iterations_key)
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
    by_name = {n: float(v) for n, v in zip(names, theta)}
    p0 = pts[0]["ranks"]
    q0 = pts[0]["q"]

    def predict(p: int, method: str | None = None, q: dict | None = None) -> float:
        if q is None:
            q = lm.grow(q0, p / p0) if mode == "weak" else q0
        f = lm.features(q, p)
        if method is not None and lm.predict_variant is not None:
            return float(lm.predict_variant(by_name, f, q, p, method))
        return float(sum(theta[i] * f[n] for i, n in enumerate(names)))

    report = _report_common(doc, app, mode, cores, pts, params, predict, max_ranks, lm.label,
                            at_measured=lambda pt: predict(pt["ranks"], q=pt["q"]))
    if lm.variants:
        ext = extrapolation_ranks(p0, max_ranks)
        report["variants"] = {m: [predict(p, m) for p in ext] for m, _ in lm.variants}
        report["variant_labels"] = dict(lm.variants)
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


def _model_bandwidth(doc: dict, bm: BandwidthModel, cores: int, fixed: dict[str, float],
                     max_ranks: int) -> dict:
    """Aggregate bandwidth B(p) = nodes * min(r b1, Bnode); time = bytes / B."""
    from scipy.optimize import least_squares

    mode = doc["study"]["mode"]
    pts = _measured(doc, False, None)
    if not pts:
        raise ModelError("no valid runs to fit")
    for pt in pts:
        pt["bytes"] = float(bm.bytes_moved(pt["run"]))
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

    rep = _report_common(doc, bm.app, mode, cores, pts, params, predict, max_ranks,
                         bm.label, at_measured=lambda pt: pt["bytes"] / bw(
                             pt["ranks"], vals["b1_Bps"], vals["Bnode_Bps"]))
    rep["roofline"] = {"kernel": bm.kernel,
                       "arithmetic_intensity_flop_per_B": bm.flops_per_byte,
                       "attainable_GFLOPs_per_node": vals["Bnode_Bps"] * bm.flops_per_byte / 1e9}
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
        lines.append(f"  roofline: {r.get('kernel', 'kernel')} AI = "
                     f"{r['arithmetic_intensity_flop_per_B']:.4f} flop/B, "
                     f"memory-bound; attainable {r['attainable_GFLOPs_per_node']:.3g} GFLOP/s "
                     f"per node")
    lines.append(f"MEASURED ({rep['label']}):")
    lines.append(f"  {'ranks':>6} {'measured':>12} {'model':>12}  note")
    for m in rep["measured"]:
        note = "oversubscribed, not fitted" if m["oversubscribed"] else "fitted"
        lines.append(f"  {m['ranks']:>6} {m['time']:>12.4g} {m['model']:>12.4g}  {note}")
    lines.append(f"MODELLED (extrapolation to {rep['modelled'][-1]['ranks']} ranks, "
                 f"{cores} ranks per node; not measured):")
    bandwidth = "roofline" in rep
    extra = "  bandwidth" if bandwidth else ""
    variants = list(rep.get("variants") or {})
    head = f"  {'ranks':>6} {'time':>12} {'speedup':>10} {'efficiency':>10}"
    head += "".join(f" {v:>12}" for v in variants)
    lines.append(head + extra)
    for i, m in enumerate(rep["modelled"]):
        row = (f"  {m['ranks']:>6} {m['time']:>12.4g} {m['speedup']:>10.4g} "
               f"{m['efficiency']:>10.3f}")
        row += "".join(f" {rep['variants'][v][i]:>12.4g}" for v in variants)
        if bandwidth:
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
            labels = rep.get("variant_labels") or {}
            for k, (name, times) in enumerate(rep["variants"].items()):
                ax.plot(r, times, (":", "--", "-.")[k % 3], color=f"C{7 + k}",
                        label=f"{tag} fit -> {labels.get(name, name)}")
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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format=Path(path).suffix.lstrip(".") or "png")
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
        write_json(folder / "model.json", rep)
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
