"""Local CSR SpMV kernels, one per back end, behind one interface.

A kernel object is built once per local block (``prepare``) so per-call work is only the
product: index arrays are converted to the dtype the kernel wants, device copies are made once.
``matvec(x, y, accumulate)`` computes y = A x (or y += A x) for this rank's block.
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
    """C++/OpenMP (hpc._core.sparse.spmv); indices validated once here, not every call."""

    name = "native"

    def __init__(self, A):
        super().__init__(A)
        from hpc import _core

        self.k = _core.sparse
        idx = self.A.indices
        small = self.shape[1] < 2**31 - 1
        self.indptr = np.ascontiguousarray(self.A.indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(idx, dtype=np.int32 if small else np.int64)
        self.data = np.ascontiguousarray(self.A.data)
        if self.nnz and (self.indices.min() < 0 or self.indices.max() >= self.shape[1]):
            raise ValueError("column index out of range")

    def matvec(self, x, y, accumulate=False):
        if x.shape[0] != self.shape[1]:
            raise ValueError(f"spmv: x has length {x.shape[0]}, expected {self.shape[1]}")
        self.k.spmv(self.indptr, self.indices, self.data, x, y, accumulate, False)
        return y


class NumbaKernel(LocalKernel):
    """Numba prange over rows."""

    name = "numba"

    def __init__(self, A):
        super().__init__(A)
        from . import _numba

        self.f = _numba.spmv
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


def make_kernel(backend: str, A: sp.csr_matrix) -> LocalKernel:
    if backend not in _CLASSES:
        raise ValueError(f"unknown sparse kernel back end {backend!r}; known: {', '.join(KERNELS)}")
    return _CLASSES[backend](A)
