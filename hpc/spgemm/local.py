"""Local (one-rank) SpGEMM back ends: C = A @ B for scipy CSR matrices.

Every back end takes canonical CSR operands (unique, ascending column indices per row, see
:func:`canonical`) and returns a canonical CSR product plus a stats dict with at least
``products`` (scalar multiply-adds). ``native`` and ``numba`` are the SMASH-style two-phase
hash kernels; ``scipy`` is the reference (SciPy's SMMP); ``cuda`` runs the CUDA hash kernel
(hpc._cuda.spgemm) and ``cusparse`` cuSPARSE through cupyx.

Back end ``name`` is the function ``multiply_<name>`` of module ``hpc.spgemm.<module>`` with
``BACKENDS[name] == (module, requirement)``; modules other than this one are imported when
their back end is first used (they import this one, never the reverse).
"""
from __future__ import annotations

import importlib
from typing import Callable

import numpy as np
import scipy.sparse as sp

from hpc.sparse.dcsr import as_csr

# back end name -> (module, hpc.core.backends entry it needs)
BACKENDS: dict[str, tuple[str, str]] = {
    "native": ("local", "native"),
    "numba": ("numba_", "numba"),
    "scipy": ("local", "scipy"),
    "cuda": ("gpu", "cuda"),
    "cusparse": ("gpu", "cupy"),
}


def canonical(m: sp.spmatrix) -> sp.csr_matrix:
    """CSR with float64 data, summed duplicates and ascending columns (what the kernels need)."""
    m = as_csr(m)
    if m.dtype != np.float64:
        m = m.astype(np.float64)
    if not m.has_canonical_format:
        m.sum_duplicates()  # also sorts indices
    return m


def products(a: sp.csr_matrix, b: sp.csr_matrix) -> int:
    """Scalar multiplications of A @ B: sum over A's entries (i,k) of nnz(B(k,:))."""
    if a.nnz == 0:
        return 0
    return int(np.diff(b.indptr).astype(np.int64)[a.indices].sum())


def _index_dtype(a: sp.csr_matrix, b: sp.csr_matrix, ncols: int) -> np.dtype:
    # len(indices) bounds nnz and is a plain attribute (``.nnz`` re-checks the arrays: ~0.2 us
    # each, and a small product takes 40 us)
    big = max(a.indices.size, b.indices.size, a.shape[0], a.shape[1], ncols) >= 2**31 - 1
    return np.dtype(np.int64 if big else np.int32)


def _csr_public(data, indices, indptr, shape) -> sp.csr_matrix:
    return sp.csr_matrix((data, indices, indptr), shape=shape, copy=False)


def _csr_direct(data, indices, indptr, shape) -> sp.csr_matrix:
    """The CSR matrix without the constructor's O(nnz) index scan and format checks (~12 us,
    as much as a whole small product): the kernel has checked its operands and built a valid
    CSR. Sets what the public constructor sets for (data, indices, indptr) input."""
    c = sp.csr_matrix.__new__(sp.csr_matrix)
    _spbase.__init__(c, None)
    c.indptr, c.indices, c.data = indptr, indices, data
    c._shape = (int(shape[0]), int(shape[1]))
    return c


def _direct_matches_public() -> bool:
    """Whether _csr_direct builds what SciPy's constructor builds (checked once at import, so a
    SciPy whose internals differ falls back to the public constructor)."""
    try:
        args = (np.array([1.0, 2.0, 3.0]), np.array([0, 2, 1], np.int32),
                np.array([0, 2, 2, 3], np.int32), (3, 4))
        a, b = _csr_direct(*args), _csr_public(*args)
        a.check_format(full_check=True)
        return (a.shape == b.shape and a.nnz == b.nnz and (a != b).nnz == 0
                and np.array_equal((a @ b.T).toarray(), (b @ b.T).toarray())
                and vars(a).keys() == vars(b).keys() and repr(a) == repr(b))
    except Exception:  # noqa: BLE001 - any difference means: use the public constructor
        return False


try:
    from scipy.sparse._base import _spbase
    _DIRECT = _direct_matches_public()
except ImportError:
    _DIRECT = False


def _wrap(indptr, indices, data, shape) -> sp.csr_matrix:
    if indptr.dtype != indices.dtype:  # the kernels return one index type; others may not
        if indices.dtype == np.int32 and indptr[-1] < 2**31 - 1:
            indptr = indptr.astype(np.int32)
        else:
            indices = indices.astype(np.int64, copy=False)
            indptr = indptr.astype(np.int64, copy=False)
    c = (_csr_direct if _DIRECT else _csr_public)(data, indices, indptr, shape)
    c.has_canonical_format = True  # implies has_sorted_indices
    return c


def _operands(a, b, dt):
    def as_dt(x):
        return x if x.dtype == dt else x.astype(dt)
    return as_dt(a.indptr), as_dt(a.indices), a.data, as_dt(b.indptr), as_dt(b.indices), b.data


_CORE = []  # hpc._core.spgemm once imported: an import statement per call costs 0.2 us


def _native_core():
    if not _CORE:
        from hpc import _core

        _CORE.append(_core.spgemm)
    return _CORE[0]


_ONEPASS = []  # hpc._core.spgemm_onepass once imported


def _onepass_core():
    if not _ONEPASS:
        from hpc import _core

        _ONEPASS.append(_core.spgemm_onepass)
    return _ONEPASS[0]


