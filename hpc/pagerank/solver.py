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

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hpc.core.partition import grid_2d
from hpc.sparse.dcsr import DistCSR  # at import: its import (~6 ms) is not solver setup

from .backends import make
from .graphio import Graph
from .shuffle import exchange


@dataclass
class Result:
    x: np.ndarray            # this rank's scores (host, float64)
    iterations: int
    l1_change: float
    converged: bool
    seconds: float           # the iteration loop, this rank


class _Base:
    """Shared state: back end, inverse out-degrees, vertex block of this rank."""

    def __init__(self, g: Graph, backend: str):
        self.g = g
        self.comm = g.comm
        self.k = make(backend)
        deg = g.outdeg.astype(np.float64)
        inv = np.zeros_like(deg)
        np.divide(1.0, deg, out=inv, where=deg > 0)
        self.inv = self.k.asarray(inv)
        self.nlocal = g.nlocal

    def solve(self, damping: float, tol: float, max_iter: int) -> Result:
        from mpi4py import MPI

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
        t0 = time.perf_counter()
        while it < max_iter:
            base = (damping * dangling + (1.0 - damping)) / n
            loc = self.sweep(x, xs, y, damping, base)
            self.comm.Allreduce(np.asarray(loc, dtype=np.float64), red, op=MPI.SUM)
            change, dangling = float(red[0]), float(red[1])
            it += 1
            if change < tol:
                converged = True
                break
        secs = time.perf_counter() - t0
        return Result(k.host(x).astype(np.float64, copy=False), it, change, converged, secs)

    def residual(self, x_host: np.ndarray, damping: float) -> tuple[float, float]:
        """(||G(x) - x||_1, sum x) for the PageRank map G (collective; one more sweep)."""
        from mpi4py import MPI

        k = self.k
        x = k.asarray(np.array(x_host, dtype=np.float64))
        xs = x * self.inv
        y = k.xp.empty(self.nlocal, dtype=k.xp.float64)
        dm = float(x[self.inv == 0.0].sum()) if self.nlocal else 0.0
        tot = self.comm.allreduce(np.array([dm, float(x.sum())]), op=MPI.SUM)
        base = (damping * tot[0] + (1.0 - damping)) / self.g.n
        loc = self.sweep(x, xs, y, damping, base)
        change = self.comm.allreduce(float(loc[0]), op=MPI.SUM)
        return float(change), float(tot[1])

    def sweep(self, x, xs, y, d, base):  # pragma: no cover - abstract
        raise NotImplementedError


class Pull1D(_Base):
    """1D row-block layout on hpc.sparse.DistCSR (see module docstring)."""

    layout = "1d"

    def __init__(self, g: Graph, backend: str):
        super().__init__(g, backend)
        T = sp.csr_matrix((np.ones(g.in_indices.size), g.in_indices, g.in_indptr),
                          shape=(g.nlocal, g.n))
        self.A = DistCSR.from_local(self.comm, T, (g.n, g.n), row_offsets=g.offsets,
                                    backend=self.k.sparse_kernel)
        # DistCSR's ghost plan and its split blocks (owned columns / ghost slots). The sweep
        # runs the exchange itself so that every back end can use its own pattern kernels
        # and the native one can fuse the ghost-column product with the update.
        pl = self.plan = self.A.plan()
        self.loc = self.k.local(self.A.A_loc)
        self.gh = self.k.local(self.A.A_gh)
        self.fused = self.k.name == "native"
        self._send = np.empty(pl.n_send, dtype=np.float64)
        self._recv = np.empty(pl.n_ghost, dtype=np.float64)
        xp = self.k.xp
        self._send_idx = self.k.asarray(pl.send_idx) if xp is not np else pl.send_idx
        self._recv_dev = xp.empty(pl.n_ghost, dtype=xp.float64) if xp is not np else self._recv
        rc = pl.recv_counts[pl.sources].astype(np.int64)
        sc = pl.send_counts[pl.dests].astype(np.int64)
        # (cumsum - counts: also right when a rank has no neighbour at all)
        self._rc, self._rd = rc, (np.cumsum(rc) - rc).astype(np.int64)
        self._sc, self._sd = sc, (np.cumsum(sc) - sc).astype(np.int64)
        self.ghosts = pl.n_ghost

    def free(self) -> None:
        self.A.free()

    def sweep(self, x, xs, y, d, base):
        from mpi4py import MPI

        pl, k = self.plan, self.k
        req = None
        if self.comm.Get_size() > 1:
            if k.xp is np:
                np.take(xs, pl.send_idx, out=self._send)
            else:
                self._send[:] = k.host(xs[self._send_idx])
            req = pl.graph.Ineighbor_alltoallv([self._send, self._sc, self._sd, MPI.DOUBLE],
                                               [self._recv, self._rc, self._rd, MPI.DOUBLE])
        self.loc.spmv(xs, y, False)      # owned columns, while the exchange is in flight
        if req is not None:
            req.Wait()
        if self.fused:
            return self.gh.spmv_update(self._recv, y, x, xs, self.inv, d, base)
        if pl.n_ghost:
            if k.xp is not np:
                self._recv_dev.set(self._recv)
            self.gh.spmv(self._recv_dev, y, True)
        return k.update(y, x, xs, self.inv, d, base)


