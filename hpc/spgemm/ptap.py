"""The Galerkin triple product ``Pᵀ A P`` on the suite's SpGEMM, distributed by rows.

``A P`` is the 1D distributed product (rows of P fetched where A's columns need them). Then
each rank multiplies the transpose of its own rows of P by its own rows of ``A P``: rank r's
rows i contribute ``P(i,:)ᵀ (A P)(i,:)`` to the coarse rows that P(i,:) touches, so the
product needs no global transpose of P. The local transpose covers only the coarse columns
this rank's rows of P touch (P's rows are short: a few aggregates each), and the partial
coarse rows travel to their owners in one exchange, where they are summed.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hpc.core.envinfo import default_threads
from hpc.core.errors import InputTypeError, UsageError
from hpc.core.partition import exchange_by_owner
from hpc.core.runtime import as_comm
from hpc.sparse import DistCSR

from . import dist
from . import local as L
from .renumber import renumber


def _local_ptap(Pl: sp.csr_matrix, APl: sp.csr_matrix, threads: int):
    """(coarse rows, CSR of their partial sums): Pl's rows transposed times APl's rows."""
    m = Pl.shape[1]
    used, cols = renumber(Pl.indices, m)
    # Plᵀ restricted to the used coarse columns: (used.size x local rows); all used (one
    # rank, say): the renumbering is the identity and Pl serves as it is
    Pr = Pl if used.size == m else sp.csr_matrix((Pl.data, cols, Pl.indptr),
                                                 shape=(Pl.shape[0], used.size), copy=False)
    Pt = L.canonical(Pr.T.tocsr())
    Z, _ = L.multiply(Pt, L.canonical(APl), "native", threads)
    return used, Z


def _check(A, P) -> None:
    if A.shape[0] != A.shape[1]:
        raise UsageError(f"A must be square, got {A.shape[0]} x {A.shape[1]}")
    if P.shape[0] != A.shape[1]:
        raise UsageError(f"P has {P.shape[0]} rows, A has {A.shape[1]} columns")
    for name, M in (("A", A), ("P", P)):
        if np.dtype(M.dtype).kind not in "biuf":
            raise InputTypeError(f"{name} must have real entries, got dtype {M.dtype}")


def ptap(A, P, *, threads: int | None = None, comm=None, row_offsets=None):
    """The Galerkin coarse operator ``Pᵀ A P`` (collective).

    Parameters
    ----------
    A : scipy.sparse matrix/array or DistCSR
        n x n. SciPy: the same on every rank; DistCSR: rows distributed.
    P : same kind as A
        n x m. DistCSR: rows partitioned like A's columns (``P.row_offsets == A.col_offsets``).
    threads : int, optional
        Threads per rank [default: OMP_NUM_THREADS, else cores / ranks].
    comm : mpi4py.MPI.Comm, optional
        SciPy operands only (default ``MPI.COMM_WORLD``).
    row_offsets : array_like of int, optional
        DistCSR: the coarse rows' partition of the result [default ``P.col_offsets``].

    Returns
    -------
    scipy.sparse.csr_matrix or DistCSR
        m x m, float64, canonical; SciPy operands: on every rank.

    Raises
    ------
    ValueError
        Shapes that do not fit, P's rows not partitioned like A's columns.
    TypeError
        Operands of different kinds or complex entries.

    Notes
    -----
    Work: the flops of ``A P`` plus those of ``Pᵀ (A P)`` (each rank its own rows).
    Communication: the rows of P that A's columns need (one Alltoallv), then the partial coarse
    rows to their owners (one exchange, 24 bytes per partial entry).
    """
    if isinstance(A, DistCSR) != isinstance(P, DistCSR):
        raise InputTypeError(f"A and P must both be DistCSR or both SciPy sparse, got "
                             f"{type(A).__name__} and {type(P).__name__}")
    if not isinstance(A, DistCSR):
        if not (sp.issparse(A) and sp.issparse(P)):
            raise InputTypeError(f"A and P must be SciPy sparse or DistCSR, got "
                                 f"{type(A).__name__} and {type(P).__name__}")
        comm = as_comm(comm)
        _check(A, P)
        Ad = DistCSR.from_scipy(L.canonical(A), comm)
        Pd = DistCSR.from_scipy(L.canonical(P), comm, row_offsets=Ad.col_offsets)
        R = ptap(Ad, Pd, threads=threads)
        return R.to_scipy(root=None)
    _check(A, P)
    if not np.array_equal(P.row_offsets, A.col_offsets):
        raise UsageError("P's rows must be partitioned like A's columns")
    comm = A.comm
    threads = int(threads if threads is not None else default_threads(comm))
    m = P.shape[1]
    off = np.asarray(P.col_offsets if row_offsets is None else row_offsets, dtype=np.int64)
    if off.shape != (comm.Get_size() + 1,) or off[0] != 0 or off[-1] != m:
        raise UsageError(f"row_offsets must partition {m} coarse rows over {comm.Get_size()} "
                         "ranks")
    A64 = A if A.local.dtype == np.float64 else DistCSR(
        comm, A.local.astype(np.float64), A.shape, row_offsets=A.row_offsets,
        col_offsets=A.col_offsets)
    P64 = P if P.local.dtype == np.float64 else DistCSR(
        comm, P.local.astype(np.float64), P.shape, row_offsets=P.row_offsets,
        col_offsets=P.col_offsets)
    costs = dist.Costs()
    AP = dist.multiply_1d(A64, P64, "native", threads, costs)
    used, Z = _local_ptap(P64.local, AP.local, threads)
    coo = Z.tocoo()
    gi = used[coo.row].astype(np.int64)
    gj = coo.col.astype(np.int64)
    dest = np.searchsorted(off, gi, side="right") - 1
    ri, rj, rv = exchange_by_owner(comm, dest, [gi, gj, coo.data.astype(np.float64)])
    r = comm.Get_rank()
    lo, hi = int(off[r]), int(off[r + 1])
    loc = sp.csr_matrix((rv, (ri - lo, rj)), shape=(hi - lo, m))
    loc.sum_duplicates()
    return DistCSR(comm, loc, (m, m), row_offsets=off, col_offsets=off)
