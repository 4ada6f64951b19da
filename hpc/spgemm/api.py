"""The public API of hpc.spgemm: :func:`multiply`, C = A B for sparse A and B, over MPI.

``multiply`` works in a plain ``python`` process (one rank) and unchanged under
``mpiexec -n N``: SciPy matrices given identically on every rank give the SciPy CSR product on
every rank; :class:`hpc.sparse.DistCSR` operands give a ``DistCSR`` product (1D row blocks).
:class:`Product` is the prepared distributed product the command line times.

References
----------
- A. Shivdikar et al., "SMASH: Sparse Matrix Atomic Scratchpad Hashing", 2021
  (arXiv:2105.14156): row-wise (Gustavson) products merged in hash tables as they are made.
- A. Buluç, J. R. Gilbert, "On the Representation and Multiplication of Hypersparse
  Matrices", IPDPS 2008; "Parallel Sparse Matrix-Matrix Multiplication and Indexing:
  Implementation and Experiments", SIAM J. Sci. Comput. 34(4), 2012 (Sparse SUMMA).
"""
from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core import backends as registry
from hpc.core.envinfo import default_threads
from hpc.core.errors import InputTypeError, UsageError
from hpc.core.runtime import as_comm, collective
from hpc.sparse import DistCSR

from . import dist
from . import local as L
from . import semiring as S
from .local import BACKENDS

LAYOUTS = ("1d", "2d")


def _check_options(layout, backend, threads) -> None:
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise UsageError(f"layout={layout!r}: expected one of {', '.join(LAYOUTS)}")
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise UsageError(f"backend={backend!r}: expected one of {', '.join(BACKENDS)}")
    why = registry.why_unavailable(BACKENDS[backend][1])
    if why:
        raise UsageError(f"backend {backend!r} is not available here: {why}")
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
            raise InputTypeError(f"threads must be a positive int or None, got "
                                 f"{type(threads).__name__}")
        if threads < 1:
            raise UsageError(f"threads must be positive, got {threads}")


def _check_grid(layout: str, comm) -> None:
    if layout == "2d" and dist.square_grid(comm.Get_size()) is None:
        raise UsageError(f"layout '2d' needs a square number of ranks (1, 4, 9, ...), got "
                         f"{comm.Get_size()}; use layout '1d'")


def _check_shapes(A, B) -> None:
    if A.shape[1] != B.shape[0]:
        raise UsageError(f"incompatible shapes: A is {A.shape[0]} x {A.shape[1]} but B is "
                         f"{B.shape[0]} x {B.shape[1]} (inner dimensions differ)")


def _check_dtype(name: str, dtype) -> None:
    if np.dtype(dtype).kind not in "biuf":
        raise InputTypeError(f"{name} must have real entries (bool, integer or float), got "
                             f"dtype {dtype}")


