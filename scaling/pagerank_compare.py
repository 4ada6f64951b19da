"""Global PageRank time to an L1 change of --tol: hpc.pagerank against networkx, a SciPy power
iteration and igraph (PRPACK), side by side on the same graphs and machine.

    python scaling/pagerank_compare.py --graphs email,gnutella,kron:16:16 --ranks 2

Every solver gets the same deduplicated graph (self-loops kept, networkx DiGraph semantics).
Times are the best of --repeat calls of the solver alone (graph construction excluded; for
networkx the call includes its own conversion to a SciPy matrix, which is part of its API).
hpc.pagerank at more ranks runs under mpiexec (its record's solve time, slowest rank).
Edge throughput = edges / (solve time / iterations).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "graphs"
ALIASES = {"email": DATA / "email-Eu-core.txt", "gnutella": DATA / "p2p-Gnutella08.txt",
           "wiki-vote": DATA / "Wiki-Vote.txt"}
ENV = {"MPIR_CVAR_POLLS_BEFORE_YIELD": "1", "MPIR_CVAR_CH4_PROGRESS_THROTTLE": "true",
       "MPIR_CVAR_CH4_PROGRESS_THROTTLE_NO_PROGRESS_COUNT": "1", "OMP_NUM_THREADS": "1",
       "MPIEXEC_TIMEOUT": "900"}


def best(f, repeat: int):
    out, ts = None, []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        ts.append(time.perf_counter() - t0)
    return min(ts), out


def load(spec: str, seed: int):
    from mpi4py import MPI

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
            cache: str) -> dict:
    with tempfile.TemporaryDirectory() as d:
        js = os.path.join(d, "r.json")
        src = ["--generate", spec, "--seed", str(seed)] if spec.startswith("kron:") else \
            ["--graph", str(ALIASES.get(spec, spec))]
        cmd = [str(Path(sys.executable).parent / "mpiexec"), "-n", str(ranks), sys.executable,
               "-m", "hpc.pagerank", *src, "--cache", cache, "--tol", str(tol), "--layout", layout,
               "--repeat", str(repeat + 1), "--json", js, "--quiet"]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                           env={**os.environ, **ENV})
        if r.returncode != 0:
            raise RuntimeError(r.stderr[-2000:])
        with open(js) as f:
            rec = json.load(f)
    return {"time_s": rec["timings"]["solve"]["min"], "iterations": rec["metrics"]["iterations"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graphs", default="email,gnutella,kron:16:16")
    ap.add_argument("--tol", type=float, default=1e-10)
    ap.add_argument("--damping", type=float, default=0.85)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ranks", default="2", help="extra rank counts for hpc.pagerank (mpiexec)")
    ap.add_argument("--layout", default="1d")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--networkx-max-edges", type=int, default=5_000_000)
    ap.add_argument("--json", default=str(ROOT / "scaling" / "results" / "pagerank_compare.json"))
    args = ap.parse_args()

    import networkx as nx

    from hpc.core import backends
    from hpc.pagerank.solver import make_solver

    backends.set_threads(1)
    try:
        import igraph as ig
    except ImportError:
        ig = None
    rows = []
    for spec in args.graphs.split(","):
        g, A = load(spec, args.seed)
        n, m = A.shape[0], A.nnz
        row = {"graph": spec, "vertices": n, "edges": m}
        s = make_solver(g, "native", "1d")
        s.solve(args.damping, args.tol, 10_000)                        # warm-up
        t, res = best(lambda: s.solve(args.damping, args.tol, 10_000), args.repeat)
        row["hpc_1rank_s"], row["iterations"] = t, res.iterations
        row["hpc_Medges_per_s"] = m * res.iterations / t / 1e6
        ours = res.x
        t, (xs, its) = best(lambda: scipy_power(A, args.damping, args.tol), args.repeat)
        row["scipy_s"], row["scipy_iterations"] = t, its
        if ig is not None:
            coo = A.tocoo()
            G = ig.Graph(n=n, edges=np.column_stack([coo.row, coo.col]).tolist(), directed=True)
            t, pr = best(lambda: G.pagerank(damping=args.damping, implementation="prpack"),
                         args.repeat)
            row["igraph_prpack_s"] = t
            row["igraph_max_abs_diff"] = float(np.abs(np.array(pr) - ours).max())
        if m <= args.networkx_max_edges:
            coo = A.tocoo()
            NG = nx.DiGraph()
            NG.add_nodes_from(range(n))
            NG.add_edges_from(zip(coo.row.tolist(), coo.col.tolist()))
            t, pr = best(lambda: nx.pagerank(NG, alpha=args.damping, tol=args.tol / n,
                                             max_iter=10_000), max(1, args.repeat - 2))
            row["networkx_s"] = t
            row["networkx_max_abs_diff"] = float(np.abs(np.array([pr[v] for v in range(n)]) - ours).max())
        with tempfile.TemporaryDirectory() as d:
            cache = os.path.join(d, "g.h5")
            for p in [int(r) for r in args.ranks.split(",") if r]:
                rr = run_mpi(spec, p, args.tol, args.seed, args.repeat, args.layout, cache)
                row[f"hpc_{p}ranks_s"] = rr["time_s"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    cols = ["graph", "vertices", "edges", "iterations", "hpc_1rank_s"] + \
        [f"hpc_{p}ranks_s" for p in args.ranks.split(",") if p] + \
        ["igraph_prpack_s", "scipy_s", "networkx_s", "hpc_Medges_per_s"]
    print("\n| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"tol": args.tol, "damping": args.damping, "rows": rows}, f, indent=1)
    return 0


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


if __name__ == "__main__":
    sys.exit(main())
