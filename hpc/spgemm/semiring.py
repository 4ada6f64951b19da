"""Masked semiring products on one rank: the symbolic/numeric split, masks and accumulators.

``C<M> = accum(C, A (+.x) B)`` as GraphBLAS's ``GrB_mxm`` defines it (without ``replace``):

- the product's pattern is structural: (i, j) is stored when some k has A(i,k) and B(k,j)
  stored, whatever their values (explicit zeros count);
- a mask keeps the product where M(i,j) is stored (structural) or, complemented, where it is
  not; a valued mask (``structural=False``) first drops M's entries equal to zero;
- without an accumulator, the result is the product inside the mask and C outside it; with one,
  the union of C and the masked product, ``accum(c, t)`` where both are stored.

The pattern (``symbolic``) depends on the structures of A, B and M only, so a :class:`LocalPlan`
made once runs every later product with the same patterns and new values in the numeric phase
only (native/src/spgemm_semiring.cpp).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hpc.core.errors import InputTypeError, UsageError
from hpc.sparse.dcsr import as_csr

from .local import _wrap

SEMIRINGS: dict[str, int] = {"plus_times": 0, "plus_pair": 1, "min_plus": 2, "max_plus": 3,
                             "any_pair": 4, "lor_land": 5}
"""Semiring name -> the native kernel's code."""

TYPES: tuple[np.dtype, ...] = tuple(np.dtype(t) for t in (np.bool_, np.int32, np.int64,
                                                            np.float32, np.float64))
"""The value types of the semiring products."""

ACCUMULATORS: dict[str, object] = {
    "plus": np.add, "times": np.multiply, "min": np.minimum, "max": np.maximum,
    "first": lambda c, t: c, "second": lambda c, t: t,
    "lor": np.logical_or, "land": np.logical_and,
}
"""Accumulator name -> the binary operator applied where C and the product are both stored."""

_CORE = []


def _core():
    if not _CORE:
        from hpc import _core

        _CORE.append(_core.spgemm_semiring)
    return _CORE[0]


def value_type(dtype) -> np.dtype:
    """The product's value type for operand type(s) ``dtype``: one of :data:`TYPES` (narrow
    integers widen to int64, unsigned too; float16 to float32)."""
    dt = np.dtype(dtype)
    if dt in TYPES:
        return dt
    if dt.kind in "iu":
        return np.dtype(np.int64)
    if dt.kind == "f" and dt.itemsize < 4:
        return np.dtype(np.float32)
    if dt.kind == "f":
        return np.dtype(np.float64)
    raise InputTypeError(f"dtype {dt}: expected bool, integer or real floating entries")


def check_semiring(semiring) -> int:
    if not isinstance(semiring, str) or semiring not in SEMIRINGS:
        raise UsageError(f"semiring={semiring!r}: expected one of {', '.join(SEMIRINGS)}")
    return SEMIRINGS[semiring]


def check_accum(accum) -> None:
    if accum is not None and (not isinstance(accum, str) or accum not in ACCUMULATORS):
        raise UsageError(f"accum={accum!r}: expected None or one of {', '.join(ACCUMULATORS)}")


def structure(m, dtype: np.dtype | None = None) -> sp.csr_matrix:
    """CSR with summed duplicates, ascending columns and values of ``dtype`` (explicit zeros
    kept: they are part of the structure)."""
    m = as_csr(m)
    if not m.has_canonical_format:
        m = m.copy()
        m.sum_duplicates()
    if dtype is not None and m.dtype != dtype:
        m = m.astype(dtype)
    return m


def mask_pattern(M, structural: bool = True) -> sp.csr_matrix:
    """The mask's stored pattern as canonical CSR (valued masks: nonzero entries only)."""
    M = structure(M)
    if not structural:
        M = M.copy()
        M.data = M.data.astype(bool)
        M.eliminate_zeros()
    return M


def index_dtype(a: sp.csr_matrix, b: sp.csr_matrix, *others) -> np.dtype:
    """int32 when every index and the product's entry count fit it, else int64."""
    flops = int(np.diff(b.indptr).astype(np.int64)[a.indices].sum()) if a.nnz else 0
    big = max([flops, a.nnz, b.nnz, *a.shape, *b.shape]
              + [o.nnz for o in others if o is not None]) >= 2**31 - 1
    return np.dtype(np.int64 if big else np.int32)


def _ix(x: np.ndarray, dt: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=dt)