class Pull2D(_Base):
    """2D block layout (see module docstring)."""

    layout = "2d"

    def __init__(self, g: Graph, backend: str):
        super().__init__(g, backend)
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
        s_r, d_r, o_r = exchange(comm, i * pc + own_s % pc, [s, dglob, own_s])
        rows = d_r - r_lo
        cols = s_r - off[o_r] + base_of[o_r]
        c_len = int(self.col_counts.sum())
        A = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(r_len, c_len))
        A.sum_duplicates()
        A.sort_indices()
        self.loc = self.k.local(A)
        self.local_nnz = int(A.nnz)
        xp = self.k.xp
        self._xc = np.empty(c_len, dtype=np.float64)
        self._yr = np.empty(r_len, dtype=np.float64)
        self._xc_dev = xp.empty(c_len, dtype=xp.float64) if xp is not np else self._xc
        self._yr_dev = xp.empty(r_len, dtype=xp.float64) if xp is not np else self._yr
        self._yown = np.empty(self.nlocal, dtype=np.float64)

    def sweep(self, x, xs, y, d, base):
        from mpi4py import MPI

        k = self.k
        self.col_comm.Allgatherv(np.ascontiguousarray(k.host(xs), dtype=np.float64),
                                 [self._xc, self.col_counts, self.col_displs, MPI.DOUBLE])
        if k.xp is not np:
            self._xc_dev.set(self._xc)
        self.loc.spmv(self._xc_dev, self._yr_dev, False)
        yr = k.host(self._yr_dev)
        self.row_comm.Reduce_scatter(np.ascontiguousarray(yr), self._yown, self.row_counts, op=MPI.SUM)
        if k.xp is not np:
            y.set(self._yown)
            return k.update(y, x, xs, self.inv, d, base)
        return k.update(self._yown, x, xs, self.inv, d, base)

    def free(self) -> None:
        self.row_comm.Free()
        self.col_comm.Free()


# --------------------------------------------------------------------------------------------
# the native 1D solver: balanced blocks, SELL-4 sweep, persistent exchange, piggy-backed sums
# --------------------------------------------------------------------------------------------
def balanced_offsets(comm, n: int, lo: int, cost: np.ndarray) -> np.ndarray:
    """Contiguous blocks of near-equal total cost; ``cost`` holds this rank's rows from lo on,
    the rows of all ranks in order cover 0..n-1 (collective)."""
    from mpi4py import MPI

    p = comm.Get_size()
    csum = np.cumsum(np.asarray(cost, dtype=np.float64))
    mine = float(csum[-1]) if csum.size else 0.0
    before = comm.exscan(mine, op=MPI.SUM)
    before = 0.0 if comm.Get_rank() == 0 or before is None else float(before)
    total = comm.allreduce(mine, op=MPI.SUM)
    cuts = np.full(p - 1, -1, dtype=np.int64)
    targets = total * np.arange(1, p, dtype=np.float64) / p
    inside = (targets > before) & (targets <= before + mine)
    if inside.any():
        j = np.searchsorted(before + csum, targets[inside], side="left")
        cuts[inside] = lo + j + 1            # block k ends after the row that reaches target k
    out = np.empty_like(cuts)
    comm.Allreduce(cuts, out, op=MPI.MAX)
    if p > 1 and (out < 0).any():            # no cost at all: equal row blocks
        from hpc.core.partition import block_offsets

        return block_offsets(n, p)
    off = np.concatenate(([0], out, [n])).astype(np.int64)
    return np.minimum(np.maximum.accumulate(off), n)