# Products from which the one-pass kernel's row buffers (an index and a value per product)
# are checked against the memory left (the check reads /proc: ~20 us, not for small calls).
_ONEPASS_CHECK_MEMORY = 1 << 22


def _multiply_onepass(a, b, threads, onepass, ap, ai, ad, bp, bi, bd, fixed_threads=False,
                      stream=-1):
    """The one-pass kernel's product where ``onepass`` > 0, or where -1 and its sample of A's
    rows finds their output short (native/src/spgemm_onepass.cpp: ``suits``) and its buffers
    fit in memory; else None."""
    op = _onepass_core()
    i32 = ap.dtype == np.int32
    if onepass < 0:
        fits, est, _ = (op.suits_i32 if i32 else op.suits_i64)(ap, ai, bp, bi, a.shape[0],
                                                               a.shape[1])
        if not fits:
            return None
        if est >= _ONEPASS_CHECK_MEMORY:
            from hpc.core.memory import available_bytes

            if 2 * est * (ai.itemsize + 8) > available_bytes():
                return None
    fn = op.multiply_i32 if i32 else op.multiply_i64
    indptr, indices, data, stats = fn(ap, ai, ad, a.shape[0], a.shape[1], bp, bi, bd,
                                      b.shape[1], int(threads), bool(fixed_threads), -1,
                                      int(stream))
    return _wrap(indptr, indices, data, (a.shape[0], b.shape[1])), stats


def multiply_native(a: sp.csr_matrix, b: sp.csr_matrix, threads: int = 1, shared_at: int = 0,
                    dense_at: int = 0, fused_max: int = -1, interleave: int = -1,
                    onepass: int = 0, fixed_threads: bool = False, stream: int = -1):
    """C++/OpenMP two-phase hash SpGEMM (native/src/spgemm.cpp), or the one-pass kernel for
    short rows (native/src/spgemm_onepass.cpp).

    shared_at / dense_at > 0 force the product count from which a row uses the shared (SMASH)
    table or the dense accumulator (tests use them to exercise every bin); 0 is automatic.
    fused_max: largest product count sent to the one-region small-product path (-1 automatic,
    0 never; tests use it to run both paths). interleave=1 runs that path's two phases row by
    row (measured no faster, so -1 automatic and 0 leave them apart).
    onepass: 1 runs the one-pass kernel, -1 where it suits the operands (``multiply`` asks
    for that unless a knob above is set), 0 never; ``stats["onepass"]`` says which ran.
    fixed_threads: the one-pass kernel runs on exactly ``threads`` instead of the count its
    measured thread model picks up to it (benchmarks: the kernel's own scaling, apart from
    the model's choice); the two-phase kernel ignores it.
    stream: the one-pass kernel writes C with non-temporal stores (1), plain stores (0), or
    the first where its working set and C exceed L2 and C's pages are in memory already (-1;
    ``stats["streamed"]`` says which); the two-phase kernel ignores it.
    """
    check(a, b)
    dt = _index_dtype(a, b, b.shape[1])
    ap, ai, ad, bp, bi, bd = _operands(a, b, dt)
    if onepass and (onepass > 0 or (shared_at == 0 and dense_at == 0 and fused_max == -1
                                    and interleave == -1)):
        r = _multiply_onepass(a, b, threads, onepass, ap, ai, ad, bp, bi, bd, fixed_threads,
                              stream)
        if r is not None:
            return r
    core = _native_core()
    fn = core.multiply_i32 if dt == np.int32 else core.multiply_i64
    indptr, indices, data, stats = fn(ap, ai, ad, a.shape[0], a.shape[1], bp, bi, bd,
                                      b.shape[1], int(threads), int(shared_at), int(dense_at),
                                      int(fused_max), int(interleave))
    stats["onepass"] = False  # a fresh dict
    return _wrap(indptr, indices, data, (a.shape[0], b.shape[1])), stats


def multiply_scipy(a: sp.csr_matrix, b: sp.csr_matrix, threads: int = 1):
    """SciPy's reference product (single-threaded SMMP)."""
    check(a, b)
    c = (a @ b).tocsr()
    c.sort_indices()  # scipy's product leaves columns unsorted
    return c, {"products": products(a, b)}


def check(a: sp.csr_matrix, b: sp.csr_matrix) -> None:
    """ValueError unless A's columns match B's rows."""
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"incompatible shapes {a.shape} x {b.shape}")


_KERNELS: dict[str, Callable] = {"native": multiply_native, "scipy": multiply_scipy}


def kernel(backend: str) -> Callable:
    """The function ``multiply_<backend>(a, b, threads, **kw) -> (C, stats)`` of a back end
    (its module imported on first use; KeyError for an unknown name)."""
    f = _KERNELS.get(backend)
    if f is None:
        mod = importlib.import_module(f"{__package__}.{BACKENDS[backend][0]}")
        f = _KERNELS[backend] = getattr(mod, f"multiply_{backend}")
    return f


def multiply(a: sp.csr_matrix, b: sp.csr_matrix, backend: str = "native", threads: int = 1,
             **kw):
    """C = A @ B with the named back end; returns (canonical CSR, stats). ``native`` takes the
    one-pass kernel where it suits the operands (``multiply_native(onepass=-1)``) unless a
    keyword chooses otherwise."""
    if backend == "native" and not kw:
        return multiply_native(a, b, threads, onepass=-1)
    f = _KERNELS.get(backend) or kernel(backend)
    return f(a, b, threads, **kw)