@dataclass
class LocalPlan:
    """The symbolic phase of ``C<M> = A B`` on one rank: C's pattern and what it was made from.

    ``numeric`` with operands of the same patterns (checked) fills the values only.
    """

    shape: tuple[int, int]
    indptr: np.ndarray
    indices: np.ndarray
    idx: np.ndarray                      # index dtype of the kernel
    patterns: tuple[np.ndarray, ...]     # A's and B's indptr and indices, to check reuse
    # no mask: the pattern holds every product's column, so the numeric phase accumulates
    # into a dense row with no per-product lookup (see spgemm_semiring.cpp)
    complete: bool = False

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def matches(self, a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
        """Whether A and B have the structures this plan was made for."""
        ap, ai, bp, bi = self.patterns
        return (a.shape[0] == self.shape[0] and b.shape[1] == self.shape[1]
                and a.shape[1] == b.shape[0] and ap.size == a.indptr.size
                and bp.size == b.indptr.size and np.array_equal(ap, a.indptr)
                and np.array_equal(ai, a.indices[:a.indptr[-1]])
                and np.array_equal(bp, b.indptr) and np.array_equal(bi, b.indices[:b.indptr[-1]]))


def symbolic(a: sp.csr_matrix, b: sp.csr_matrix, mask: sp.csr_matrix | None = None,
             complement: bool = False, threads: int = 1) -> LocalPlan:
    """C's pattern for canonical CSR ``a``, ``b`` and mask pattern ``mask`` (see module)."""
    if a.shape[1] != b.shape[0]:
        raise UsageError(f"incompatible shapes {a.shape} x {b.shape}")
    if mask is not None and mask.shape != (a.shape[0], b.shape[1]):
        raise UsageError(f"mask is {mask.shape[0]} x {mask.shape[1]}, the product "
                         f"{a.shape[0]} x {b.shape[1]}")
    dt = index_dtype(a, b, mask)
    core = _core()
    fn = core.symbolic_i32 if dt == np.int32 else core.symbolic_i64
    mp = mi = None
    if mask is not None:
        mp, mi = _ix(mask.indptr, dt), _ix(mask.indices, dt)
    ip, ix = fn(_ix(a.indptr, dt), _ix(a.indices, dt), a.shape[0], a.shape[1],
                _ix(b.indptr, dt), _ix(b.indices, dt), b.shape[1], mp, mi, bool(complement),
                int(threads))
    pats = (a.indptr.copy(), a.indices[:a.indptr[-1]].copy(), b.indptr.copy(),
            b.indices[:b.indptr[-1]].copy())
    ip.flags.writeable = False
    ix.flags.writeable = False
    return LocalPlan((a.shape[0], b.shape[1]), ip, ix, dt, pats, mask is None)


def check_csr_out(out, shape: tuple[int, int]) -> None:
    """InputTypeError / UsageError unless ``out`` is SciPy CSR of the product's ``shape``."""
    if not (sp.issparse(out) and out.format == "csr"):
        raise InputTypeError(f"out must be a SciPy CSR matrix, got {type(out).__name__}")
    if out.shape != shape:
        raise UsageError(f"out is {out.shape[0]} x {out.shape[1]}, the product "
                         f"{shape[0]} x {shape[1]}")


def check_out(plan: LocalPlan, out, dtype: np.dtype, *operands) -> None:
    """UsageError / InputTypeError unless ``out`` can take the values of ``plan``'s product in
    ``dtype`` in place: CSR of the plan's shape and pattern, writable C-contiguous values of
    that type, sharing no memory with the operands' values."""
    check_csr_out(out, plan.shape)
    check_into(plan, out.indptr, out.indices, out.data, dtype, *operands)


def check_into(plan: LocalPlan, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray,
               dtype: np.dtype, *operands) -> None:
    """check_out for a product's arrays (a pattern and the values to write)."""
    same = ((indptr is plan.indptr or np.array_equal(indptr, plan.indptr))
            and (indices is plan.indices or np.array_equal(indices, plan.indices)))
    if not same:
        raise UsageError("out: its pattern is not the plan's (pass a product made with it)")
    if (data.dtype != dtype or not data.flags.c_contiguous or not data.flags.writeable
            or data.size != plan.nnz):
        raise UsageError(f"out: its values must be a writable contiguous {dtype} array of "
                         f"{plan.nnz} entries (got {data.dtype}, {data.size})")
    if any(np.may_share_memory(data, o.data) for o in operands):
        raise UsageError("out: its values share memory with an operand's")


def numeric(plan: LocalPlan, a: sp.csr_matrix, b: sp.csr_matrix, semiring: str = "plus_times",
            dtype=np.float64, threads: int = 1, check: bool = True,
            into: np.ndarray | None = None) -> sp.csr_matrix | np.ndarray:
    """The values of ``plan``'s pattern for operands ``a``, ``b`` (canonical CSR, the plan's
    structures) under ``semiring``, in ``dtype`` (one of :data:`TYPES`), as CSR sharing the
    plan's pattern; or, with ``into`` (a values array the caller has checked with
    :func:`check_into`), written there and ``into`` returned."""
    code = check_semiring(semiring)
    dtype = np.dtype(dtype)
    if dtype not in TYPES:
        raise InputTypeError(f"dtype {dtype}: expected one of {', '.join(map(str, TYPES))}")
    if check and not plan.matches(a, b):
        raise UsageError("plan: A or B has a different pattern than the plan was made for")
    av = np.ascontiguousarray(a.data, dtype=dtype)
    bv = np.ascontiguousarray(b.data, dtype=dtype)
    dt = plan.idx
    fn = getattr(_core(), f"numeric_{'i32' if dt == np.int32 else 'i64'}_{dtype.name}")
    data = fn(code, _ix(a.indptr, dt), _ix(a.indices, dt), av, a.shape[0], a.shape[1],
              _ix(b.indptr, dt), _ix(b.indices, dt), bv, b.shape[1], plan.indptr, plan.indices,
              int(threads), bool(plan.complete), into)
    if into is not None:
        return into
    # C shares the plan's index arrays (read-only: an in-place edit would corrupt the plan),
    # built without SciPy's O(nnz) constructor checks: the kernel's pattern is valid CSR
    return _wrap(plan.indptr, plan.indices, data, plan.shape)


def mask_count(a: sp.csr_matrix, b: sp.csr_matrix, mask: sp.csr_matrix, threads: int = 1) -> int:
    """sum(C<M> = A B) over plus_pair, without forming C (triangle counting's kernel)."""
    dt = index_dtype(a, b, mask)
    core = _core()
    fn = core.mask_count_i32 if dt == np.int32 else core.mask_count_i64
    return int(fn(_ix(a.indptr, dt), _ix(a.indices, dt), a.shape[0], a.shape[1],
                  _ix(b.indptr, dt), _ix(b.indices, dt), b.shape[1], _ix(mask.indptr, dt),
                  _ix(mask.indices, dt), int(threads)))


def _keys(m: sp.csr_matrix) -> np.ndarray:
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    return rows * np.int64(m.shape[1]) + m.indices.astype(np.int64)


def _from_keys(keys: np.ndarray, vals: np.ndarray, shape) -> sp.csr_matrix:
    rows = keys // shape[1]
    cols = (keys % shape[1]).astype(np.int64)
    indptr = np.zeros(shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    it = np.int32 if max(keys.size, *shape) < 2**31 - 1 else np.int64
    c = sp.csr_matrix((vals, cols.astype(it), indptr.astype(it)), shape=shape, copy=False)
    c.has_canonical_format = True
    return c


def combine(C: sp.csr_matrix | None, T: sp.csr_matrix, mask: sp.csr_matrix | None,
            complement: bool, accum: str | None) -> sp.csr_matrix:
    """GrB_mxm's write-back: ``C<M> = accum(C, T)`` for the masked product T (no replace).

    Without ``C`` the result is T. Keys (row * ncols + col) of canonical CSR are ascending, so
    every set operation is a merge by ``searchsorted``.
    """
    if C is None:
        return T
    if C.shape != T.shape:
        raise UsageError(f"C is {C.shape[0]} x {C.shape[1]}, the product "
                         f"{T.shape[0]} x {T.shape[1]}")
    dt = T.dtype
    ck, cv = _keys(C), C.data.astype(dt, copy=False)
    tk, tv = _keys(T), T.data
    if accum is None:
        # inside the mask C's entries are replaced by T's (deleted where T has none)
        if mask is None:
            inside = np.ones(ck.size, bool)
        else:
            mk = _keys(mask)
            pos = np.searchsorted(mk, ck)
            inside = (pos < mk.size) & (mk[np.minimum(pos, mk.size - 1)] == ck) if mk.size \
                else np.zeros(ck.size, bool)
            if complement:
                inside = ~inside
        ck, cv = ck[~inside], cv[~inside]
        keys = np.concatenate((ck, tk))
        vals = np.concatenate((cv, tv))
        order = np.argsort(keys, kind="stable")
        return _from_keys(keys[order], vals[order], T.shape)
    op = ACCUMULATORS[accum]
    pos = np.searchsorted(ck, tk)
    both = (pos < ck.size) & (ck[np.minimum(pos, max(ck.size - 1, 0))] == tk) if ck.size \
        else np.zeros(tk.size, bool)
    cv = cv.copy()
    cv[pos[both]] = np.asarray(op(cv[pos[both]], tv[both])).astype(dt, copy=False)
    keys = np.concatenate((ck, tk[~both]))
    vals = np.concatenate((cv, tv[~both]))
    order = np.argsort(keys, kind="stable")
    return _from_keys(keys[order], vals[order], T.shape)
