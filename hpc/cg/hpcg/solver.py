"""HPCG's CG and multigrid V-cycle, with the reference kernels or the suite's optimised ones.

Both kernel sets compute HPCG's algorithm: preconditioned CG (the order of operations of
HPCG's CG), the V-cycle of :mod:`.problem`'s levels with one symmetric Gauss-Seidel pre- and
post-smoothing step, each preceded by a halo exchange of the current iterate (so the sweeps of
neighbouring ranks are coupled through their boundary values, as HPCG's SYMGS is), the
residual restricted by injection, the correction prolongated by injection, one SYMGS on the
coarsest level.

- ``reference``: HPCG's reference kernels: sequential SYMGS in row order, the full SpMV for the
  residual of the pre-smoothed iterate, separate vector operations.
- ``optimised``: the V-cycle runs in one native call (:class:`hpc._core.hpcg.VCycle`; only
  the halo exchanges come back to Python); the pre-smoother starts from x = 0, so its halo is zero (no exchange) and its
  forward sweep reads only the lower entries (and zeroes x row by row as it goes); every
  backward sweep reads only the upper entries, taking each row's lower sum from the forward
  sweep (no lower column changes in between); the residual is computed only at the coarse
  points (the rows restriction reads), fused with the restriction; CG's SpMV fused with p'Ap
  (one rank; several ranks: after the halo exchange, or with the exchange in flight while the
  interior rows are computed and p'Ap then a pass of its own, whichever the optimisation
  phase timed faster); the x and r updates fused with r'r; with more than one thread, SYMGS runs level-scheduled (rows
  of a level in parallel, levels in the sequential order: the same values as the sequential
  sweep, so the iteration count does not change).

Times accumulate per category in :attr:`Kernels.times` as HPCG reports them: ``total``,
``ddot`` (including its all-reduction), ``waxpby``, ``spmv``, ``mg``, ``allreduce``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from .problem import Level, Problem, _core

CATEGORIES = ("total", "ddot", "waxpby", "spmv", "mg", "allreduce")


@dataclass
class CGResult:
    """One CG call: iterations done, the final and initial residual norms."""

    iterations: int
    normr: float
    normr0: float

    @property
    def scaled_residual(self) -> float:
        """``normr / normr0``."""
        return self.normr / self.normr0 if self.normr0 else 0.0


class Kernels:
    """The kernels of one HPCG run on one :class:`Problem`.

    Parameters
    ----------
    problem : Problem
        The system and its levels.
    optimised : bool
        The suite's kernels (True) or HPCG's reference kernels (False).
    post_smooth : bool
        Test hook: False drops the post-smoother, which makes the V-cycle non-symmetric
        (the symmetry test must then fail).
    """

    def __init__(self, problem: Problem, optimised: bool = True, post_smooth: bool = True):
        self.problem = problem
        self.comm = problem.comm
        self.optimised = optimised
        self.post_smooth = post_smooth
        self.h = _core()
        self.times = dict.fromkeys(CATEGORIES, 0.0)
        n, m = problem.fine.nrow, problem.fine.ncol
        self.r = np.zeros(n)
        self.z = np.zeros(m)
        self.p = np.zeros(m)
        self.Ap = np.zeros(n)
        self._red = np.zeros(1)
        self._red_out = np.zeros(1)
        self._red2 = np.zeros(2)
        self._red2_out = np.zeros(2)
        self.parallel = self.comm.Get_size() > 1
        # several ranks: CG's SpMV with the halo in flight while the interior rows are
        # computed (then p'Ap in a pass of its own), or the halo first and p'Ap fused into
        # the product; optimise() times both on this problem and keeps the faster
        self.spmv_overlap = True
        self._vcycle = None   # hpc._core.hpcg.VCycle over the levels, made on first use

    # -- reductions and vectors ------------------------------------------------------------
    def allreduce(self, v: float) -> float:
        if not self.parallel:
            return v
        t = time.perf_counter()
        self._red[0] = v
        self.comm.Allreduce(self._red, self._red_out, op=MPI.SUM)
        self.times["allreduce"] += time.perf_counter() - t
        return float(self._red_out[0])

    def allreduce2(self, u: float, v: float) -> tuple[float, float]:
        """Two sums in one all-reduction (element-wise: the same values as two)."""
        if not self.parallel:
            return u, v
        t = time.perf_counter()
        self._red2[0], self._red2[1] = u, v
        self.comm.Allreduce(self._red2, self._red2_out, op=MPI.SUM)
        self.times["allreduce"] += time.perf_counter() - t
        return float(self._red2_out[0]), float(self._red2_out[1])

    def dot(self, a: np.ndarray, b: np.ndarray) -> float:
        t = time.perf_counter()
        v = self.allreduce(self.h.dot(a, b))
        self.times["ddot"] += time.perf_counter() - t
        return v

    # -- SpMV ------------------------------------------------------------------------------
    def spmv(self, lv: Level, x: np.ndarray, y: np.ndarray) -> None:
        """y = A x (x with ghosts; the halo is exchanged first)."""
        lv.halo(x)
        lv.A.spmv(x, y)

    # -- multigrid -------------------------------------------------------------------------
    def mg(self, lv: Level, r: np.ndarray, x: np.ndarray) -> None:
        """x = M^{-1} r on level ``lv`` (x with ghosts; zeroed first)."""
        if self.optimised and lv is self.problem.fine:
            # the whole cycle in one native call; only the halo exchanges come back here
            if self._vcycle is None:
                lvs = self.problem.levels
                self._vcycle = self.h.VCycle([v.A for v in lvs], [v.f2c for v in lvs[:-1]],
                                             [v.x for v in lvs[1:]], [v.rc for v in lvs[:-1]])
            self._vcycle.run(r, x, self._halo if self.parallel else None, self.post_smooth)
        elif self.optimised:
            self._mg_opt(lv, r, x)
        else:
            self._mg_ref(lv, r, x)

    def _halo(self, level: int, x: np.ndarray) -> None:
        self.problem.levels[level].halo(x)

    def _mg_ref(self, lv: Level, r: np.ndarray, x: np.ndarray) -> None:
        x[:] = 0.0
        A = lv.A
        lv.halo(x)
        A.symgs_ref(r, x)
        if lv.coarse is None:
            return
        self.spmv(lv, x, lv.Axf[:lv.nrow])
        self.h.restrict_ref(r, lv.Axf, lv.f2c, lv.rc)
        self._mg_ref(lv.coarse, lv.rc, lv.coarse.x)
        self.h.prolong(x, lv.coarse.x, lv.f2c)
        if self.post_smooth:
            lv.halo(x)
            A.symgs_ref(r, x)

    def _mg_opt(self, lv: Level, r: np.ndarray, x: np.ndarray) -> None:
        x[:] = 0.0
        A = lv.A
        A.symgs(r, x, True)          # from zero: its halo is zero, nothing to exchange
        if lv.coarse is None:
            return
        lv.halo(x)
        A.residual_restrict(r, x, lv.f2c, lv.rc)
        self._mg_opt(lv.coarse, lv.rc, lv.coarse.x)
        self.h.prolong(x, lv.coarse.x, lv.f2c)
        if self.post_smooth:
            lv.halo(x)
            A.symgs(r, x, False)

    def symgs(self, lv: Level, r: np.ndarray, x: np.ndarray) -> None:
        """One SYMGS step from the given x (halo exchanged first), with this kernel set."""
        lv.halo(x)
        if self.optimised:
            lv.A.symgs(r, x, False)
        else:
            lv.A.symgs_ref(r, x)

    # -- CG --------------------------------------------------------------------------------
    def cg(self, b: np.ndarray, x: np.ndarray, max_iter: int, tolerance: float,
           precondition: bool = True, history: list[float] | None = None) -> CGResult:
        """HPCG's preconditioned CG from x (length nrow), at most ``max_iter`` iterations,
        while ``normr / normr0 > tolerance``; ``history`` gets ``normr / normr0`` of every
        iteration.

        With the optimised kernels on several ranks and ``tolerance == 0`` (HPCG's timed
        sets: a fixed number of iterations, stopping early only at an exactly zero residual)
        r'r is reduced together with the next r'z, one all-reduction per iteration fewer;
        an iteration begun on a residual that turns out to be exactly zero is discarded
        before it changes x, so the results are those of the separate reductions."""
        T = self.times
        t_begin = time.perf_counter()
        lv = self.problem.fine
        h, n = self.h, lv.nrow
        r, z, p, Ap = self.r, self.z, self.p, self.Ap
        tick = time.perf_counter
        p[:n] = x
        t = tick(); self.spmv(lv, p, Ap); T["spmv"] += tick() - t
        t = tick(); h.waxpby(1.0, b, -1.0, Ap, r); T["waxpby"] += tick() - t
        normr = math.sqrt(self.dot(r, r))
        normr0 = normr
        rtz = 0.0
        k = 0
        opt = self.optimised
        fuse = opt and self.parallel and tolerance == 0.0 and history is None
        rr_local = None          # r'r of the last update, not yet reduced (fuse)
        while k < max_iter and normr / normr0 > tolerance:
            t = tick()
            if precondition:
                self.mg(lv, r, z)
            else:
                h.waxpby(1.0, r, 0.0, r, z[:n])
            T["mg"] += tick() - t
            oldrtz = rtz
            t = tick()
            if rr_local is not None:
                rtz, rr = self.allreduce2(h.dot(r, z[:n]), rr_local)
                T["ddot"] += tick() - t
                rr_local = None
                normr = math.sqrt(rr)
                if not normr / normr0 > tolerance:
                    break        # r = 0 exactly: HPCG stops before this iteration
            else:
                rtz = self.dot(r, z[:n])
                T["ddot"] += tick() - t
            k += 1
            if k == 1:
                t = tick(); p[:n] = z[:n]; T["waxpby"] += tick() - t
            else:
                beta = rtz / oldrtz
                t = tick(); h.waxpby(1.0, z, beta, p, p[:n]); T["waxpby"] += tick() - t
            t = tick()
            if opt and lv.plan is not None and self.spmv_overlap:
                self._spmv_overlapped(lv, p, Ap)
                T["spmv"] += tick() - t
                t = tick(); pAp = self.allreduce(h.dot(p[:n], Ap)); T["ddot"] += tick() - t
            elif opt:
                if lv.plan is not None:
                    lv.halo(p)
                pAp_local = lv.A.spmv_dot(p, Ap)
                T["spmv"] += tick() - t
                t = tick(); pAp = self.allreduce(pAp_local); T["ddot"] += tick() - t
            else:
                self.spmv(lv, p, Ap)
                T["spmv"] += tick() - t
                pAp = self.dot(p[:n], Ap)
            alpha = rtz / pAp
            t = tick()
            if opt:
                rr_l = h.cg_update(x, r, p, Ap, alpha)
                T["waxpby"] += tick() - t
                if fuse and k < max_iter:
                    rr_local = rr_l      # reduced with the next r'z
                    continue
                t = tick(); rr = self.allreduce(rr_l); T["ddot"] += tick() - t
            else:
                h.waxpby(1.0, x, alpha, p, x)
                h.waxpby(1.0, r, -alpha, Ap, r)
                T["waxpby"] += tick() - t
                rr = self.dot(r, r)
            normr = math.sqrt(rr)
            if history is not None:
                history.append(normr / normr0)
        T["total"] += time.perf_counter() - t_begin
        return CGResult(k, normr, normr0)

    def _spmv_overlapped(self, lv: Level, p: np.ndarray, Ap: np.ndarray) -> None:
        """Ap = A p with the halo in flight while the interior rows are computed."""
        n = lv.nrow
        lv.plan.start(p[:n])
        lv.A.spmv_rows(p, Ap, lv.interior)
        lv.plan.wait(out=p[n:])
        lv.A.spmv_rows(p, Ap, lv.boundary)

    def _overlap_pays(self, rounds: int = 3) -> bool:
        """Whether CG's SpMV and p'Ap take less time with the halo exchange overlapped
        (interior rows, boundary rows, then the dot pass) than with the exchange first and
        the dot fused into the product (no pass of its own), timed alternately on this
        problem; the slowest rank's best times decide, so every rank chooses alike."""
        lv, h, n = self.problem.fine, self.h, self.problem.fine.nrow
        p, Ap = self.p, self.Ap
        best = np.full(2, np.inf)
        for _ in range(rounds):
            for k in (0, 1):
                self.comm.Barrier()
                t = time.perf_counter()
                if k == 0:
                    self._spmv_overlapped(lv, p, Ap)
                    h.dot(p[:n], Ap)
                else:
                    lv.halo(p)
                    lv.A.spmv_dot(p, Ap)
                best[k] = min(best[k], time.perf_counter() - t)
        worst = np.empty(2)
        self.comm.Allreduce(best, worst, op=MPI.MAX)
        return bool(worst[0] < worst[1])

    def optimise(self) -> float:
        """The optimisation phase (HPCG's OptimizeProblem): the level schedules of SYMGS
        and, on several ranks, the choice of CG's SpMV (overlapped exchange or fused p'Ap).
        Returns its time (slowest rank)."""
        t = time.perf_counter()
        if self.optimised:
            for lv in self.problem.levels:
                lv.levels_scheduled = lv.A.build_levels()
            if self.parallel and self.problem.fine.plan is not None:
                self.spmv_overlap = self._overlap_pays()
        dt = time.perf_counter() - t
        return float(self.comm.allreduce(dt, op=MPI.MAX)) if self.parallel else dt

