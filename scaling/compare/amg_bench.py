"""AMG-preconditioned CG (hpc.cg --pc amg, hpc.amg) against pyamg's smoothed aggregation, with
CG, Jacobi-PCG and (structured problems) geometric MG-PCG in the same table.

Same right-hand side (ones), zero initial guess, relative tolerance ``--rtol`` for all. For
each solver: setup seconds, solve seconds, iterations; rounds interleave the solvers, the
table gives medians. pyamg (``smoothed_aggregation_solver(A).solve(b, accel='cg')``) runs on
rank 0 of a one-rank run only; targets there: hpc AMG iterations within 1.2x pyamg's and time
to solution (setup + solve) <= pyamg's. Under ``mpiexec -n 2`` the table gives the hpc
solvers' setup/solve times and iterations (which must not grow more than 10% over one rank).

    python scaling/compare/amg_bench.py --problems poisson3d:64 hpcg:64 --matrices --rounds 3
    mpiexec -n 2 python scaling/compare/amg_bench.py --problems poisson3d:64 --rounds 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp
from mpi4py import MPI

from hpc.cg import Solver
from hpc.sparse import DistCSR
from hpc.sparse.generators import make_problem

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "matrices"
SPD = ["bcsstk13.mtx", "1138_bus.mtx"]


def hpc_solver(A, b, method, pc):
    t0 = time.perf_counter()
    s = Solver(A, method=method, pc=pc, rtol=RTOL[0], maxiter=20000)
    t1 = time.perf_counter()
    _, info = s.solve(b)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, info.iterations, bool(info.converged)


def pyamg_solver(Ag, b):
    import pyamg

    t0 = time.perf_counter()
    ml = pyamg.smoothed_aggregation_solver(Ag)
    t1 = time.perf_counter()
    res: list = []
    ml.solve(b, tol=RTOL[0], accel="cg", residuals=res, maxiter=20000)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, len(res) - 1, res[-1] <= RTOL[0] * res[0] * 1.0001


RTOL = [1e-8]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--problems", nargs="*", default=["poisson3d:64", "hpcg:64"])
    p.add_argument("--matrices", action="store_true", help=f"also {', '.join(SPD)}")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rtol", type=float, default=1e-8)
    a = p.parse_args()
    RTOL[0] = a.rtol
    comm = MPI.COMM_WORLD
    cases = [(s, lambda s=s: make_problem(s, comm)) for s in a.problems]
    if a.matrices:
        cases += [(m, lambda m=m: DistCSR.from_scipy(sp.csr_matrix(scipy.io.mmread(DATA / m)),
                                                      comm)) for m in SPD]
    say = print if comm.Get_rank() == 0 else (lambda *x, **k: None)
    say(f"# {comm.Get_size()} rank(s), {os.cpu_count()} cores, median of {a.rounds} "
        f"interleaved rounds, rtol {a.rtol}; load {os.getloadavg()}")
    say(f"{'problem':<16}{'solver':<12}{'setup_s':>9}{'solve_s':>9}{'total_s':>9}{'its':>7}"
        f"{'conv':>6}")
    for name, make in cases:
        A = make()
        lo, hi = A.row_range
        b = np.ones(hi - lo)
        solvers = {"cg": ("cg", "none"), "jacobi-pcg": ("pcg", "jacobi"),
                   "amg-pcg": ("pcg", "amg")}
        if getattr(A, "grid", None) is not None:
            solvers["mg-pcg"] = ("pcg", "mg")
        Ag = A.to_scipy(root=None) if comm.Get_size() == 1 else None
        res = {k: [] for k in list(solvers) + (["pyamg"] if Ag is not None else [])}
        for _ in range(a.rounds):
            for k, (m, pc) in solvers.items():
                comm.Barrier()
                res[k].append(hpc_solver(A, b, m, pc))
            if Ag is not None:
                try:
                    res["pyamg"].append(pyamg_solver(Ag, np.ones(Ag.shape[0])))
                except ImportError:
                    res.pop("pyamg")
                    Ag = None
        for k, runs in res.items():
            if not runs:
                continue
            su = statistics.median(r[0] for r in runs)
            so = statistics.median(r[1] for r in runs)
            say(f"{name:<16}{k:<12}{su:>9.3f}{so:>9.3f}{su + so:>9.3f}{runs[-1][2]:>7}"
                f"{str(runs[-1][3]):>6}", flush=True)
        if "pyamg" in res and res["pyamg"]:
            ours = res["amg-pcg"]
            ref = res["pyamg"]
            t_o = statistics.median(r[0] + r[1] for r in ours)
            t_r = statistics.median(r[0] + r[1] for r in ref)
            say(f"{name:<16}amg/pyamg: iterations {ours[-1][2] / max(ref[-1][2], 1):.2f}x, "
                f"time to solution {t_o / t_r:.2f}x", flush=True)
    say(f"# load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
