"""Distributed CSR: a 1D row-block partition with a ghost-column exchange plan built once.

Rank r owns rows [row_offsets[r], row_offsets[r+1]) as a SciPy CSR block with GLOBAL column
indices (``local``). Vectors in the domain (x of y = A x) are distributed by ``col_offsets``
(a contiguous partition of the columns; equal to row_offsets for a square matrix).

Vectors are plain NumPy arrays, one block per rank: ``x_local`` of ``y_local = A.matvec(x_local)``
is this rank's slice ``x[col_offsets[r]:col_offsets[r+1]]`` of the global x, and ``y_local`` its
slice ``y[row_offsets[r]:row_offsets[r+1]]``. :meth:`DistCSR.local_slice` cuts a global vector
into this rank's block, :meth:`DistCSR.gather_vector` joins the blocks again.

SpMV splits the block into the columns this rank owns (``A_loc``, local indices) and the ghost
columns it must receive (``A_gh``, compressed to ghost slots). The communication plan is made
once, on the first SpMV: a :class:`hpc.core.exchange.GhostPlan` over the ghost columns (counts by
Alltoall, index lists by Alltoallv), and the steady state is one persistent neighbourhood
collective on a dist-graph communicator or, with ``exchange="p2p"``, persistent Isend/Irecv
pairs; the local product runs while the exchange is in flight.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core.errors import InputTypeError, UsageError
from hpc.core.exchange import GhostPlan, Transfer
from hpc.core.runtime import as_comm
from hpc.core.partition import block_offsets, exchange_by_owner

from .kernels import KERNELS, LocalKernel, default_backend, make_kernel


def _as_offsets(off, n: int, p: int) -> np.ndarray:
    off = np.asarray(off, dtype=np.int64)
    if off.shape != (p + 1,) or off[0] != 0 or off[-1] != n or np.any(np.diff(off) < 0):
        raise UsageError(f"bad offsets {off.tolist()} for {n} items on {p} ranks")
    return off


def as_csr(m) -> sp.csr_matrix:
    """``scipy.sparse.csr_matrix(m)`` (a new object sharing a CSR matrix's arrays), with a
    ``csr_matrix``'s canonical flag carried over: SciPy would find it again by a scan of every
    entry of the new object (8 ms a call for a 1D SpGEMM product's block of R-MAT 14)."""
    A = sp.csr_matrix(m)
    if type(m) is sp.csr_matrix:
        A.has_canonical_format = m.has_canonical_format
    return A


def _canonical(local) -> sp.csr_matrix:
    A = as_csr(local)
    if not A.has_canonical_format:
        A.sum_duplicates()  # also sorts indices
    A.sort_indices()
    return A


class DistCSR:
    """A sparse matrix distributed by contiguous row blocks (see the module docstring).

    Most users build one with :meth:`from_scipy` or :func:`hpc.sparse.read_matrix`.

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm
        The ranks that hold the matrix.
    local : scipy sparse matrix or array
        This rank's rows ``[row_offsets[r], row_offsets[r+1])``, with global column indices;
        duplicates are summed and indices sorted.
    shape : (int, int)
        The global shape.
    row_offsets, col_offsets : array_like of int, length ``comm.size + 1``, optional
        The row partition (default: :func:`hpc.core.partition.block_offsets`) and the
        partition of the domain vectors (default: the row partition for a square matrix).
    backend : str, optional
        The local SpMV kernel (:data:`hpc.sparse.kernels.KERNELS`; default the fastest here).
    exchange : {"neighbor", "p2p", "auto"}
        The ghost exchange's transport (:func:`hpc.core.exchange.resolve_method`).
    canonical : bool, default False
        ``local`` is a ``csr_matrix`` already canonical (indices sorted, no duplicates): kept
        as it is (no copy, no check). For readers that build it so.
    nnz : int, optional
        The global entry count, when the caller knows it (the same on every rank): saves the
        allreduce that counts it.

    Attributes
    ----------
    comm : mpi4py.MPI.Intracomm
        The ranks holding the matrix.
    shape : (int, int)
        The global shape (the global entry count is :attr:`nnz`, the value type :attr:`dtype`).
    row_offsets, col_offsets : numpy.ndarray of int64
        The row partition and the partition of ``matvec``'s argument: rank ``r`` holds rows
        ``row_offsets[r]:row_offsets[r+1]`` and ``x[col_offsets[r]:col_offsets[r+1]]``.
    local : scipy.sparse.csr_matrix
        This rank's rows, global column indices, canonical (sorted, no duplicates).
    """

    def __init__(self, comm, local, shape: tuple[int, int], row_offsets=None, col_offsets=None,
                 backend: str | None = None, exchange: str = "neighbor", *,
                 canonical: bool = False, nnz: int | None = None):
        comm = as_comm(comm)
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
        # canonical: the caller built a canonical csr_matrix (a reader that sorted and summed
        # its rows already): used as it is, without SciPy's checks and re-sort
        A = local if canonical and isinstance(local, sp.csr_matrix) else _canonical(local)
        lo, hi = self.row_range
        if A.shape != (hi - lo, self.shape[1]):
            raise UsageError(f"local block has shape {A.shape}, expected {(hi - lo, self.shape[1])}")
        self.local = A
        self.backend = backend or default_backend()
        if self.backend not in KERNELS:
            raise UsageError(f"unknown back end {self.backend!r}: choose one of {sorted(KERNELS)}")
        if exchange not in ("neighbor", "p2p", "auto"):
            raise UsageError(f"exchange {exchange!r}: choose neighbor, p2p or auto")
        self.exchange = exchange
        self._plan: GhostPlan | None = None
        self._aligned = bool(self.shape[0] == self.shape[1]
                             and np.array_equal(self.row_offsets, self.col_offsets))
        # eager: a lazy collective is a trap
        self._nnz = int(nnz) if nnz is not None else int(comm.allreduce(int(A.nnz)))
        self.grid: tuple[int, ...] | None = None   # set by the structured generators
        self.stencil: str | None = None

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_local(cls, comm, local_csr, shape, **kw) -> "DistCSR":
        """Wrap this rank's rows (global column indices); row partition = block_offsets."""
        return cls(comm, local_csr, shape, **kw)

    @classmethod
    def from_scipy(cls, A, comm=None, *, row_offsets=None, **kw) -> "DistCSR":
        """Distribute a global SciPy sparse matrix given identically on every rank.

        Parameters
        ----------
        A : scipy.sparse array or matrix, shape (m, n)
            The whole matrix, the same on every rank (any sparse format; converted to CSR).
        comm : mpi4py.MPI.Intracomm, optional
            None: ``MPI.COMM_WORLD``.
        row_offsets : array_like of int, optional
            The row partition (default: equal blocks, the first ``m % p`` ranks one row more).
        **kw
            ``col_offsets``, ``backend``, ``exchange`` of :class:`DistCSR`.

        Returns
        -------
        DistCSR
            Each rank keeps its own rows (O(nnz) per rank to slice; no communication but the
            global nnz count).

        Raises
        ------
        InputTypeError
            (TypeError) ``A`` is not a SciPy sparse matrix or array, or ``comm`` is not an
            intracommunicator.
        UsageError
            (ValueError) ``A`` is not 2-D, or bad offsets.
        """
        comm = as_comm(comm)
        if not sp.issparse(A):
            raise InputTypeError(f"A must be a scipy.sparse matrix or array, got {type(A).__name__}")
        if len(A.shape) != 2:
            raise UsageError(f"A must be 2-D, got shape {A.shape}")
        A = sp.csr_matrix(A)
        p = comm.Get_size()
        off = _as_offsets(block_offsets(A.shape[0], p) if row_offsets is None else row_offsets,
                          A.shape[0], p)
        r = comm.Get_rank()
        return cls(comm, A[int(off[r]):int(off[r + 1])], A.shape, row_offsets=off, **kw)

    # -- properties -------------------------------------------------------------------
    @property
    def row_range(self) -> tuple[int, int]:
        """This rank's rows ``[lo, hi)``."""
        return int(self.row_offsets[self.rank]), int(self.row_offsets[self.rank + 1])

    @property
    def col_range(self) -> tuple[int, int]:
        """This rank's block ``[lo, hi)`` of a domain vector (``x`` in ``A @ x``)."""
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
    def dtype(self) -> np.dtype:
        """The dtype of the stored values."""
        return self.local.dtype

    def __repr__(self) -> str:
        return (f"DistCSR(shape={self.shape}, local_rows={self.local_rows}, "
                f"local_nnz={self.local.nnz}, ranks={self.size}, backend={self.backend})")

    # -- the ghost plan ---------------------------------------------------------------
    def plan(self) -> GhostPlan:
        """The SpMV communication plan (:class:`hpc.core.exchange.GhostPlan` over the ghost
        columns) and the split local blocks (collective, built once)."""
        if self._plan is None:
            self._build_plan()
        return self._plan

    def _build_plan(self) -> None:
        clo, chi = self.col_range
        cols = self.local.indices
        ghost_cols = np.unique(cols[(cols < clo) | (cols >= chi)]).astype(np.int64)
        # the columns come from a checked block: no validation round
        pl = GhostPlan(self.comm, ghost_cols, self.col_offsets, method=self.exchange,
                       assume_unique=True, validate=False)
        self._plan = pl
        self._split()

    def values_changed(self) -> None:
        """Call after writing into ``local.data`` in place (``hpc.spgemm.multiply(...,
        out=...)`` does): the owned and ghost blocks that products read hold copies of the
        values, and are rebuilt here (no message; the exchange plan depends on the pattern
        only and is kept)."""
        if self._plan is not None:
            self._split()

    def _split(self) -> None:
        """The owned and ghost blocks of the plan's ghost columns, and their kernels."""
        pl = self._plan
        ghost_cols = pl.ghost_ids
        clo, chi = self.col_range
        A = self.local
        cols = A.indices.astype(np.int64, copy=False)
        own = (cols >= clo) & (cols < chi)
        # Split the block: owned columns (local numbering) and ghost columns (slot numbering).
        # Filtering a canonical block keeps each row's order, so both parts are canonical CSR
        # as they stand (no COO round trip: that sorted all nnz again).
        nl = A.shape[0]
        it = np.int32 if max(A.nnz, self.shape[1]) < 2**31 - 1 else np.int64
        if ghost_cols.size == 0:  # e.g. one rank: the whole block is owned, nothing to split
            a_loc = sp.csr_matrix((A.data, (cols - clo).astype(it), A.indptr.astype(it)),
                                  shape=(nl, chi - clo))
            a_gh = sp.csr_matrix((nl, 0))
        else:
            rows = np.repeat(np.arange(nl, dtype=np.int64), np.diff(A.indptr))
            p_loc = np.concatenate(([0], np.cumsum(np.bincount(rows[own], minlength=nl))))
            p_gh = A.indptr.astype(np.int64) - p_loc
            a_loc = sp.csr_matrix((A.data[own], (cols[own] - clo).astype(it), p_loc.astype(it)),
                                  shape=(nl, chi - clo))
            slots = np.searchsorted(ghost_cols, cols[~own]).astype(it)
            a_gh = sp.csr_matrix((A.data[~own], slots, p_gh.astype(it)),
                                 shape=(nl, ghost_cols.size))
        self.A_loc, self.A_gh = _canonical(a_loc), _canonical(a_gh)
        # The ghost kernel stores only the rows that have ghost entries (a stencil's block
        # boundary: N^2 of N^3/p rows), so y += A_gh g costs O(those rows), not a pass over y.
        self._gh_rows = np.flatnonzero(np.diff(self.A_gh.indptr)).astype(np.int64)
        self._make_kernels()
        xp = self._xp()
        self._send_idx_dev = xp.asarray(pl.send_idx) if xp is not np else pl.send_idx
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
    def _start_exchange(self, x_local) -> Transfer:
        """Pack the values the neighbours need and start the exchange (float64 channel)."""
        pl = self._plan
        ch = pl.channel(np.float64)
        if pl.n_send:
            if self.backend == "cupy":
                ch.send[:] = x_local[self._send_idx_dev].get()
            else:
                np.take(x_local, pl.send_idx, out=ch.send)
        ch.start()
        return ch

    def matvec(self, x_local: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """This rank's block of ``y = A @ x``. Collective.

        Parameters
        ----------
        x_local : numpy.ndarray, shape ``(local_cols,)``
            This rank's block ``x[col_offsets[r]:col_offsets[r+1]]`` of the global vector
            (:meth:`local_slice` cuts it from a global one); real values, used as float64.
        out : numpy.ndarray, shape ``(local_rows,)``, optional
            Where to write the result.

        Returns
        -------
        numpy.ndarray, shape ``(local_rows,)``, float64
            ``y[row_offsets[r]:row_offsets[r+1]]`` (:meth:`gather_vector` joins the blocks).

        Raises
        ------
        UsageError
            (ValueError) ``x_local`` has the wrong shape.

        Notes
        -----
        Cost: ``2 nnz_local`` flops; the ghost values (one per distinct off-block column)
        travel while the owned columns' product runs.
        """
        return self._product(x_local, out, False)[0]

    def spmv(self, x_local, out=None):
        """y_local = (A x)[own rows]; x_local is this rank's slice of x (col_offsets). Collective.
        (The same as :meth:`matvec`.)"""
        return self._product(x_local, out, False)[0]

    def spmv_dot(self, x_local, out=None):
        """(y_local, x_local . y_local) with y = A x: the product and this rank's part of the
        dot product x.Ax (CG's p.Ap), the native kernel computing both in one pass. Needs a
        square matrix whose row and column partitions agree. Collective (the product)."""
        if not self._aligned:
            raise UsageError("spmv_dot needs a square matrix with equal row and column partitions")
        return self._product(x_local, out, True)

    def _product(self, x_local, out, with_dot: bool):
        if self._plan is None:
            self._build_plan()
        xp = self._xp()
        if getattr(x_local, "shape", None) != (self.local_cols,):
            raise UsageError(f"matvec: x_local has shape {getattr(x_local, 'shape', None)}, "
                             f"expected ({self.local_cols},) (this rank's block of x)")
        if x_local.dtype != np.float64:
            x_local = x_local.astype(np.float64)
        y = out if out is not None else xp.empty(self.local_rows, dtype=np.float64)
        ch = self._start_exchange(x_local)
        dot = 0.0
        if with_dot:   # overlaps the exchange
            dot = self._k_loc.matvec_dot(x_local, y, x_local, accumulate=False)
        else:
            self._k_loc.matvec(x_local, y, accumulate=False)
        ch.wait()
        if self._k_gh is not None:
            g = ch.recv
            if xp is not np:
                self._ghost_dev.set(ch.recv)
                g = self._ghost_dev
            if with_dot:
                dot += self._k_gh.matvec_dot(g, y, x_local, accumulate=True)
            else:
                self._k_gh.matvec(g, y, accumulate=True)
        return y, float(dot)

    __matmul__ = spmv

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

    def to_scipy(self, root: int | None = None) -> sp.csr_matrix | None:
        """The whole matrix as SciPy CSR (sorted indices, float64). Collective.

        Parameters
        ----------
        root : int or None
            None (default): the matrix on every rank; a rank: on that rank, None elsewhere.

        Returns
        -------
        scipy.sparse.csr_matrix or None

        Raises
        ------
        InputTypeError, UsageError
            ``root`` is not an int or not a rank of the communicator.

        Notes
        -----
        Moves ``12 nnz + 8 m`` bytes to each receiving rank (three (All)Gatherv).
        """
        if root is not None:
            if isinstance(root, bool) or not isinstance(root, (int, np.integer)):
                raise InputTypeError(f"root must be an int or None, got {type(root).__name__}")
            if not 0 <= int(root) < self.size:
                raise UsageError(f"root {root} is not a rank of a {self.size}-rank communicator")
            root = int(root)
        comm = self.comm
        A = self.local
        everywhere = root is None
        mine = everywhere or self.rank == root
        nnz_r = np.array(comm.allgather(int(A.nnz)) if everywhere
                         else (comm.gather(int(A.nnz), root=root) or []), dtype=np.int64)
        rowlens = np.diff(A.indptr).astype(np.int64)
        parts = [(rowlens, self.shape[0], np.diff(self.row_offsets), self.row_offsets[:-1],
                  MPI.INT64_T),
                 (A.indices.astype(np.int64), None, nnz_r, None, MPI.INT64_T),
                 (np.ascontiguousarray(A.data, dtype=np.float64), None, nnz_r, None, MPI.DOUBLE)]
        got = []
        for send, total, counts, displs, t in parts:
            if mine:
                counts = np.asarray(counts, dtype=np.int64)
                displs = (np.cumsum(counts) - counts) if displs is None else displs
                buf = np.empty(int(counts.sum()) if total is None else total,
                               dtype=np.float64 if t == MPI.DOUBLE else np.int64)
                spec = [buf, counts, displs, t]
            else:
                buf, spec = None, None
            if everywhere:
                comm.Allgatherv(send, spec)
            else:
                comm.Gatherv(send, spec, root=root)
            got.append(buf)
        if not mine:
            return None
        lens, indices, data = got
        indptr = np.concatenate(([0], np.cumsum(lens)))
        return sp.csr_matrix((data, indices, indptr), shape=self.shape)

    def gather(self, root: int = 0) -> sp.csr_matrix | None:
        """The whole matrix as SciPy CSR on root (None elsewhere): ``to_scipy(root)``."""
        return self.to_scipy(root)

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
        """This rank's block of a global vector, as a float64 copy.

        Parameters
        ----------
        x_global : array_like, shape ``(m,)`` for ``rows=True`` or ``(n,)`` otherwise
            The whole vector, the same on every rank.
        rows : bool
            True: the row partition (a vector like ``y = A @ x`` or ``b`` of ``A x = b``);
            False: the column partition (``x`` of :meth:`matvec`). Equal for a square matrix
            with the default partitions.

        Raises
        ------
        UsageError
            (ValueError) ``x_global`` does not have the matching length.
        """
        x = np.asarray(x_global)
        n = self.shape[0] if rows else self.shape[1]
        if x.shape != (n,):
            raise UsageError(f"local_slice: the global vector has shape {x.shape}, expected ({n},)")
        lo, hi = self.row_range if rows else self.col_range
        return np.array(x[lo:hi], dtype=np.float64)

    def gather_vector(self, v_local: np.ndarray, root: int | None = 0) -> np.ndarray | None:
        """Join row-distributed blocks (``matvec``'s results) into the global vector on
        ``root`` (None elsewhere), or on every rank with ``root=None``. Collective.

        Raises
        ------
        UsageError
            (ValueError) ``v_local`` is not this rank's block length.
        """
        v_local = np.ascontiguousarray(v_local, dtype=np.float64)
        if v_local.shape != (self.local_rows,):
            raise UsageError(f"gather_vector: v_local has shape {v_local.shape}, "
                             f"expected ({self.local_rows},)")
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
        """Release the exchange's persistent requests and communicator (optional; also
        released at exit)."""
        if self._plan is not None:
            self._plan.free()


def pdot(comm, x, y) -> float:
    """Global dot product of row-distributed vectors (one Allreduce)."""
    return float(comm.allreduce(float(x @ y)))


def pnorm(comm, x) -> float:
    return float(np.sqrt(pdot(comm, x, x)))
