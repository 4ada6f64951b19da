"""Smoothed-aggregation algebraic multigrid (Vanek, Mandel, Brezina 1996) over DistCSR.

Setup, level by level, until the operator has at most ``max_coarse`` rows:

1. strength of connection: (i, j) is strong when |a_ij| >= theta sqrt(|a_ii a_jj|)
   (pyamg's symmetric strength; theta = 0 keeps every stored off-diagonal entry), decided
   inside the aggregation kernel, never stored;
2. aggregation: the standard three-pass greedy aggregation (pyamg's standard_aggregation;
   native/src/spgemm_amg.cpp) across ranks (:func:`aggregate_coupled`): aggregates may span a
   rank boundary;
3. tentative prolongator T: T(i, a) = B_i / ||B_a|| for the near-null-space vector B (ones on
   the finest level; its coarse image ||B_a|| on the next), pyamg's ``fit_candidates``;
4. smoothed prolongator P = (I - omega/rho D^-1 A) T, omega = 4/3, rho the spectral radius of
   D^-1 A by 10 Lanczos steps (from a hash of the global row index); T has one entry per
   row, so a row of A T only gathers a_ij t_j into the column of j's aggregate: one native
   pass over A after one ghost exchange of the aggregate ids and T values (no general SpGEMM);
5. Galerkin coarse operator Pᵀ A P by :func:`hpc.spgemm.ptap`.

The coarsest operator is gathered on every rank and factored (Cholesky; a pseudo-inverse if it
is singular). The V-cycle smooths with the same symmetric smoother before and after the coarse
correction: symmetric Gauss-Seidel (the default, as pyamg's: a forward then a backward sweep in
one global order, coupled across ranks; :class:`GSPlan`), a Chebyshev polynomial in D^-1 A
on [rho/30, 1.1 rho], or damped Jacobi of weight 4/(3 rho); so with a zero initial guess the
cycle is a fixed, symmetric positive definite operator: a valid preconditioner for CG.

With ``order="global"`` every order-dependent step (aggregation passes 1 and 3, the
Gauss-Seidel sweeps of the smoother and of the candidate improvement) runs in the global row
order, rank after rank, and nothing else depends on the partition: the hierarchy and the cycle
are the one-rank ones up to rounding, and so is the PCG iteration count, at any rank count.
``order="multicolour"`` (the default) aggregates the same way but sweeps every level whose
colours hold at least 65536 stored entries each colour by colour of a hashed-priority
colouring of the global graph (:mod:`hpc.amg.colour`), all ranks at once with one ghost
exchange per colour: still partition independent, and the large sweeps run in parallel.
``order="coloured"`` runs ranks of one colour at once (faster sweeps at many ranks) with a
partition-dependent order.
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
from hpc.core.partition import exchange_by_owner
from hpc.sparse import DistCSR

from .colour import MultiColourPlan, combined_block, hash64

SMOOTHERS = ("gauss_seidel", "chebyshev", "jacobi")
ORDERS = ("global", "coloured", "multicolour")

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


def _hash_uniform(i: np.ndarray, seed: int = 0) -> np.ndarray:
    """Uniform [0, 1) values of the global indices ``i`` (uint64): the same value for an index
    whatever rank holds it."""
    return (hash64(i, seed) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def spectral_radius(A: DistCSR, dinv: np.ndarray, its: int = 10, seed: int = 0) -> float:
    """rho(D^-1 A) for SPD A and D (collective): the largest Ritz value of ``its`` Lanczos steps
    on D^-1/2 A D^-1/2 (similar to D^-1 A). From below, as pyamg's approximate_spectral_radius;
    callers add a margin where they need an upper bound. Lanczos finds the extreme eigenvalue
    in fewer products than power iteration (10 here against 20). The start vector is a hash of
    the global row index, so rho does not depend on the partition (up to rounding)."""
    comm = A.comm
    sq = np.sqrt(dinv)
    v = _hash_uniform(np.arange(*A.row_range, dtype=np.uint64), seed) + 0.5
    v /= math.sqrt(comm.allreduce(float(v @ v)))
    v_prev = np.zeros_like(v)
    alpha: list[float] = []
    beta: list[float] = []
    for _ in range(its):
        w = sq * A.spmv(sq * v)
        if beta:
            w -= beta[-1] * v_prev
        a = comm.allreduce(float(w @ v))
        w -= a * v
        alpha.append(a)
        b = math.sqrt(max(comm.allreduce(float(w @ w)), 0.0))
        if b <= 1e-12 * abs(a):  # an invariant subspace: the Ritz values are exact
            break
        beta.append(b)
        v_prev, v = v, w / b
    off = np.array(beta[:len(alpha) - 1])
    return float(sla.eigvalsh_tridiagonal(np.array(alpha), off)[-1]) if len(alpha) > 1 \
        else max(alpha[0], 0.0)


def _idx(M: sp.csr_matrix) -> tuple[type, list[np.ndarray]]:
    """(dtype, [indptr, indices]) of a CSR block in one index type: int32 where it fits."""
    dt = np.int64 if max(M.nnz, M.shape[1]) >= 2**31 - 1 else np.int32
    return dt, [np.ascontiguousarray(a, dtype=dt) for a in (M.indptr, M.indices)]


def _kernel(name: str, dt: type):
    return getattr(_core(), f"{name}_{'i32' if dt == np.int32 else 'i64'}")


def _rank_colours(comm, neighbours: list[int], distance: int = 1) -> tuple[int, int]:
    """(this rank's colour, number of colours) of a greedy colouring of the rank graph, in rank
    order, the same on every rank (collective): ranks at most ``distance`` (1 or 2) edges apart
    get different colours."""
    adj = [set(nb) for nb in comm.allgather(sorted(set(neighbours)))]
    for r, nb in enumerate(adj):  # symmetric
        for q in nb:
            adj[q].add(r)
    if distance == 2:
        adj = [set().union(nb, *(adj[q] for q in nb)) - {r} for r, nb in enumerate(adj)]
    col = [-1] * len(adj)
    for r, nb in enumerate(adj):
        taken = {col[q] for q in nb if q < r}
        col[r] = min(c for c in range(len(adj) + 1) if c not in taken)
    return col[comm.Get_rank()], max(col) + 1


_NONE = np.iinfo(np.int64).min  # aggregate_pass's mark of a node without strong neighbours
_CODE = 40                       # aggregate codes: rank << 40 | number on that rank


def aggregate_coupled(A: DistCSR, theta: float = 0.0,
                      order: str = "global") -> tuple[np.ndarray, np.ndarray]:
    """Standard aggregation of the strength graph of a distributed SPD ``A``, across ranks
    (collective).

    The three passes of pyamg's standard_aggregation (native aggregate_pass), each rank over its
    own rows with its ghost columns' states. Passes 1 and 3 depend on the order of the nodes:
    they run rank after rank (``order="global"``: the serial algorithm on the global row order,
    pyamg's aggregates at any rank count) or rank colour by rank colour (``"coloured"``: a
    distance-2 colouring of the rank graph, so ranks running together never claim the same
    node; the serial algorithm only while the colours follow the rank order, as for one to
    three ranks in a chain), and the claims on other ranks' nodes go to their owners after
    each rank or colour. Pass 2 does not depend on the order and runs everywhere at once.

    Returns
    -------
    (aggregate of each own row, global id, -1 for none), aggregate offsets per rank (an
    aggregate belongs to the rank that made it).
    """
    comm = A.comm
    r, p = comm.Get_rank(), comm.Get_size()
    pl = A.plan()
    n = A.local_rows
    lo = A.row_range[0]
    dt, ip, ix, L = combined_block(A)  # columns: own rows, then ghosts
    data = np.ascontiguousarray(L.data, dtype=np.float64)
    dg = np.ascontiguousarray(A.A_loc.diagonal(), dtype=np.float64)
    pl.start(dg)
    dg = np.concatenate((dg, pl.wait()))
    state = np.zeros(n + pl.n_ghost, dtype=np.int64)
    kernel = _kernel("aggregate_pass", dt)
    if p == 1 or order != "coloured":  # "global", "multicolour": the global row order
        colour, ncol = r, p
    else:
        colour, ncol = _rank_colours(comm, list(pl.sources) + list(pl.dests), 2)
    made = 0

    def refresh() -> None:
        pl.start(state[:n])
        state[n:] = pl.wait()

    for pass_ in (1, 2, 3):
        if pass_ == 2:
            kernel(ip, ix, data, dg, theta, state, 2, 0)
            if p > 1:
                refresh()
            continue
        for c in range(ncol):
            before = state[n:].copy()
            if c == colour:
                made += kernel(ip, ix, data, dg, theta, state, pass_, (r << _CODE) + made)
            if p > 1:  # claims on ghost nodes to their owners, then every ghost's state
                ch = np.flatnonzero(state[n:] != before)
                gids = pl.ghost_ids[ch]
                dest = np.searchsorted(A.row_offsets, gids, side="right") - 1
                ri, rv = exchange_by_owner(comm, dest, [gids, state[n + ch]])
                state[ri - lo] = rv
                refresh()
    counts = np.array(comm.allgather(made), dtype=np.int64)
    coff = np.concatenate(([0], np.cumsum(counts)))
    s = state[:n]
    code = np.abs(np.where(s == _NONE, 1, s)) - 1
    gid = coff[code >> _CODE] + (code & ((1 << _CODE) - 1))
    return np.where(s == _NONE, -1, gid), coff


@dataclass
class GSPlan:
    """A rank's share of a global Gauss-Seidel sweep (see :meth:`SmoothedAggregation._sgs`).

    ``order="global"``: the ranks sweep one after another, each after an exchange of the
    latest ghost values, so the forward sweep is Gauss-Seidel in the global row order (the
    one-rank sweep, whatever the partition) and the backward sweep the same order reversed.
    ``"coloured"``: interior rows (no ghost columns) first, all ranks at once; then the
    boundary rows, colour by colour of the rank graph, each colour after an exchange. Ranks of
    one colour share no edges, so this too is exact Gauss-Seidel in one global order, but the
    order depends on the partition. Either way the symmetric sweep is SPD for any SPD A."""

    kernel: Any           # the own block's native GaussSeidel (checked and copied once)
    inner: tuple          # (forward, backward) row lists, int64
    bnd: tuple
    gh_bnd: sp.csr_matrix  # the boundary rows' ghost columns (A_gh rows)
    colour: int
    ncolours: int
    coupled: bool          # some rank's rows reach other ranks' columns (collective)


# order="multicolour" sweeps a level colour by colour only where a colour holds at least this
# many stored entries: each colour costs every rank a ghost exchange and about 20 us of calls,
# against ~1.3 ns per entry of sweep work (hpcg:64: 6.9M entries in 9 ms), and at 2 ranks the
# colours save half the sweep; so the colours pay from about 4 * 20 us / 1.3 ns = 60k entries
# per colour. A rule on the global operator alone (not on the rank count), so every rank count
# picks the same smoother on every level.
MULTICOLOUR_MIN_NNZ = 1 << 16


def _gs_plan(A: DistCSR, order: str = "global",
             min_nnz: int = MULTICOLOUR_MIN_NNZ) -> GSPlan | MultiColourPlan:
    """The Gauss-Seidel plan of a level: multicolour where ``order="multicolour"`` and the
    level's colours hold at least ``min_nnz`` entries each, else in the global (or the rank
    coloured) order (collective)."""
    if order == "multicolour":
        if A.nnz >= 2 * min_nnz:  # one colour is no colouring: not worth colouring below
            from .colour import colour

            c, nc = colour(A)
            if A.nnz >= min_nnz * nc:
                return MultiColourPlan(A, (c, nc))
        order = "global"
    pl = A.plan()
    Ao, Ag = A.A_loc, A.A_gh
    dt, arrays = _idx(Ao)
    has_gh = np.diff(Ag.indptr) > 0
    coupled = bool(A.comm.allreduce(bool(has_gh.any()), op=MPI.LOR))
    if coupled and order == "global":  # every row in its global place, rank after rank
        inner, bnd = np.zeros(0, np.int64), np.arange(A.local_rows, dtype=np.int64)
        colour, ncol = A.comm.Get_rank(), A.comm.Get_size()
    else:
        inner = np.flatnonzero(~has_gh).astype(np.int64)
        bnd = np.flatnonzero(has_gh).astype(np.int64)
        colour, ncol = (_rank_colours(A.comm, list(pl.sources) + list(pl.dests)) if coupled
                        else (0, 1))
    kernel = _kernel("GaussSeidel", dt)(*arrays, np.ascontiguousarray(Ao.data, dtype=np.float64),
                                        np.ascontiguousarray(Ao.diagonal(), dtype=np.float64))
    return GSPlan(kernel, (inner, np.ascontiguousarray(inner[::-1])),
                  (bnd, np.ascontiguousarray(bnd[::-1])), sp.csr_matrix(Ag[bnd]), colour, ncol,
                  coupled)


@dataclass
class Level:
    """One level: its operator, the prolongator to it from the next (None on the coarsest)."""

    A: DistCSR
    dinv: np.ndarray
    rho: float
    P: DistCSR | None = None
    R: DistCSR | None = None   # Pᵀ, for the restriction
    gs: GSPlan | MultiColourPlan | None = None    # the Gauss-Seidel sweep's plan


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
        Symmetric Gauss-Seidel (a forward and a backward sweep in one global order, coupled
        across ranks: :class:`GSPlan`; pyamg's default smoother, the same sweep on one rank), a
        Chebyshev polynomial in D^-1 A, or damped Jacobi.
    degree : int, default 1
        Symmetric Gauss-Seidel sweeps, Chebyshev degree, or Jacobi sweeps, per pre- and
        post-smoothing.
    improve : int, default 4
        Symmetric Gauss-Seidel sweeps on A B = 0 that improve the near-null-space vector B
        (ones) before the first aggregation: pyamg's default ``improve_candidates``.
    order : {'multicolour', 'global', 'coloured'}, default 'multicolour'
        The node order of the order-dependent steps (aggregation passes 1 and 3, Gauss-Seidel
        sweeps). ``'global'``: the global row order, rank after rank, so the hierarchy and the
        cycle are the one-rank ones up to rounding at any partition (and the iteration count
        does not grow with the ranks), at the price of those steps running one rank at a time.
        ``'coloured'``: colour by colour of the rank graph, ranks of a colour at once (interior
        Gauss-Seidel rows at once on every rank); the order, so the hierarchy, depends on the
        partition. ``'multicolour'``: aggregation as ``'global'``; the sweeps of every level
        whose colours hold at least ``colour_min_nnz`` entries each run colour by colour of a
        hashed-priority colouring of the global graph (:mod:`hpc.amg.colour`), every rank at
        once, the other levels' in the global order: partition independent too, and parallel
        where the sweeps are large.
    threads : int, optional
        Threads of the SpGEMM kernels.
    seed : int, default 0
        Seed of the Lanczos start vector's hash.
    colour_min_nnz : int, default 65536
        ``order='multicolour'``: the stored entries per colour from which a level sweeps by
        colours (a rule on the global operator, so the same at every rank count).

    Attributes
    ----------
    levels : list of Level
    setup_s : float
        Seconds the setup took (this rank).
    """

    name = "amg"

    def __init__(self, A: DistCSR, *, theta: float = 0.0, max_coarse: int = 100,
                 max_levels: int = 10, smoother: str = "gauss_seidel", degree: int = 1,
                 improve: int = 4, order: str = "multicolour", threads: int | None = None,
                 seed: int = 0, colour_min_nnz: int = MULTICOLOUR_MIN_NNZ):
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
        self.improve = check_int("improve", improve, 0)
        self.order = check_choice("order", order, ORDERS)
        self.colour_min_nnz = check_int("colour_min_nnz", colour_min_nnz, 1)
        self.threads = threads
        self.comm = A.comm
        t0 = time.perf_counter()
        self.levels: list[Level] = []
        B = np.ones(A.local_rows)
        while True:
            A.plan()  # the SpMV plan, which also splits off the own block (A_loc)
            d = A.A_loc.diagonal()
            bad = int(self.comm.allreduce(int(np.count_nonzero(~(d > 0)))))
            if bad:
                raise UsageError(f"--pc amg: {bad} diagonal entries are not positive (A is not "
                                 "SPD)")
            dinv = 1.0 / d
            lvl = Level(A, dinv, spectral_radius(A, dinv, seed=seed))
            if self.smoother == "gauss_seidel":
                lvl.gs = _gs_plan(A, self.order, self.colour_min_nnz)
            if not self.levels and self.improve:
                # pyamg's improve_candidates: relax A B = 0 from B = ones by symmetric
                # Gauss-Seidel sweeps, so B is smoother where A 1 != 0 (boundaries)
                g = lvl.gs or _gs_plan(A, self.order, self.colour_min_nnz)
                zero = np.zeros(A.local_rows)
                for _ in range(self.improve):
                    self._sgs(A, g, zero, B)
            self.levels.append(lvl)
            if A.shape[0] <= self.max_coarse or len(self.levels) >= self.max_levels:
                break
            P, B = self._prolongator(lvl, B)
            if P.shape[1] == 0 or P.shape[1] >= A.shape[0]:  # coarsening stalled
                break
            from hpc.spgemm import ptap

            lvl.P, lvl.R = P, P.transpose()
            lvl.P.plan()  # the transfer operators' SpMV plans are setup work, not the solve's
            lvl.R.plan()
            A = ptap(A, P, threads=threads)
        self._coarse_setup(self.levels[-1].A)
        self.setup_s = time.perf_counter() - t0

    # -- setup ------------------------------------------------------------------------------
    def _prolongator(self, lvl: Level, B: np.ndarray) -> tuple[DistCSR, np.ndarray]:
        """Smoothed prolongator of level ``lvl`` and the coarse near-null-space vector."""
        A, comm = lvl.A, lvl.A.comm
        pl = A.plan()  # also splits the block: own columns (A_loc) and ghost columns (A_gh)
        Ao, Ag = A.A_loc, A.A_gh
        dt, (op, oi) = _idx(Ao)
        gid, coff = aggregate_coupled(A, self.theta, self.order)
        nc = int(coff[-1])
        r = comm.Get_rank()
        rows = np.flatnonzero(gid >= 0)
        # T(i, a) = B_i / ||B_a|| (pyamg's fit_candidates for one candidate vector); an
        # aggregate's members may sit on several ranks: its owner sums their parts of ||B_a||^2
        # and returns the sum to every rank that sent a part
        u, inv = np.unique(gid[rows], return_inverse=True)
        # float64 even where empty (bincount of nothing is int64): every rank must send the
        # same dtype, or a rank that owns no aggregate receives the norms as integers
        part = np.bincount(inv, weights=B[rows] ** 2, minlength=u.size).astype(np.float64)
        owner = np.searchsorted(coff, u, side="right") - 1
        ru, rpart, rsrc = exchange_by_owner(comm, owner, [u, part, np.full(u.size, r)])
        na = int(coff[r + 1] - coff[r])
        norm2 = np.bincount(ru - coff[r], weights=rpart, minlength=na).astype(np.float64)
        bu, bn = exchange_by_owner(comm, rsrc, [ru, norm2[ru - coff[r]]])
        order = np.argsort(bu)
        norms_u = np.sqrt(bn[order][np.searchsorted(bu[order], u)])
        norms_u[norms_u == 0] = 1.0
        t = np.zeros(A.local_rows)
        t[rows] = B[rows] / norms_u[inv]
        norms = np.sqrt(norm2)
        norms[norms == 0] = 1.0
        # each ghost column's aggregate (global id, exact in a float64) and T value
        pl.start(np.column_stack((gid.astype(np.float64), t)))
        g = pl.wait()
        ggid = g[:, 0].astype(np.int64)
        colid = np.unique(np.concatenate((gid[rows], ggid[ggid >= 0])))  # the columns P uses
        agg = np.where(gid >= 0, np.searchsorted(colid, gid), -1).astype(np.int64)
        gagg = np.where(ggid >= 0, np.searchsorted(colid, ggid), -1).astype(np.int64)
        gdt, (gp, gi) = _idx(Ag)
        if gdt != dt:
            dt, (op, oi, gp, gi) = np.int64, [x.astype(np.int64) for x in (op, oi, gp, gi)]
        w = (4.0 / 3.0) / lvl.rho if lvl.rho > 0 else 0.0
        ip, ix, dv = _kernel("smoothed_prolongator", dt)(
            op, oi, np.ascontiguousarray(Ao.data, np.float64), gp, gi,
            np.ascontiguousarray(Ag.data, np.float64), agg, t, gagg,
            np.ascontiguousarray(g[:, 1]), colid, np.ascontiguousarray(lvl.dinv), w)
        Ploc = sp.csr_matrix((dv, ix, ip), shape=(A.local_rows, nc))
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
        """Symmetric Gauss-Seidel sweeps (in the plan's order), or x + p(D^-1 A) D^-1 (b - A x)
        for a fixed polynomial p (Chebyshev, damped Jacobi)."""
        A, dinv = lvl.A, lvl.dinv
        if self.smoother == "gauss_seidel":
            zero = x is None
            if zero:
                x = np.zeros_like(b)
            for k in range(self.degree):
                self._sgs(lvl.A, lvl.gs, b, x, zero and k == 0)
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

    @staticmethod
    def _sgs(A: DistCSR, g: GSPlan | MultiColourPlan, b: np.ndarray, x: np.ndarray,
             zero: bool = False) -> None:
        """One symmetric Gauss-Seidel sweep, forward then backward, in the global order of
        :class:`GSPlan` or colour by colour (:class:`hpc.amg.colour.MultiColourPlan`) (x in
        place; collective where the level is coupled). ``zero``: x is zero on entry, so the
        first colour's ghost values are zeros without an exchange."""
        if isinstance(g, MultiColourPlan):
            g.sweep(b, x, 1, zero)
            return
        sweep = g.kernel.sweep
        sweep(b, x, g.inner[0])
        if g.coupled:
            pl = A.plan()
            order = [(c, 0) for c in range(g.ncolours)] + \
                [(c, 1) for c in reversed(range(g.ncolours))]
            gh = np.zeros(pl.n_ghost)
            for k, (c, d) in enumerate(order):
                # an exchange brings the values the previous colour changed; none before the
                # first colour of a zero x (the interior rows that changed are nobody's ghosts:
                # A is symmetric) or before the backward sweep's first colour, which is the
                # forward sweep's last: nothing changed since its exchange
                if not (k == 0 and zero) and k != g.ncolours:
                    pl.start(x)
                    gh = pl.wait()
                if c == g.colour and g.bnd[d].size:
                    rhs = b.copy()
                    rhs[g.bnd[0]] -= g.gh_bnd @ gh
                    sweep(rhs, x, g.bnd[d])
        sweep(b, x, g.inner[1])

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
        # per level: the sweep's colours (multicolour), 0 for a sweep in the global order
        colours = [lv.gs.ncolours if isinstance(lv.gs, MultiColourPlan) else 0
                   for lv in self.levels]
        nnz = [int(lv.A.nnz) for lv in self.levels]
        return {"type": "amg", "smoother": self.smoother, "degree": self.degree,
                "theta": self.theta, "order": self.order, "levels": len(self.levels),
                "rows": rows, "nnz": nnz, "colours": colours,
                "operator_complexity": sum(nnz) / nnz[0], "setup_s": self.setup_s}
