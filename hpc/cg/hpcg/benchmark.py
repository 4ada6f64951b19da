"""The HPCG benchmark's phases and its verdict, as HPCG 3.1 defines them.

1. Setup (timed): the problem and its 3 coarse levels; CheckProblem on every level.
2. Reference SpMV + MG timing (10 calls, 1 on the quick path ``rt == 0``).
3. Reference run: 50 iterations of CG with the reference kernels; its residual reduction
   ``normr / normr0`` is the target of the optimised run.
4. Optimisation phase (timed): the optimised kernels' data (level schedules).
5. Spectral test: CG on the matrix with its diagonal exaggerated (x 1e6, rows 0-8 by
   (row + 2) 1e6), unpreconditioned (at most 12 iterations allowed) and preconditioned (at most
   2), twice each, with the optimised kernels.
6. Symmetry tests: ``|x'Ay - y'Ax|`` and ``|x'M^{-1}y - y'M^{-1}x|`` over
   ``2 ||x||^2 ||A|| ||y||^2 eps`` must be at most 1 (random x, y).
7. Optimised run: iterations the optimised CG needs to reach the reference reduction (at most
   500); more than 50 is the convergence penalty (the rating is scaled by 50 / iterations).
8. Timed sets: as many CG sets of that many iterations as fill ``rt`` seconds (at least one).
9. Norm variance test: the variance of the sets' scaled residuals below 1e-6.
10. Rating: HPCG's official flop count over the timed sets' time plus a tenth of the setup
    and optimisation times per set, scaled by the penalty; VALID only if 5, 6, 7 and 9 pass.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from mpi4py import MPI

from hpc.core.memory import require_memory
from hpc.core.progress import Progress
from hpc.core.runtime import as_comm

from .geometry import make_geometry
from .problem import Problem, check_problem
from .solver import Kernels

REF_MAX_ITERS = 50
OPT_MAX_ITERS = 10 * REF_MAX_ITERS
SPECTRAL_TOL = 1.0e-12
SPECTRAL_MAX_ITERS = 50
EXPECTED_NO_PREC = 12
EXPECTED_PREC = 2
SPECTRAL_CALLS = 2
NORM_VARIANCE_MAX = 1.0e-6
A_NORM = 2 * 26.0          # HPCG's bound on ||A|| in the symmetry test
EPS = float(np.finfo(np.float64).eps)


@dataclass
class HPCGResult:
    """Everything an HPCG run measured and decided (see the module's phases)."""

    ranks: int
    local: tuple[int, int, int]
    process_grid: tuple[int, int, int]
    global_shape: tuple[int, int, int]
    threads: int
    setup_s: float
    optimisation_s: float
    ref_spmv_mg_s: float
    check_problem_errors: list[str]
    spectral: dict[str, Any]
    symmetry: dict[str, Any]
    reference_run: dict[str, Any]
    optimised_run: dict[str, Any]
    cg_sets: int
    set_residuals: list[float]
    norm_variance: dict[str, Any]
    times: dict[str, float]
    flops: dict[str, float]
    gflops: dict[str, float]
    valid: bool
    failures: list[str] = field(default_factory=list)
    x: np.ndarray | None = None             # this rank's rows of the last set's solution
    global_rows: np.ndarray | None = None   # HPCG's global row number of each of them

    @property
    def gflops_rating(self) -> float:
        """HPCG's rating: GFLOP/s with the convergence and optimisation-phase overheads."""
        return self.gflops["rating"]

    def metrics(self) -> dict[str, Any]:
        """The record's metrics (JSON-serialisable)."""
        return {
            "gflops_rating": self.gflops["rating"],
            "gflops_rating_2_4": self.gflops["rating_2_4"],
            "gflops_raw": self.gflops["raw_total"],
            "gflops_convergence": self.gflops["convergence"],
            "gflops_phases": {k: self.gflops[k] for k in ("ddot", "waxpby", "spmv", "mg")},
            "process_grid": list(self.process_grid),
            "global_grid": list(self.global_shape),
            "local_grid": list(self.local),
            "equations": int(np.prod(self.global_shape)),
            "cg_sets": self.cg_sets,
            "reference_iterations": REF_MAX_ITERS,
            "optimised_iterations": self.optimised_run["iterations_per_set"],
            "convergence_penalty": REF_MAX_ITERS / self.optimised_run["iterations_per_set"],
            "reference_scaled_residual": self.reference_run["scaled_residual"],
            "spectral": self.spectral,
            "symmetry": self.symmetry,
            "norm_variance": self.norm_variance,
            "setup_s": self.setup_s,
            "optimisation_s": self.optimisation_s,
            "spmv_halo_overlap": self.optimised_run.get("spmv_halo_overlap", False),
            "ref_spmv_mg_s": self.ref_spmv_mg_s,
            "phase_times_s": dict(self.times),
            "flops": dict(self.flops),
            "threads": self.threads,
        }

    def summary(self) -> str:
        """An HPCG-style summary of the run (the figures of HPCG's report)."""
        s, y, o = self.spectral, self.symmetry, self.optimised_run
        T, F, G = self.times, self.flops, self.gflops
        lines = [
            "HPCG (hpc.cg hpcg): the benchmark's phases and figures",
            f"  ranks {self.ranks} (process grid {'x'.join(map(str, self.process_grid))}), "
            f"threads {self.threads}, local {'x'.join(map(str, self.local))}, "
            f"global {'x'.join(map(str, self.global_shape))}",
            f"  setup {self.setup_s:.4g} s, optimisation phase {self.optimisation_s:.4g} s, "
            f"CheckProblem {'PASSED' if not self.check_problem_errors else 'FAILED'}",
            f"  spectral test {'PASSED' if s['passed'] else 'FAILED'}: unpreconditioned "
            f"{s['max_iters_no_prec']} iterations (allowed {EXPECTED_NO_PREC}), preconditioned "
            f"{s['max_iters_prec']} (allowed {EXPECTED_PREC})",
            f"  departure from symmetry {'PASSED' if y['passed'] else 'FAILED'}: SpMV "
            f"{y['spmv']:.4g}, MG {y['mg']:.4g} (allowed 1)",
            f"  reference run: {REF_MAX_ITERS} iterations, scaled residual "
            f"{self.reference_run['scaled_residual']:.6g}",
            f"  optimised run: {o['iterations']} iterations to that reduction "
            f"({'PASSED' if o['passed'] else 'FAILED'}), {o['iterations_per_set']} per set, "
            f"penalty {REF_MAX_ITERS / o['iterations_per_set']:.4g}",
            f"  {self.cg_sets} timed CG set(s); norm variance "
            f"{self.norm_variance['variance']:.3g} ({'PASSED' if self.norm_variance['passed'] else 'FAILED'})",
            f"  times (s): total {T['total']:.4g}, DDOT {T['ddot']:.4g}, WAXPBY {T['waxpby']:.4g}, "
            f"SpMV {T['spmv']:.4g}, MG {T['mg']:.4g}, allreduce {T['allreduce']:.4g}",
            f"  flops: total {F['total']:.6g}, with convergence overhead {F['with_convergence']:.6g}",
            f"  GFLOP/s: raw {G['raw_total']:.4g} (DDOT {G['ddot']:.3g}, WAXPBY {G['waxpby']:.3g}, "
            f"SpMV {G['spmv']:.3g}, MG {G['mg']:.3g})",
            f"HPCG result is {'VALID' if self.valid else 'INVALID'} with a GFLOP/s rating of "
            f"{G['rating']:.6g}",
        ]
        if self.failures:
            lines.append("  failed: " + "; ".join(self.failures))
        return "\n".join(lines)


def _reduce_max(comm, v: float) -> float:
    return float(comm.allreduce(float(v), op=MPI.MAX)) if comm.Get_size() > 1 else float(v)


def spectral_test(k: Kernels, problem: Problem) -> dict[str, Any]:
    """HPCG's TestCG: CG on the exaggerated-diagonal system, without and with MG."""
    fine = problem.fine
    grow = fine.global_rows()
    scale = np.where(grow < 9, (grow + 2) * 1.0e6, 1.0e6)
    diag = fine.A.diagonal()
    b = problem.b * scale
    fine.A.set_diagonal(diag * scale)
    out = {"max_iters_no_prec": 0, "max_iters_prec": 0, "count_fail": 0,
           "expected_no_prec": EXPECTED_NO_PREC, "expected_prec": EXPECTED_PREC}
    try:
        for prec, key, allowed in ((False, "max_iters_no_prec", EXPECTED_NO_PREC),
                                   (True, "max_iters_prec", EXPECTED_PREC)):
            for _ in range(SPECTRAL_CALLS):
                x = np.zeros(fine.nrow)
                res = k.cg(b, x, SPECTRAL_MAX_ITERS, SPECTRAL_TOL, precondition=prec)
                out[key] = max(out[key], res.iterations)
                out["count_fail"] += int(res.iterations > allowed)
    finally:
        fine.A.set_diagonal(diag)
    out["passed"] = out["count_fail"] == 0
    return out


def symmetry_test(k: Kernels, problem: Problem, seed: int) -> dict[str, Any]:
    """HPCG's TestSymmetry with random x, y in [1, 2): departures of SpMV and MG, and the
    largest |b - A xexact|."""
    fine = problem.fine
    n, m = fine.nrow, fine.ncol
    rng = np.random.default_rng([seed, problem.geom.rank, 7])
    x = rng.random(m) + 1.0
    y = rng.random(m) + 1.0
    z = np.zeros(m)
    xx = k.dot(x[:n], x[:n])
    yy = k.dot(y[:n], y[:n])
    denom = (xx * A_NORM * yy + yy * A_NORM * xx) * EPS
    k.spmv(fine, y, z[:n])
    xtAy = k.dot(x[:n], z[:n])
    k.spmv(fine, x, z[:n])
    ytAx = k.dot(y[:n], z[:n])
    dep_spmv = abs(xtAy - ytAx) / denom
    k.mg(fine, y[:n].copy(), z)
    xtMy = k.dot(x[:n], z[:n])
    k.mg(fine, x[:n].copy(), z)
    ytMx = k.dot(y[:n], z[:n])
    dep_mg = abs(xtMy - ytMx) / denom
    xe = np.zeros(m)
    xe[:n] = problem.xexact
    k.spmv(fine, xe, z[:n])
    resid = _reduce_max(k.comm, float(np.max(np.abs(problem.b - z[:n]))))
    fails = int(dep_spmv > 1.0) + int(dep_mg > 1.0)
    return {"spmv": float(dep_spmv), "mg": float(dep_mg), "count_fail": fails,
            "passed": fails == 0, "spmv_residual": resid}


def norm_test(values: list[float]) -> dict[str, Any]:
    """HPCG's TestNorms: mean and variance of the timed sets' scaled residuals."""
    v = np.asarray(values, dtype=np.float64)
    mean = float(v[0] + np.sum(v - v[0]) / v.size)
    var = float(np.sum((v - mean) ** 2) / v.size)
    return {"mean": mean, "variance": var, "passed": bool(var < NORM_VARIANCE_MAX),
            "samples": int(v.size)}


def flop_count(problem: Problem, sets: int, iters: int) -> dict[str, float]:
    """HPCG's official operation count of ``sets`` CG sets of ``iters`` iterations."""
    fsets = float(sets)
    fniters = fsets * iters
    nrow = float(problem.rows_global[0])
    nnz = [float(n) for n in problem.nnz_global]
    ddot = (3.0 * fniters + fsets) * 2.0 * nrow
    waxpby = (3.0 * fniters + fsets) * 2.0 * nrow
    spmv = (fniters + fsets) * 2.0 * nnz[0]
    mg = 0.0
    for lvl in nnz[:-1]:
        mg += fniters * 4.0 * lvl      # pre-smoother
        mg += fniters * 2.0 * lvl      # residual
        mg += fniters * 4.0 * lvl      # post-smoother
    mg += fniters * 4.0 * nnz[-1]      # one SYMGS on the coarsest level
    total = ddot + waxpby + spmv + mg
    return {"ddot": ddot, "waxpby": waxpby, "spmv": spmv, "mg": mg, "total": total,
            "with_convergence": total * REF_MAX_ITERS / iters}


def run_hpcg(nx: int, ny: int, nz: int, rt: float = 0.0, comm=None, *, threads: int = 1,
             seed: int = 0, post_smooth: bool = True, say=None, quiet: bool = True) -> HPCGResult:
    """Run the HPCG benchmark: every phase of HPCG 3.1 with the suite's optimised kernels.

    Parameters
    ----------
    nx, ny, nz : int
        Local grid per rank: multiples of 8, at least 16, smallest/largest at least 1/8.
    rt : float, default 0
        Seconds the timed CG sets should fill (HPCG's ``--rt``); 0 is HPCG's quick path (one
        set, one call of each repeated block).
    comm : mpi4py.MPI.Intracomm, optional
        The ranks (None: ``MPI.COMM_WORLD``); their number fixes the process grid
        (:func:`~hpc.cg.hpcg.geometry.process_grid`).
    threads : int, default 1
        OpenMP threads per rank in use (reported; set by the caller).
    seed : int, default 0
        Seeds the symmetry test's random vectors and CheckProblem's sampled rows.
    post_smooth : bool, default True
        Test hook: False drops MG's post-smoother (a non-symmetric preconditioner, which the
        symmetry test must catch: the result is INVALID).
    say : callable, optional
        Progress messages (rank 0 prints them).
    quiet : bool, default True
        Silence the progress lines of the timed sets.

    Returns
    -------
    HPCGResult
        The figures, the rating (``gflops_rating``) and the verdict (``valid``).

    Raises
    ------
    UsageError
        (ValueError) a local size that is not a multiple of 8, below 16 or too far from a
        cube, a rank count whose process grid HPCG would refuse, a negative ``rt``.
    """
    from hpc.core.checks import check_real

    comm = as_comm(comm)
    rt = check_real("rt", rt, 0, 1e7)
    say = say or (lambda *_: None)
    geom = make_geometry(comm, nx, ny, nz)
    # per fine row: the generator's int64/float64 slots and the stored int32/float64 ones
    # (27 each), the CG and MG vectors; the coarse levels add an eighth each
    require_memory(geom.nrow * (27 * (16 + 12) + 12 * 8) * 8 / 7, "HPCG's matrices and vectors",
                   comm)
    quick = rt == 0
    problem = Problem(geom, comm)
    say(f"setup {problem.setup_s:.3g} s: {geom.npx}x{geom.npy}x{geom.npz} ranks, "
        f"global {'x'.join(map(str, geom.global_shape))}")
    failures: list[str] = []
    errs = check_problem(problem, seed)
    nerr = int(comm.allreduce(len(errs))) if comm.Get_size() > 1 else len(errs)
    if nerr:
        failures.append("CheckProblem: " + (errs[0] if errs else "a rank's rows differ"))
    ref = Kernels(problem, optimised=False, post_smooth=post_smooth)
    opt = Kernels(problem, optimised=True, post_smooth=post_smooth)
    fine = problem.fine
    n = fine.nrow

    # SpMV + MG with the reference kernels (HPCG times them to scale the optimisation time)
    calls = 1 if quick else 10
    xo = np.random.default_rng([seed, geom.rank, 3]).random(fine.ncol)
    bc = np.zeros(fine.ncol)
    comm.Barrier()
    t = time.perf_counter()
    for _ in range(calls):
        ref.spmv(fine, xo, bc[:n])
        ref.mg(fine, bc[:n].copy(), xo)
    ref_spmv_mg = _reduce_max(comm, (time.perf_counter() - t) / calls)

    # the reference run: 50 iterations, tolerance 0
    x = np.zeros(n)
    rres = ref.cg(problem.b, x, REF_MAX_ITERS, 0.0)
    ref_tol = rres.scaled_residual
    say(f"reference run: {rres.iterations} iterations, scaled residual {ref_tol:.6g}")

    opt_s = opt.optimise()
    spectral = spectral_test(opt, problem)
    if not spectral["passed"]:
        failures.append("spectral test: iteration counts above HPCG's bounds")
    symmetry = symmetry_test(opt, problem, seed)
    if not symmetry["passed"]:
        failures.append(f"symmetry test: departure SpMV {symmetry['spmv']:.3g}, "
                        f"MG {symmetry['mg']:.3g} (at most 1)")

    # the optimised run: iterations to the reference reduction
    opt_iters = REF_MAX_ITERS
    x[:] = 0.0
    t_run = opt.times["total"]
    ores = opt.cg(problem.b, x, OPT_MAX_ITERS, ref_tol)
    worst = _reduce_max(comm, opt.times["total"] - t_run)
    tol_fail = ores.scaled_residual > ref_tol * (1.0 + 1.0e-6)
    if tol_fail:
        failures.append(f"optimised CG did not reach the reference reduction in {OPT_MAX_ITERS} "
                        "iterations")
    opt_iters = max(opt_iters, ores.iterations)
    say(f"optimised run: {ores.iterations} iterations to {ref_tol:.3g}")

    sets = int(rt / worst) + 1 if worst > 0 else 1
    # the timed sets: fresh timers
    opt.times = dict.fromkeys(opt.times, 0.0)
    residuals = []
    with Progress(total=sets, phase="hpcg timed sets", comm=comm, quiet=quiet, unit="set") as prog:
        for _ in range(sets):
            x[:] = 0.0
            res = opt.cg(problem.b, x, opt_iters, 0.0)
            residuals.append(res.scaled_residual)
            prog.update(scaled_residual=f"{res.scaled_residual:.3e}")
    norms = norm_test(residuals)
    if not norms["passed"]:
        failures.append(f"norm variance {norms['variance']:.3g} (below {NORM_VARIANCE_MAX})")
    times = {key: _reduce_max(comm, v) for key, v in opt.times.items()}
    flops = flop_count(problem, sets, opt_iters)
    total = times["total"]
    overhead = sets * (opt_s / 10.0 + problem.setup_s / 10.0)
    gflops = {
        "ddot": flops["ddot"] / times["ddot"] / 1e9 if times["ddot"] else 0.0,
        "waxpby": flops["waxpby"] / times["waxpby"] / 1e9 if times["waxpby"] else 0.0,
        "spmv": flops["spmv"] / times["spmv"] / 1e9 if times["spmv"] else 0.0,
        "mg": flops["mg"] / times["mg"] / 1e9 if times["mg"] else 0.0,
        "raw_total": flops["total"] / total / 1e9,
        "convergence": flops["with_convergence"] / total / 1e9,
        "rating": flops["with_convergence"] / (total + overhead) / 1e9,
        "rating_2_4": flops["with_convergence"] / (total + sets * opt_s / 10.0) / 1e9,
    }
    valid = bool(spectral["passed"] and symmetry["passed"] and norms["passed"]
                 and not tol_fail and not nerr)
    problem.free()
    return HPCGResult(
        ranks=geom.size, local=(nx, ny, nz), process_grid=(geom.npx, geom.npy, geom.npz),
        global_shape=geom.global_shape, threads=int(threads), setup_s=problem.setup_s,
        optimisation_s=opt_s, ref_spmv_mg_s=ref_spmv_mg, check_problem_errors=errs,
        spectral=spectral, symmetry=symmetry,
        reference_run={"iterations": rres.iterations, "scaled_residual": ref_tol,
                       "normr0": rres.normr0},
        optimised_run={"iterations": ores.iterations, "iterations_per_set": opt_iters,
                       "scaled_residual": ores.scaled_residual, "passed": not tol_fail,
                       "worst_time_s": worst, "spmv_halo_overlap": opt.spmv_overlap},
        cg_sets=sets, set_residuals=[float(v) for v in residuals], norm_variance=norms,
        times=times, flops=flops, gflops=gflops, valid=valid, failures=failures,
        x=x, global_rows=fine.global_rows())