class Product:
    """A distributed product C = A B made ready to run, possibly many times (collective).

    The 1d layout needs no preparation; the 2d layout builds the sqrt(p) x sqrt(p) grid and
    redistributes A and B into its blocks here (communication recorded in ``setup``), so that
    :meth:`run` times only the multiplication.

    Parameters
    ----------
    A, B : DistCSR
        Operands on the same communicator, ``A.shape[1] == B.shape[0]``, float64 entries.
    layout : {'1d', '2d'}
    backend : str
        A key of :data:`hpc.spgemm.local.BACKENDS`.
    threads : int
        Threads per rank of the local kernel.
    """

    def __init__(self, A: DistCSR, B: DistCSR, *, layout: str = "1d", backend: str = "native",
                 threads: int = 1):
        _check_grid(layout, A.comm)
        self.A, self.B = A, B
        self.layout, self.backend, self.threads = layout, backend, int(threads)
        self.setup = dist.Costs()
        self.grid = None
        self._C1 = self._C2 = None
        if layout == "2d":
            self.grid = dist.make_grid(A.comm)
            self.offs = dist.grid_offsets(A, B, self.grid.q)
            self._A2 = dist.to_blocks(A, self.grid, self.offs["rows"], self.offs["inner"],
                                      self.setup)
            self._B2 = dist.to_blocks(B, self.grid, self.offs["inner"], self.offs["cols"],
                                      self.setup)

    def run(self, costs: dist.Costs | None = None) -> dist.Costs:
        """Multiply once (collective); returns what it cost this rank (communication bytes
        and seconds, local compute seconds, kernel statistics)."""
        costs = dist.Costs() if costs is None else costs
        if self.layout == "1d":
            self._C1 = dist.multiply_1d(self.A, self.B, self.backend, self.threads, costs)
        else:
            self._C2 = dist.multiply_summa(self._A2, self._B2, self.grid, self.offs,
                                           self.backend, self.threads, costs)
        return costs

    def result(self) -> DistCSR:
        """The last product as a DistCSR in A's row blocks (2d: collective, the blocks are
        sent back to rows; its communication is added to ``setup``)."""
        if self._C1 is None and self._C2 is None:
            raise UsageError("Product.result(): run() first")
        if self.layout == "1d":
            return self._C1
        return dist.blocks_to_1d(self._C2, self.grid, self.offs,
                                 (self.A.shape[0], self.B.shape[1]), self.A.row_offsets,
                                 self.setup)

    def free(self) -> None:
        """Release the 2d grid's communicators."""
        if self.grid is not None:
            self.grid.free()
            self.grid = None


def _float64(M: DistCSR) -> DistCSR:
    if M.local.dtype == np.float64:
        return M
    return DistCSR(M.comm, M.local.astype(np.float64), M.shape, row_offsets=M.row_offsets,
                   col_offsets=M.col_offsets)


def _distributed(A: DistCSR, B: DistCSR, layout: str, backend: str, threads: int) -> DistCSR:
    prod = Product(_float64(A), _float64(B), layout=layout, backend=backend, threads=threads)
    try:
        prod.run()
        return prod.result()
    finally:
        prod.free()


def _check_pair(A, B, comm) -> tuple[bool, MPI.Comm]:
    """Validates the operands; returns (both DistCSR, the communicator of the work)."""
    if isinstance(A, DistCSR) or isinstance(B, DistCSR):
        if not (isinstance(A, DistCSR) and isinstance(B, DistCSR)):
            raise InputTypeError(f"A and B must both be DistCSR or both SciPy sparse, got "
                                 f"{type(A).__name__} and {type(B).__name__}")
        if MPI.Comm.Compare(A.comm, B.comm) not in (MPI.IDENT, MPI.CONGRUENT):
            raise UsageError("A and B are distributed over different communicators")
        if comm is not None and (not isinstance(comm, MPI.Comm)
                                 or MPI.Comm.Compare(A.comm, comm) not in (MPI.IDENT,
                                                                           MPI.CONGRUENT)):
            raise UsageError("comm differs from the DistCSR operands' communicator (leave it "
                             "None)")
        comm = A.comm
        distributed = True
    else:
        if not (sp.issparse(A) and sp.issparse(B)):
            raise InputTypeError(f"A and B must be SciPy sparse arrays/matrices or DistCSR, "
                                 f"got {type(A).__name__} and {type(B).__name__} (dense "
                                 "operands: use numpy's @)")
        comm = as_comm(comm)
        distributed = False
    _check_shapes(A, B)
    _check_dtype("A", A.dtype)
    _check_dtype("B", B.dtype)
    return distributed, comm


