"""Conjugate-gradient solvers on row-distributed vectors: PCG, Chronopoulos-Gear, pipelined.

All three stop on the recursive residual, ||r_k|| < max(rtol ||b||, atol) (SciPy's cg
criterion, so with the same preconditioner the iterates and iteration counts match
scipy.sparse.linalg.cg), then
confirm with the true residual ||b - A x||: if rounding made the recursive residual lie, the
residual is replaced by the true one and the iteration continues (at most MAX_REPLACEMENTS
times), so a reported convergence is always a true one.

A curvature p.Ap <= 0 (or r.z <= 0 with the preconditioner) means the matrix or the
preconditioner is not SPD: the solve stops with ``breakdown`` set and ``converged`` False.

Reductions: PCG fuses ||r||^2 with r.z (two all-reductions per iteration: that and p.Ap);
Chronopoulos-Gear needs one (r.u, w.u and r.r together); Ghysels-Vanroose issues the same one
as a non-blocking Iallreduce and applies the preconditioner and the SpMV while it is in flight.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from mpi4py import MPI

from hpc.core.errors import UsageError
from hpc.sparse import DistCSR

from .methods import Problem, SolveOptions, SolveResult
from .precond import Identity, Jacobi, make_preconditioner

MAX_REPLACEMENTS = 5


class Reducer:
    """Global sums of a few scalars: blocking (Allreduce) or non-blocking (Iallreduce)."""

    def __init__(self, comm):
        self.comm, self.MPI = comm, MPI
        self.count = 0
        self.serial = comm.Get_size() == 1

    def sum(self, *vals: float) -> np.ndarray:
        self.count += 1
        loc = np.array([float(v) for v in vals], dtype=np.float64)
        if self.serial:
            return loc
        out = np.empty_like(loc)
        self.comm.Allreduce(loc, out, op=self.MPI.SUM)
        return out

    def isum(self, *vals: float):
        """Start a global sum; returns (request, result buffer). Call .Wait() before reading."""
        self.count += 1
        loc = np.array([float(v) for v in vals], dtype=np.float64)
        if self.serial:
            return None, loc
        out = np.empty_like(loc)
        req = self.comm.Iallreduce(loc, out, op=self.MPI.SUM)
        self._keep = loc   # the send buffer must live until the request completes
        return req, out


def _dot(a, b) -> float:
    return float(a @ b)


def _native_vec():
    try:
        from hpc import _core

        return _core.sparse
    except ImportError:
        return None


_NV = _native_vec()


def _axpy(a: float, x, y) -> None:
    """y += a x in place (native loop: no temporary, honours --threads)."""
    if _NV is not None and isinstance(y, np.ndarray):
        _NV.axpy(a, x, y)
    else:
        y += a * x


def _aypx(a: float, x, y) -> None:
    """y = x + a y in place."""
    if _NV is not None and isinstance(y, np.ndarray):
        _NV.aypx(a, x, y)
    else:
        y *= a
        y += x


class _Solve:
    """Shared setup: the operator, preconditioner, norms and the true-residual check."""

    def __init__(self, problem: Problem, opts: SolveOptions):
        self.p, self.o = problem, opts
        self.A = problem.A
        self.red = Reducer(problem.comm)
        self.M = (opts.preconditioner if opts.preconditioner is not None
                  else make_preconditioner(opts.pc, problem, opts))
        self.matvecs = 0
        b = problem.b
        self.x = b * 0.0 if problem.x0 is None else problem.x0.copy()
        self.bnorm = math.sqrt(self.red.sum(_dot(b, b))[0])
        self.tol = max(opts.rtol * self.bnorm, opts.atol)

    def spmv(self, v, out=None):
        self.matvecs += 1
        return self.A.spmv(v, out=out)

    def initial_residual(self):
        if self.p.x0 is None:
            return self.p.b.copy()
        return self.p.b - self.spmv(self.x)

    def true_residual(self):
        return self.p.b - self.spmv(self.x)

    def result(self, it: int, hist: list[float], converged: bool, breakdown: str | None,
               repl: int) -> SolveResult:
        return SolveResult(self.x, converged, it, hist, breakdown, self.matvecs, self.red.count,
                           repl, {"pc": self.M.describe()})


def _trivial(s: _Solve) -> SolveResult | None:
    if s.bnorm == 0.0:   # b = 0: x = 0 is exact
        s.x = s.p.b * 0.0
        return s.result(0, [0.0], True, None, 0)
    return None


def _not_spd(what: str, val: float, it: int) -> str:
    return (f"breakdown at iteration {it}: {what} = {val:.3g} <= 0, the matrix (or the "
            "preconditioner) is not symmetric positive definite")


class _PcgSteps:
    """PCG's three vector phases, fused into single native passes where possible.

    - ``pc_dots(r) -> (z, r.r, r.z)`` (local dots; r.z None when z is r): z = M r;
    - ``spmv_dot(p, q) -> (q, p.q)``: q = A p, with p.q from the SpMV's own pass
      (DistCSR.spmv_dot) for a native, square, aligned DistCSR;
    - ``update(alpha, p, q) -> (z, r.r, r.z)``: x += alpha p, r -= alpha q, then pc_dots(r), in
      one pass (hpc._core.sparse.cg_update) for the identity or Jacobi on host arrays.
    Otherwise the same steps run as separate numpy/kernel calls. Same arithmetic either way,
    up to the summation order of the dot products.
    """

    def __init__(self, s: _Solve):
        self.s, self.M = s, s.M
        host = _NV is not None and isinstance(s.p.b, np.ndarray)
        self.identity = type(s.M) is Identity
        self.dinv = (s.M.inv if host and type(s.M) is Jacobi and isinstance(s.M.inv, np.ndarray)
                     and s.M.inv.dtype == np.float64 and s.M.inv.flags.c_contiguous else None)
        self.fused_update = host and (self.identity or self.dinv is not None)
        self.fused_spmv = (host and isinstance(s.A, DistCSR) and s.A.backend == "native"
                           and s.A._aligned)
        self.z = None

    def pc_dots(self, r):
        if self.identity:   # z is r: r.z = r.r, reduced once (None)
            return r, _dot(r, r), None
        if self.dinv is not None:
            if self.z is None:
                self.z = np.empty_like(r)
            rr, rz = _NV.jacobi_dots(self.dinv, r, self.z)
            return self.z, rr, rz
        z = self.M.apply(r)
        return z, _dot(r, r), (_dot(r, z) if z is not r else None)

    def spmv_dot(self, p, q):
        if self.fused_spmv:
            self.s.matvecs += 1
            return self.s.A.spmv_dot(p, out=q)
        q = self.s.spmv(p, out=q)
        return q, _dot(p, q)

    def update(self, alpha: float, p, q, x, r):
        if self.fused_update:
            z = None if self.identity else self.z
            rr, rz = _NV.cg_update(alpha, p, q, x, r, self.dinv, z)
            return (r, rr, None) if self.identity else (z, rr, rz)
        _axpy(alpha, p, x)
        _axpy(-alpha, q, r)
        return self.pc_dots(r)


def solve_pcg(problem: Problem, opts: SolveOptions, callback: Callable | None = None) -> SolveResult:
    """Preconditioned CG (Hestenes-Stiefel), in SciPy's order of operations."""
    s = _Solve(problem, opts)
    if (t := _trivial(s)) is not None:
        return t
    x, red = s.x, s.red
    ops = _PcgSteps(s)
    r = s.initial_residual()
    p = q = None
    rho_prev = 0.0
    hist: list[float] = []
    repl = 0
    it = 0
    z, rr_loc, rz_loc = ops.pc_dots(r)
    while True:
        if rz_loc is None:   # identity (z is r): r.z = r.r, one dot
            rr = rho = red.sum(rr_loc)[0]
        else:
            rr, rho = red.sum(rr_loc, rz_loc)
        rnorm = math.sqrt(rr)
        hist.append(rnorm / s.bnorm)
        if rnorm < s.tol:
            rt = s.true_residual()
            tnorm = math.sqrt(red.sum(_dot(rt, rt))[0])
            if tnorm <= s.tol or repl >= MAX_REPLACEMENTS:
                return s.result(it, hist, tnorm <= s.tol, None, repl)
            # the recursive residual drifted: continue from the true one
            repl += 1
            r = rt
            hist[-1] = tnorm / s.bnorm
            z, rr_loc, rz_loc = ops.pc_dots(r)
            rr, rho = red.sum(rr_loc, rr_loc if rz_loc is None else rz_loc)
            hist[-1] = math.sqrt(rr) / s.bnorm
        if it >= opts.maxiter:
            return s.result(it, hist, False, None, repl)
        if not rho > 0.0:
            return s.result(it, hist, False, _not_spd("r.z", rho, it + 1), repl)
        if it == 0:
            p = z.copy()
        else:
            _aypx(rho / rho_prev, z, p)
        q, pq_loc = ops.spmv_dot(p, q)
        pq = red.sum(pq_loc)[0]
        if not pq > 0.0:
            return s.result(it, hist, False, _not_spd("p.Ap", pq, it + 1), repl)
        alpha = rho / pq
        z, rr_loc, rz_loc = ops.update(alpha, p, q, x, r)
        rho_prev = rho
        it += 1
        if callback is not None:
            callback(x)


