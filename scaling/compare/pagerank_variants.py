"""Cost of the PageRank variants against the plain run, side by side and alternating.

    python scaling/compare/pagerank_variants.py --graph kron:16:16 --repeat 7

One rank, one graph loaded once; each repeat solves, in turn, the plain PageRank (the native
1D fast path), the weighted one (weights in (0, 5], deterministic from the edge), the
personalized one (teleport to a random tenth of the vertices) and the weighted + personalized
+ dangling one, every solver made fresh and freed (setup not timed). Reported per variant:
median solve time, iterations, median time per iteration, and the ratio to the plain run's
time per iteration (the issue's target: within 1.2x); the load average around the runs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from mpi4py import MPI

from hpc.pagerank import graphio
from hpc.pagerank.api import teleport_of
from hpc.pagerank.solver import make_solver


def weighted_copy(g: graphio.Graph) -> graphio.Graph:
    src = np.repeat(np.arange(g.lo, g.hi, dtype=np.int64), g.outdeg)
    w = 0.5 + ((src * 31 + g.out_indices * 17) % 10) / 2.0
    return graphio.from_edges(g.comm, g.n, src, g.out_indices, g.ids, weights=w,
                              source=g.source + " weighted")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--graph", default="kron:16:16", help="kron:S:EF or a SNAP/.mtx path")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--tol", type=float, default=1e-10)
    p.add_argument("--backend", default="native")
    p.add_argument("--json")
    args = p.parse_args(argv)
    comm = MPI.COMM_WORLD
    g = (graphio.load_graph(comm, generate=args.graph, seed=1) if args.graph.startswith("kron:")
         else graphio.load_graph(comm, graph=args.graph))
    gw = weighted_copy(g)
    rng = np.random.default_rng(3)
    pers = {int(v): float(rng.random()) for v in rng.choice(g.n, g.n // 10, replace=False)}
    dang = {int(v): 1.0 for v in rng.choice(g.n, g.n // 7, replace=False)}
    cases = {"plain": (g, None), "weighted": (gw, None),
             "personalized": (g, teleport_of(g, pers)),
             "weighted+personalized+dangling": (gw, teleport_of(gw, pers, dang))}
    times: dict = {k: [] for k in cases}
    its: dict = {}
    load0 = os.getloadavg()[0]
    for _ in range(args.repeat):
        for name, (graph, tp) in cases.items():      # alternating: every variant each round
            s = make_solver(graph, args.backend, "1d", tp)
            comm.Barrier()
            t0 = time.perf_counter()
            r = s.solve(0.85, args.tol, 10_000)
            comm.Barrier()
            times[name].append(time.perf_counter() - t0)
            its[name] = r.iterations
            s.free()
    load1 = os.getloadavg()[0]
    rows = []
    base = float(np.median(times["plain"])) / its["plain"]
    for name in cases:
        t = float(np.median(times[name]))
        row = {"variant": name, "solve_s": t, "iterations": its[name],
               "per_iter_s": t / its[name], "per_iter_vs_plain": t / its[name] / base,
               "load_before": load0, "load_after": load1, "graph": args.graph, "n": g.n,
               "m": g.m, "ranks": comm.Get_size(), "repeat": args.repeat}
        rows.append(row)
        if comm.rank == 0:
            print(f"{name:32s} {t:.4g} s  {its[name]:4d} it  {t / its[name] * 1e3:.3f} ms/it  "
                  f"{row['per_iter_vs_plain']:.2f}x plain per iteration   "
                  f"load {load0:.1f}->{load1:.1f}", flush=True)
    if args.json and comm.rank == 0:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