def move_blocks(comm, x: np.ndarray, src_off: np.ndarray, dst_off: np.ndarray) -> np.ndarray:
    """A vector distributed by contiguous blocks src_off, redistributed to blocks dst_off."""
    from mpi4py import MPI

    p, r = comm.Get_size(), comm.Get_rank()
    if p == 1 or np.array_equal(src_off, dst_off):
        return np.array(x, dtype=np.float64)
    lo, hi = int(src_off[r]), int(src_off[r + 1])
    dlo, dhi = int(dst_off[r]), int(dst_off[r + 1])
    sc = np.maximum(0, np.minimum(hi, dst_off[1:]) - np.maximum(lo, dst_off[:-1])).astype(np.int64)
    rc = np.maximum(0, np.minimum(dhi, src_off[1:]) - np.maximum(dlo, src_off[:-1])).astype(np.int64)
    out = np.empty(dhi - dlo, dtype=np.float64)
    comm.Alltoallv([np.ascontiguousarray(x, dtype=np.float64), sc, np.cumsum(sc) - sc, MPI.DOUBLE],
                   [out, rc, np.cumsum(rc) - rc, MPI.DOUBLE])
    return out


def _rows_to(g: Graph, off: np.ndarray):
    """(in_indptr, in_indices, outdeg) of the vertices [off[r], off[r+1]) (collective)."""
    if np.array_equal(off, g.offsets):
        return g.in_indptr, g.in_indices, g.outdeg
    comm, r = g.comm, g.comm.Get_rank()
    nlo, nhi = int(off[r]), int(off[r + 1])
    dglob = np.repeat(np.arange(g.lo, g.hi, dtype=np.int64), np.diff(g.in_indptr))
    own = np.searchsorted(off, dglob, side="right") - 1
    s, d = exchange(comm, own, [np.asarray(g.in_indices, dtype=np.int64), dglob])
    # Old blocks are contiguous and ranked in order, the exchange keeps each sender's order:
    # the edges arrive sorted by (destination, source) already.
    if d.size > 1 and not (np.all(d[1:] >= d[:-1])):
        order = np.lexsort((s, d))
        s, d = s[order], d[order]
    indptr = np.zeros(nhi - nlo + 1, dtype=np.int64)
    np.cumsum(np.bincount(d - nlo, minlength=nhi - nlo), out=indptr[1:])
    v = np.arange(g.lo, g.hi, dtype=np.int64)
    vv, dd = exchange(comm, np.searchsorted(off, v, side="right") - 1,
                      [v, g.outdeg.astype(np.int64)])
    outdeg = np.zeros(nhi - nlo, dtype=np.int64)
    outdeg[vv - nlo] = dd
    return indptr, s, outdeg