def solve_cg(problem: Problem, opts: SolveOptions, callback: Callable | None = None) -> SolveResult:
    """Plain CG: PCG with the identity."""
    if opts.pc not in ("none", None):
        raise UsageError(f"--method cg takes no preconditioner (got --pc {opts.pc}); use --method pcg")
    opts.pc = "none"
    return solve_pcg(problem, opts, callback)


MAX_RESTARTS = 50


def _single_reduction(problem: Problem, opts: SolveOptions, pipelined: bool,
                      callback: Callable | None) -> SolveResult:
    """Chronopoulos-Gear (pipelined=False) or Ghysels-Vanroose (pipelined=True) PCG.

    Both get alpha from the recurrence p.Ap = w.u - beta gamma / alpha_old, which rounding can
    drive to <= 0 on ill-conditioned systems although A is SPD. That is not reported as a
    breakdown: the recurrences restart from the true residual (beta = 0, where p.Ap = u.Au is
    computed directly). A breakdown is reported only when p.Ap <= 0 computed directly (an
    extra SpMV, only in that event) or right after a restart.
    """
    s = _Solve(problem, opts)
    if (t := _trivial(s)) is not None:
        return t
    x, M, red = s.x, s.M, s.red

    def fresh(r):
        u = M.apply(r)
        u = u.copy() if u is r else u
        return r, u, s.spmv(u)

    r, u, w = fresh(s.initial_residual())
    hist: list[float] = []
    z = q = sv = p = nv = None
    gamma_old = alpha_old = 0.0
    repl = restarts = 0
    restart = True
    it = 0
    while True:
        if pipelined:
            req, out = red.isum(_dot(r, u), _dot(w, u), _dot(r, r))
            m = M.apply(w)               # overlapped with the reduction
            m = m.copy() if m is w else m
            nv = s.spmv(m, out=nv)
            if req is not None:
                req.Wait()
        else:
            if not restart:              # u = M r and w = A u, recomputed every iteration
                u = M.apply(r)
                u = u.copy() if u is r else u
                w = s.spmv(u, out=w)
            out = red.sum(_dot(r, u), _dot(w, u), _dot(r, r))
        gamma, delta, rr = out
        rnorm = math.sqrt(max(rr, 0.0))
        hist.append(rnorm / s.bnorm)
        if rnorm < s.tol:
            rt = s.true_residual()
            tnorm = math.sqrt(red.sum(_dot(rt, rt))[0])
            if tnorm <= s.tol or repl >= MAX_REPLACEMENTS:
                hist[-1] = tnorm / s.bnorm
                return s.result(it, hist, tnorm <= s.tol, None, repl)
            repl += 1
            hist.pop()
            r, u, w = fresh(rt)
            restart = True
            continue
        if it >= opts.maxiter:
            return s.result(it, hist, False, None, repl)
        if restart:
            beta, denom = 0.0, delta
        else:
            beta = gamma / gamma_old
            denom = delta - beta * gamma / alpha_old   # = p.Ap by the recurrences
        if not (gamma > 0.0 and denom > 0.0):
            if restart:    # computed directly from fresh vectors: a genuine breakdown
                what, val = ("r.z", gamma) if not gamma > 0.0 else ("p.Ap", denom)
                return s.result(it, hist, False, _not_spd(what, val, it + 1), repl)
            if gamma > 0.0:   # check the curvature directly: indefinite A, or rounding?
                pt = u + beta * p
                direct = red.sum(_dot(pt, s.spmv(pt)))[0]
                if not direct > 0.0:
                    return s.result(it, hist, False, _not_spd("p.Ap", direct, it + 1), repl)
            if restarts >= MAX_RESTARTS:
                res = s.result(it, hist, False, None, repl)
                res.extra["stagnation"] = f"{restarts} restarts of the recurrences"
                return res
            restarts += 1
            hist.pop()
            r, u, w = fresh(s.true_residual())
            restart = True
            continue
        if restart:
            p, sv = u.copy(), w.copy()
            if pipelined:
                z, q = nv.copy(), m.copy()
        else:
            _aypx(beta, u, p)
            _aypx(beta, w, sv)
            if pipelined:
                _aypx(beta, nv, z)
                _aypx(beta, m, q)
        alpha = gamma / denom
        _axpy(alpha, p, x)
        _axpy(-alpha, sv, r)
        if pipelined:
            _axpy(-alpha, q, u)
            _axpy(-alpha, z, w)
        gamma_old, alpha_old = gamma, alpha
        restart = False
        it += 1
        if callback is not None:
            callback(x)


def solve_cg1(problem: Problem, opts: SolveOptions, callback: Callable | None = None) -> SolveResult:
    """Chronopoulos-Gear PCG: r.u, w.u and r.r in one all-reduction per iteration."""
    res = _single_reduction(problem, opts, False, callback)
    return res


def solve_pipecg(problem: Problem, opts: SolveOptions, callback: Callable | None = None) -> SolveResult:
    """Ghysels-Vanroose pipelined PCG (SISC 2014): one Iallreduce per iteration, overlapped
    with m = M w and n = A m; extra recurrences z = A q, q = M s, s = A p."""
    return _single_reduction(problem, opts, True, callback)
