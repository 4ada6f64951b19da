"""hpc.cg: solve A x = b with distributed conjugate-gradient methods, side by side with PETSc.

The matrix is a Matrix Market file read in parallel (--matrix, SPD) or a generated structured
problem (--problem poisson2d:N | poisson3d:N | hpcg:N), row-block distributed (hpc.sparse).
Methods: cg, pcg (--pc), cg1 (Chronopoulos-Gear, one all-reduction per iteration), pipecg
(Ghysels-Vanroose, the all-reduction overlapped with PC + SpMV), dcdm (learned directions).
The solve stops when the recursive residual ||r|| < rtol ||b|| (SciPy's criterion) and is
confirmed with the true residual ||b - A x|| / ||b||, which the record reports: VALID only if
that is <= rtol. A breakdown (p.Ap <= 0: the matrix is not SPD) ends INVALID and says so.

Structured problems use the assembled sparse matrix (hpc.sparse.DistCSR) for A, or with
--operator stencil a matrix-free stencil whose ghost planes go through hpc.halo's engine.

Subcommands: python -m hpc.cg train-dcdm --help (train DCDM's network); python -m hpc.cg hpcg
--help (the HPCG benchmark).
"""
from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import Sequence

import numpy as np
from mpi4py import MPI

from hpc.core import App, UsageError, make_parser, positive_int, run
from hpc.core.checks import integer, real
from hpc.core.cli import Subcommand, dispatch, mark_output, subcommand_epilog
from hpc.core.runtime import collective
from hpc.sparse import read_matrix
from hpc.sparse.generators import make_problem, parse_problem

from .api import DCDMOptions, SolveInfo, Solver, check_options, kernel_backend
from .local import SUB_PCS
from .methods import BACKENDS, METHOD_HELP, METHODS
from .precond import PCS
from .stencil import StencilOperator

COMMANDS = (
    Subcommand("solve", "hpc.cg.app:solve_main",
               "solve A x = b (the default: python -m hpc.cg [options])"),
    Subcommand("train-dcdm", "hpc.cg.dcdm.train:main", "train DCDM's network (PyTorch, one rank)"),
    Subcommand("hpcg", "hpc.cg.hpcg.app:main",
               "the HPCG 3.1 benchmark: --nx --ny --nz per rank, --rt seconds (rating, VALID)"),
)
NOTE = {"assembled": "structured problem with the assembled sparse operator (hpc.sparse.DistCSR, "
                     "ghost exchange by neighbourhood collective); --operator stencil is matrix-free",
        "stencil": "matrix-free stencil operator, ghost planes exchanged by hpc.halo.engine "
                   "(z-slab decomposition); preconditioners that factor use the assembled matrix"}


def main(argv: Sequence[str] | None = None) -> int:
    """python -m hpc.cg [train-dcdm] ...: the solve unless the first argument names a verb."""
    return dispatch("python -m hpc.cg", COMMANDS, argv, default="solve")


def parser():
    methods = "; ".join(f"{k}: {v}" for k, v in METHOD_HELP.items() if k in METHODS)
    p = make_parser("cg", __doc__, backends=list(BACKENDS), default_backend="native",
                    epilog=f"Methods: {methods}. Back ends: native (C++/OpenMP SpMV), numba, numpy, "
                           "scipy, cupy (GPU vectors and cuSPARSE), petsc (petsc4py KSP on the "
                           "same matrix: KSPCG / KSPPIPECG with PCJACOBI, PCBJACOBI, PCGAMG).\n\n"
                           + subcommand_epilog(COMMANDS))
    src = p.add_mutually_exclusive_group()
    src.add_argument("--matrix", metavar="PATH.mtx", help="Matrix Market file (SPD, coordinate)")
    src.add_argument("--problem", metavar="KIND:N", default=None,
                     help="generated problem: poisson2d:N (N^2 rows), poisson3d:N or hpcg:N (N^3 rows) "
                          "[default: hpcg:16 when no --matrix]")
    p.add_argument("--rhs", default="auto", metavar="ones|random|unit-solution|PATH.npy",
                   help="right-hand side: all ones; uniform random in [0,1) from --seed; "
                        "b = A 1 so the exact solution is all ones (HPCG's); or a .npy vector. "
                        "auto: unit-solution for --problem, ones for --matrix")
    p.add_argument("--method", default="cg", choices=list(METHODS), help="solver")
    p.add_argument("--pc", default=None, choices=list(PCS) + ["gamg"],
                   help="preconditioner (gamg: PETSc only) [default: none for cg and dcdm, jacobi otherwise]")
    p.add_argument("--sub-pc", default="sgs", choices=SUB_PCS,
                   help="bjacobi's local solver: one symmetric Gauss-Seidel sweep, or IC(0)")
    p.add_argument("--cheb-degree", type=integer(1, 64), default=3,
                   help="chebyshev: polynomial degree (SpMVs per application)")
    p.add_argument("--mg-levels", type=integer(1, 20), default=4, help="mg: grid levels (HPCG: 4)")
    p.add_argument("--rtol", type=real(0, 1, lo_open=True), default=1e-8,
                   help="stop when ||r|| / ||b|| < rtol (relative residual, unitless)")
    p.add_argument("--maxiter", type=integer(1, 10**9), default=10000, help="iteration limit")
    p.add_argument("--monitor", type=positive_int, metavar="K", default=None,
                   help="every K iterations compute the true relative residual (one SpMV and "
                        "a reduction) and show it in a progress line on rank 0 (at most one a "
                        "second); the values go in the record's metrics.monitor")
    mark_output(p, p.add_argument("--plot", metavar="PATH", default=None,
                   help="draw the residual history (PNG, SVG or PDF; needs matplotlib)"))
    p.add_argument("--operator", default="assembled", choices=["assembled", "stencil"],
                   help="structured problems: the assembled sparse matrix, or a matrix-free "
                        "stencil whose ghost planes go through hpc.halo's engine")
    p.add_argument("--exchange", default="neighbor", choices=["neighbor", "p2p"],
                   help="ghost exchange: Ineighbor_alltoallv on a dist-graph comm, or Isend/Irecv")
    d = p.add_argument_group("dcdm (--method dcdm)")
    d.add_argument("--dcdm-model", metavar="PATH.h5", default=None,
                   help="trained network (HDF5 from train-dcdm) [default: the shipped "
                        "hpc/cg/dcdm/models/dcdm_poisson3d_n32.h5]")
    d.add_argument("--dcdm-backend", choices=["numpy", "numba", "cupy"], default=None,
                   help="kernels of the network [default: follows --backend]")
    d.add_argument("--dcdm-keep", type=integer(1, 64), default=2,
                   help="A-orthogonalise each direction against this many previous ones "
                        "(the paper: 2)")
    return p