def multiply(A, B, *, layout: str = "1d", backend: str = "native", threads: int | None = None,
             comm=None, semiring: str | None = None, mask=None, complement: bool = False,
             structural: bool = True, accum: str | None = None, C=None, dtype=None,
             plan: "Plan | None" = None, out=None):
    """Sparse matrix times sparse matrix, C = A @ B, with SMASH-style hash accumulation.

    Every row of C is made from the rows of B that row i of A selects (Gustavson's row-wise
    product); a symbolic phase sizes every row of C exactly, a numeric phase fills it, the
    partial sums merged in a hash table per row as they are made (SMASH, Shivdikar et al.
    2021), a dense accumulator for heavy rows, one table shared by all threads with atomic
    compare-and-swap for the heaviest. Rows are binned by their count of scalar products and
    split across threads by a prefix sum of products.

    Parameters
    ----------
    A, B : scipy.sparse array or matrix, or hpc.sparse.DistCSR
        Both SciPy (the same global matrices on every rank; any sparse format, real entries)
        or both ``DistCSR`` (distributed by row blocks, on the same communicator).
        ``A.shape[1] == B.shape[0]``.
    layout : {'1d', '2d'}, default '1d'
        '1d': A and C by row blocks, each rank fetching the rows of B its columns of A touch in
        one all-to-all exchange; '2d': Sparse SUMMA (Buluç & Gilbert 2008, 2012) on a
        sqrt(p) x sqrt(p) grid of ranks (p must be a square number), A and B redistributed into
        blocks first.
    backend : {'native', 'numba', 'scipy', 'cuda', 'cusparse'}, default 'native'
        Local kernel: C++/OpenMP hash SpGEMM, the same algorithm in Numba, SciPy's SMMP, the
        CUDA hash kernel, or cuSPARSE through CuPy.
    threads : int, optional
        Threads per rank [default: OMP_NUM_THREADS, else this host's cores / its ranks].
    comm : mpi4py.MPI.Comm, optional
        For SciPy operands: the ranks that share the work (default ``MPI.COMM_WORLD``). For
        ``DistCSR`` operands their own communicator is used (a different one is an error).
    semiring : {'plus_times', 'plus_pair', 'min_plus', 'max_plus', 'any_pair', 'lor_land'}
        The semiring (GraphBLAS ``GrB_mxm``); any of the arguments from here on selects the
        masked semiring kernel (native, layout '1d'), whose pattern is structural: explicit
        zeros of A and B count, and computed zeros are kept.
    mask : same kind as A, optional
        C<M>: the product is kept where M (``C.shape``; DistCSR: A's row partition) stores an
        entry, or, with ``complement=True``, where it does not. ``structural=False`` ignores
        M's stored zeros.
    accum : {'plus', 'times', 'min', 'max', 'first', 'second', 'lor', 'land'}, optional
        With ``C``: C = accum(C, T) on the union of patterns, T the masked product; without
        accum, T replaces C inside the mask and C is kept outside it.
    C : same kind as A, optional
        The matrix the product is written into (not modified: a new matrix is returned).
    dtype : {bool, int32, int64, float32, float64}, optional
        Value type. Default: float64 for the plain product, else the operands' common type.
    plan : Plan, optional
        From :func:`symbolic` for operands with the same patterns: only the numeric phase (and,
        distributed, one exchange of B's values) runs. Its mask is the plan's.
    out : same kind as A, optional
        A product made earlier for operands of the same patterns (typically by
        ``multiply(..., plan=plan)``): its values are overwritten in place and it is returned,
        with no allocation, as PETSc's ``MAT_REUSE_MATRIX`` (with ``plan`` only the numeric
        phase runs). ``DistCSR``: each rank's block; SciPy operands on several ranks: each
        rank writes its rows' values, one in-place Allgatherv completes every copy. Not with
        ``accum`` or ``C``. Its pattern must be the product's and its values must not be an
        operand's (checked on every rank before any work).

    Returns
    -------
    scipy.sparse.csr_matrix or csr_array, or DistCSR
        SciPy operands: C on every rank, CSR with sorted column indices and summed entries,
        float64 (a ``csr_array`` when A or B is a sparse array). ``DistCSR`` operands: C
        distributed like A's rows.

    Raises
    ------
    ValueError
        Inner dimensions differ, unknown layout or back end, a back end not available here,
        layout '2d' on a rank count that is not a square, ``threads`` < 1, a ``comm`` that is
        not the ``DistCSR`` operands' own.
    TypeError
        An operand that is neither SciPy sparse nor ``DistCSR`` (e.g. a dense array), one of
        each kind, complex entries, a ``threads`` that is not an int.

    Notes
    -----
    Cost: O(flops) work, flops = sum over A's entries (i, k) of nnz(B[k, :]), plus O(nnz(C))
    for the output, over p ranks. Communication: 1d moves the rows of B each rank needs
    (at most 12 nnz(B) bytes per rank, one Alltoallv); 2d broadcasts sqrt(p) blocks of A and of
    B along grid rows and columns. SciPy operands: C is also gathered on every rank
    (12 nnz(C) bytes each).
    """
    _check_options(layout, backend, threads)
    if (semiring is not None or mask is not None or accum is not None or C is not None
            or dtype is not None or plan is not None or complement or out is not None):
        return _masked(A, B, layout=layout, backend=backend, threads=threads, comm=comm,
                       semiring="plus_times" if semiring is None else semiring, mask=mask,
                       complement=complement, structural=structural, accum=accum, C=C,
                       dtype=dtype, plan=plan, out=out)
    distributed, comm = _check_pair(A, B, comm)
    _check_grid(layout, comm)
    if distributed:
        return _distributed(A, B, layout, backend,
                            threads if threads is not None else default_threads(A.comm))
    threads = threads if threads is not None else default_threads(comm)
    a, b = L.canonical(A), L.canonical(B)
    if comm.Get_size() == 1:
        C, _ = L.multiply(a, b, backend, threads)
    else:
        C = _distributed(DistCSR.from_scipy(a, comm), DistCSR.from_scipy(b, comm), layout,
                         backend, threads).to_scipy(root=None)
        C.has_canonical_format = True  # gathered rows of canonical blocks, in order
    C = C.astype(np.float64, copy=False)
    if isinstance(A, getattr(sp, "sparray", ())) or isinstance(B, getattr(sp, "sparray", ())):
        return sp.csr_array(C)
    return C


