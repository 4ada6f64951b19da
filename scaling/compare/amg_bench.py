"""AMG-preconditioned CG (hpc.cg --pc amg, hpc.amg) against pyamg's smoothed aggregation, with
CG, Jacobi-PCG and (structured problems) geometric MG-PCG in the same table.

Same right-hand side (ones), zero initial guess, relative tolerance ``--rtol`` for all. For
each solver: setup seconds (the preconditioner's, the whole hierarchy for AMG), solve seconds,
iterations. Every round runs every solver once, in an order rotated from round to round (so
no solver always follows the same one); the table gives medians over the rounds, the load
average before and after each problem, and the ratio of medians against pyamg.

pyamg (``smoothed_aggregation_solver(A)`` with its defaults, ``solve(b, accel='cg')``) runs in
a one-rank run only; targets there: hpc AMG iterations within 1.2x pyamg's and time to
solution (setup + solve) <= pyamg's. Under ``mpiexec -n 2`` the table gives the hpc solvers'
setup/solve times and iterations, and rank 0 also solves once alone (COMM_SELF) for the
one-rank AMG iteration count: the count must not grow more than 10% with the ranks.

    OMP_NUM_THREADS=1 python scaling/compare/amg_bench.py --matrices --rounds 5
    OMP_NUM_THREADS=1 mpiexec -n 2 python scaling/compare/amg_bench.py --matrices --rounds 3
    OMP_NUM_THREADS=1 mpiexec -n 2 python scaling/compare/amg_bench.py --only-amg --coloured
    OMP_NUM_THREADS=1 mpiexec -n 2 python scaling/compare/amg_bench.py --only-amg --global-order

The default order (amg-pcg, ``order='multicolour'``) aggregates in the global row order and
sweeps the large levels colour by colour of a colouring of the global graph, every rank at
once (the one-rank hierarchy, cycle and iteration count at any partition). ``--global-order``
adds ``order='global'`` (amg-glob: every sweep rank after rank in the global row order, the
one-rank count of that order too); ``--coloured`` adds ``order='coloured'`` (amg-col: ranks of
a rank colour at once, a partition-dependent order). At several ranks each AMG order's count
is compared with its own one-rank count.
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
SPD = ["bcsstk13.mtx", "1138_bus.mtx"]  # the symmetric positive definite ones there


def hpc_solver(A, b, method: str, pc: str, rtol: float, comm=None, pc_options=None):
    """(setup s, solve s, iterations, converged) of hpc.cg's Solver (collective)."""
    t0 = time.perf_counter()
    s = Solver(A, method=method, pc=pc, rtol=rtol, maxiter=20000, comm=comm,
               pc_options=pc_options)
    t1 = time.perf_counter()
    _, info = s.solve(b)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, info.iterations, bool(info.converged)


