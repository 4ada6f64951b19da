"""python -m hpc.cg hpcg: the HPCG 3.1 benchmark, written from its specification.

Each rank holds an NX x NY x NZ box of the global grid (multiples of 8, at least 16); the
ranks form HPCG's process grid. The 27-point system (26 on the diagonal, -1 elsewhere, exact
solution all ones) is solved by CG preconditioned with a 4-level multigrid V-cycle (one
symmetric Gauss-Seidel pre- and post-smoothing step, coupled across ranks by a halo exchange
of all 26 neighbours). The run goes through HPCG's phases: setup and CheckProblem, the
spectral and symmetry tests, the reference run (50 iterations with the reference kernels),
the optimised run (iterations the suite's kernels need for the same reduction; more than 50
is the convergence penalty), as many timed CG sets as fill --rt seconds, the norm variance
test, the official flop count and the GFLOP/s rating. VALID only where HPCG would say VALID.

--output PATH (HDF5): /x (the last timed set's solution, every rank's rows in rank order),
/global_rows (HPCG's global row number of each, int64), /scaled_residuals (one per timed set).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hpc.core import App, make_parser, run
from hpc.core.checks import integer, real

from .benchmark import run_hpcg


def parser():
    p = make_parser("cg hpcg", __doc__)
    p.add_argument("--nx", type=integer(16, 4096), default=16,
                   help="local grid points along x per rank (a multiple of 8, at least 16)")
    p.add_argument("--ny", type=integer(16, 4096), default=16, help="local points along y per rank")
    p.add_argument("--nz", type=integer(16, 4096), default=16, help="local points along z per rank")
    p.add_argument("--rt", type=real(0, 1e7), default=0.0,
                   help="seconds the timed CG sets should fill (0: HPCG's quick path, one set)")
    p.add_argument("--test-nonsymmetric-mg", action="store_true",
                   help="test hook: drop MG's post-smoother so the preconditioner is not "
                        "symmetric (the symmetry test must fail: INVALID)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run every phase, print HPCG's summary, write the record."""
    args = parser().parse_args(argv)
    app = App("cg", args, backend="native")
    res = run_hpcg(args.nx, args.ny, args.nz, args.rt, app.comm, threads=app.threads,
                   seed=args.seed, post_smooth=not args.test_nonsymmetric_mg,
                   say=app.progress, quiet=app.quiet)
    app.metrics.update(res.metrics())
    app.extra["benchmark"] = "hpcg"
    for name in ("total", "ddot", "waxpby", "spmv", "mg", "allreduce"):
        v = res.times[name]
        app.timer.add(f"hpcg_{name}", v)
    app.say(res.summary())
    validation = {"spectral_test": res.spectral["passed"], "symmetry_test": res.symmetry["passed"],
                  "residual_reduction": res.optimised_run["passed"],
                  "norm_variance_test": res.norm_variance["passed"],
                  "check_problem": not res.check_problem_errors,
                  "gflops_rating": res.gflops_rating}
    if res.failures:
        validation["failures"] = res.failures
    if args.output:
        from hpc.core import h5io

        h5io.write(args.output, app.comm,
                   {"/x": h5io.Distributed(res.x), "/global_rows": h5io.Distributed(res.global_rows),
                    "/scaled_residuals": np.asarray(res.set_residuals, dtype=np.float64)},
                   attrs={"/": {"valid": res.valid, "gflops_rating": res.gflops_rating}})
    return app.finish(res.valid, validation)


if __name__ == "__main__":
    run(main)
