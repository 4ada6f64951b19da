"""Global PageRank time to an L1 change of --tol: hpc.pagerank against networkx, a SciPy power
iteration and igraph (PRPACK), side by side on the same graphs and machine.

    python scaling/compare/pagerank_compare.py --graphs email,gnutella,kron:16:16 --ranks 2

Every solver gets the same deduplicated graph (self-loops kept, networkx DiGraph semantics).
What each time includes (best of --repeat calls):
- igraph: ``Graph.pagerank(implementation="prpack")`` on a graph already in memory; the call
  includes PRPACK's own preprocessing of that graph.
- networkx: ``nx.pagerank`` on a DiGraph in memory (includes its conversion to SciPy).
- SciPy: normalising/transposing the matrix plus the power iteration.
- hpc.pagerank: ``solve`` = the iteration on a graph already loaded and partitioned (the
  solver's setup - balancing, SELL-4 build, exchange plan - done once); multi-rank: the app
  under mpiexec, its record's solve phase (slowest rank, best of --repeat after a warm-up).
  ``setup+solve`` is the figure on igraph's footing: a new solver made and run for every call
  (make_solver + solve, nothing reused), best of --repeat like igraph's; multi-rank: a worker
  under mpiexec (this script, --worker), barrier to barrier, slowest rank. ``first`` = the
  first such call of the process (cold: first use of every NumPy/MPI path), set beside
  igraph's first call; the app's own setup phase (also a first call) is kept in the record.
Accuracy: every result's L1 distance to a tight reference (SciPy power iteration to an L1
change of 1e-15); PRPACK has its own stopping rule, so when its error is below ours, ours is
also timed at the first tol (10x steps) that reaches PRPACK's error ("equal accuracy").
MPI environment (--mpi-env): "busy" = MPICH's defaults (busy polling: right when ranks <= cores),
"throttle" = the suite's settings for oversubscribed runs (MPIR_CVAR_CH4_PROGRESS_THROTTLE...).
Edge throughput = edges / (solve time / iterations).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

from hpc.core.launch import run_record

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "graphs"
ALIASES = {"email": DATA / "email-Eu-core.txt", "gnutella": DATA / "p2p-Gnutella08.txt",
           "wiki-vote": DATA / "Wiki-Vote.txt"}
ENV = {"OMP_NUM_THREADS": "1"}
TIMEOUT = 900   # seconds a launch may run (MPIEXEC_TIMEOUT)


def best(f, repeat: int):
    out, ts = None, []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        ts.append(time.perf_counter() - t0)
    return min(ts), out


def load(spec: str, seed: int):
    from hpc.pagerank import graphio

    comm = MPI.COMM_SELF
    if spec.startswith("kron:"):
        g = graphio.load_graph(comm, generate=spec, seed=seed)
    else:
        g = graphio.load_graph(comm, graph=str(ALIASES.get(spec, spec)))
    return g, graphio.gather_csr(g)


def scipy_power(A, d: float, tol: float):
    import scipy.sparse as sp

    n = A.shape[0]
    deg = np.asarray(A.sum(axis=1)).ravel()
    inv = np.zeros(n)
    np.divide(1.0, deg, out=inv, where=deg > 0)
    PT = sp.csr_matrix(A.multiply(inv[:, None])).T.tocsr()
    dang = deg == 0
    x = np.full(n, 1.0 / n)
    it = 0
    while True:
        it += 1
        xn = d * (PT @ x) + (d * x[dang].sum() + 1.0 - d) / n
        if np.abs(xn - x).sum() < tol:
            return xn, it
        x = xn


def run_mpi(spec: str, ranks: int, tol: float, seed: int, repeat: int, layout: str,
            cache: str, mpi_env: str) -> dict:
    src = ["--generate", spec, "--seed", str(seed)] if spec.startswith("kron:") else \
        ["--graph", str(ALIASES.get(spec, spec))]
    rec = run_record(ranks, "hpc.pagerank", [*src, "--cache", cache, "--tol", tol, "--layout",
                                             layout, "--repeat", repeat + 1, "--quiet"],
                     progress=mpi_env, env=ENV, timeout=TIMEOUT, cwd=ROOT)
    t = rec["timings"]
    return {"time_s": t["solve"]["min"], "setup_s": t["setup"]["min"],
            "iterations": rec["metrics"]["iterations"]}


def worker(args) -> int:
    """Under mpiexec: load the graph, then --repeat + 1 times make a new solver and solve
    (barrier to barrier, slowest rank); write first / best times to --json (rank 0)."""
    from hpc.core import backends
    from hpc.pagerank import graphio
    from hpc.pagerank.solver import make_solver

    backends.set_threads(1)
    comm = MPI.COMM_WORLD
    spec = args.worker
    if spec.startswith("kron:"):
        g = graphio.load_graph(comm, generate=spec, seed=args.seed, cache=args.cache)
    else:
        g = graphio.load_graph(comm, graph=str(ALIASES.get(spec, spec)), cache=args.cache)
    rows = []
    for _ in range(args.repeat + 1):
        comm.Barrier()
        t0 = time.perf_counter()
        s = make_solver(g, "native", args.layout)
        t1 = time.perf_counter()
        res = s.solve(args.damping, args.tol, 10_000)
        comm.Barrier()
        t2 = time.perf_counter()
        s.free()
        rows.append([t1 - t0, t2 - t0])
    loc = np.array(rows)
    out = np.empty_like(loc)
    comm.Allreduce(loc, out, op=MPI.MAX)
    if comm.Get_rank() == 0:
        with open(args.json, "w") as f:
            json.dump({"first_setup_s": out[0, 0], "first_setup_solve_s": out[0, 1],
                       "setup_s": float(out[1:, 0].min()), "setup_solve_s": float(out[1:, 1].min()),
                       "iterations": res.iterations, "steps": getattr(s, "setup_times", {})}, f)
    return 0


def run_worker(spec: str, ranks: int, args, cache: str, mpi_env: str) -> dict:
    return run_record(ranks, None, [Path(__file__).resolve(), "--worker", spec, "--cache", cache,
                                    "--tol", args.tol, "--damping", args.damping,
                                    "--seed", args.seed, "--repeat", args.repeat,
                                    "--layout", args.layout],
                      progress=mpi_env, env=ENV, timeout=TIMEOUT, cwd=ROOT)


def l1(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - b).sum())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graphs", default="email,gnutella,kron:16:16")
    ap.add_argument("--tol", type=float, default=1e-10)
    ap.add_argument("--damping", type=float, default=0.85)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ranks", default="2", help="extra rank counts for hpc.pagerank (mpiexec)")
    ap.add_argument("--layout", default="1d")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mpi-env", choices=("auto", "busy", "throttle"), default="auto",
                    help="auto: busy when the largest rank count <= cores, else throttle")
    ap.add_argument("--networkx-max-edges", type=int, default=5_000_000)
    ap.add_argument("--no-equal-accuracy", action="store_true",
                    help="skip timing hpc at PRPACK's accuracy")
    ap.add_argument("--json", default=str(ROOT / "scaling" / "results" / "pagerank_compare.json"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)    # internal: the mpiexec worker
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    import networkx as nx

    from hpc.core import backends
    from hpc.pagerank.solver import make_solver, reference_pagerank

    ranks = [int(r) for r in args.ranks.split(",") if r]
    mpi_env = args.mpi_env
    if mpi_env == "auto":
        mpi_env = "busy" if max(ranks, default=1) <= (os.cpu_count() or 1) else "throttle"
    backends.set_threads(1)
    try:
        import igraph as ig
    except ImportError:
        ig = None
    rows = []
    for spec in args.graphs.split(","):
        g, A = load(spec, args.seed)
        n, m = A.shape[0], A.nnz
        row = {"graph": spec, "vertices": n, "edges": m, "mpi_env": mpi_env}
        ref = reference_pagerank(A, args.damping, tol=1e-15)
        t0 = time.perf_counter()
        s = make_solver(g, "native", "1d")
        row["hpc_1rank_first_setup_s"] = time.perf_counter() - t0
        s.solve(args.damping, args.tol, 10_000)                        # warm-up
        row["hpc_1rank_first_setup_solve_s"] = time.perf_counter() - t0
        t, res = best(lambda: s.solve(args.damping, args.tol, 10_000), args.repeat)
        row["hpc_1rank_s"], row["iterations"] = t, res.iterations

        def fresh():
            s2 = make_solver(g, "native", "1d")
            s2.solve(args.damping, args.tol, 10_000)
            s2.free()

        row["hpc_1rank_setup_solve_s"] = best(fresh, args.repeat)[0]
        row["hpc_1rank_setup_s"] = best(lambda: make_solver(g, "native", "1d").free(),
                                        args.repeat)[0]
        row["hpc_Medges_per_s"] = m * res.iterations / t / 1e6
        ours = res.x
        row["hpc_l1_err"] = l1(ours, ref)
        t, (xs, its) = best(lambda: scipy_power(A, args.damping, args.tol), args.repeat)
        row["scipy_s"], row["scipy_iterations"] = t, its
        row["scipy_max_abs_diff"] = float(np.abs(xs - ours).max())
        eq_tol = None
        if ig is not None:
            coo = A.tocoo()
            G = ig.Graph(n=n, edges=np.column_stack([coo.row, coo.col]), directed=True)
            del coo
            t, pr = best(lambda: G.pagerank(damping=args.damping, implementation="prpack"), 1)
            row["igraph_prpack_first_s"] = t                            # its first call
            t, pr = best(lambda: G.pagerank(damping=args.damping, implementation="prpack"),
                         args.repeat)
            row["igraph_prpack_s"] = t
            row["igraph_max_abs_diff"] = float(np.abs(np.array(pr) - ours).max())
            row["igraph_l1_err"] = l1(pr, ref)
            del G
            if not args.no_equal_accuracy and row["igraph_l1_err"] < row["hpc_l1_err"]:
                tol = args.tol
                while tol > 1e-15:
                    tol /= 10
                    r2 = s.solve(args.damping, tol, 10_000)
                    if l1(r2.x, ref) <= row["igraph_l1_err"]:
                        break
                eq_tol = tol
                t, r2 = best(lambda: s.solve(args.damping, tol, 10_000), args.repeat)
                row["eq_acc_tol"], row["eq_acc_iterations"] = tol, r2.iterations
                row["hpc_1rank_eq_acc_s"], row["hpc_eq_acc_l1_err"] = t, l1(r2.x, ref)
        if m <= args.networkx_max_edges:
            coo = A.tocoo()
            NG = nx.DiGraph()
            NG.add_nodes_from(range(n))
            NG.add_edges_from(zip(coo.row.tolist(), coo.col.tolist()))
            t, pr = best(lambda: nx.pagerank(NG, alpha=args.damping, tol=args.tol / n,
                                             max_iter=10_000), max(1, args.repeat - 2))
            row["networkx_s"] = t
            prv = np.array([pr[v] for v in range(n)])
            row["networkx_max_abs_diff"] = float(np.abs(prv - ours).max())
            row["networkx_l1_err"] = l1(prv, ref)
            del NG
        s.free()
        with tempfile.TemporaryDirectory() as d:
            cache = os.path.join(d, "g.h5")
            for p in ranks:
                rr = run_mpi(spec, p, args.tol, args.seed, args.repeat, args.layout, cache, mpi_env)
                row[f"hpc_{p}ranks_s"] = rr["time_s"]
                row[f"hpc_{p}ranks_app_setup_s"] = rr["setup_s"]        # the app's (first call)
                row[f"hpc_{p}ranks_iterations"] = rr["iterations"]
                w = run_worker(spec, p, args, cache, mpi_env)
                row[f"hpc_{p}ranks_setup_s"] = w["setup_s"]
                row[f"hpc_{p}ranks_setup_solve_s"] = w["setup_solve_s"]
                row[f"hpc_{p}ranks_first_setup_solve_s"] = w["first_setup_solve_s"]
                row[f"hpc_{p}ranks_setup_steps_s"] = w["steps"]
                if eq_tol is not None:
                    rr = run_mpi(spec, p, eq_tol, args.seed, args.repeat, args.layout, cache, mpi_env)
                    row[f"hpc_{p}ranks_eq_acc_s"] = rr["time_s"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    cols = ["graph", "vertices", "edges", "iterations", "hpc_1rank_s", "hpc_1rank_setup_solve_s"]
    for p in ranks:
        cols += [f"hpc_{p}ranks_s", f"hpc_{p}ranks_setup_solve_s"]
    cols += ["igraph_prpack_s", "scipy_s", "networkx_s", "hpc_Medges_per_s"]
    _table(rows, cols)
    cols = ["graph", "hpc_1rank_setup_s", "hpc_1rank_first_setup_solve_s"]
    for p in ranks:
        cols += [f"hpc_{p}ranks_setup_s", f"hpc_{p}ranks_first_setup_solve_s",
                 f"hpc_{p}ranks_app_setup_s"]
    cols += ["igraph_prpack_first_s"]
    _table(rows, cols)
    cols = ["graph", "hpc_l1_err", "igraph_l1_err", "networkx_l1_err", "networkx_max_abs_diff",
            "scipy_max_abs_diff", "eq_acc_tol", "eq_acc_iterations", "hpc_1rank_eq_acc_s"] + \
        [f"hpc_{p}ranks_eq_acc_s" for p in ranks] + ["igraph_prpack_s"]
    _table(rows, cols)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"tol": args.tol, "damping": args.damping, "mpi_env": mpi_env, "rows": rows},
                  f, indent=1)
    return 0


def _table(rows, cols) -> None:
    print("\n| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


if __name__ == "__main__":
    sys.exit(main())