# ------------------------------------------------------------ masked semiring products, plans
def _value_dtype(A, B, dtype) -> np.dtype:
    if dtype is None:
        return S.value_type(np.result_type(A.dtype, B.dtype))
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise InputTypeError(f"dtype={dtype!r}: not a NumPy dtype") from e
    if dt not in S.TYPES:
        raise UsageError(f"dtype={dt}: expected one of {', '.join(t.name for t in S.TYPES)}")
    return dt


def _same_rows(name: str, M, A, distributed: bool, shape) -> None:
    """M (mask or C) must be the same kind as A, of the product's shape, in A's rows."""
    if distributed:
        if not isinstance(M, DistCSR):
            raise InputTypeError(f"{name} must be a DistCSR like A, got {type(M).__name__}")
        if M.shape != shape or not np.array_equal(M.row_offsets, A.row_offsets):
            raise UsageError(f"{name} must be {shape[0]} x {shape[1]} with A's row partition")
    else:
        if not sp.issparse(M):
            raise InputTypeError(f"{name} must be SciPy sparse like A, got {type(M).__name__}")
        if M.shape != shape:
            raise UsageError(f"{name} is {M.shape[0]} x {M.shape[1]}, the product "
                             f"{shape[0]} x {shape[1]}")


def _block(M, comm, offsets) -> sp.csr_matrix:
    """This rank's rows of a SciPy matrix given on every rank."""
    r = comm.Get_rank()
    return sp.csr_matrix(M)[int(offsets[r]):int(offsets[r + 1])]