def _rhs(args, A, comm) -> tuple[np.ndarray, np.ndarray | None]:
    """This rank's rows of b, and of the exact solution when known."""
    kind = args.rhs
    if kind == "auto":
        kind = "unit-solution" if args.matrix is None else "ones"
    n = A.local_rows
    if kind == "ones":
        return np.ones(n), None
    if kind == "unit-solution":
        b = A.spmv(A._xp().ones(A.local_cols) if hasattr(A, "_xp") else np.ones(A.local_cols))
        return (b.get() if hasattr(b, "get") else b), np.ones(n)
    if kind == "random":
        rng = np.random.default_rng(args.seed)
        lo, hi = A.row_range
        return rng.random(A.shape[0])[lo:hi].copy() if A.shape[0] < 2**24 else \
            np.random.default_rng([args.seed, comm.Get_rank()]).random(n), None
    if kind.endswith(".npy"):
        with collective(comm):
            try:
                v = np.load(kind, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise UsageError(f"--rhs {kind}: cannot read ({exc})") from None
            if v.ndim != 1 or v.shape[0] != A.shape[0]:
                raise UsageError(f"--rhs {kind}: expected a vector of length {A.shape[0]}, got shape {v.shape}")
        lo, hi = A.row_range
        return np.array(v[lo:hi], dtype=np.float64), None
    raise UsageError(f"--rhs {kind}: expected ones, random, unit-solution or a .npy file")


def build_matrix(args, comm, backend: str):
    """The operator (row-distributed) and its name: a Matrix Market file or a generated problem."""
    kern = kernel_backend(backend)
    if args.matrix:
        if args.operator == "stencil":
            raise UsageError("--operator stencil needs a structured --problem, not --matrix")
        A = read_matrix(args.matrix, comm, backend=kern)
        if A.shape[0] != A.shape[1]:
            raise UsageError(f"--matrix {args.matrix}: CG needs a square matrix, got {A.shape[0]} x {A.shape[1]}")
        name = args.matrix
    else:
        name = args.problem or "hpcg:16"
        if args.operator == "stencil":
            kind, N = parse_problem(name)
            A = StencilOperator(kind, N, comm, backend=kern)
        else:
            A = make_problem(name, comm, backend=kern)
    if args.operator != "stencil":
        A.exchange = args.exchange
    return A, name


def solve_main(argv: Sequence[str] | None = None) -> int:
    """The solve: parse, build the inputs, set up and call :class:`hpc.cg.Solver`, validate."""
    args = parser().parse_args(argv)
    args.pc = check_options(args.method, args.pc, args.backend)
    backend = args.backend
    app = App("cg", args)
    comm = app.comm
    with app.timer.phase("setup"):
        A, name = build_matrix(args, comm, backend)
        b, exact = _rhs(args, A, comm)
    app.say(f"hpc.cg: {name}, n = {A.shape[0]}, nnz = {A.nnz}, method {args.method}, "
            f"pc {args.pc}, back end {backend}, {app.size} rank(s)")
    dcdm = DCDMOptions(model=args.dcdm_model, keep=args.dcdm_keep, backend=args.dcdm_backend,
                       threads=args.threads or 1)
    # DCDM's network is set up inside each solve (its setup_s is in the record)
    with app.timer.phase("pc_setup") if args.method != "dcdm" else nullcontext():
        solver = Solver(A, method=args.method, pc=args.pc, rtol=args.rtol, maxiter=args.maxiter,
                        comm=comm, backend=backend, dcdm=dcdm,
                        pc_options={"sub_pc": args.sub_pc, "cheb_degree": args.cheb_degree,
                                    "mg_levels": args.mg_levels, "seed": args.seed})
    x = info = None
    for _ in range(args.repeat):
        mon = Monitor(app, A, b, args) if args.monitor and backend != "petsc" else None
        with app.timer.phase("solve"):
            x, info = solver.solve(b, callback=mon) if mon else solver.solve(b)
        if mon:
            mon.close()
            app.metrics["monitor"] = mon.history
    status = report(app, A, x, info, exact, args)
    if args.plot and app.rank == 0:
        from hpc.report import plot_history

        plot_history(app.last_record, args.plot)
    return status


class Monitor:
    """``--monitor K``: a solve callback that, every K iterations, computes the true relative
    residual ||b - A x|| / ||b|| (collective: every rank calls it at the same iteration) and
    shows it through :class:`hpc.core.progress.Progress` (rank 0, bounded rate)."""

    def __init__(self, app: App, A, b, args):
        self.A, self.b, self.k, self.comm = A, b, args.monitor, app.comm
        self.rtol = args.rtol
        self.bnorm = float(np.sqrt(self.comm.allreduce(float(b @ b)))) or 1.0
        self.it = 0
        self.history: list[list[float]] = []  # [iteration, true relative residual]
        self.prog = app.track(None, "cg", unit="it")

    def __call__(self, x) -> None:
        self.it += 1
        if self.it % self.k:
            return
        r = self.b - self.A.spmv(x)
        rel = float(np.sqrt(self.comm.allreduce(float(r @ r)))) / self.bnorm
        self.history.append([self.it, rel])
        # how far towards rtol, in orders of magnitude: the line's percentage and estimate
        frac = float(np.log(rel) / np.log(self.rtol)) if 0 < rel < 1 and self.rtol < 1 else None
        self.prog.set(self.it, fraction=frac, true_relres=f"{rel:.3e}")

    def close(self) -> None:
        self.prog.close()


def report(app: App, A, x, info: SolveInfo, exact, args) -> int:
    """Validate (the true residual, the exact solution when known) and write the record."""
    comm = app.comm
    true_rel, converged = info.true_relres, info.converged
    t = app.timer.summary()
    solve_t = t.get("solve", {}).get("min", float("nan"))
    its = info.iterations
    m = app.metrics
    m.update({"iterations": its, "final_relres": true_rel, "converged": converged,
              "recursive_relres": info.recursive_relres,
              "time_s": solve_t, "time_per_iteration_s": solve_t / its if its else None,
              "n": A.shape[0], "nnz": A.nnz, "matvecs": info.matvecs, "reductions": info.reductions,
              # the residual history (recursive ||r|| / ||b|| per iteration): report --plot
              "residuals": [float(v) for v in info.residuals]})
    validation = {"true_relres": true_rel, "rtol": args.rtol, "iterations": its,
                  "converged": converged}
    if exact is not None:
        e = comm.allreduce(float(np.abs(np.asarray(x.get() if hasattr(x, "get") else x)
                                        - exact).max(initial=0.0)), op=MPI.MAX)
        m["error_vs_exact_inf"] = e
        validation["error_vs_exact_inf"] = e
    if info.breakdown:
        validation["breakdown"] = info.breakdown
    elif not converged:
        validation["failure"] = (f"not converged: true relative residual {true_rel:.3g} > rtol "
                                 f"{args.rtol:g} after {its} iterations")
    details = dict(info.details)
    if "petsc" in details:
        app.extra["petsc"] = details.pop("petsc")
    app.extra["solver"] = {"method": args.method, **{k: v for k, v in details.items()
                                                     if isinstance(v, (str, int, float, bool, list, dict))}}
    if info.replacements:
        app.extra["solver"]["residual_replacements"] = info.replacements
    app.extra["note"] = NOTE[args.operator] if getattr(A, "grid", None) is not None else None
    if info.breakdown and app.rank == 0:
        print(f"cg: {info.breakdown}", file=sys.stderr, flush=True)
    app.say(f"iterations {its}, true relative residual {true_rel:.3e}, "
            f"{'converged' if converged else 'NOT converged'}, solve {solve_t:.4f} s"
            + (f" ({1e3 * solve_t / its:.3f} ms/iteration)" if its else ""))
    if args.output:
        from hpc.core import h5io

        xh = x.get() if hasattr(x, "get") else x
        h5io.write(args.output, comm, {"/x": h5io.Distributed(np.asarray(xh)),
                                       "/residuals": np.asarray(info.residuals, dtype=np.float64)},
                   attrs={"/": {"method": args.method, "pc": args.pc, "iterations": its,
                                "final_relres": true_rel, "converged": converged}})
    return app.finish(converged, validation)


if __name__ == "__main__":
    run(main)
