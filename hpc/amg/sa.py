"""Smoothed-aggregation algebraic multigrid (Vanek, Mandel, Brezina 1996) over DistCSR.

Setup, level by level, until the operator has at most ``max_coarse`` rows:

1. strength of connection: (i, j) is strong when |a_ij| >= theta sqrt(|a_ii a_jj|)
   (pyamg's symmetric strength; theta = 0 keeps every stored off-diagonal entry);
2. aggregation: the standard three-pass greedy aggregation (native/src/spgemm_amg.cpp) of each
   rank's own rows and columns (decoupled aggregation: aggregates never cross ranks, so the
   tentative prolongator needs no communication and the coarse rows stay with their ranks);
3. tentative prolongator T: T(i, a) = B_i / ||B_a|| for the near-null-space vector B (ones on
   the finest level; its coarse image ||B_a|| on the next), pyamg's ``fit_candidates``;
4. smoothed prolongator P = (I - omega/rho D^-1 A) T, omega = 4/3, rho the spectral radius of
   D^-1 A by power iteration; A T is the distributed SpGEMM (:func:`hpc.spgemm.multiply`);
5. Galerkin coarse operator Pᵀ A P by :func:`hpc.spgemm.ptap`.

The coarsest operator is gathered on every rank and factored (Cholesky; a pseudo-inverse if it
is singular). The V-cycle smooths with the same symmetric smoother before and after the coarse
correction: hybrid symmetric l1 Gauss-Seidel (forward then backward sweep on each rank's block),
a Chebyshev polynomial in D^-1 A on [rho/30, 1.1 rho], or damped Jacobi of weight 4/(3 rho);
so with a zero initial guess the cycle is a fixed, symmetric positive definite operator: a
valid preconditioner for CG.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core.errors import InputTypeError, UsageError
from hpc.sparse import DistCSR

SMOOTHERS = ("gauss_seidel", "chebyshev", "jacobi")

_CORE = []


def _core():
    if not _CORE:
        from hpc import _core

        _CORE.append(_core.spgemm_amg)
    return _CORE[0]


def aggregate(S: sp.csr_matrix) -> tuple[np.ndarray, int]:
    """(aggregate of every node, -1 for none; number of aggregates) of a square strength
    graph S (pyamg's standard_aggregation)."""
    S = sp.csr_matrix(S)
    dt = np.int32 if max(S.shape[0], S.nnz) < 2**31 - 1 else np.int64
    fn = _core().aggregate_i32 if dt == np.int32 else _core().aggregate_i64
    agg, count = fn(np.ascontiguousarray(S.indptr, dt), np.ascontiguousarray(S.indices, dt),
                    S.shape[0])
    return agg, int(count)


def own_block(A: DistCSR) -> sp.csr_matrix:
    """This rank's rows x its own columns of a square DistCSR, local numbering."""
    lo, hi = A.row_range
    Al = A.local
    keep = (Al.indices >= lo) & (Al.indices < hi)
    rows = np.repeat(np.arange(Al.shape[0]), np.diff(Al.indptr))
    B = sp.csr_matrix((Al.data[keep], (rows[keep], Al.indices[keep] - lo)),
                      shape=(hi - lo, hi - lo))
    B.sum_duplicates()
    return B


def strength(Aloc: sp.csr_matrix, diag: np.ndarray, theta: float) -> sp.csr_matrix:
    """Symmetric strength of connection of a local square block (diagonal dropped)."""
    coo = Aloc.tocoo()
    off = (coo.row != coo.col) & (coo.data != 0)
    r, c, v = coo.row[off], coo.col[off], coo.data[off]
    if theta > 0:
        keep = np.abs(v) >= theta * np.sqrt(np.abs(diag[r] * diag[c]))
        r, c, v = r[keep], c[keep], v[keep]
    S = sp.csr_matrix((np.abs(v), (r, c)), shape=Aloc.shape)
    S.sum_duplicates()
    return S


def spectral_radius(A: DistCSR, dinv: np.ndarray, its: int = 20, seed: int = 0) -> float:
    """rho(D^-1 A) by power iteration (collective); from below, so callers add a margin."""
    comm = A.comm
    rng = np.random.default_rng([seed, comm.Get_rank()])
    v = rng.random(A.local_rows) + 0.5
    lam = 0.0
    for _ in range(its):
        w = dinv * A.spmv(v)
        nv, nw = (math.sqrt(t) for t in comm.allreduce(np.array([v @ v, w @ w])))
        if nw == 0 or nv == 0:
            return 0.0
        lam = nw / nv
        v = w / nw
    return lam


def _gs_block(A: DistCSR) -> tuple:
    """The own block for hybrid l1 Gauss-Seidel: (indptr, indices, data, diag + l1, l1).

    l1 is each row's sum of |a_ij| over other ranks' columns (Baker, Falgout, Kolev, Yang,
    SIAM J. Sci. Comput. 33(5), 2011): added to the divisor, it makes the hybrid smoother
    convergent for every SPD A, whatever the partition; zero on one rank (plain GS).
    """
    B = sp.csr_matrix(own_block(A))
    B.sort_indices()
    lo, hi = A.row_range
    Al = A.local
    off = (Al.indices < lo) | (Al.indices >= hi)
    rows = np.repeat(np.arange(Al.shape[0]), np.diff(Al.indptr))
    l1 = np.bincount(rows[off], weights=np.abs(Al.data[off]), minlength=Al.shape[0])
    it = np.int32 if B.shape[0] < 2**31 - 1 else np.int64
    return (B.indptr.astype(np.int64), B.indices.astype(it),
            np.ascontiguousarray(B.data, dtype=np.float64),
            np.ascontiguousarray(B.diagonal() + l1, dtype=np.float64), l1)


def _own_matvec(block: tuple, x: np.ndarray) -> np.ndarray:
    ip, ix, dat = block[:3]
    return sp.csr_matrix((dat, ix, ip), shape=(x.size, x.size)) @ x


@dataclass
class Level:
    """One level: its operator, the prolongator to it from the next (None on the coarsest)."""

    A: DistCSR
    dinv: np.ndarray
    rho: float
    P: DistCSR | None = None
    R: DistCSR | None = None   # Pᵀ, for the restriction
    block: tuple | None = None  # own rows x own columns (indptr, indices, data, diag): GS
    coupled: bool = True        # some rank's rows reach other ranks' columns


class SmoothedAggregation:
    """A smoothed-aggregation AMG hierarchy for SPD ``A`` and its V-cycle (collective setup).

    Parameters
    ----------
    A : DistCSR
        Square, symmetric positive definite, rows and columns partitioned alike.
    theta : float, default 0.0
        Strength threshold in [0, 1).
    max_coarse : int, default 100
        Stop coarsening at this many rows (the coarsest level is solved directly).
    max_levels : int, default 10
    smoother : {'gauss_seidel', 'chebyshev', 'jacobi'}, default 'gauss_seidel'
        Hybrid symmetric l1 Gauss-Seidel (a forward and a backward sweep on each rank's own
        block, the other ranks' columns at their last values and their l1 norm added to the
        diagonal: pyamg's default smoother on one rank), a Chebyshev polynomial in D^-1 A, or damped Jacobi.
    degree : int, default 1
        Symmetric Gauss-Seidel sweeps, Chebyshev degree, or Jacobi sweeps, per pre- and
        post-smoothing.
    threads : int, optional
        Threads of the SpGEMM kernels.

    Attributes
    ----------
    levels : list of Level
    setup_s : float
        Seconds the setup took (this rank).
    """

    name = "amg"

    def __init__(self, A: DistCSR, *, theta: float = 0.0, max_coarse: int = 100,
                 max_levels: int = 10, smoother: str = "gauss_seidel", degree: int = 1,
                 threads: int | None = None, seed: int = 0):
        from hpc.core.checks import check_choice, check_int, check_real

        if not isinstance(A, DistCSR):
            raise InputTypeError(f"A must be a DistCSR, got {type(A).__name__}")
        if A.shape[0] != A.shape[1] or not np.array_equal(A.row_offsets, A.col_offsets):
            raise UsageError("A must be square with rows and columns partitioned alike")
        self.theta = check_real("theta", theta, 0, 1, hi_open=True)
        self.max_coarse = check_int("max_coarse", max_coarse, 1)
        self.max_levels = check_int("max_levels", max_levels, 1)
        self.smoother = check_choice("smoother", smoother, SMOOTHERS)
        self.degree = check_int("degree", degree, 1)
        self.threads = threads
        self.comm = A.comm
        t0 = time.perf_counter()
        self.levels: list[Level] = []
        B = np.ones(A.local_rows)
        while True:
            d = A.diagonal()
            bad = int(self.comm.allreduce(int(np.count_nonzero(~(d > 0)))))
            if bad:
                raise UsageError(f"--pc amg: {bad} diagonal entries are not positive (A is not "
                                 "SPD)")
            dinv = 1.0 / d
            lvl = Level(A, dinv, spectral_radius(A, dinv, seed=seed))
            if self.smoother == "gauss_seidel":
                lvl.block = _gs_block(A)
                # ranks coupled on this level (collective): else a sweep needs no exchange
                lvl.coupled = bool(self.comm.allreduce(bool(np.any(lvl.block[4])), op=MPI.LOR))
            self.levels.append(lvl)
            if A.shape[0] <= self.max_coarse or len(self.levels) >= self.max_levels:
                break
            P, B = self._prolongator(lvl, B)
            if P.shape[1] == 0 or P.shape[1] >= A.shape[0]:  # coarsening stalled
                break
            from hpc.spgemm import ptap

            lvl.P, lvl.R = P, P.transpose()
            A = ptap(A, P, threads=threads)
        self._coarse_setup(self.levels[-1].A)
        self.setup_s = time.perf_counter() - t0

    # -- setup ------------------------------------------------------------------------------
    def _prolongator(self, lvl: Level, B: np.ndarray) -> tuple[DistCSR, np.ndarray]:
        """Smoothed prolongator of level ``lvl`` and the coarse near-null-space vector."""
        from hpc.spgemm import multiply

        A, comm = lvl.A, lvl.A.comm
        Aloc = own_block(A)
        agg, na = aggregate(strength(Aloc, A.diagonal(), self.theta))
        counts = np.array(comm.allgather(na), dtype=np.int64)
        coff = np.concatenate(([0], np.cumsum(counts)))
        nc = int(coff[-1])
        r = comm.Get_rank()
        rows = np.flatnonzero(agg >= 0)
        a = agg[rows]
        norms = np.sqrt(np.bincount(a, weights=B[rows] ** 2, minlength=na))
        norms[norms == 0] = 1.0
        T = sp.csr_matrix((B[rows] / norms[a], (rows, a + coff[r])),
                          shape=(A.local_rows, nc))
        Td = DistCSR(comm, T, (A.shape[0], nc), row_offsets=A.row_offsets, col_offsets=coff)
        AT = multiply(A, Td, threads=self.threads)
        w = (4.0 / 3.0) / lvl.rho if lvl.rho > 0 else 0.0
        Ploc = (T - sp.diags(w * lvl.dinv) @ AT.local).tocsr()
        Ploc.eliminate_zeros()
        P = DistCSR(comm, Ploc, (A.shape[0], nc), row_offsets=A.row_offsets, col_offsets=coff)
        return P, norms

    def _coarse_setup(self, Ac: DistCSR) -> None:
        M = Ac.to_scipy(root=None).toarray()
        self.coarse_n = M.shape[0]
        self._chol = None
        self._pinv = None
        try:
            self._chol = sla.cho_factor(M, lower=True)
        except (np.linalg.LinAlgError, ValueError):
            self._pinv = np.linalg.pinv(M)  # a singular (e.g. Neumann) coarse operator

    # -- the cycle ---------------------------------------------------------------------------
    def _smooth(self, lvl: Level, b: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        """Symmetric hybrid Gauss-Seidel sweeps, or x + p(D^-1 A) D^-1 (b - A x) for a fixed
        polynomial p (Chebyshev, damped Jacobi)."""
        A, dinv = lvl.A, lvl.dinv
        if self.smoother == "gauss_seidel":
            from hpc import _core

            ip, ix, dat, diag, l1 = lvl.block
            for _ in range(self.degree):
                for forward in (True, False):
                    if x is None:  # a zero guess: no ghost values to account for
                        x = np.zeros_like(b)
                        rhs = b
                    elif not lvl.coupled:  # no rank reaches another's columns: A = A_own
                        rhs = b
                    else:  # b - (A - A_own) x: the other ranks' columns at their last values;
                        # + l1 x makes the sweep x_i += r_i / (a_ii + l1_i)
                        rhs = b - A.spmv(x) + _own_matvec(lvl.block, x) + l1 * x
                    _core.sparse.gs_sweep(ip, ix, dat, diag, rhs, x, forward)
            return x
        if self.smoother == "jacobi":
            w = (4.0 / 3.0) / lvl.rho
            for _ in range(self.degree):
                res = b if x is None else b - A.spmv(x)
                x = w * dinv * res if x is None else x + w * dinv * res
            return x
        # Chebyshev iteration on [rho/30, 1.1 rho] (Saad, Alg. 12.1)
        hi = 1.1 * lvl.rho
        lo = hi / 30.0
        theta, delta = 0.5 * (hi + lo), 0.5 * (hi - lo)
        sigma = theta / delta
        rho = 1.0 / sigma
        res = b if x is None else b - A.spmv(x)
        d = (dinv * res) / theta
        x = d.copy() if x is None else x + d
        for _ in range(self.degree - 1):
            res = b - A.spmv(x)
            rho_new = 1.0 / (2.0 * sigma - rho)
            d = (rho_new * rho) * d + (2.0 * rho_new / delta) * (dinv * res)
            x = x + d
            rho = rho_new
        return x

    def _coarse_solve(self, Ac: DistCSR, b: np.ndarray) -> np.ndarray:
        bg = Ac.gather_vector(b, root=None)
        xg = sla.cho_solve(self._chol, bg) if self._chol is not None else self._pinv @ bg
        lo, hi = Ac.row_range
        return np.ascontiguousarray(xg[lo:hi])

    def _cycle(self, k: int, b: np.ndarray) -> np.ndarray:
        lvl = self.levels[k]
        if k == len(self.levels) - 1:
            return self._coarse_solve(lvl.A, b)
        x = self._smooth(lvl, b, None)
        rc = lvl.R.spmv(b - lvl.A.spmv(x))
        x = x + lvl.P.spmv(self._cycle(k + 1, rc))
        return self._smooth(lvl, b, x)

    def apply(self, r: np.ndarray) -> np.ndarray:
        """One V-cycle from a zero guess: z = M^-1 r (collective; this rank's rows)."""
        return self._cycle(0, np.asarray(r, dtype=np.float64))

    def describe(self) -> dict[str, Any]:
        """The hierarchy: rows and nonzeros per level, operator complexity, setup time."""
        rows = [int(lv.A.shape[0]) for lv in self.levels]
        nnz = [int(lv.A.nnz) for lv in self.levels]
        return {"type": "amg", "smoother": self.smoother, "degree": self.degree,
                "theta": self.theta, "levels": len(self.levels), "rows": rows, "nnz": nnz,
                "operator_complexity": sum(nnz) / nnz[0], "setup_s": self.setup_s}