class Plan:
    """The symbolic phase of ``C<M> = A B``, made by :func:`symbolic`, run by ``multiply(...,
    plan=...)`` for operands of the same patterns (checked) with new values.

    Holds C's pattern; distributed (DistCSR operands, or SciPy operands on several ranks) also
    the 1D communication plan: which rows of B each rank fetches and their pattern, so a
    reuse exchanges B's values only.

    Attributes
    ----------
    shape : (int, int)
        The product's shape.
    nnz : int
        Entries of this rank's part of the pattern (SciPy operands on one rank: all of C).
    """

    def __init__(self, A, B, mask, complement: bool, threads: int, comm, distributed: bool):
        self.comm, self.distributed, self.threads = comm, distributed, threads
        self.shape = (A.shape[0], B.shape[1])
        self.complement = bool(complement)
        self.setup = dist.Costs()
        self.local = self.dist = None
        self.mask = mask  # canonical pattern: SciPy (whole, or this rank's rows) or DistCSR
        if not distributed and comm.Get_size() == 1:
            self.local = S.symbolic(S.structure(A), S.structure(B), mask, complement, threads)
            return
        if not distributed:
            A = DistCSR.from_scipy(S.structure(A), comm)
            B = DistCSR.from_scipy(S.structure(B), comm)
            if mask is not None:
                self.mask = mask = DistCSR(comm, _block(mask, comm, A.row_offsets), self.shape,
                                           row_offsets=A.row_offsets)
        self.dist = dist.Plan1D(A, B, mask, complement, threads, self.setup)

    @property
    def nnz(self) -> int:
        return self.local.nnz if self.local is not None else self.dist.local.nnz

    def numeric(self, A, B, semiring: str, dtype: np.dtype, threads: int, into=None):
        """T = the masked product's values (SciPy: this rank's rows when distributed), or
        those values written into ``into`` (checked by the caller: S.check_into)."""
        if self.local is not None:
            return S.numeric(self.local, S.structure(A, dtype), S.structure(B, dtype), semiring,
                             dtype, threads, into=into)
        if not self.distributed:
            A = DistCSR.from_scipy(S.structure(A, dtype), self.comm)
            B = DistCSR.from_scipy(S.structure(B, dtype), self.comm)
        try:
            self.dist.threads = threads
            return self.dist.run(A, B, semiring, dtype, dist.Costs(), into=into)
        except ValueError as e:  # a pattern differs from the plan's
            raise UsageError(f"plan: {e}") from e


def symbolic(A, B, *, mask=None, complement: bool = False, structural: bool = True,
             threads: int | None = None, comm=None) -> Plan:
    """The symbolic phase of ``C<M> = A B``: C's pattern (and, distributed, the communication
    plan), for :func:`multiply` ``(..., plan=...)`` to reuse (collective).

    Parameters
    ----------
    A, B, mask, complement, structural, threads, comm
        As in :func:`multiply`. Only the structures matter: a plan serves every later product
        whose operands store the same entries, whatever their values, semiring or type.

    Returns
    -------
    Plan

    Raises
    ------
    ValueError, TypeError
        As :func:`multiply`.
    """
    _check_options("1d", "native", threads)
    distributed, comm = _check_pair(A, B, comm)
    threads = threads if threads is not None else default_threads(comm)
    shape = (A.shape[0], B.shape[1])
    if mask is not None:
        _same_rows("mask", mask, A, distributed, shape)
        if distributed:
            mask = DistCSR(mask.comm, S.mask_pattern(mask.local, structural), mask.shape,
                           row_offsets=mask.row_offsets, col_offsets=mask.col_offsets)
        else:
            mask = S.mask_pattern(mask, structural)
    return Plan(A, B, mask, complement, int(threads), comm, distributed)


def _gather_rows(comm, block: sp.csr_matrix, shape) -> sp.csr_matrix:
    """Every rank's row block, stacked in rank order, on every rank (exact for every type)."""
    parts = comm.allgather(block)
    C = sp.vstack(parts, format="csr")
    C = sp.csr_matrix(C, shape=shape)
    C.has_canonical_format = True  # canonical blocks in row order
    return C


