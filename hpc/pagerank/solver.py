"""Global PageRank by distributed pull-based power iteration, networkx's semantics.

    x_new = d * A^T D^-1 x + (d * dangling_mass + (1 - d)) / n

with A the adjacency matrix (A[u, v] = 1 for u -> v), D the out-degrees, dangling mass the sum
of x over vertices without out-edges: uniform teleport, dangling mass spread uniformly, sum 1.
Every rank owns a block of vertices; it pulls xs = x / outdeg of its in-neighbours.

- 1D (``--layout 1d``): the rows of A^T a rank owns are a ``hpc.sparse.DistCSR`` (in-edges,
  global columns); its ghost plan (built once) names the xs entries to receive. Every
  iteration starts the neighbourhood exchange, multiplies the owned columns while it is in
  flight, then the ghost columns (fused with the update on the native back end).
- 2D (``--layout 2d``, as CombBLAS): ranks form a pr x pc grid; rank (i, j) holds the block
  A^T[R_i, C_j]. Vertex blocks B_k are the 1D ones; R_i = B_{i*pc} .. B_{i*pc+pc-1} (the
  ranks of grid row i) and C_j = the union of B_{i*pc+j} over i (the ranks of grid column j).
  xs is all-gathered along the grid column, the partial products are reduce-scattered along
  the grid row, and each rank receives exactly the y of its own block B_k: no transpose step.

Either way, one Allreduce per iteration carries both the L1 change (the stopping rule) and
the next dangling mass.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core.errors import InputTypeError, UsageError
from hpc.core.exchange import GhostPlan, Transfer, resolve_method
from hpc.core.partition import block_offsets, exchange_by_owner, grid_2d
from hpc.sparse.dcsr import DistCSR  # at import: its import (~6 ms) is not solver setup

from .backends import make
from .graphio import Graph


SWEEPS = ("jacobi", "gauss-seidel")
# Relaxed steps (``solver.relax = True``; Jacobi only): where the L1 change has settled at
# the rate d, the signature of a periodic component (a star, a path, a reciprocal pair, a
# cycle) whose error decays like d^k after the rest has converged, one step writes
# (d x + G(x)) / (1 + d), which removes that tail; the policy and its measurements are
# native/include/hpc/pagerank_relax.hpp's (``_core.pagerank.PeriodicRelax``, the same
# decisions on every rank and in every loop). The stop stays networkx's rule on each step's
# Jacobi change |G(x) - x|. GAP's Kronecker graph of scale 19: 64 steps -> 36. Off by
# default: the answer is then networkx's own iterate (to 1e-12), not another one as close to
# the fixed point (on a periodic component, closer).
RELAX = False
PROGRESS_EVERY = 16   # iterations between progress calls (a call costs ~1 us; a sweep more)


def iteration_bound(damping: float, tol: float, max_iter: int) -> int:
    """Iterations the power iteration needs at most: the L1 change after k iterations is at
    most 2 d^k (the map is a d-contraction in L1), so ceil(log(tol / 2) / log(d))."""
    if tol >= 2.0:
        return 1
    return max(1, min(int(max_iter), math.ceil(math.log(tol / 2.0) / math.log(damping))))


@dataclass
class Teleport:
    """Where the teleport and the dangling mass go (networkx's ``personalization`` and
    ``dangling``), as this rank's block of each distribution (non-negative, summing to 1
    over all ranks); None: uniform 1/N (the plain PageRank the fast paths compute)."""

    personalization: np.ndarray | None = None
    dangling: np.ndarray | None = None

    @property
    def uniform(self) -> bool:
        return self.personalization is None and self.dangling is None


def distribution(g: Graph, spec, name: str) -> np.ndarray | None:
    """This rank's block of a distribution over the vertices, normalised to sum 1 as networkx
    normalises ``personalization`` and ``dangling`` (collective).

    ``spec``: None (uniform: returns None); a dict {vertex id: value} (ids as the graph's
    vertices are named: 0..N-1 for a matrix or edge array, the file's ids for a file; ids
    not in the graph are ignored and missing vertices get 0, as in networkx); or a sequence
    of N values, entry i for vertex i. Values must be finite and >= 0 with a positive sum.
    """
    if spec is None:
        return None
    if isinstance(spec, dict):
        try:
            keys = np.array(list(spec.keys()), dtype=np.int64)
            vals = np.array(list(spec.values()), dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise InputTypeError(f"{name}: expected a dict of integer vertex ids to numbers") from None
        verts = g.lookup(keys) if keys.size else keys
        mine = (verts >= g.lo) & (verts < g.hi)
        local = np.zeros(g.nlocal)
        local[verts[mine] - g.lo] = vals[mine]
        bad = vals[~np.isfinite(vals) | (vals < 0)]
    else:
        try:
            arr = np.asarray(spec, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputTypeError(f"{name}: expected a dict or a sequence of N numbers, got "
                                 f"{type(spec).__name__}") from None
        if arr.shape != (g.n,):
            raise UsageError(f"{name}: expected {g.n} values (one per vertex), got shape "
                             f"{arr.shape}")
        local = arr[g.lo:g.hi].copy()
        bad = arr[~np.isfinite(arr) | (arr < 0)]
    if bad.size:
        raise UsageError(f"{name}: values must be finite and >= 0, got {bad[0]}")
    total = float(g.comm.allreduce(float(local.sum()), op=MPI.SUM))
    if not total > 0.0:
        raise UsageError(f"{name}: the values of the graph's vertices sum to {total}, not > 0")
    return local / total


@dataclass
class Result:
    x: np.ndarray            # this rank's scores (host, float64)
    iterations: int
    l1_change: float
    converged: bool
    seconds: float           # the iteration loop, this rank
    relaxed: int = 0         # steps relaxed (see RELAX)


class _Base:
    """Shared state: back end, inverse out-degrees (out-weights of a weighted graph), vertex
    block of this rank, and the teleport / dangling distributions (``Teleport``).

    With a non-uniform teleport the update is x_new = d*y + d*dangling_mass*dangling_vector
    + (1 - d)*personalization (networkx's iteration), done with the back end's array module;
    the uniform case keeps the back end's fused update."""

    def __init__(self, g: Graph, backend: str, teleport: Teleport | None = None):
        self.g = g
        self.comm = g.comm
        self.k = make(backend)
        deg = g.out_strength
        inv = np.zeros_like(deg)
        np.divide(1.0, deg, out=inv, where=deg > 0)
        self.inv = self.k.asarray(inv)
        self.nlocal = g.nlocal
        tp = self.teleport = teleport or Teleport()
        self.general = not tp.uniform
        n = float(g.n)
        self._pv = (self.k.asarray(np.asarray(tp.personalization, dtype=np.float64))
                    if tp.personalization is not None else 1.0 / n)
        # networkx: dangling=None sends the dangling mass where the teleport goes
        self._dv = (self.k.asarray(np.asarray(tp.dangling, dtype=np.float64))
                    if tp.dangling is not None else self._pv)
        self._dm = 0.0          # the dangling mass the next update spreads (general case)
        self.gs = False         # Gauss-Seidel sweeps (Pull1D with method='gauss-seidel')
        self.relax = RELAX      # relaxed Jacobi steps (see RELAX; not with Gauss-Seidel)
        self._jacobi = False    # set while residual() runs its Jacobi sweep

    def _update(self, y, x, xs, d, base):
        """The back end's update (uniform teleport), or networkx's general one."""
        if not self.general:
            return self.k.update(y, x, xs, self.inv, d, base)
        xp = self.k.xp
        xn = d * y + (d * self._dm) * self._dv + (1.0 - d) * self._pv
        diff = float(xp.abs(xn - x).sum())
        x[...] = xn
        xp.multiply(xn, self.inv, out=xs)
        return diff, float(xn[self.inv == 0.0].sum())

    def solve(self, damping: float, tol: float, max_iter: int,
              progress: Callable[[int, float], None] | None = None) -> Result:
        """Iterate from x = 1/N until the L1 change is below ``tol`` (collective);
        ``progress(iteration, change)`` is called every ``PROGRESS_EVERY`` iterations."""
        g, k, xp = self.g, self.k, self.k.xp
        n = g.n
        x = xp.full(self.nlocal, 1.0 / n, dtype=xp.float64)
        xs = x * self.inv
        y = xp.empty(self.nlocal, dtype=xp.float64)
        dm = float(x[self.inv == 0.0].sum()) if self.nlocal else 0.0
        red = np.empty(2)
        self.comm.Allreduce(np.array([0.0, dm]), red, op=MPI.SUM)
        dangling = red[1]
        it, change, converged = 0, float("inf"), False
        policy = _relax_policy(damping, self.relax and not self.gs)
        relax = False
        t0 = time.perf_counter()
        if self.gs:
            red = np.empty(3)
        while it < max_iter:
            base = (damping * dangling + (1.0 - damping)) / n
            self._dm = dangling
            if relax:
                x_old, dm_old = x.copy(), dangling
            loc = self.sweep(x, xs, y, damping, base)
            if self.gs:
                # A Gauss-Seidel sweep (with the dangling mass of the last one) does not keep
                # sum x = 1; the error would decay only like d^k. Rescaling to sum 1 (the
                # fixed point's sum, so the fixed point is unchanged) removes it.
                self.comm.Allreduce(np.array([loc[0], loc[1], float(x.sum())]), red,
                                    op=MPI.SUM)
                scale = 1.0 / float(red[2])
                x *= scale
                xs *= scale
                red[1] *= scale
            else:
                self.comm.Allreduce(np.asarray(loc, dtype=np.float64), red, op=MPI.SUM)
            change, dangling = float(red[0]), float(red[1])
            it += 1
            if relax:    # (d x + G(x)) / (1 + d); the dangling mass is linear in x
                x *= 1.0 / (1.0 + damping)
                x += (damping / (1.0 + damping)) * x_old
                xp.multiply(x, self.inv, out=xs)
                dangling = (damping * dm_old + dangling) / (1.0 + damping)
                relax = False
            if change < tol and self.gs:
                # networkx's stopping rule on the Jacobi residual ||G(x) - x||_1 of the
                # Gauss-Seidel iterate (one Jacobi sweep, only once the sweeps' change is small)
                change = self.residual(k.host(x), damping)[0]
            if change < tol:
                converged = True
                break
            relax = policy is not None and policy.next(change)
            if progress is not None and it % PROGRESS_EVERY == 0:
                progress(it, change)
        secs = time.perf_counter() - t0
        return Result(k.host(x).astype(np.float64, copy=False), it, change, converged, secs,
                      policy.relaxed if policy is not None else 0)

    def residual(self, x_host: np.ndarray, damping: float) -> tuple[float, float]:
        """(||G(x) - x||_1, sum x) for the PageRank map G (collective; one more sweep)."""
        k = self.k
        x = k.asarray(np.array(x_host, dtype=np.float64))
        xs = x * self.inv
        y = k.xp.empty(self.nlocal, dtype=k.xp.float64)
        dm = float(x[self.inv == 0.0].sum()) if self.nlocal else 0.0
        tot = self.comm.allreduce(np.array([dm, float(x.sum())]), op=MPI.SUM)
        base = (damping * tot[0] + (1.0 - damping)) / self.g.n
        self._dm = float(tot[0])
        self._jacobi = True
        try:
            loc = self.sweep(x, xs, y, damping, base)
        finally:
            self._jacobi = False
        change = self.comm.allreduce(float(loc[0]), op=MPI.SUM)
        return float(change), float(tot[1])

    def sweep(self, x, xs, y, d, base):  # pragma: no cover - abstract
        raise NotImplementedError


class Pull1D(_Base):
    """1D row-block layout on hpc.sparse.DistCSR (see module docstring)."""

    layout = "1d"

    def __init__(self, g: Graph, backend: str, teleport: Teleport | None = None,
                 method: str = "jacobi"):
        super().__init__(g, backend, teleport)
        if method not in SWEEPS:
            raise UsageError(f"sweep: expected one of {', '.join(SWEEPS)}, got {method!r}")
        vals = g.in_weights if g.weighted else np.ones(g.in_indices.size)
        T = sp.csr_matrix((vals, g.in_indices, g.in_indptr), shape=(g.nlocal, g.n))
        self.A = DistCSR.from_local(self.comm, T, (g.n, g.n), row_offsets=g.offsets,
                                    backend=self.k.sparse_kernel)
        # DistCSR's ghost plan and its split blocks (owned columns / ghost slots). The sweep
        # runs the exchange itself (the plan's float64 channel) so that every back end can
        # use its own pattern kernels and the native one can fuse the ghost-column product
        # with the update.
        pl = self.plan = self.A.plan()
        self.loc = self.k.local(self.A.A_loc, values=g.weighted)
        self.gh = self.k.local(self.A.A_gh, values=g.weighted)
        self.fused = self.k.name == "native" and not (g.weighted or self.general)
        self.ch = pl.channel(np.float64)
        xp = self.k.xp
        self._send_idx = self.k.asarray(pl.send_idx) if xp is not np else pl.send_idx
        self._recv_dev = xp.empty(pl.n_ghost, dtype=xp.float64) if xp is not np else self.ch.recv
        self.ghosts = pl.n_ghost
        if method == "gauss-seidel":
            self._init_gs(g)

    def _init_gs(self, g: Graph) -> None:
        """The native Gauss-Seidel kernel over the owned columns (host back ends)."""
        if self.k.xp is not np:
            raise UsageError("sweep gauss-seidel: needs a host back end (native, numpy, numba)")
        try:
            from hpc import _core

            make_gs = _core.pagerank_gs.GaussSeidel
        except (ImportError, AttributeError):
            raise UsageError("sweep gauss-seidel: needs hpc._core (build the native "
                             "extension)") from None
        A = self.A.A_loc
        vals = np.ascontiguousarray(A.data, dtype=np.float64) if g.weighted else np.empty(0)
        self._gs = make_gs(np.ascontiguousarray(A.indptr, dtype=np.int64),
                           np.ascontiguousarray(A.indices, dtype=np.int64), vals)
        self._yg = np.zeros(self.nlocal)
        self._p = np.atleast_1d(np.asarray(self._pv, dtype=np.float64))
        self._q = np.atleast_1d(np.asarray(self._dv, dtype=np.float64))
        self.gs = True
        self.fused = False

    def free(self) -> None:
        self.A.free()

    def _gs_sweep(self, x, xs):
        """Exchange the ghosts of the last sweep, then one Gauss-Seidel sweep of the block."""
        pl, ch = self.plan, self.ch
        if pl.n_send:
            np.take(xs, pl.send_idx, out=ch.send)
        ch.start()
        ch.wait()
        if pl.n_ghost:
            self.gh.spmv(ch.recv, self._yg, False)
        return self._gs.sweep(xs, self._yg, x, self.inv, self._d, self._dm, self._p, self._q)

    def sweep(self, x, xs, y, d, base):
        if self.gs and not self._jacobi:
            self._d = float(d)
            return self._gs_sweep(x, xs)
        pl, k, ch = self.plan, self.k, self.ch
        if pl.n_send:
            if k.xp is np:
                np.take(xs, pl.send_idx, out=ch.send)
            else:
                ch.send[:] = k.host(xs[self._send_idx])
        ch.start()
        self.loc.spmv(xs, y, False)      # owned columns, while the exchange is in flight
        ch.wait()
        if self.fused:
            return self.gh.spmv_update(ch.recv, y, x, xs, self.inv, d, base)
        if pl.n_ghost:
            if k.xp is not np:
                self._recv_dev.set(ch.recv)
            self.gh.spmv(self._recv_dev, y, True)
        return self._update(y, x, xs, d, base)


class Pull2D(_Base):
    """2D block layout (see module docstring)."""

    layout = "2d"

    def __init__(self, g: Graph, backend: str, teleport: Teleport | None = None):
        super().__init__(g, backend, teleport)
        comm = self.comm
        p, r = comm.Get_size(), comm.Get_rank()
        pr, pc = grid_2d(p)
        i, j = divmod(r, pc)
        self.grid = (pr, pc)
        self.row_comm = comm.Split(i, j)
        self.col_comm = comm.Split(j, i)
        off = g.offsets
        sizes = np.diff(off)
        col_blocks = np.arange(pr) * pc + j                 # ranks of grid column j, by i
        self.col_counts = sizes[col_blocks].astype(np.int64)
        self.col_displs = np.concatenate(([0], np.cumsum(self.col_counts)[:-1])).astype(np.int64)
        base_of = np.zeros(p, dtype=np.int64)               # block k's start inside C_{k % pc}
        for jj in range(pc):
            blocks = np.arange(pr) * pc + jj
            base_of[blocks] = np.concatenate(([0], np.cumsum(sizes[blocks])[:-1]))
        self.row_counts = sizes[i * pc:(i + 1) * pc].astype(np.int64)
        r_lo = int(off[i * pc])
        r_len = int(self.row_counts.sum())
        # Route each in-edge (s -> d, d mine) to grid rank (i, owner(s) % pc).
        dglob = np.repeat(np.arange(g.lo, g.hi, dtype=np.int64), np.diff(g.in_indptr))
        s = g.in_indices
        own_s = g.owner(s)
        w = g.in_weights if g.weighted else np.ones(s.size)
        s_r, d_r, o_r, w_r = exchange_by_owner(comm, i * pc + own_s % pc, [s, dglob, own_s, w])
        rows = d_r - r_lo
        cols = s_r - off[o_r] + base_of[o_r]
        c_len = int(self.col_counts.sum())
        A = sp.csr_matrix((w_r, (rows, cols)), shape=(r_len, c_len))
        A.sum_duplicates()
        A.sort_indices()
        self.local_nnz = int(A.nnz)
        xp = self.k.xp
        self._yr = np.empty(r_len, dtype=np.float64)
        self.native = self.k.name == "native"
        if self.native:
            self._init_native(A, g.weighted)
        else:
            self.loc = self.k.local(A, values=g.weighted)
            self._xc = np.empty(c_len, dtype=np.float64)
        self._xc_dev = xp.empty(c_len, dtype=xp.float64) if xp is not np else self._xc
        self._yr_dev = xp.empty(r_len, dtype=xp.float64) if xp is not np else self._yr
        self._yown = np.empty(self.nlocal, dtype=np.float64)

    def _init_native(self, A: sp.csr_matrix, weighted: bool) -> None:
        """The native block product: the 1D sweep's SELL-4 layout (``_core.pagerank_2d.Block``:
        rows by length, columns renumbered by occurrence, weights included) bound to the
        all-gather's receive buffer and to the partial products; networkx's update with
        personalization / dangling vectors in one native pass (``update_teleport``)."""
        from hpc import _core

        c_len = A.shape[1]
        self._xc = np.empty(c_len, dtype=np.float64)     # the Allgatherv target
        vals = np.ascontiguousarray(A.data, dtype=np.float64) if weighted else np.empty(0)
        self._blk = _core.pagerank_2d.Block(
            np.ascontiguousarray(A.indptr, dtype=np.int64),
            np.ascontiguousarray(A.indices, dtype=np.int64), vals, int(c_len),
            xc=self._xc, y=self._yr)
        self._upd_tp = _core.pagerank_2d.update_teleport
        if self.general:
            shape = (self.nlocal,)
            self._p = np.ascontiguousarray(np.broadcast_to(self._pv, shape), dtype=np.float64)
            self._q = np.ascontiguousarray(np.broadcast_to(self._dv, shape), dtype=np.float64)

    def _update(self, y, x, xs, d, base):
        if self.native and self.general:
            return self._upd_tp(y, x, xs, self.inv, float(d), float(d) * self._dm, 1.0 - float(d),
                                self._p, self._q)
        return super()._update(y, x, xs, d, base)

    def sweep(self, x, xs, y, d, base):
        k = self.k
        self.col_comm.Allgatherv(np.ascontiguousarray(k.host(xs), dtype=np.float64),
                                 [self._xc, self.col_counts, self.col_displs, MPI.DOUBLE])
        if self.native:
            self._blk.spmv()
            self.row_comm.Reduce_scatter(self._yr, self._yown, self.row_counts, op=MPI.SUM)
            return self._update(self._yown, x, xs, d, base)
        if k.xp is not np:
            self._xc_dev.set(self._xc)
        self.loc.spmv(self._xc_dev, self._yr_dev, False)
        yr = k.host(self._yr_dev)
        self.row_comm.Reduce_scatter(np.ascontiguousarray(yr), self._yown, self.row_counts, op=MPI.SUM)
        if k.xp is not np:
            y.set(self._yown)
            return self._update(y, x, xs, d, base)
        return self._update(self._yown, x, xs, d, base)

    def free(self) -> None:
        self.row_comm.Free()
        self.col_comm.Free()


# --------------------------------------------------------------------------------------------
# the native 1D solver: balanced blocks, SELL-4 sweep, persistent exchange, piggy-backed sums
# --------------------------------------------------------------------------------------------
def balanced_offsets(comm, n: int, lo: int, cost: np.ndarray, slack: float = 0.0) -> np.ndarray:
    """Contiguous blocks of near-equal total cost; ``cost`` holds this rank's rows from lo on,
    the rows of all ranks in order cover 0..n-1 (collective: one Allgather, plus one Allreduce
    when the blocks move). With ``slack`` > 0 the current blocks are kept when the costliest
    holds at most (1 + slack) x the mean: every rank sees the same totals, so all agree."""
    p, r = comm.Get_size(), comm.Get_rank()
    csum = np.cumsum(np.asarray(cost, dtype=np.float64))
    mine = float(csum[-1]) if csum.size else 0.0
    both = np.empty((p, 2))
    comm.Allgather(np.array([mine, float(csum.size)]), both)
    total = float(both[:, 0].sum())
    if slack > 0.0 and both[:, 0].max() <= (1.0 + slack) * total / p:
        return np.concatenate(([0], np.cumsum(both[:, 1]))).astype(np.int64)
    before = float(both[:r, 0].sum())
    cuts = np.full(p - 1, -1, dtype=np.int64)
    targets = total * np.arange(1, p, dtype=np.float64) / p
    inside = (targets > before) & (targets <= before + mine)
    if inside.any():
        j = np.searchsorted(before + csum, targets[inside], side="left")
        cuts[inside] = lo + j + 1            # block k ends after the row that reaches target k
    out = np.empty_like(cuts)
    comm.Allreduce(cuts, out, op=MPI.MAX)
    if p > 1 and (out < 0).any():            # no cost at all: equal row blocks
        return block_offsets(n, p)
    off = np.concatenate(([0], out, [n])).astype(np.int64)
    return np.minimum(np.maximum.accumulate(off), n)


def move_blocks(comm, x: np.ndarray, src_off: np.ndarray, dst_off: np.ndarray) -> np.ndarray:
    """A vector distributed by contiguous blocks src_off, redistributed to blocks dst_off."""
    p, r = comm.Get_size(), comm.Get_rank()
    if p == 1 or np.array_equal(src_off, dst_off):
        return np.array(x, dtype=np.float64)
    sc, rc = _overlaps(src_off, dst_off, r)
    out = np.empty(int(dst_off[r + 1] - dst_off[r]), dtype=np.float64)
    comm.Alltoallv([np.ascontiguousarray(x, dtype=np.float64), sc, np.cumsum(sc) - sc, MPI.DOUBLE],
                   [out, rc, np.cumsum(rc) - rc, MPI.DOUBLE])
    return out


def _overlaps(src_off: np.ndarray, dst_off: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows rank r sends to each rank (its src block against every dst block) and receives
    from each (its dst block against every src block), when blocks src_off become dst_off."""
    lo, hi = int(src_off[r]), int(src_off[r + 1])
    dlo, dhi = int(dst_off[r]), int(dst_off[r + 1])
    sc = np.maximum(0, np.minimum(hi, dst_off[1:]) - np.maximum(lo, dst_off[:-1]))
    rc = np.maximum(0, np.minimum(dhi, src_off[1:]) - np.maximum(dlo, src_off[:-1]))
    return sc.astype(np.int64), rc.astype(np.int64)


def _rows_to(g: Graph, off: np.ndarray):
    """(in_indptr, in_indices, outdeg) of the vertices [off[r], off[r+1]) (collective: two
    Alltoallv, no count exchange: both block lists are known, and the rows' in-degrees,
    which travel first, give the edge counts)."""
    if np.array_equal(off, g.offsets):
        return g.in_indptr, g.in_indices, g.outdeg
    comm, r = g.comm, g.comm.Get_rank()
    srow, rrow = _overlaps(g.offsets, off, r)
    # Blocks are contiguous and in rank order: rank q's rows follow rank q-1's, both ways.
    meta = np.empty((g.nlocal, 2), dtype=np.int64)
    meta[:, 0] = np.diff(g.in_indptr)
    meta[:, 1] = g.outdeg
    rmeta = np.empty((int(rrow.sum()), 2), dtype=np.int64)
    comm.Alltoallv([meta, 2 * srow, 2 * (np.cumsum(srow) - srow), MPI.INT64_T],
                   [rmeta, 2 * rrow, 2 * (np.cumsum(rrow) - rrow), MPI.INT64_T])
    ip = np.asarray(g.in_indptr, dtype=np.int64)
    sedge = np.diff(ip[np.concatenate(([0], np.cumsum(srow)))])
    indptr = np.zeros(rmeta.shape[0] + 1, dtype=np.int64)
    np.cumsum(rmeta[:, 0], out=indptr[1:])
    redge = np.diff(indptr[np.concatenate(([0], np.cumsum(rrow)))])
    s = np.empty(int(indptr[-1]), dtype=np.int64)
    comm.Alltoallv([np.ascontiguousarray(g.in_indices, dtype=np.int64), sedge,
                    np.cumsum(sedge) - sedge, MPI.INT64_T],
                   [s, redge, np.cumsum(redge) - redge, MPI.INT64_T])
    return indptr, s, rmeta[:, 1].copy()


# Up to this many vertices the solver all-gathers the (in, out) degrees (16 bytes a vertex):
# one collective decides the blocks, and the rows then move in one Alltoallv.
_SMALL_N = 1 << 17


def _all_degrees(g: Graph) -> np.ndarray:
    """(n, 2) int64: in- and out-degree of every vertex, on every rank (one Allgatherv)."""
    mine = np.empty((g.nlocal, 2), dtype=np.int64)
    np.subtract(g.in_indptr[1:], g.in_indptr[:-1], out=mine[:, 0])
    np.subtract(g.out_indptr[1:], g.out_indptr[:-1], out=mine[:, 1])
    deg = np.empty((g.n, 2), dtype=np.int64)
    off2 = 2 * np.asarray(g.offsets, dtype=np.int64)
    g.comm.Allgatherv(mine, [deg, off2[1:] - off2[:-1], off2[:-1], MPI.INT64_T])
    return deg


def _cut(cost: np.ndarray, cur: np.ndarray, p: int, slack: float) -> np.ndarray:
    """balanced_offsets' blocks from the whole integer cost vector (every rank computes the
    same: integer sums are exact, so the cuts equal the distributed computation's)."""
    cs0 = np.zeros(cost.size + 1, dtype=np.int64)
    np.cumsum(cost, out=cs0[1:])
    csum, total = cs0[1:], int(cs0[-1])
    if total == 0:                           # no cost at all: equal row blocks
        return block_offsets(cost.size, p)
    loads = np.diff(cs0[np.asarray(cur, dtype=np.int64)])
    if slack > 0.0 and loads.max() <= (1.0 + slack) * total / p:
        return np.asarray(cur, dtype=np.int64)
    targets = total * np.arange(1, p, dtype=np.float64) / p
    cuts = np.searchsorted(csum, targets, side="left") + 1
    off = np.concatenate(([0], cuts, [cost.size])).astype(np.int64)
    return np.minimum(np.maximum.accumulate(off), cost.size)


def _rows_known(g: Graph, off: np.ndarray, deg: np.ndarray):
    """_rows_to when every rank has every degree: the edge counts are known, one Alltoallv."""
    if np.array_equal(off, g.offsets):
        return g.in_indptr, g.in_indices, g.outdeg
    comm, r = g.comm, g.comm.Get_rank()
    nlo, nhi = int(off[r]), int(off[r + 1])
    cs = np.zeros(g.n + 1, dtype=np.int64)
    np.cumsum(deg[:, 0], out=cs[1:])
    # edges I send to q: my rows inside q's new block; edges I get from q: my new rows
    # inside q's old block
    sedge = cs[np.clip(off[1:], g.lo, g.hi)] - cs[np.clip(off[:-1], g.lo, g.hi)]
    redge = cs[np.clip(g.offsets[1:], nlo, nhi)] - cs[np.clip(g.offsets[:-1], nlo, nhi)]
    s = np.empty(int(cs[nhi] - cs[nlo]), dtype=np.int64)
    comm.Alltoallv([np.ascontiguousarray(g.in_indices, dtype=np.int64), sedge,
                    np.cumsum(sedge) - sedge, MPI.INT64_T],
                   [s, redge, np.cumsum(redge) - redge, MPI.INT64_T])
    return cs[nlo:nhi + 1] - cs[nlo], s, deg[nlo:nhi, 1].copy()


_TAG = 0x5052          # the p2p exchange's messages ("PR"); one solve at a time per comm


class Native1D:
    """The native back end's 1D solver, built for a short iteration (few microseconds) and a
    short setup (a few collectives, one native call for the local numbering):

    - rows are re-balanced over the ranks by in-edges + 6 per row (a row costs about as much
      as 6 edges in the sweep; equal vertex blocks leave rank 0 of email-Eu-core four times
      the edges of rank 1), unless the blocks are already within 3% of the mean;
    - each rank numbers its rows by in-degree, descending, and sweeps them in SELL-4 chunks
      (``_core.pagerank.Sweep``): one call per iteration updates x, forms xs = x / outdeg,
      packs the send buffer and the partial sums (L1 change, dangling mass);
    - the ghost plan is :class:`hpc.core.exchange.GhostPlan` (ghost columns sorted, counts by
      Alltoall, the requested indices by Alltoallv), made from the column set alone, and the
      positions of every value in the buffers come from ``_core.pagerank.exchange_layout``;
      the exchange (a :class:`hpc.core.exchange.Transfer`) receives straight into the sweep's
      input vector, through persistent point-to-point requests (``exchange='p2p'``: no new
      communicator; the default up to 4 ranks) or one persistent neighbourhood collective
      (``'neighbor'``: ``Neighbor_alltoallv_init`` on a dist-graph communicator; the default
      above 4 ranks, as :func:`hpc.core.exchange.resolve_method` decides);
    - ``reduce='piggyback'`` (default up to 4 ranks): every rank sends to every other and the
      2 partial sums ride in each message, so an iteration has no Allreduce; the stopping test
      of iteration k then happens after the exchange of iteration k+1 (the iterate returned is
      still the first one whose change is below tol). ``reduce='allreduce'``: one Allgather of
      the 2-vectors per iteration, summed in rank order (the piggy-backed sums' order: the
      same bits as MPI's own reduction order would not give).
    - ``replicate`` (False by default here, 'auto' from :func:`make_solver`): on a graph so
      small that an iteration's exchange costs more than the sweep it splits, every rank
      iterates the whole graph alone (gathered once: no message at all while it solves) and
      keeps its block of the answer (``mode == 'replicated'``). 'auto' measures it: a few
      iterations of the distributed loop against a few sweeps of the whole graph, both timed
      on every rank (medians; the slowest rank counts, so all ranks agree); the whole graph
      is gathered only when the distributed iteration costs more than 0.75 p times a rank's
      sweep (an estimate of the whole graph's sweep) and has at most 2^24 entries, and kept
      when its sweep, timed, is faster than the distributed iteration ('auto' keeps a
      weighted graph distributed: its ranks' weight layouts may round differently). True:
      always (p > 1). The replicated rank sweeps the whole graph laid out as the ranks' blocks
      (``_core.pagerank.segmented_order``, ``Sweep.set_segments``): each block's rows in its
      rank's order, its partial sums per block and added in rank order, so both modes give
      the same iterates, bit for bit, and the timed choice changes only the speed.
    The result is returned in the graph's own vertex blocks. ``setup_times`` holds the
    seconds of each setup step on this rank.
    """

    layout = "1d"

    def __init__(self, g: Graph, backend: str = "native", reduce: str = "auto",
                 balance: bool = True, exchange: str = "auto",
                 teleport: Teleport | None = None, replicate: bool | str = False,
                 _segments: np.ndarray | None = None, _columns: str | None = None):
        from hpc import _core

        if reduce not in ("auto", "piggyback", "allreduce"):
            raise ValueError(f"reduce must be auto, piggyback or allreduce, got {reduce!r}")
        # checked before any request or communicator exists (one raised later leaked them)
        if replicate not in (False, True, "auto"):
            raise ValueError(f"replicate must be True, False or 'auto', got {replicate!r}")
        if exchange not in ("auto", "p2p", "neighbor"):
            raise ValueError(f"exchange must be auto, p2p or neighbor, got {exchange!r}")
        t_last = [time.perf_counter()]
        self.setup_times: dict[str, float] = {}

        def lap(name: str) -> None:
            t = time.perf_counter()
            self.setup_times[name] = t - t_last[0]
            t_last[0] = t

        self.g = g
        self.teleport = teleport or Teleport()
        comm = self.comm = g.comm
        p, r = comm.Get_size(), comm.Get_rank()
        if _segments is not None and p != 1:
            raise ValueError("_segments: for the whole graph on one rank (the replicated mode)")
        deg = None
        # a weighted graph keeps its blocks (its rows' weights do not travel with a re-balance)
        if not (balance and p > 1) or g.weighted:
            off = g.offsets
        elif g.n <= _SMALL_N:      # every rank gets every (in, out) degree: one collective
            deg = _all_degrees(g)
            off = _cut(deg[:, 0] + 6, g.offsets, p, slack=0.03)
        else:
            off = balanced_offsets(comm, g.n, g.lo, np.diff(g.in_indptr) + 6.0, slack=0.03)
        self.offsets = off
        lap("balance")
        indptr, indices, outdeg = _rows_to(g, off) if deg is None else _rows_known(g, off, deg)
        nlo, nhi = int(off[r]), int(off[r + 1])
        nl = self.nlocal = nhi - nlo
        lap("move_rows")
        # The ghost plan (core.exchange.GhostPlan on the column set alone: DistCSR's split of
        # the block into SciPy matrices and kernels would cost more than the rest of this
        # setup); the ghost columns and their counts per owner come from one native pass.
        cols = np.ascontiguousarray(indices, dtype=np.int64)
        gc, slot, recv_counts = _core.pagerank.ghost_columns(cols, nlo, nhi, g.n, off)
        lap("plan_ghosts")
        self.exchange = resolve_method(exchange, p)
        plan = GhostPlan(comm, gc, off, method=exchange, tag=_TAG, assume_unique=True,
                         recv_counts=recv_counts, validate=False)
        self.ghosts = plan.n_ghost
        lap("plan")
        self.mode = "local" if p == 1 else (
            "piggyback" if reduce == "piggyback" or (reduce == "auto" and p <= 4) else "allreduce")
        seg_rows = seg_starts = None
        if _segments is not None:
            # the whole graph as the ranks of blocks _segments order theirs, each block padded
            # to a multiple of 4 rows (Sweep.set_segments: the distributed iteration's bits)
            seg = np.ascontiguousarray(_segments, dtype=np.int64)
            order, seg_starts = _core.pagerank.segmented_order(
                indptr=np.ascontiguousarray(indptr, dtype=np.int64), indices=cols,
                outdeg=np.ascontiguousarray(outdeg, dtype=np.int64), offsets=seg,
                sort_rows=not g.weighted)
            seg_rows = np.diff(seg)
            nl = self.nlocal = int(order.perm.size)   # with the padding rows
        # neighbours (every other rank when piggy-backing, else the ranks with data), the
        # receive position of every ghost slot, the row and send position of every value sent
        lay = _core.pagerank.exchange_layout(
            recv_counts=plan.recv_counts, send_counts=plan.send_counts, send_idx=plan.send_idx,
            rank=r, nl=nl, piggyback=self.mode == "piggyback")
        if _segments is None:
            # internal order: in-degree descending (SELL-4 chunks of equal-length rows)
            order = _core.pagerank.local_order(
                indptr=np.ascontiguousarray(indptr, dtype=np.int64), indices=cols, nlo=nlo,
                nhi=nhi, slot=slot, ghost_pos=lay.ghost_pos, send_idx=lay.send_idx,
                outdeg=np.ascontiguousarray(outdeg, dtype=np.int64))
        self.perm, self.pos = order.perm, order.pos
        real = self.perm >= 0                 # padding rows (segments): perm -1
        rows = self.perm if _segments is None else np.where(real, self.perm, 0)
        if g.weighted:   # 1 / out-weight for the sweep (made from the order's inv_deg)
            strength = g.out_strength
            inv = np.zeros_like(strength)
            np.divide(1.0, strength, out=inv, where=strength > 0)
            order.inv_deg[:] = np.where(real, inv[rows], 0.0)
        R = int(lay.n_recv)
        self.xg = np.zeros(nl + R + 1)                # + the zero slot SELL padding reads
        self.recv = self.xg[nl:nl + R]
        self.x = np.empty(nl)
        self.send = np.zeros(int(lay.n_send))
        self.part = np.zeros(2)
        lap("local")
        # each row sorted by column (unweighted: and the columns packed as 16-bit deltas where
        # that pays; the weighted kernels read 32-bit columns); the replicated mode's rows come
        # sorted as the ranks sort theirs (segmented_order), so both modes give the same bits
        if _segments is not None:     # segmented_order sorted the rows as the ranks do
            columns = "as-given"
        elif g.weighted:              # its weights follow the order's indices (set_weights)
            columns = "sorted" if p == 1 else "as-given"
        else:
            columns = "auto"
        columns = _columns or columns
        self.sweep = _core.pagerank.Sweep(order, lay, xg=self.xg, x=self.x, send=self.send,
                                          part_out=self.part, columns=columns)
        if _segments is not None:
            self.sweep.set_segments(seg_starts, seg_rows)
        if g.weighted:   # the in-edges' weights in the order's entry order (rows permuted)
            lens = np.where(real, np.diff(indptr)[rows], 0)
            starts = np.asarray(indptr, dtype=np.int64)[:-1][rows]
            first = np.cumsum(lens) - lens
            idx = np.repeat(starts - first, lens) + np.arange(int(lens.sum()), dtype=np.int64)
            self.sweep.set_weights(order.indptr, np.ascontiguousarray(g.in_weights[idx],
                                                                      dtype=np.float64),
                                   indices=order.indices)
        if not self.teleport.uniform:   # personalization / dangling, in the sweep's row order
            tp = self.teleport
            pv = tp.personalization if tp.personalization is not None \
                else np.full(g.nlocal, 1.0 / g.n)
            qv = tp.dangling if tp.dangling is not None else pv
            self.sweep.set_teleport(
                np.ascontiguousarray(np.where(real, move_blocks(comm, pv, g.offsets, off)[rows], 0.0)),
                np.ascontiguousarray(np.where(real, move_blocks(comm, qv, g.offsets, off)[rows], 0.0)))
        lap("sell")
        # persistent p2p requests or one persistent neighbourhood collective (collective: also
        # on ranks without neighbours), straight from the sweep's buffers
        self.transfer = Transfer(comm, lay.sources, lay.recv_counts, lay.dests, lay.send_counts,
                                 self.recv, self.send, method=self.exchange, tag=_TAG)
        lap("exchange")
        self._red = np.zeros(2)
        self._parts = np.zeros((p, 2))      # every rank's partials ('allreduce' mode)
        self.relax = RELAX                  # relaxed steps (see RELAX)
        # the result goes back to the graph's blocks: persistent sends/receives between the
        # ranks whose blocks overlap (no collective to set up), this rank's own part copied
        self._xnat = np.empty(nl)
        self._x0 = np.full(nl, 1.0 / g.n)   # the start vector, made once (not a solve's work)
        self._move = None
        if not np.array_equal(off, g.offsets):
            self._xout = np.empty(g.nlocal)
            msc, mrc = _overlaps(off, g.offsets, r)
            msd, mrd = np.cumsum(msc) - msc, np.cumsum(mrc) - mrc
            self._self_move = (slice(int(msd[r]), int(msd[r] + msc[r])),
                               slice(int(mrd[r]), int(mrd[r] + mrc[r])))
            mv = [comm.Recv_init([self._xout[a:a + c], MPI.DOUBLE], int(q), _TAG + 1)
                  for q, (a, c) in enumerate(zip(mrd, mrc)) if c and q != r]
            mv += [comm.Send_init([self._xnat[a:a + c], MPI.DOUBLE], int(q), _TAG + 1)
                   for q, (a, c) in enumerate(zip(msd, msc)) if c and q != r]
            self._move = mv
        lap("result_move")
        self._rep = None
        self.probe: dict[str, float] = {}
        self.column_times: dict[str, float] = {}
        if self.sweep.column_choice:
            self._choose_columns()
            lap("columns")
        steps = self.sweep.probe_steps if self.mode == "local" else 0
        if steps:
            # the sweep's choice of threads (team or one, timed steps: the same bits either
            # way) made here, so a timed solve runs only the steps of its answer
            self.sweep.start(self._x0)
            self.sweep.run_local(0.85, float(g.n), -1.0, steps)
            lap("threads")
        if p > 1 and replicate:
            self._choose_replicated(replicate == "auto")
            lap("replicate")

    def _choose_columns(self) -> None:
        """The sweep kept its rows' columns both as 32-bit indices and as 16-bit deltas (the
        same sums): time this rank's local step with each (7 alternated runs a layout of at
        least ~2 ms or one step, their minimum: the layouts can differ by only ~5%, GAP's
        kron:17) and keep the faster. Each rank on its own: no message, and the bits do not
        depend on the choice."""
        k, n = self.sweep, float(self.g.n)
        k.start(self._x0)
        k.step_dm(0.85, 0.0, n)                     # warm
        t0 = time.perf_counter()
        k.step_dm(0.85, 0.0, n)
        reps = int(min(50, max(1, 2e-3 / max(time.perf_counter() - t0, 1e-9))))
        runs: dict[str, list[float]] = {"sorted32": [], "delta16": []}
        for _ in range(7):
            for which, ts in runs.items():
                k.column_layout = which
                t0 = time.perf_counter()
                for _ in range(reps):
                    k.step_dm(0.85, 0.0, n)
                ts.append((time.perf_counter() - t0) / reps)
        self.column_times = {w: min(ts) for w, ts in runs.items()}
        k.column_layout = min(self.column_times, key=self.column_times.__getitem__)
        k.keep_column_layout()

    def _exchange(self) -> None:
        if self.transfer.requests:            # one rank: nothing to call
            self.transfer.run()

    # -- replicated mode: every rank sweeps the whole (small) graph alone -----------------
    _REPLICATE_MAX_NNZ = 1 << 24    # a memory guard (p copies of the graph), no tuning

    def _dist_iteration(self, d: float, n: float) -> None:
        """One iteration of the distributed loop as solve runs it (probe; no stop test)."""
        if self.mode == "piggyback":
            self.transfer.start()
            self.transfer.wait()
            self.sweep.step_pb(d, n, 0.0, False)
        else:
            self._exchange()
            self.sweep.step_dm(d, float(self._red[1]), n)
            self._reduce()

    def _reduce(self) -> tuple[float, float]:
        """The global (change, dangling) of this rank's partials, in self._red: one Allgather
        and the sum in rank order (as global_prev adds the piggy-backed partials), so the bits
        do not depend on MPI's reduction order and equal the replicated mode's."""
        self.comm.Allgather(self.part, self._parts)
        c = m = 0.0
        for a, b in self._parts.tolist():
            c += a
            m += b
        self._red[0], self._red[1] = c, m
        return c, m

    def _time_steps(self, one: Callable[[], None], k: int) -> float:
        """Seconds of one call, the median of 5 runs of k calls after one call not timed
        (k equal on all ranks when ``one`` communicates). The median, not the minimum: a
        loaded machine's waits for a preempted rank are part of what the solve will meet."""
        one()
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(k):
                one()
            runs.append((time.perf_counter() - t0) / k)
        return float(np.median(runs))

    def _choose_replicated(self, measure: bool) -> None:
        """Decide (collectively, on measured times) whether every rank solves the whole graph;
        build that solver if so (see the class docstring)."""
        comm, g = self.comm, self.g
        p = comm.Get_size()
        n, d = float(g.n), 0.85
        k = self.sweep
        if measure:
            # weighted: the ranks' weight layouts (scales, refined or not) may differ from the
            # whole graph's, and with them the last bits; 'auto' keeps the distributed iteration
            if g.weighted:
                return
            nnz = comm.allreduce(int(g.in_indices.size), op=MPI.SUM)
            if nnz > self._REPLICATE_MAX_NNZ:    # never gathered: no probe (setup time)
                return
            k.start(self._x0)
            self._reduce()
            t0 = time.perf_counter()
            self._dist_iteration(d, n)             # also warms the loop; sizes the probe
            one = np.array([time.perf_counter() - t0])
            comm.Allreduce(MPI.IN_PLACE, one, op=MPI.MAX)
            reps = int(min(8, max(1, 1e-3 / max(float(one[0]), 1e-9))))  # ~1 ms a run at most
            t_dist = self._time_steps(lambda: self._dist_iteration(d, n), reps)
            t_step = self._time_steps(lambda: k.step_dm(d, 0.0, n), reps)
            t = np.array([t_dist, t_step])
            comm.Allreduce(MPI.IN_PLACE, t, op=MPI.MAX)
            self.probe = {"distributed_s": float(t[0]), "local_step_s": float(t[1])}
            # the whole graph's sweep against p times one rank's share (no split, no ghosts):
            # measured 0.8x on p2p-Gnutella08 and email-Eu-core (14.4 us against 2 x 9.0,
            # 9.0 against 2 x 5.6), 1.0x on kron:17 (2.3 ms against 2 x 1.2); gathered when
            # 0.75 x that is below the distributed iteration, then the whole graph's sweep
            # itself is timed and decides
            if not 0.75 * p * t[1] < t[0]:
                return
        whole = _whole_graph(g)
        tp = self.teleport
        wt = None if tp.uniform else Teleport(
            None if tp.personalization is None else _allgather_block(g, tp.personalization),
            None if tp.dangling is None else _allgather_block(g, tp.dangling))
        rep = Native1D(whole, teleport=wt, _segments=self.offsets)
        if measure:
            rk = rep.sweep
            rk.start(rep._x0)
            t_rep = np.array([self._time_steps(lambda: rk.step_dm(d, 0.0, n), reps)])
            comm.Allreduce(MPI.IN_PLACE, t_rep, op=MPI.MAX)
            self.probe["replicated_step_s"] = float(t_rep[0])
            if not t_rep[0] < self.probe["distributed_s"]:
                rep.free()
                return
        self._rep = rep
        self.mode = "replicated"

    def solve(self, damping: float, tol: float, max_iter: int,
              progress: Callable[[int, float], None] | None = None) -> Result:
        """As :meth:`_Base.solve` (the hot loop checks ``progress`` every
        ``PROGRESS_EVERY`` iterations only)."""
        if self._rep is not None:      # the whole graph on every rank: no message at all
            self._rep.relax = self.relax
            res = self._rep.solve(damping, tol, max_iter, progress)
            g = self.g
            return Result(res.x[g.lo:g.hi].copy(), res.iterations, res.l1_change,
                          res.converged, res.seconds, res.relaxed)
        n, d = float(self.g.n), float(damping)
        k = self.sweep
        k.start(self._x0)
        k.relax = self.relax           # piggyback and local: the sweep's own policy
        policy = None
        it, change, converged = 0, float("inf"), False
        t0 = time.perf_counter()
        if self.mode == "piggyback":
            start, wait = self.transfer.start, self.transfer.wait   # argument-free: hot path
            while it < max_iter:
                start()
                wait()
                stopped, change, _ = k.step_pb(d, n, tol, it > 0)
                if stopped:
                    converged = True
                    break
                it += 1
                if progress is not None and it % PROGRESS_EVERY == 0:
                    progress(it, change)
            if not converged:                          # the last step's change
                self._exchange()
                change = k.global_prev()[0]
                converged = change < tol
        elif self.mode == "local":     # one rank: the loop runs natively, in batches
            batch = PROGRESS_EVERY if progress is not None else max(max_iter, 1)
            while it < max_iter:
                steps, change, converged = k.run_local(d, n, tol, min(batch, max_iter - it))
                it += int(steps)
                if converged:
                    break
                if progress is not None:
                    progress(it, change)
        else:                          # 'allreduce': the partials gathered once a step
            reduce = self._reduce
            dangling = reduce()[1]
            policy = _relax_policy(d, self.relax)
            relax = False
            while it < max_iter:
                self._exchange()
                k.step_relax(d, dangling, n, relax)
                change, dangling = reduce()
                it += 1
                if change < tol:
                    converged = True
                    break
                relax = policy is not None and policy.next(change)
                if progress is not None and it % PROGRESS_EVERY == 0:
                    progress(it, change)
        secs = time.perf_counter() - t0
        relaxed = policy.relaxed if policy is not None else k.relaxed_steps
        if self._move is None:          # the scores in the graph's order: one pass, a new array
            return Result(self.x[self.pos], it, float(change), converged, secs, relaxed)
        np.take(self.x, self.pos, out=self._xnat)
        if self._move:
            MPI.Prequest.Startall(self._move)
        a, b = self._self_move
        self._xout[b] = self._xnat[a]
        if self._move:
            MPI.Request.Waitall(self._move)
        return Result(self._xout.copy(), it, float(change), converged, secs, relaxed)

    def residual(self, x_host: np.ndarray, damping: float) -> tuple[float, float]:
        """(||G(x) - x||_1, sum x) for the PageRank map G (collective; one more sweep)."""
        xb = move_blocks(self.comm, x_host, self.g.offsets, self.offsets)
        self.sweep.start(np.ascontiguousarray(xb[self.perm]))
        tot = self.comm.allreduce(np.array([float(self.part[1]), float(xb.sum())]), op=MPI.SUM)
        self._exchange()
        self.sweep.step_dm(float(damping), float(tot[0]), float(self.g.n))
        change = self.comm.allreduce(float(self.part[0]), op=MPI.SUM)
        return float(change), float(tot[1])

    def free(self) -> None:
        self.transfer.free()
        for r in self._move or []:
            r.Free()
        self._move = None
        if self._rep is not None:
            self._rep.free()


def _relax_policy(damping: float, on: bool):
    """A fresh relaxed-step policy for a solve (None: no relaxed steps)."""
    if not on:
        return None
    from hpc import _core

    return _core.pagerank.PeriodicRelax(float(damping))


def _allgather_block(g: Graph, v: np.ndarray) -> np.ndarray:
    """A vector in the graph's vertex blocks, whole on every rank (one Allgatherv)."""
    out = np.empty(g.n, dtype=np.float64)
    off = np.asarray(g.offsets, dtype=np.int64)
    g.comm.Allgatherv(np.ascontiguousarray(v, dtype=np.float64),
                      [out, off[1:] - off[:-1], off[:-1], MPI.DOUBLE])
    return out


def _whole_graph(g: Graph) -> Graph:
    """The whole graph on every rank, as a one-rank Graph on COMM_SELF (collective)."""
    comm = g.comm

    def cat(a, dtype, mpitype):
        a = np.ascontiguousarray(a, dtype=dtype)
        counts = np.array(comm.allgather(a.size), dtype=np.int64)
        out = np.empty(int(counts.sum()), dtype=dtype)
        comm.Allgatherv(a, [out, counts, np.cumsum(counts) - counts, mpitype])
        return out

    def ptr(indptr):
        deg = cat(np.diff(indptr), np.int64, MPI.INT64_T)
        out = np.zeros(deg.size + 1, dtype=np.int64)
        np.cumsum(deg, out=out[1:])
        return out

    w = g.weighted
    return Graph(comm=MPI.COMM_SELF, n=g.n, m=g.m, offsets=np.array([0, g.n], dtype=np.int64),
                 ids=cat(g.ids, np.int64, MPI.INT64_T),
                 out_indptr=ptr(g.out_indptr), out_indices=cat(g.out_indices, np.int64, MPI.INT64_T),
                 in_indptr=ptr(g.in_indptr), in_indices=cat(g.in_indices, np.int64, MPI.INT64_T),
                 source=g.source,
                 out_weights=cat(g.out_weights, np.float64, MPI.DOUBLE) if w else None,
                 in_weights=cat(g.in_weights, np.float64, MPI.DOUBLE) if w else None)


def make_solver(g: Graph, backend: str, layout: str = "1d", teleport: Teleport | None = None,
                sweep: str = "jacobi", **kw):
    """The pull operator of a layout ('1d' or '2d') on a back end; the native back end's 1D
    layout is :class:`Native1D` (``kw``: its reduce / balance / exchange / replicate options;
    replicate defaults to 'auto' here unless reduce or exchange is given) for Jacobi sweeps
    (any weights and teleport), else :class:`Pull1D` with the native kernels. ``sweep='gauss-seidel'`` (1D only): Gauss-Seidel inside each rank's block, the
    exchange between sweeps (as GAP's pr), stopping on the Jacobi residual."""
    if sweep not in SWEEPS:
        raise UsageError(f"sweep: expected one of {', '.join(SWEEPS)}, got {sweep!r}")
    if layout == "2d":
        if sweep != "jacobi":
            raise UsageError("sweep gauss-seidel: needs layout 1d (a 2D block's rows and "
                             "columns are different vertex sets)")
        return Pull2D(g, backend, teleport)
    if backend == "native" and sweep == "jacobi":
        # a requested exchange or reduction method asks for the distributed iteration; the
        # timed choice changes only the speed: both modes give the same bits (set_segments)
        kw.setdefault("replicate", False if {"reduce", "exchange"} & kw.keys() else "auto")
        return Native1D(g, backend, teleport=teleport, **kw)
    return Pull1D(g, backend, teleport, method=sweep)


def reference_pagerank(A: sp.csr_matrix, damping: float = 0.85, tol: float = 1e-15,
                       max_iter: int = 10_000, personalization: np.ndarray | None = None,
                       dangling: np.ndarray | None = None) -> np.ndarray:
    """Serial scipy power iteration with networkx's semantics (the oracle for --check):
    A's values are the edge weights; ``personalization`` / ``dangling``: the whole
    distributions (None: uniform; dangling None: the personalization)."""
    n = A.shape[0]
    deg = np.asarray(A.sum(axis=1)).ravel()
    inv = np.zeros(n)
    np.divide(1.0, deg, out=inv, where=deg > 0)
    P = sp.csr_matrix(A.multiply(inv[:, None]))
    PT = P.T.tocsr()
    dang = deg == 0
    pv = np.full(n, 1.0 / n) if personalization is None else np.asarray(personalization)
    dv = pv if dangling is None else np.asarray(dangling)
    x = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        xn = damping * (PT @ x) + damping * x[dang].sum() * dv + (1.0 - damping) * pv
        if np.abs(xn - x).sum() < tol:
            return xn
        x = xn
    return x
