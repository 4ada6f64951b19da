"""Distributed CSR: a 1D row-block partition with a ghost-column exchange plan built once.

Rank r owns rows [row_offsets[r], row_offsets[r+1]) as a SciPy CSR block with GLOBAL column
indices (``local``). Vectors in the domain (x of y = A x) are distributed by ``col_offsets``
(a contiguous partition of the columns; equal to row_offsets for a square matrix).

SpMV splits the block into the columns this rank owns (``A_loc``, local indices) and the ghost
columns it must receive (``A_gh``, compressed to ghost slots). The communication plan is made
once, on the first SpMV: each rank lists the ghost columns it needs, the counts are exchanged
with Alltoall and the index lists with Alltoallv, and the steady state is one non-blocking
neighbourhood collective (Ineighbor_alltoallv on a dist-graph communicator) or, with
``exchange="p2p"``, Isend/Irecv pairs; the local product runs while the exchange is in flight.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from hpc.core.partition import block_offsets, exchange_by_owner

from .kernels import KERNELS, LocalKernel, default_backend, make_kernel


def _as_offsets(off, n: int, p: int) -> np.ndarray:
    off = np.asarray(off, dtype=np.int64)
    if off.shape != (p + 1,) or off[0] != 0 or off[-1] != n or np.any(np.diff(off) < 0):
        raise ValueError(f"bad offsets {off.tolist()} for {n} items on {p} ranks")
    return off


def _canonical(local) -> sp.csr_matrix:
    A = sp.csr_matrix(local)
    if not A.has_canonical_format:
        A.sum_duplicates()  # also sorts indices
    A.sort_indices()
    return A


@dataclass
class GhostPlan:
    """Who sends what to whom in an SpMV; built once per matrix (collective)."""

    ghost_cols: np.ndarray      # sorted global column ids this rank receives
    recv_counts: np.ndarray     # per rank (length p)
    send_counts: np.ndarray     # per rank (length p)
    send_idx: np.ndarray        # local indices (into x_local) to pack, grouped by destination
    sources: list[int]          # ranks we receive from (recv_counts > 0), ascending
    dests: list[int]            # ranks we send to (send_counts > 0), ascending
    graph: Any = None           # dist-graph communicator (neighbor mode)

    @property
    def n_ghost(self) -> int:
        return int(self.ghost_cols.size)

    @property
    def n_send(self) -> int:
        return int(self.send_idx.size)


class DistCSR:
    """A sparse matrix distributed by contiguous row blocks (see module docstring)."""

    def __init__(self, comm, local, shape: tuple[int, int], row_offsets=None, col_offsets=None,
                 backend: str | None = None, exchange: str = "neighbor"):
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.shape = (int(shape[0]), int(shape[1]))
        p = self.size
        self.row_offsets = _as_offsets(block_offsets(self.shape[0], p) if row_offsets is None
                                       else row_offsets, self.shape[0], p)
        if col_offsets is None:
            col_offsets = (self.row_offsets if self.shape[0] == self.shape[1]
                           else block_offsets(self.shape[1], p))
        self.col_offsets = _as_offsets(col_offsets, self.shape[1], p)
        A = _canonical(local)
        lo, hi = self.row_range
        if A.shape != (hi - lo, self.shape[1]):
            raise ValueError(f"local block has shape {A.shape}, expected {(hi - lo, self.shape[1])}")
        self.local = A
        self.backend = backend or default_backend()
        if self.backend not in KERNELS:
            raise ValueError(f"unknown back end {self.backend!r}")
        if exchange not in ("neighbor", "p2p"):
            raise ValueError("exchange must be 'neighbor' or 'p2p'")
        self.exchange = exchange
        self._plan: GhostPlan | None = None
        self._aligned = bool(self.shape[0] == self.shape[1]
                             and np.array_equal(self.row_offsets, self.col_offsets))
        self._nnz = int(comm.allreduce(int(A.nnz)))  # eager: a lazy collective is a trap
        self.grid: tuple[int, ...] | None = None   # set by the structured generators
        self.stencil: str | None = None

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_local(cls, comm, local_csr, shape, **kw) -> "DistCSR":
        """Wrap this rank's rows (global column indices); row partition = block_offsets."""
        return cls(comm, local_csr, shape, **kw)

    @classmethod
    def from_global_scipy(cls, comm, A, **kw) -> "DistCSR":
        """Every rank holds the same global A and keeps its own rows (for tests and small inputs)."""
        A = sp.csr_matrix(A)
        off = kw.pop("row_offsets", None)
        off = block_offsets(A.shape[0], comm.Get_size()) if off is None else np.asarray(off)
        r = comm.Get_rank()
        return cls(comm, A[int(off[r]):int(off[r + 1])], A.shape, row_offsets=off, **kw)

    # -- properties -------------------------------------------------------------------
    @property
    def row_range(self) -> tuple[int, int]:
        return int(self.row_offsets[self.rank]), int(self.row_offsets[self.rank + 1])

    @property
    def col_range(self) -> tuple[int, int]:
        return int(self.col_offsets[self.rank]), int(self.col_offsets[self.rank + 1])

    @property
    def local_rows(self) -> int:
        lo, hi = self.row_range
        return hi - lo

    @property
    def local_cols(self) -> int:
        lo, hi = self.col_range
        return hi - lo

    @property
    def nnz(self) -> int:
        """Global number of stored entries (computed at construction)."""
        return self._nnz

    @property
    def dtype(self):
        return self.local.dtype

    def __repr__(self) -> str:
        return (f"DistCSR(shape={self.shape}, local_rows={self.local_rows}, "
                f"local_nnz={self.local.nnz}, ranks={self.size}, backend={self.backend})")

    # -- the ghost plan ---------------------------------------------------------------
    def plan(self) -> GhostPlan:
        """The SpMV communication plan and split local blocks (collective, built once)."""
        if self._plan is None:
            self._build_plan()
        return self._plan

    def _build_plan(self) -> None:
        from mpi4py import MPI

        comm, p = self.comm, self.size
        clo, chi = self.col_range
        A = self.local
        cols = A.indices.astype(np.int64, copy=False)
        own = (cols >= clo) & (cols < chi)
        ghost_cols = np.unique(cols[~own])
        owners = np.searchsorted(self.col_offsets, ghost_cols, side="right") - 1
        recv_counts = np.bincount(owners, minlength=p).astype(np.int64)
        send_counts = np.empty(p, dtype=np.int64)
        comm.Alltoall(recv_counts, send_counts)
        need = np.empty(int(send_counts.sum()), dtype=np.int64)
        rdispl = np.concatenate(([0], np.cumsum(recv_counts)[:-1]))
        sdispl = np.concatenate(([0], np.cumsum(send_counts)[:-1]))
        comm.Alltoallv([ghost_cols, recv_counts, rdispl, MPI.INT64_T],
                       [need, send_counts, sdispl, MPI.INT64_T])
        send_idx = need - clo
        if send_idx.size and (send_idx.min() < 0 or send_idx.max() >= chi - clo):
            raise RuntimeError("ghost plan: a rank asked for a column it does not own")
        sources = [int(r) for r in np.flatnonzero(recv_counts)]
        dests = [int(r) for r in np.flatnonzero(send_counts)]
        graph = None
        if self.exchange == "neighbor" and p > 1:
            graph = comm.Create_dist_graph_adjacent(sources, dests, reorder=False)
        self._plan = GhostPlan(ghost_cols, recv_counts, send_counts, send_idx, sources, dests, graph)
        # Split the block: owned columns (local numbering) and ghost columns (slot numbering).
        rows = np.repeat(np.arange(A.shape[0], dtype=np.int64), np.diff(A.indptr))
        nl = A.shape[0]
        a_loc = sp.csr_matrix((A.data[own], (rows[own], cols[own] - clo)), shape=(nl, chi - clo))
        slots = np.searchsorted(ghost_cols, cols[~own])
        a_gh = sp.csr_matrix((A.data[~own], (rows[~own], slots)), shape=(nl, ghost_cols.size))
        self.A_loc, self.A_gh = _canonical(a_loc), _canonical(a_gh)
        # The ghost kernel stores only the rows that have ghost entries (a stencil's block
        # boundary: N^2 of N^3/p rows), so y += A_gh g costs O(those rows), not a pass over y.
        self._gh_rows = np.flatnonzero(np.diff(self.A_gh.indptr)).astype(np.int64)
        self._make_kernels()
        xp = self._xp()
        self._sendbuf = np.empty(send_idx.size, dtype=np.float64)
        self._recvbuf = np.empty(ghost_cols.size, dtype=np.float64)
        self._send_idx_dev = xp.asarray(send_idx) if xp is not np else send_idx
        # Per-neighbour counts and displacements, in the graph's neighbour order.
        self._n_rc = recv_counts[sources].astype(np.int64)
        self._n_rd = (np.cumsum(self._n_rc) - self._n_rc).astype(np.int64)
        self._n_sc = send_counts[dests].astype(np.int64)
        self._n_sd = (np.cumsum(self._n_sc) - self._n_sc).astype(np.int64)
        # Ghost slots are sorted by column, hence grouped by owner rank in ascending order,
        # which is the order of `sources`; pack order is by destination ascending (= dests).
        if xp is not np:
            self._ghost_dev = xp.empty(ghost_cols.size, dtype=xp.float64)

    def _make_kernels(self) -> None:
        self._k_loc: LocalKernel = make_kernel(self.backend, self.A_loc)
        self._k_gh: LocalKernel | None = None
        if self.A_gh.nnz:
            self._k_gh = make_kernel(self.backend, self.A_gh[self._gh_rows], rows=self._gh_rows,
                                     nout=self.A_gh.shape[0])

    def _xp(self):
        if self.backend == "cupy":
            import cupy

            return cupy
        return np

    # -- products ---------------------------------------------------------------------
    def _start_exchange(self, x_local):
        from mpi4py import MPI

        pl = self._plan
        if pl.n_send:
            if self.backend == "cupy":
                self._sendbuf[:] = x_local[self._send_idx_dev].get()
            else:
                np.take(x_local, pl.send_idx, out=self._sendbuf)
        if self.size == 1 or not (pl.sources or pl.dests):
            return []
        if self.exchange == "neighbor":
            req = pl.graph.Ineighbor_alltoallv(
                [self._sendbuf, self._n_sc, self._n_sd, MPI.DOUBLE],
                [self._recvbuf, self._n_rc, self._n_rd, MPI.DOUBLE])
            return [req]
        reqs = []
        tag = 0x5B3
        for i, r in enumerate(pl.sources):
            lo = int(self._n_rd[i])
            reqs.append(self.comm.Irecv([self._recvbuf[lo:lo + int(self._n_rc[i])], MPI.DOUBLE], r, tag))
        for i, r in enumerate(pl.dests):
            lo = int(self._n_sd[i])
            reqs.append(self.comm.Isend([self._sendbuf[lo:lo + int(self._n_sc[i])], MPI.DOUBLE], r, tag))
        return reqs

    def spmv(self, x_local, out=None):
        """y_local = (A x)[own rows]; x_local is this rank's slice of x (col_offsets). Collective."""
        return self._product(x_local, out, False)[0]

    def spmv_dot(self, x_local, out=None):
        """(y_local, x_local . y_local) with y = A x: the product and this rank's part of the
        dot product x.Ax (CG's p.Ap), the native kernel computing both in one pass. Needs a
        square matrix whose row and column partitions agree. Collective (the product)."""
        if not self._aligned:
            raise ValueError("spmv_dot needs a square matrix with equal row and column partitions")
        return self._product(x_local, out, True)

    def _product(self, x_local, out, with_dot: bool):
        from mpi4py import MPI

        if self._plan is None:
            self._build_plan()
        xp = self._xp()
        if x_local.shape != (self.local_cols,):
            raise ValueError(f"spmv: x_local has shape {x_local.shape}, expected ({self.local_cols},)")
        if x_local.dtype != np.float64:
            x_local = x_local.astype(np.float64)
        y = out if out is not None else xp.empty(self.local_rows, dtype=np.float64)
        reqs = self._start_exchange(x_local)
        dot = 0.0
        if with_dot:   # overlaps the exchange
            dot = self._k_loc.matvec_dot(x_local, y, x_local, accumulate=False)
        else:
            self._k_loc.matvec(x_local, y, accumulate=False)
        if reqs:
            MPI.Request.Waitall(reqs)
        if self._k_gh is not None:
            g = self._recvbuf
            if xp is not np:
                self._ghost_dev.set(self._recvbuf)
                g = self._ghost_dev
            if with_dot:
                dot += self._k_gh.matvec_dot(g, y, x_local, accumulate=True)
            else:
                self._k_gh.matvec(g, y, accumulate=True)
        return y, float(dot)

    __matmul__ = spmv

    def set_backend(self, backend: str) -> "DistCSR":
        """Switch the local kernel (rebuilds the kernels, keeps the plan)."""
        if backend not in KERNELS:
            raise ValueError(f"unknown back end {backend!r}")
        if backend != self.backend:
            self.backend = backend
            if self._plan is not None:
                self._make_kernels()
                if backend == "cupy":
                    xp = self._xp()
                    self._send_idx_dev = xp.asarray(self._plan.send_idx)
                    self._ghost_dev = xp.empty(self._plan.n_ghost, dtype=xp.float64)
        return self

    # -- other operations -------------------------------------------------------------
    def diagonal(self) -> np.ndarray:
        """A[i, i] for this rank's rows (zeros where not stored or i >= n_cols)."""
        lo, hi = self.row_range
        d = np.zeros(hi - lo, dtype=np.float64)
        A = self.local
        rows = np.repeat(np.arange(hi - lo, dtype=np.int64), np.diff(A.indptr))
        m = A.indices == rows + lo
        np.add.at(d, rows[m], A.data[m])
        return d

    def gather(self, root: int = 0) -> sp.csr_matrix | None:
        """The whole matrix as SciPy CSR on root (None elsewhere). Collective."""
        from mpi4py import MPI

        comm = self.comm
        A = self.local
        counts = np.array(comm.gather(int(A.nnz), root=root) or [], dtype=np.int64)
        rowlens = np.diff(A.indptr).astype(np.int64)
        if self.rank == root:
            nnz = int(counts.sum())
            indices = np.empty(nnz, dtype=np.int64)
            data = np.empty(nnz, dtype=np.float64)
            lens = np.empty(self.shape[0], dtype=np.int64)
            rc = np.diff(self.row_offsets)
            dsp = np.concatenate(([0], np.cumsum(counts)[:-1]))
            rdsp = self.row_offsets[:-1]
        else:
            indices = data = lens = None
            counts = dsp = rc = rdsp = None
        comm.Gatherv(rowlens, [lens, rc, rdsp, MPI.INT64_T] if self.rank == root else None, root=root)
        comm.Gatherv(A.indices.astype(np.int64),
                     [indices, counts, dsp, MPI.INT64_T] if self.rank == root else None, root=root)
        comm.Gatherv(np.ascontiguousarray(A.data, dtype=np.float64),
                     [data, counts, dsp, MPI.DOUBLE] if self.rank == root else None, root=root)
        if self.rank != root:
            return None
        indptr = np.concatenate(([0], np.cumsum(lens)))
        return sp.csr_matrix((data, indices, indptr), shape=self.shape)

    def transpose(self) -> "DistCSR":
        """A^T, its rows partitioned like A's columns (collective all-to-all of the entries)."""
        comm = self.comm
        A = self.local.tocoo()
        lo, _ = self.row_range
        gi = A.row.astype(np.int64) + lo
        gj = A.col.astype(np.int64)
        dest = np.searchsorted(self.col_offsets, gj, side="right") - 1
        ri, rj, rv = exchange_by_owner(comm, dest, [gj, gi, A.data.astype(np.float64)])
        tlo, thi = self.col_range
        T = sp.csr_matrix((rv, (ri - tlo, rj)), shape=(thi - tlo, self.shape[0]))
        return DistCSR(comm, T, (self.shape[1], self.shape[0]), row_offsets=self.col_offsets,
                       col_offsets=self.row_offsets, backend=self.backend, exchange=self.exchange)

    # -- vectors ----------------------------------------------------------------------
    def local_slice(self, x_global: np.ndarray, rows: bool = True) -> np.ndarray:
        """This rank's part of a global vector (row partition, or column partition)."""
        lo, hi = self.row_range if rows else self.col_range
        return np.array(x_global[lo:hi], dtype=np.float64)

    def gather_vector(self, v_local: np.ndarray, root: int | None = 0) -> np.ndarray | None:
        """Concatenate row-distributed pieces on root (root=None: on every rank)."""
        from mpi4py import MPI

        v_local = np.ascontiguousarray(v_local, dtype=np.float64)
        counts = np.diff(self.row_offsets)
        if root is None:
            out = np.empty(self.shape[0], dtype=np.float64)
            self.comm.Allgatherv(v_local, [out, counts, self.row_offsets[:-1], MPI.DOUBLE])
            return out
        out = np.empty(self.shape[0], dtype=np.float64) if self.rank == root else None
        self.comm.Gatherv(v_local, [out, counts, self.row_offsets[:-1], MPI.DOUBLE]
                          if self.rank == root else None, root=root)
        return out

    def spmv_traffic_bytes(self) -> int:
        """This rank's minimal memory traffic of one SpMV with the kernels' own dtypes (see
        LocalKernel.traffic_bytes): the owned block plus the ghost block (its stored rows
        read-modify-write y); the ghost exchange itself is not counted. Builds the plan."""
        self.plan()
        b = self._k_loc.traffic_bytes()
        return b + (self._k_gh.traffic_bytes() if self._k_gh is not None else 0)

    def free(self) -> None:
        """Release the dist-graph communicator (optional; also released at exit)."""
        if self._plan is not None and self._plan.graph is not None:
            self._plan.graph.Free()
            self._plan.graph = None


def pdot(comm, x, y) -> float:
    """Global dot product of row-distributed vectors (one Allreduce)."""
    return float(comm.allreduce(float(x @ y)))


def pnorm(comm, x) -> float:
    return float(np.sqrt(pdot(comm, x, x)))
