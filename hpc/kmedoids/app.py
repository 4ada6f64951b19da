"""hpc.kmedoids: PAM, FastPAM1, FastPAM2, FasterPAM, FastCLARA and FastCLARANS with MPI.

Schubert & Rousseeuw, "Fast and Eager k-Medoids Clustering" (Information Systems 101, 2021).
Points are block-distributed over the ranks. Each rank keeps its row block of the distance
matrix when it fits (--distances matrix), or recomputes distance tiles on the fly from the
replicated data (--distances tiled), so n is not capped by n^2 memory. Every loss change (the
paper's ΔTD, for all medoids at once) is summed over each rank's points and reduced.

Validation: the loss is recomputed independently (SciPy distances from the data to the
medoids), every label is checked to be a nearest medoid, and for the SWAP methods a full pass
checks that no single swap improves the loss (local optimality).

This is the command line over the Python API (hpc.kmedoids.api: distance_oracle, cluster; the
KMedoids estimator and the fasterpam/pam/... functions for in-memory data).
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
from mpi4py import MPI

from hpc.core import App, UsageError, checks, make_parser, run
from hpc.core import backends as registry
from hpc.core.memory import gib

from . import api, data, loops, quality
from .api import (BATCH_MAX, ITER_MAX, K_MAX, MATRIX_FRACTION, METHODS, MSC_METHODS,
                  NEIGHBORS_MAX, RESTARTS_MAX, SAMPLE_SIZE_MAX, SAMPLES_MAX, SWAP_METHODS)
from .kernels import BACKENDS, METRICS
from .msc import ratio


def parser():
    p = make_parser(
        "kmedoids", __doc__, backends=list(BACKENDS), default_backend="native",
        epilog="Example: mpiexec -n 4 python -m hpc.kmedoids --data blobs:2000:8:10 --k 10 "
               "--method fasterpam --init build")
    p.add_argument("--data", default="blobs:1000:4:5", metavar="PATH|GEN",
                   help="points: .npy, .csv (one row per line, optional header) or .h5 "
                        "(dataset /X); or a generator blobs:N:D:K (K Gaussian blobs, centres "
                        "in [-10,10]^D) or uniform:N:D; with --metric precomputed, an n x n "
                        "distance matrix file")
    p.add_argument("--k", type=checks.integer(1, K_MAX), default=5,
                   help=f"number of medoids, 1..{K_MAX} (at most the number of points); "
                        "dynmsc: the largest k tried")
    p.add_argument("--method", choices=METHODS, default="fasterpam",
                   help="pam (BUILD+SWAP), fastpam1 (PAM's swaps, O(k) faster), fastpam2 "
                        "(several swaps per iteration), fasterpam (eager swaps), clara "
                        "(FastCLARA: best of --samples samples), clarans (FastCLARANS), "
                        "alternating (Voronoi iteration, the cheap baseline), onebatch "
                        "(OneBatchPAM: eager swaps on a batch estimate of the loss, n up to "
                        "10^6 and beyond); the "
                        "medoid silhouette: fastmsc (best swap), fastermsc (eager swaps), "
                        "dynmsc (k from --min-k to --k by the medoid silhouette), pammedsil "
                        "(the original, O(k^2) slower than fastmsc)")
    p.add_argument("--metric", choices=METRICS + ("precomputed",), default="euclidean",
                   help="distance; precomputed: --data is the distance matrix")
    p.add_argument("--init", choices=("auto", "build", "lab", "random"), default="auto",
                   help="initial medoids: BUILD (O(k n^2)), LAB (linear approximate BUILD on "
                        "subsamples of 10+sqrt(n)), random; auto = random for clarans, "
                        "else build with a stored matrix and lab with tiles")
    p.add_argument("--distances", choices=("auto", "matrix", "tiled"), default="auto",
                   help="keep each rank's row block of the distance matrix (matrix), recompute "
                        "tiles on the fly (tiled), or matrix when it takes at most "
                        f"{int(MATRIX_FRACTION * 100)}%% of the free memory (auto)")
    p.add_argument("--tiled", action="store_true", help="same as --distances tiled")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="of the stored distance matrix and the tiles: float32 halves their "
                        "memory (distances computed in float64 and rounded once; losses summed "
                        "in float64, within about 1e-7 relative of the float64 run)")
    p.add_argument("--max-iter", dest="max_iter", type=checks.integer(1, ITER_MAX), default=100,
                   help=f"SWAP iterations at most (FasterPAM: sweeps), 1..{ITER_MAX}")
    p.add_argument("--min-k", dest="min_k", type=checks.integer(2, K_MAX), default=2,
                   help="dynmsc: the smallest k tried, 2..--k")
    p.add_argument("--samples", type=checks.integer(1, SAMPLES_MAX), default=5,
                   help=f"clara: number of samples, 1..{SAMPLES_MAX}")
    p.add_argument("--sample-size", dest="sample_size",
                   type=checks.integer(2, SAMPLE_SIZE_MAX), default=None,
                   help=f"clara: points per sample, --k..{SAMPLE_SIZE_MAX} [default: 80 + 4k]")
    p.add_argument("--no-keep-medoids", dest="keep_medoids", action="store_false",
                   help="clara: independent samples (spread over the ranks) instead of "
                        "keeping the best medoids in every next sample (ELKI's default)")
    p.add_argument("--batch-size", dest="batch_size", type=checks.integer(2, BATCH_MAX),
                   default=None,
                   help=f"onebatch: points the loss is estimated on, 2..{BATCH_MAX} "
                        "[default: 100 ln(k n)]")
    p.add_argument("--restarts", type=checks.integer(1, RESTARTS_MAX), default=2,
                   help=f"clarans: local searches (numlocal), 1..{RESTARTS_MAX}")
    p.add_argument("--neighbors", type=checks.real(0, NEIGHBORS_MAX, lo_open=True), default=0.1,
                   help="clarans: non-improving candidates in a row that end a local search, "
                        f"as a fraction of n - k, in (0, {NEIGHBORS_MAX:g}] (each candidate "
                        "is tried against all k medoids)")
    p.add_argument("--silhouette", nargs="?", const="full", default="full",
                   choices=("full", "medoid"),
                   help="quality in the record: full = the silhouette (one more O(n^2) pass) "
                        "and the medoid silhouette; medoid = the medoid silhouette only "
                        "[default: full]")
    p.add_argument("--check", choices=("full", "loss"), default="full",
                   help="validation: full adds a pass proving no single swap improves "
                        "(SWAP methods); loss only recomputes the loss and labels")
    return p


def _reference_min(Xl: np.ndarray, M: np.ndarray, metric: str) -> np.ndarray:
    """Distances from the local points to the medoids by SciPy (independent of the kernels)."""
    from scipy.spatial.distance import cdist

    name = {"manhattan": "cityblock"}.get(metric, metric)
    if metric == "cosine":
        na = np.linalg.norm(Xl, axis=1) == 0
        nb = np.linalg.norm(M, axis=1) == 0
        D = cdist(np.where(na[:, None], 1.0, Xl), np.where(nb[:, None], 1.0, M), "cosine")
        D[na[:, None] | nb[None, :]] = 1.0
        return D
    return cdist(Xl, M, name)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.tiled:
        args.distances = "tiled"
    registry.require(BACKENDS[args.backend][1], list(BACKENDS))
    app = App("kmedoids", args)
    loops.QUIET = bool(args.quiet)  # progress lines of the long loops
    comm = app.comm
    precomputed = args.metric == "precomputed"
    if precomputed and args.distances == "tiled":
        raise UsageError("--distances tiled needs data points, not --metric precomputed")
    if args.sample_size is not None and args.sample_size < args.k:
        raise UsageError(f"--sample-size {args.sample_size} is smaller than --k {args.k} "
                         "(a sample must hold the k medoids)")
    if args.method == "onebatch" and precomputed:
        raise UsageError("--method onebatch needs data points, not --metric precomputed")
    if args.method == "onebatch" and args.distances == "auto":
        args.distances = "tiled"  # the full matrix is never read: only the final assignment
    if args.method == "dynmsc" and args.min_k > args.k:
        raise UsageError(f"--min-k {args.min_k} is larger than --k {args.k}")

    with app.timer.phase("read"):
        loc = data.read(args.data, comm, args.seed, precomputed)
    n, k = loc.n, args.k
    if k > n:
        raise UsageError(f"--k {k} is larger than the number of points ({n})")
    app.metrics.update(n=n, d=loc.d if not precomputed else None, k=k)

    with app.timer.phase("distances"):
        oracle = api.distance_oracle(loc, args.metric, distances=args.distances,
                                     backend=args.backend, comm=comm, dtype=args.dtype)
    mode = oracle.mode
    init = api.resolve_init(args.init, args.method, mode)
    nl_max = -(-n // app.size)
    item = np.dtype(args.dtype).itemsize
    app.metrics.update(distances=mode, init=init, dtype=args.dtype,
                       matrix_bytes_per_rank=int(item * nl_max * n) if mode == "matrix" else 0,
                       data_bytes_per_rank=0 if precomputed else int(8 * n * loc.d))
    app.metrics.update({key: v for key, v in oracle.info().items() if key != "mode"})
    app.say(f"hpc.kmedoids {args.method} (init {init}), n={n}, k={k}, metric {args.metric}, "
            f"{mode} {args.dtype} distances ({gib(float(item) * nl_max * n)} per rank as a "
            f"matrix), back end {args.backend}, {app.size} rank(s) x {app.threads} thread(s)")

    res = solver = None
    cpu = []  # this process's CPU seconds per repeat: the work a rank did, without the waits
    for _ in range(args.repeat):
        c0 = time.process_time()
        with app.timer.phase("cluster"):
            res, solver = api.cluster(oracle, k, method=args.method, init=init,
                                      max_iter=args.max_iter,
                                      rng=np.random.default_rng(args.seed),
                                      samples=args.samples, sample_size=args.sample_size,
                                      restarts=args.restarts, neighbors=args.neighbors,
                                      min_k=args.min_k, keep_medoids=args.keep_medoids,
                                      batch_size=args.batch_size)
        app.timer.add("build", res.build_s)
        app.timer.add("swap", res.swap_s)
        cpu.append(time.process_time() - c0)
    # the busiest rank's CPU time: on an oversubscribed host the wall times mostly measure
    # scheduling, this how the work divides over the ranks
    app.metrics["cluster_cpu_s_max_rank"] = comm.allreduce(min(cpu), op=MPI.MAX)

    meds = np.asarray(res.medoids, dtype=np.int64)
    passed, val = _validate(app, solver, loc, oracle, meds, args, res, precomputed)
    with app.timer.phase("quality"):
        app.metrics.update(_quality(args, comm, solver, oracle, meds, n))
    timings = app.timer.summary()
    app.metrics.update(loss=res.loss, swaps=res.swaps, iterations=res.iterations,
                       converged=res.converged, build_s=timings["build"]["min"],
                       swap_s=timings["swap"]["min"], distances_s=timings["distances"]["min"],
                       **{k2: v for k2, v in res.extra.items()})
    if args.method in MSC_METHODS:
        app.metrics.update(objective="medoid silhouette (larger is better)",
                           total_deviation=val["loss_reference"])
    else:
        app.metrics.update(objective="total deviation (smaller is better)")
    app.say(f"loss {res.loss:.10g}, {res.swaps} swaps, {res.iterations} iterations; BUILD "
            f"{timings['build']['min']:.3f} s, SWAP {timings['swap']['min']:.3f} s")
    if args.output:
        _write(args, comm, solver, res, meds, init, n, meds.size)
    return app.finish(passed, val, timings)


def _quality(args, comm, solver, oracle, meds, n: int) -> dict:
    """The medoid silhouette, and (--silhouette full) the silhouette of the labels."""
    out = {"medoid_silhouette": quality.medoid_silhouette(oracle, meds, comm)[0]}
    if args.silhouette == "full":
        labels = api._gather_labels(solver, comm)
        out["silhouette"] = quality.silhouette(oracle, labels, comm)[0]
    return out


def _write(args, comm, solver, res, meds, init: str, n: int, k: int) -> None:
    """HDF5: medoids sorted, labels numbering them in that order, the initial medoids."""
    from hpc.core import h5io

    order = np.argsort(meds, kind="stable")
    pos = np.empty(k, dtype=np.int64)
    pos[order] = np.arange(k)
    labels = pos[solver.near_i]
    h5io.write(args.output, comm, {
        "/medoids": meds[order], "/labels": h5io.Distributed(labels),
        "/init_medoids": np.asarray(res.init_medoids, dtype=np.int64)},
        attrs={"/": {"method": args.method, "metric": args.metric, "init": init,
                     "loss": float(res.loss), "k": k, "n": n}})


def _validate(app, solver, loc, oracle, meds, args, res, precomputed):
    comm, k, n = app.comm, meds.size, loc.n
    val: dict = {}
    ok = len(set(meds.tolist())) == k and meds.min() >= 0 and meds.max() < n
    val["medoids_distinct"] = bool(ok)
    if precomputed:
        Dm = np.asarray(loc.X[:, meds])
    else:
        Dm = _reference_min(loc.X, oracle.X_all[meds], args.metric)
    dmin = Dm.min(axis=1) if Dm.shape[0] else np.zeros(0)
    ref = solver.total(float(dmin.sum()))
    val["loss_reference"] = ref
    if args.method in MSC_METHODS and k > 1:
        # the medoid silhouette from the SciPy distances: the mean of 1 - near/second
        two = np.partition(Dm, 1, axis=1)[:, :2] if Dm.shape[0] else np.zeros((0, 2))
        msil = 1.0 - solver.total(float(ratio(two[:, 0], two[:, 1]).sum())) / n
        val["medoid_silhouette_reference"] = msil
        # DynMSC reports the package's value, which its third-nearest bookkeeping after a
        # removal can leave off the true one: there the solver's state (rebuilt) is checked
        got = solver.silhouette_value() if args.method == "dynmsc" else res.loss
        err = abs(msil - got) / max(abs(msil), 1e-300) if msil else abs(got)
    else:
        err = abs(ref - res.loss) / max(abs(ref), 1e-300) if ref else abs(res.loss)
    val["loss_rel_err"] = err
    # float32 distances are the float64 ones rounded once (2^-24 relative): the loss and the
    # nearest-medoid gaps are held to that, not to float64's
    rtol = 1e-9 if args.dtype == "float64" else 1e-6
    ok &= err <= rtol
    # labels: every point's medoid is a nearest one
    lab_d = Dm[np.arange(Dm.shape[0]), solver.near_i] if Dm.shape[0] else np.zeros(0)
    gap = float(np.max(lab_d - dmin)) if lab_d.size else 0.0
    gap = comm.allreduce(gap, op=MPI.MAX)
    tol = rtol * max(1.0, float(np.max(Dm)) if Dm.size else 1.0)
    val["label_gap"] = gap
    ok &= gap <= comm.allreduce(tol, op=MPI.MAX)
    if args.check == "full" and args.method in ("fastmsc", "fastermsc", "pammedsil") and 1 < k < n:
        gain = solver.max_gain()
        val["max_swap_gain"] = gain
        val["locally_optimal"] = bool(gain <= 1e-9 * max(1.0, solver.loss))
        if res.converged:
            ok &= val["locally_optimal"]
    if args.check == "full" and args.method in SWAP_METHODS and k < n:
        md = solver.min_delta()
        val["min_swap_delta"] = md
        val["locally_optimal"] = bool(md >= -1e-9 * max(1.0, abs(res.loss)))
        if res.converged:
            ok &= val["locally_optimal"]
    val["converged"] = bool(res.converged)
    return bool(ok), val


if __name__ == "__main__":
    run(main)