class Native1D:
    """The native back end's 1D solver, built for a short iteration (few microseconds):

    - rows are re-balanced over the ranks by in-edges + 6 per row (a row costs about as much
      as 6 edges in the sweep; equal vertex blocks leave rank 0 of email-Eu-core four times
      the edges of rank 1);
    - each rank numbers its rows by in-degree, descending, and sweeps them in SELL-4 chunks
      (``_core.pagerank.Sweep``): one call per iteration updates x, forms xs = x / outdeg,
      packs the send buffer and the partial sums (L1 change, dangling mass);
    - the ghost exchange is one persistent neighbourhood collective (``Neighbor_alltoallv_init``,
      planned by ``hpc.sparse.DistCSR``) that receives straight into the sweep's input vector;
    - ``reduce='piggyback'`` (default up to 4 ranks): every rank sends to every other and the
      2 partial sums ride in each message, so an iteration has no Allreduce; the stopping test
      of iteration k then happens after the exchange of iteration k+1 (the iterate returned is
      still the first one whose change is below tol). ``reduce='allreduce'``: one Allreduce of
      the 2-vector per iteration.
    The result is returned in the graph's own vertex blocks.
    """

    layout = "1d"

    def __init__(self, g: Graph, backend: str = "native", reduce: str = "auto",
                 balance: bool = True):
        from mpi4py import MPI

        from hpc import _core

        if reduce not in ("auto", "piggyback", "allreduce"):
            raise ValueError(f"reduce must be auto, piggyback or allreduce, got {reduce!r}")
        self.g = g
        comm = self.comm = g.comm
        p, r = comm.Get_size(), comm.Get_rank()
        self.k = make(backend)
        indeg = np.diff(g.in_indptr)
        off = balanced_offsets(comm, g.n, g.lo, indeg + 6.0) if balance and p > 1 else g.offsets
        self.offsets = off
        indptr, indices, outdeg = _rows_to(g, off)
        nlo, nhi = int(off[r]), int(off[r + 1])
        nl = self.nlocal = nhi - nlo
        # DistCSR plans the exchange from the set of ghost columns alone, so it gets each
        # ghost column once (in row 0): its split of the whole block would cost more than
        # the rest of this setup.
        cols = np.asarray(indices, dtype=np.int64)
        own = (cols >= nlo) & (cols < nhi)
        gc = np.unique(cols[~own])
        T = sp.csr_matrix((np.ones(gc.size), gc, np.r_[0, np.full(nl, gc.size)]), shape=(nl, g.n))
        # exchange="p2p": no dist-graph communicator of its own (we build ours below)
        A = DistCSR.from_local(comm, T, (g.n, g.n), row_offsets=off, backend="scipy",
                               exchange="p2p")
        pl = A.plan()
        del A, T
        self.ghosts = pl.n_ghost
        self.mode = "local" if p == 1 else (
            "piggyback" if reduce == "piggyback" or (reduce == "auto" and p <= 4) else "allreduce")
        extra = 2 if self.mode == "piggyback" else 0
        if self.mode == "piggyback":
            srcs = dsts = [q for q in range(p) if q != r]
        else:
            srcs, dsts = list(pl.sources), list(pl.dests)
        rc = np.array([pl.recv_counts[q] + extra for q in srcs], dtype=np.int64)
        sc = np.array([pl.send_counts[q] + extra for q in dsts], dtype=np.int64)
        rd, sd = np.cumsum(rc) - rc, np.cumsum(sc) - sc
        R = int(rc.sum())
        # ghost slot s (ghost_cols sorted, so grouped by owner) -> its receive position
        gdisp = np.cumsum(pl.recv_counts) - pl.recv_counts
        gpos = np.empty(pl.n_ghost, dtype=np.int64)
        for i, q in enumerate(srcs):
            c = int(pl.recv_counts[q])
            gpos[gdisp[q]:gdisp[q] + c] = rd[i] + np.arange(c)
        # internal order: in-degree descending (SELL-4 chunks of equal-length rows)
        perm = np.argsort(-np.diff(indptr), kind="stable")
        pos = np.empty(nl, dtype=np.int64)
        pos[perm] = np.arange(nl)
        self.perm, self.pos = perm, pos
        icol = np.empty(cols.size, dtype=np.int64)
        icol[own] = pos[cols[own] - nlo]
        icol[~own] = nl + gpos[np.searchsorted(pl.ghost_cols, cols[~own])]
        ncols = nl + R + 1                            # + the zero slot SELL padding reads
        M = sp.csr_matrix((np.ones(cols.size), icol, indptr), shape=(nl, ncols))[perm]
        inv = np.zeros(nl)
        np.divide(1.0, outdeg, out=inv, where=outdeg > 0)
        self.xg = np.zeros(ncols)
        self.recv = self.xg[nl:nl + R]
        self.x = np.empty(nl)
        self.send = np.zeros(int(sc.sum()))
        self.part = np.zeros(2)
        sdisp = np.cumsum(pl.send_counts) - pl.send_counts
        pack_idx = np.empty(pl.n_send, dtype=np.int32)
        pack_pos = np.empty(pl.n_send, dtype=np.int64)
        for i, q in enumerate(dsts):
            c = int(pl.send_counts[q])
            pack_idx[sdisp[q]:sdisp[q] + c] = pos[pl.send_idx[sdisp[q]:sdisp[q] + c]]
            pack_pos[sdisp[q]:sdisp[q] + c] = sd[i] + np.arange(c)
        if extra:
            part_pos = (sd + sc - 2).astype(np.int64)
            rpart_pos = (nl + rd + rc - 2).astype(np.int64)
        else:
            part_pos = rpart_pos = np.empty(0, dtype=np.int64)
        self.sweep = _core.pagerank.Sweep(
            np.ascontiguousarray(M.indptr, dtype=np.int64),
            np.ascontiguousarray(M.indices, dtype=np.int32), ncols, self.xg, self.x, inv[perm],
            self.send, pack_idx, pack_pos, part_pos, rpart_pos, r if extra else 0, self.part)
        self.req = self.gcomm = None
        if p > 1:        # collective: also on ranks without neighbours
            self.gcomm = comm.Create_dist_graph_adjacent(srcs, dsts, reorder=False)
            self.req = self.gcomm.Neighbor_alltoallv_init(
                [self.send, sc, sd, MPI.DOUBLE], [self.recv, rc, rd, MPI.DOUBLE])
        self._red = np.zeros(2)
        # the result goes back to the graph's blocks through one persistent Alltoallv
        self._xnat = np.empty(nl)
        self._move = None
        if not np.array_equal(off, g.offsets):
            glo, ghi = g.lo, g.hi
            self._xout = np.empty(ghi - glo)
            msc = np.maximum(0, np.minimum(nhi, g.offsets[1:]) - np.maximum(nlo, g.offsets[:-1]))
            mrc = np.maximum(0, np.minimum(ghi, off[1:]) - np.maximum(glo, off[:-1]))
            msc, mrc = msc.astype(np.int64), mrc.astype(np.int64)
            self._move = comm.Alltoallv_init([self._xnat, msc, np.cumsum(msc) - msc, MPI.DOUBLE],
                                             [self._xout, mrc, np.cumsum(mrc) - mrc, MPI.DOUBLE])

    def _exchange(self) -> None:
        if self.req is not None:
            self.req.Start()
            self.req.Wait()

    def solve(self, damping: float, tol: float, max_iter: int) -> Result:
        from mpi4py import MPI

        n, d = float(self.g.n), float(damping)
        k, comm = self.sweep, self.comm
        k.start(np.full(self.nlocal, 1.0 / n))
        it, change, converged = 0, float("inf"), False
        t0 = time.perf_counter()
        if self.mode == "piggyback":
            exch = self.req
            while it < max_iter:
                exch.Start()
                exch.Wait()
                stopped, change, _ = k.step_pb(d, n, tol, it > 0)
                if stopped:
                    converged = True
                    break
                it += 1
            if not converged:                          # the last step's change
                self._exchange()
                change = k.global_prev()[0]
                converged = change < tol
        else:
            part, red = self.part, self._red
            if self.mode == "local":
                dangling = float(part[1])
            else:
                comm.Allreduce(part, red, op=MPI.SUM)
                dangling = float(red[1])
            while it < max_iter:
                self._exchange()
                k.step(d, (d * dangling + (1.0 - d)) / n)
                if self.mode == "local":
                    change, dangling = float(part[0]), float(part[1])
                else:
                    comm.Allreduce(part, red, op=MPI.SUM)
                    change, dangling = float(red[0]), float(red[1])
                it += 1
                if change < tol:
                    converged = True
                    break
        secs = time.perf_counter() - t0
        np.take(self.x, self.pos, out=self._xnat)
        if self._move is None:
            return Result(self._xnat.copy(), it, float(change), converged, secs)
        self._move.Start()
        self._move.Wait()
        return Result(self._xout.copy(), it, float(change), converged, secs)

    def residual(self, x_host: np.ndarray, damping: float) -> tuple[float, float]:
        """(||G(x) - x||_1, sum x) for the PageRank map G (collective; one more sweep)."""
        from mpi4py import MPI

        xb = move_blocks(self.comm, x_host, self.g.offsets, self.offsets)
        self.sweep.start(np.ascontiguousarray(xb[self.perm]))
        tot = self.comm.allreduce(np.array([float(self.part[1]), float(xb.sum())]), op=MPI.SUM)
        self._exchange()
        self.sweep.step(float(damping), (damping * tot[0] + (1.0 - damping)) / self.g.n)
        change = self.comm.allreduce(float(self.part[0]), op=MPI.SUM)
        return float(change), float(tot[1])

    def free(self) -> None:
        for r in (self.req, self._move):
            if r is not None:
                r.Free()
        self.req = self._move = None
        if self.gcomm is not None:
            self.gcomm.Free()
            self.gcomm = None


def make_solver(g: Graph, backend: str, layout: str = "1d", **kw):
    """The pull operator of a layout ('1d' or '2d') on a back end; the native back end's 1D
    layout is :class:`Native1D` (``kw``: its reduce / balance options)."""
    if layout == "2d":
        return Pull2D(g, backend)
    if backend == "native":
        return Native1D(g, backend, **kw)
    return Pull1D(g, backend)


def reference_pagerank(A: sp.csr_matrix, damping: float = 0.85, tol: float = 1e-15,
                       max_iter: int = 10_000) -> np.ndarray:
    """Serial scipy power iteration with networkx's semantics (the oracle for --check)."""
    n = A.shape[0]
    deg = np.asarray(A.sum(axis=1)).ravel()
    inv = np.zeros(n)
    np.divide(1.0, deg, out=inv, where=deg > 0)
    P = sp.csr_matrix(A.multiply(inv[:, None]))
    PT = P.T.tocsr()
    dang = deg == 0
    x = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        xn = damping * (PT @ x) + (damping * x[dang].sum() + 1.0 - damping) / n
        if np.abs(xn - x).sum() < tol:
            return xn
        x = xn
    return x