def pyamg_solver(Ag: sp.csr_matrix, b: np.ndarray, rtol: float):
    """(setup s, solve s, iterations, converged) of pyamg's smoothed aggregation + CG."""
    import pyamg

    t0 = time.perf_counter()
    ml = pyamg.smoothed_aggregation_solver(Ag)
    t1 = time.perf_counter()
    res: list = []
    ml.solve(b, tol=rtol, accel="cg", residuals=res, maxiter=20000)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, len(res) - 1, res[-1] <= rtol * res[0] * 1.0001


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--problems", nargs="*", default=["poisson3d:64", "hpcg:64"])
    p.add_argument("--matrices", action="store_true", help=f"also {', '.join(SPD)}")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rtol", type=float, default=1e-8)
    p.add_argument("--only-amg", action="store_true", help="AMG-PCG and pyamg only")
    p.add_argument("--coloured", action="store_true",
                   help="also AMG-PCG with order='coloured' (amg-col: ranks of a colour sweep "
                        "at once; the hierarchy depends on the partition)")
    p.add_argument("--global-order", action="store_true",
                   help="also AMG-PCG with order='global' (amg-glob: sweeps rank after rank in "
                        "the global row order, the previous default)")
    a = p.parse_args()
    comm = MPI.COMM_WORLD
    nproc = comm.Get_size()

    def read(m, c):
        return DistCSR.from_scipy(sp.csr_matrix(scipy.io.mmread(DATA / m)), c)

    cases = [(s, lambda c, s=s: make_problem(s, c)) for s in a.problems]
    if a.matrices:
        cases += [(m, lambda c, m=m: read(m, c)) for m in SPD]
    say = print if comm.Get_rank() == 0 else (lambda *x, **k: None)
    say(f"# {nproc} rank(s), {os.cpu_count()} cores, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, median of {a.rounds} rounds (order "
        f"rotated), rtol {a.rtol}, b = ones")
    say(f"{'problem':<14}{'solver':<12}{'setup_s':>9}{'solve_s':>9}{'total_s':>9}{'its':>7}"
        f"{'conv':>6}  load 1/5/15 min")
    for name, make in cases:
        A = make(comm)
        lo, hi = A.row_range
        b = np.ones(hi - lo)
        solvers = {"amg-pcg": ("pcg", "amg", None)}
        if a.coloured:
            solvers["amg-col"] = ("pcg", "amg", {"amg_order": "coloured"})
        if a.global_order:
            solvers["amg-glob"] = ("pcg", "amg", {"amg_order": "global"})
        if not a.only_amg:
            solvers.update({"cg": ("cg", "none", None), "jacobi-pcg": ("pcg", "jacobi", None)})
            if getattr(A, "grid", None) is not None:
                solvers["mg-pcg"] = ("pcg", "mg", None)
        runners = {k: (lambda m=m, pc=pc, o=o: hpc_solver(A, b, m, pc, a.rtol, pc_options=o))
                   for k, (m, pc, o) in solvers.items()}
        if nproc == 1:
            import importlib.util

            if importlib.util.find_spec("pyamg") is not None:
                Ag = A.to_scipy(root=None)
                runners["pyamg"] = lambda: pyamg_solver(Ag, np.ones(Ag.shape[0]), a.rtol)
            else:
                say("# pyamg not installed: no reference column")
        before = load()
        res: dict[str, list] = {k: [] for k in runners}
        keys = list(runners)
        for rnd in range(a.rounds):
            for k in keys[rnd % len(keys):] + keys[:rnd % len(keys)]:
                comm.Barrier()
                res[k].append(runners[k]())
        for k, runs in res.items():
            su = statistics.median(r[0] for r in runs)
            so = statistics.median(r[1] for r in runs)
            say(f"{name:<14}{k:<12}{su:>9.3f}{so:>9.3f}{su + so:>9.3f}{runs[-1][2]:>7}"
                f"{str(runs[-1][3]):>6}", flush=True)
        after = load()
        ref = res.get("pyamg")
        for k in (k for k in res if k.startswith("amg-") and ref):
            ours = res[k]
            t_o = statistics.median(r[0] + r[1] for r in ours)
            t_r = statistics.median(r[0] + r[1] for r in ref)
            su = statistics.median(r[0] for r in ours) / statistics.median(r[0] for r in ref)
            so = statistics.median(r[1] for r in ours) / statistics.median(r[1] for r in ref)
            say(f"{name:<14}{k}/pyamg: iterations {ours[-1][2] / max(ref[-1][2], 1):.2f}x, "
                f"setup {su:.2f}x, solve {so:.2f}x, time to solution {t_o / t_r:.2f}x  "
                f"load {before} -> {after}", flush=True)
        if nproc > 1:
            for k in (k for k in res if k.startswith("amg-")):
                one = None
                if comm.Get_rank() == 0:  # this order's one-rank count, rank 0 alone
                    A1 = make(MPI.COMM_SELF)
                    one = hpc_solver(A1, np.ones(A1.shape[0]), "pcg", "amg", a.rtol,
                                     comm=MPI.COMM_SELF, pc_options=solvers[k][2])[2]
                one = comm.bcast(one)
                its = res[k][-1][2]
                say(f"{name:<14}{k} iterations: {its} at {nproc} ranks, {one} at 1 rank "
                    f"({its / max(one, 1):.2f}x)  load {before} -> {after}", flush=True)
    say(f"# load after: {load()}")


if __name__ == "__main__":
    main()
