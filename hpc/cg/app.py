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

Subcommands: python -m hpc.cg train-dcdm --help (train DCDM's network).
"""
from __future__ import annotations

import math
import sys
from typing import Sequence

import numpy as np

from hpc.core import App, UsageError, make_parser, positive_float, positive_int, run
from hpc.core import backends as registry

from .methods import METHOD_HELP, METHODS, SUBCOMMANDS, Problem, SolveOptions, get_method, get_subcommand
from .precond import PCS, SUB_PCS, make_preconditioner

BACKENDS = ["native", "numba", "numpy", "scipy", "cupy", "petsc"]
PETSC_PCS = ("none", "jacobi", "bjacobi", "gamg")
NOTE = {"assembled": "structured problem with the assembled sparse operator (hpc.sparse.DistCSR, "
                     "ghost exchange by neighbourhood collective); --operator stencil is matrix-free",
        "stencil": "matrix-free stencil operator, ghost planes exchanged by hpc.halo.engine "
                   "(z-slab decomposition); preconditioners that factor use the assembled matrix"}


def parser():
    methods = "; ".join(f"{k}: {v}" for k, v in METHOD_HELP.items() if k in METHODS)
    p = make_parser("cg", __doc__, backends=BACKENDS, default_backend="native",
                    epilog=f"Methods: {methods}. Back ends: native (C++/OpenMP SpMV), numba, numpy, "
                           "scipy, cupy (GPU vectors and cuSPARSE), petsc (petsc4py KSP on the "
                           "same matrix: KSPCG / KSPPIPECG with PCJACOBI, PCBJACOBI, PCGAMG).")
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
    p.add_argument("--cheb-degree", type=positive_int, default=3,
                   help="chebyshev: polynomial degree (SpMVs per application)")
    p.add_argument("--mg-levels", type=positive_int, default=4, help="mg: grid levels (HPCG: 4)")
    p.add_argument("--rtol", type=positive_float, default=1e-8,
                   help="stop when ||r|| / ||b|| < rtol (relative residual, unitless)")
    p.add_argument("--maxiter", type=positive_int, default=10000, help="iteration limit")
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
    d.add_argument("--dcdm-keep", type=positive_int, default=2,
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
        from hpc.core.runtime import collective

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


def build_problem(args, comm, backend: str) -> Problem:
    from hpc.sparse.generators import make_problem
    from hpc.sparse.mmio import read_mm

    kern = backend if backend != "petsc" else "native"
    if kern == "native" and not registry.is_available("native"):
        kern = "scipy"
    if args.matrix:
        if args.operator == "stencil":
            raise UsageError("--operator stencil needs a structured --problem, not --matrix")
        A = read_mm(args.matrix, comm, backend=kern)
        if A.shape[0] != A.shape[1]:
            raise UsageError(f"--matrix {args.matrix}: CG needs a square matrix, got {A.shape[0]} x {A.shape[1]}")
        name = args.matrix
    else:
        spec = args.problem or "hpcg:16"
        name = spec
        if args.operator == "stencil":
            from hpc.sparse.generators import parse_problem

            from .stencil import StencilOperator

            kind, N = parse_problem(spec)
            A = StencilOperator(kind, N, comm, backend=kern)
        else:
            A = make_problem(spec, comm, backend=kern)
    if args.operator == "stencil" and args.matrix:
        raise UsageError("--operator stencil needs a structured --problem, not --matrix")
    if args.operator != "stencil":
        A.exchange = args.exchange
    b, exact = _rhs(args, A, comm)
    if backend == "cupy":
        import cupy

        b = cupy.asarray(b)
    return Problem(comm, A, b, None, A.grid, A.stencil, exact, name)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        return get_subcommand(argv[0])(argv[1:])
    args = parser().parse_args(argv)
    if args.pc is None:
        args.pc = "none" if args.method in ("cg", "dcdm") else "jacobi"
    backend = registry.require(args.backend, BACKENDS)
    if backend == "petsc":
        if args.method not in ("cg", "pcg", "pipecg"):
            raise UsageError(f"--backend petsc runs cg, pcg and pipecg, not {args.method}")
        if args.pc not in PETSC_PCS:
            raise UsageError(f"--backend petsc: --pc {args.pc} not offered (use {', '.join(PETSC_PCS)})")
    elif args.pc == "gamg":
        raise UsageError("--pc gamg is PETSc's algebraic multigrid: use it with --backend petsc")
    if args.method == "cg" and args.pc != "none":
        raise UsageError(f"--method cg takes no preconditioner (got --pc {args.pc}); use --method pcg")
    solver = None if backend == "petsc" else get_method(args.method)
    app = App("cg", args)
    comm = app.comm
    with app.timer.phase("setup"):
        problem = build_problem(args, comm, backend)
    A = problem.A
    app.say(f"hpc.cg: {problem.name}, n = {A.shape[0]}, nnz = {A.nnz}, method {args.method}, "
            f"pc {args.pc}, back end {backend}, {app.size} rank(s)")
    opts = SolveOptions(rtol=args.rtol, maxiter=args.maxiter, pc=args.pc, backend=backend, args=args,
                        pc_options={"sub_pc": args.sub_pc, "cheb_degree": args.cheb_degree,
                                    "mg_levels": args.mg_levels, "seed": args.seed})
    res = None
    if backend == "petsc":
        from .petsc_backend import PetscSolver

        with app.timer.phase("pc_setup"):
            ps = PetscSolver(problem, opts)
        for _ in range(args.repeat):
            with app.timer.phase("solve"):
                res = ps.solve()
        app.extra["petsc"] = ps.describe()
    else:
        if args.method != "dcdm":
            from hpc.core.runtime import collective

            with app.timer.phase("pc_setup"):
                with collective(comm):
                    opts.preconditioner = make_preconditioner(args.pc, problem, opts)
        for _ in range(args.repeat):
            with app.timer.phase("solve"):
                res = solver(problem, opts)
    return report(app, problem, res, args)


def report(app: App, problem: Problem, res, args) -> int:
    from mpi4py import MPI

    comm, A = app.comm, problem.A
    x = res.x
    r = problem.b - A.spmv(x)
    xp = np
    if args.backend == "cupy":
        import cupy as xp  # noqa: F811
    rr, bb = comm.allreduce(np.array([float(xp.dot(r, r)), float(xp.dot(problem.b, problem.b))]))
    true_rel = math.sqrt(rr) / math.sqrt(bb) if bb > 0 else math.sqrt(rr)
    converged = bool(res.converged) and true_rel <= args.rtol and res.breakdown is None
    t = app.timer.summary()
    solve_t = t.get("solve", {}).get("min", float("nan"))
    its = int(res.iterations)
    m = app.metrics
    m.update({"iterations": its, "final_relres": true_rel, "converged": converged,
              "recursive_relres": float(res.residuals[-1]) if res.residuals else float("nan"),
              "time_s": solve_t, "time_per_iteration_s": solve_t / its if its else None,
              "n": A.shape[0], "nnz": A.nnz,
              "matvecs": int(getattr(res, "matvecs", 0)),
              "reductions": int(getattr(res, "reductions", 0))})
    validation = {"true_relres": true_rel, "rtol": args.rtol, "iterations": its,
                  "converged": converged}
    if problem.exact is not None:
        e = comm.allreduce(float(np.abs(np.asarray(x.get() if hasattr(x, "get") else x)
                                        - problem.exact).max(initial=0.0)), op=MPI.MAX)
        m["error_vs_exact_inf"] = e
        validation["error_vs_exact_inf"] = e
    if res.breakdown:
        validation["breakdown"] = res.breakdown
    elif not converged:
        validation["failure"] = (f"not converged: true relative residual {true_rel:.3g} > rtol "
                                 f"{args.rtol:g} after {its} iterations")
    extra = getattr(res, "extra", None) or {}
    app.extra["solver"] = {"method": args.method, **{k: v for k, v in extra.items()
                                                     if isinstance(v, (str, int, float, bool, list, dict))}}
    if getattr(res, "replacements", 0):
        app.extra["solver"]["residual_replacements"] = int(res.replacements)
    app.extra["note"] = NOTE[args.operator] if problem.grid is not None else None
    if res.breakdown and app.rank == 0:
        print(f"cg: {res.breakdown}", file=sys.stderr, flush=True)
    app.say(f"iterations {its}, true relative residual {true_rel:.3e}, "
            f"{'converged' if converged else 'NOT converged'}, solve {solve_t:.4f} s"
            + (f" ({1e3 * solve_t / its:.3f} ms/iteration)" if its else ""))
    if args.output:
        from hpc.core import h5io

        xh = x.get() if hasattr(x, "get") else x
        h5io.write(args.output, comm, {"/x": h5io.Distributed(np.asarray(xh)),
                                       "/residuals": np.asarray(res.residuals, dtype=np.float64)},
                   attrs={"/": {"method": args.method, "pc": args.pc, "iterations": its,
                                "final_relres": true_rel, "converged": converged}})
    return app.finish(converged, validation)


if __name__ == "__main__":
    run(main)
