"""The Galerkin product ``hpc.spgemm.ptap(A, P)`` against SciPy's ``P.T @ (A @ P)`` on the
operators and prolongators of an AMG hierarchy (hpc.amg's smoothed aggregation), one rank.

The hierarchy is built once; then every round times, for each level, both products in turn
(the order swapped from round to round). The table gives the medians, their ratio (SciPy /
hpc: > 1 means hpc is faster) and the load average before and after; the two results are
checked equal (to rounding) once.

    OMP_NUM_THREADS=1 python scaling/compare/ptap_bench.py --problems hpcg:64 --rounds 5
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from mpi4py import MPI

from hpc.amg import SmoothedAggregation
from hpc.sparse.generators import make_problem
from hpc.spgemm import ptap


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--problems", nargs="*", default=["hpcg:64", "poisson3d:64"])
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    comm = MPI.COMM_SELF
    print(f"# 1 rank, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, median of "
          f"{a.rounds} rounds (order alternated)")
    print(f"{'problem':<14}{'level':>6}{'n':>9}{'nnz(A)':>10}{'hpc_s':>9}{'scipy_s':>9}"
          f"{'scipy/hpc':>10}  load 1/5/15 min")
    for name in a.problems:
        A = make_problem(name, comm)
        levels = SmoothedAggregation(A).levels
        for k, lvl in enumerate(levels[:-1]):
            Ad, Pd = lvl.A, lvl.P
            As, Ps = Ad.to_scipy(root=None), Pd.to_scipy(root=None)
            ref = (Ps.T @ (As @ Ps)).tocsr()
            got = ptap(Ad, Pd).to_scipy(root=None)
            err = abs(got - ref).max() if ref.nnz else 0.0
            if err > 1e-9 * max(abs(ref).max(), 1.0):
                raise SystemExit(f"{name} level {k}: ptap differs from SciPy by {err}")
            before = load()
            runs: dict[str, list[float]] = {"hpc": [], "scipy": []}
            fns = {"hpc": lambda: ptap(Ad, Pd), "scipy": lambda: (Ps.T @ (As @ Ps)).tocsr()}
            for rnd in range(a.rounds):
                for key in (("hpc", "scipy") if rnd % 2 == 0 else ("scipy", "hpc")):
                    t0 = time.perf_counter()
                    fns[key]()
                    runs[key].append(time.perf_counter() - t0)
            h, s = statistics.median(runs["hpc"]), statistics.median(runs["scipy"])
            print(f"{name:<14}{k:>6}{As.shape[0]:>9}{As.nnz:>10}{h:>9.3f}{s:>9.3f}{s / h:>10.2f}"
                  f"  {before} -> {load()}", flush=True)


if __name__ == "__main__":
    main()
