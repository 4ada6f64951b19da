"""The 2D layout's native block kernel against the native 1D solver, side by side, alternating.

    python scaling/compare/pagerank_2d.py --graph kron:17:16 --repeat 5

One process (run it under mpiexec for more ranks), one graph loaded once. Each repeat solves,
in turn: the native 1D solver (``Native1D``: SELL-4 sweep, fused update), the 2D layout with
the native SELL-4 block product (``Pull2D`` on the native back end) and, for the record, the
2D layout with the generic pattern-CSR kernel it had before (``_core.pagerank.Pull``, the
back end's ``local()``). Every solver is made fresh and freed (setup not timed). Reported:
median solve time per solver (slowest rank), iterations, the ratios of medians (2D / 1D,
generic 2D / native 2D) and the load average around the runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
from mpi4py import MPI

from hpc.pagerank import graphio
from hpc.pagerank.solver import Pull2D, make_solver


class Generic2D(Pull2D):
    """Pull2D with the block product the native back end used before (pattern CSR rows,
    ``_core.pagerank.Pull``) and the generic update: the baseline of the issue's figure."""

    def _init_native(self, A, weighted: bool) -> None:
        self.native = False
        self.loc = self.k.local(A, values=weighted)
        self._xc = np.empty(A.shape[1], dtype=np.float64)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--graph", default="kron:17:16", help="kron:S:EF or a SNAP/.mtx path")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--tol", type=float, default=1e-10)
    p.add_argument("--no-generic", action="store_true", help="skip the generic 2D baseline")
    p.add_argument("--json")
    args = p.parse_args(argv)
    comm = MPI.COMM_WORLD
    g = (graphio.load_graph(comm, generate=args.graph, seed=1) if args.graph.startswith("kron:")
         else graphio.load_graph(comm, graph=args.graph))
    makers = {"1d-native": lambda: make_solver(g, "native", "1d"),
              "2d-native": lambda: make_solver(g, "native", "2d")}
    if not args.no_generic:
        makers["2d-generic"] = lambda: Generic2D(g, "native")
    times: dict[str, list[float]] = {k: [] for k in makers}
    its: dict[str, int] = {}
    xs: dict[str, np.ndarray] = {}
    load0 = os.getloadavg()
    for _ in range(args.repeat):
        for name, make in makers.items():          # alternating: every solver each round
            s = make()
            comm.Barrier()
            t0 = time.perf_counter()
            res = s.solve(0.85, args.tol, 1000)
            dt = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
            s.free()
            times[name].append(dt)
            its[name] = res.iterations
            xs[name] = res.x
    load1 = os.getloadavg()
    med = {k: statistics.median(v) for k, v in times.items()}
    # the layouts agree (same iteration, same stopping rule)
    diff = max(comm.allreduce(float(np.abs(xs[k] - xs["1d-native"]).max()), op=MPI.MAX)
               for k in xs)
    out = {"graph": args.graph, "n": g.n, "edges": g.m, "ranks": comm.Get_size(),
           "omp_threads": os.environ.get("OMP_NUM_THREADS", "unset"), "repeat": args.repeat,
           "median_s": med, "iterations": its, "times_s": times,
           "ratio_2d_over_1d": med["2d-native"] / med["1d-native"],
           "max_abs_diff_vs_1d": diff, "load_before": load0, "load_after": load1}
    if "2d-generic" in med:
        out["ratio_generic_over_native_2d"] = med["2d-generic"] / med["2d-native"]
    if comm.Get_rank() == 0:
        print(json.dumps(out, indent=1))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
