"""Local CSR SpMV kernels, one per back end, behind one interface.

A kernel object is built once per local block (``prepare``) so per-call work is only the
product: index arrays are converted to the dtype the kernel wants, device copies are made once.
``matvec(x, y, accumulate)`` computes y = A x (or y += A x) for this rank's block.

``rows`` (optional, sorted distinct output rows, with ``nout``): the block stores only those
rows and ``matvec`` writes y[rows] (y has nout entries). DistCSR uses it for the ghost-column
block, whose entries sit in few rows, so y += A_gh g does not sweep every row.
``matvec_dot(x, y, w, accumulate)`` also returns w . (A x) over the stored rows (the native
kernel computes it in the same pass; the others with one dot).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hpc.core import backends as registry

KERNELS = ("native", "numba", "numpy", "scipy", "cupy")


def default_backend() -> str:
    return "native" if registry.is_available("native") else "scipy"


def _csr64(A: sp.csr_matrix) -> sp.csr_matrix:
    """Canonical CSR: float64 data, int64 indptr; 32-bit column indices when they fit."""
    A = sp.csr_matrix(A)
    if A.dtype != np.float64:
        A = A.astype(np.float64)
    A.sort_indices()
    return A


class LocalKernel:
    name = "base"

    def __init__(self, A: sp.csr_matrix):
        A = _csr64(A)
        self.shape = A.shape
        self.nnz = A.nnz
        self.A = A

    def matvec(self, x, y, accumulate: bool = False):
        raise NotImplementedError

    def matvec_dot(self, x, y, w, accumulate: bool = False) -> float:
        """matvec, and w . (A x) (the product, before any accumulation into y)."""
        if accumulate:
            t = self.matvec(x, y * 0.0, False)
            y += t
            return float(w @ t)
        self.matvec(x, y, False)
        return float(w @ y)

    def traffic_bytes(self) -> int:
        """Minimal memory traffic of one product with this kernel's dtypes: values, column
        indices and the row pointer once, x once (8 B per column) and y written once."""
        m, n = self.shape
        return int(self.nnz * (8 + 4) + (m + 1) * 8 + n * 8 + m * 8)


class RowSubsetKernel(LocalKernel):
    """A kernel on the stored rows of a block, scattered into rows ``rows`` of an output of
    length ``nout`` (generic version of the native kernel's ``rows`` argument)."""

    def __init__(self, inner: LocalKernel, rows, nout: int):
        self.inner, self.name = inner, inner.name
        self.rows = rows
        self.shape = (int(nout), inner.shape[1])
        self.nnz = inner.nnz
        self.A = inner.A
        self._tmp = None

    def _scatter(self, x, y, accumulate):
        """Apply the stored rows and scatter them into y; returns the stored rows' values."""
        if self._tmp is None:
            self._tmp = (y * 0.0)[: self.inner.shape[0]]
        t = self.inner.matvec(x, self._tmp, False)
        if accumulate:
            y[self.rows] += t
        else:
            y[...] = 0.0
            y[self.rows] = t
        return t

    def matvec(self, x, y, accumulate=False):
        self._scatter(x, y, accumulate)
        return y

    def matvec_dot(self, x, y, w, accumulate=False):
        t = self._scatter(x, y, accumulate)
        return float(w[self.rows] @ t)


class ScipyKernel(LocalKernel):
    """SciPy's compiled csr_matvec."""

    name = "scipy"

    def matvec(self, x, y, accumulate=False):
        if accumulate:
            y += self.A @ x
        else:
            y[:] = self.A @ x
        return y


class NumpyKernel(LocalKernel):
    """Gather-multiply, then a per-row sum with bincount (pure NumPy, no compiled SpMV)."""

    name = "numpy"

    def __init__(self, A):
        super().__init__(A)
        self.rows = np.repeat(np.arange(self.shape[0], dtype=np.int64), np.diff(self.A.indptr))
        self.cols = self.A.indices.astype(np.int64)

    def matvec(self, x, y, accumulate=False):
        prod = np.bincount(self.rows, weights=self.A.data * x[self.cols], minlength=self.shape[0])
        if accumulate:
            y += prod
        else:
            y[:] = prod
        return y


class NativeKernel(LocalKernel):
    """C++/OpenMP (hpc._core.sparse.Csr): the block is copied into the kernel and validated
    once at construction (int32 row pointers and column indices where they fit); a product
    then checks only the vector lengths."""

    name = "native"

    def __init__(self, A, rows=None, nout: int | None = None):
        super().__init__(A)
        from hpc import _core

        m = self.shape[0]
        self.rows = None if rows is None else np.ascontiguousarray(rows, dtype=np.int64)
        nout = m if nout is None else int(nout)
        self.csr = _core.sparse.Csr(np.ascontiguousarray(self.A.indptr, dtype=np.int64),
                                    np.ascontiguousarray(self.A.indices),
                                    np.ascontiguousarray(self.A.data), int(self.shape[1]),
                                    self.rows, nout)
        self.shape = (nout, self.shape[1])

    def matvec(self, x, y, accumulate=False):
        if self.rows is not None and not accumulate:
            y[...] = 0.0
        self.csr.matvec(x, y, accumulate)
        return y

    def matvec_dot(self, x, y, w, accumulate=False):
        if self.rows is not None and not accumulate:
            y[...] = 0.0
        return self.csr.matvec(x, y, accumulate, w)

    def traffic_bytes(self) -> int:
        c = self.csr
        rows = c.nrows
        return int(c.nnz * (8 + c.index_itemsize) + (rows + 1) * c.indptr_itemsize
                   + c.ncols * 8 + rows * (8 if self.rows is None else 8 + 8 + 8))


class NumbaKernel(LocalKernel):
    """Numba prange over rows."""

    name = "numba"

    def __init__(self, A):
        super().__init__(A)
        from . import numba_

        self.f = numba_.spmv
        self.indptr = self.A.indptr.astype(np.int64)
        self.indices = self.A.indices.astype(np.int64)

    def matvec(self, x, y, accumulate=False):
        if x.shape[0] != self.shape[1] or y.shape[0] != self.shape[0]:
            raise ValueError("spmv: vector length does not match the matrix")
        self.f(self.indptr, self.indices, self.A.data, x, y, accumulate)
        return y


class CupyKernel(LocalKernel):
    """cuSPARSE through cupyx.scipy.sparse; x and y are device arrays (cupy)."""

    name = "cupy"

    def __init__(self, A):
        super().__init__(A)
        import cupyx.scipy.sparse as csp

        self.dA = csp.csr_matrix(self.A)

    def matvec(self, x, y, accumulate=False):
        if accumulate:
            y += self.dA @ x
        else:
            y[...] = self.dA @ x
        return y


_CLASSES = {"native": NativeKernel, "numba": NumbaKernel, "numpy": NumpyKernel,
            "scipy": ScipyKernel, "cupy": CupyKernel}


def make_kernel(backend: str, A: sp.csr_matrix, rows=None, nout: int | None = None) -> LocalKernel:
    """The local kernel of `backend` for A; with rows/nout, A's row i is output row rows[i]."""
    if backend not in _CLASSES:
        raise ValueError(f"unknown sparse kernel back end {backend!r}; known: {', '.join(KERNELS)}")
    if rows is None:
        return _CLASSES[backend](A)
    if backend == "native":
        return NativeKernel(A, rows, nout)
    inner = _CLASSES[backend](A)
    if backend == "cupy":
        import cupy

        rows = cupy.asarray(rows)
    return RowSubsetKernel(inner, rows, nout)
