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
        from hpc.sparse.dcsr import DistCSR

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


def make_solver(g: Graph, backend: str, layout: str = "1d"):
    """The pull operator of a layout ('1d' or '2d') on a back end."""
    return Pull2D(g, backend) if layout == "2d" else Pull1D(g, backend)


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