def _reuse(A, B, plan: Plan, out, semiring: str, dt: np.dtype, threads: int,
           distributed: bool, accum, C):
    """multiply(..., plan=plan, out=out): the values written into ``out``, returned."""
    if accum is not None or C is not None:
        raise UsageError("out: the product is written into out; accum and C do not apply")
    if distributed:
        with collective(A.comm):   # one rank's bad block: every rank raises, none waits
            _same_rows("out", out, A, True, plan.shape)
            S.check_out(plan.dist.local, out.local, dt, A.local, B.local)
        plan.numeric(A, B, semiring, dt, threads, into=out.local.data)
        out.values_changed()   # its SpMV blocks copied the old values
        return out
    if plan.local is not None:
        S.check_out(plan.local, out, dt, A, B)
        plan.numeric(A, B, semiring, dt, threads, into=out.data)
        return out
    # SciPy operands on several ranks: each rank writes its rows' values into its slice of
    # out's values, and one in-place Allgatherv completes every rank's copy
    comm, off = plan.comm, plan.dist.row_offsets
    r = comm.Get_rank()
    counts = np.array(comm.allgather(plan.dist.local.nnz), dtype=np.int64)
    with collective(comm):
        S.check_csr_out(out, plan.shape)
        starts = out.indptr[off[:-1]].astype(np.int64)
        if not np.array_equal(out.indptr[off[1:]] - starts, counts):
            raise UsageError("out: its pattern is not the plan's (pass a product made with it)")
        lo, hi = int(starts[r]), int(starts[r] + counts[r])
        mine = out.data[lo:hi]   # a view: the native kernel writes there
        S.check_into(plan.dist.local, out.indptr[off[r]:off[r + 1] + 1] - lo,
                     out.indices[lo:hi], mine, dt, A, B)
    plan.numeric(A, B, semiring, dt, threads, into=mine)
    comm.Allgatherv(MPI.IN_PLACE, [out.data, (counts, starts)])
    return out


def _masked(A, B, *, layout, backend, threads, comm, semiring, mask, complement, structural,
            accum, C, dtype, plan, out=None):
    S.check_semiring(semiring)
    S.check_accum(accum)
    if layout != "1d":
        raise UsageError(f"layout={layout!r}: the masked semiring product runs with layout '1d'")
    if backend != "native":
        raise UsageError(f"backend={backend!r}: the masked semiring product runs on the "
                         "'native' back end")
    distributed, comm = _check_pair(A, B, comm)
    threads = int(threads if threads is not None else default_threads(comm))
    dt = _value_dtype(A, B, dtype)
    shape = (A.shape[0], B.shape[1])
    if plan is None:
        plan = symbolic(A, B, mask=mask, complement=complement, structural=structural,
                        threads=threads, comm=comm)
    else:
        if not isinstance(plan, Plan):
            raise InputTypeError(f"plan must be an hpc.spgemm.Plan, got {type(plan).__name__}")
        if mask is not None or complement:
            raise UsageError("plan: the mask is the plan's; leave mask and complement unset")
        if (plan.distributed != distributed or plan.shape != shape
                or MPI.Comm.Compare(plan.comm, comm) not in (MPI.IDENT, MPI.CONGRUENT)):
            raise UsageError("plan: made for operands of another kind, shape or communicator")
    if C is not None:
        _same_rows("C", C, A, distributed, shape)
        _check_dtype("C", C.dtype)
    if out is not None:
        return _reuse(A, B, plan, out, semiring, dt, threads, distributed, accum, C)
    T = plan.numeric(A, B, semiring, dt, threads)
    pm = plan.mask
    if distributed:
        Cl = None if C is None else S.structure(C.local, dt)
        out = S.combine(Cl, T, None if pm is None else pm.local, plan.complement, accum)
        return DistCSR(A.comm, out, shape, row_offsets=A.row_offsets,
                       col_offsets=plan.dist.col_offsets)
    if plan.local is not None:  # one rank
        out = S.combine(None if C is None else S.structure(C, dt), T, pm, plan.complement,
                        accum)
    else:
        off = plan.dist.row_offsets
        Cl = None if C is None else S.structure(_block(C, comm, off), dt)
        out = _gather_rows(comm, S.combine(Cl, T, None if pm is None else pm.local,
                                           plan.complement, accum), shape)
    if isinstance(A, getattr(sp, "sparray", ())) or isinstance(B, getattr(sp, "sparray", ())):
        return sp.csr_array(out)
    return out
