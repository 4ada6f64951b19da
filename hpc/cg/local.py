"""Solvers on one rank's square diagonal block, shared by block Jacobi and multigrid.

- :class:`LocalSGS`: one symmetric Gauss-Seidel sweep (native C++ or Numba)
- :class:`LocalIC0`: incomplete Cholesky with zero fill, IC(0) (Numba, :mod:`._ic0`)
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hpc.core import backends
from hpc.core.errors import UsageError

SUB_PCS = ("sgs", "icc")


class LocalSGS:
    """One symmetric Gauss-Seidel sweep on a square local block: z = (D+U)^{-1} D (D+L)^{-1} r."""

    def __init__(self, B: sp.csr_matrix, backend: str = "native"):
        B = sp.csr_matrix(B)
        B.sort_indices()
        self.n = B.shape[0]
        self.indptr = B.indptr.astype(np.int64)
        self.indices = B.indices.astype(np.int32 if self.n < 2**31 - 1 else np.int64)
        self.data = np.ascontiguousarray(B.data, dtype=np.float64)
        self.diag = np.ascontiguousarray(B.diagonal(), dtype=np.float64)
        if self.n and not np.all(self.diag > 0):
            raise UsageError("symmetric Gauss-Seidel: the diagonal has entries <= 0 (not SPD)")
        if backend == "native" and backends.is_available("native"):
            from hpc import _core

            self._sweep = _core.sparse.gs_sweep
        else:
            from hpc.sparse import numba_

            self.indices = self.indices.astype(np.int64)
            self._sweep = numba_.gs_sweep

    def sweep(self, b: np.ndarray, x: np.ndarray, forward: bool) -> None:
        self._sweep(self.indptr, self.indices, self.data, self.diag, b, x, forward)

    def apply(self, r: np.ndarray) -> np.ndarray:
        r = np.ascontiguousarray(r, dtype=np.float64)
        z = np.zeros_like(r)
        self.sweep(r, z, True)
        self.sweep(r, z, False)
        return z


class LocalIC0:
    """Incomplete Cholesky with zero fill (IC(0)) of a square local block: z = (L L^T)^{-1} r."""

    def __init__(self, B: sp.csr_matrix):
        from . import _ic0

        L = sp.tril(sp.csr_matrix(B), format="csr")
        L.sort_indices()
        self.indptr = L.indptr.astype(np.int64)
        self.indices = L.indices.astype(np.int64)
        self.data = np.ascontiguousarray(L.data, dtype=np.float64).copy()
        bad = _ic0.factor(self.indptr, self.indices, self.data)
        if bad >= 0:
            raise UsageError(f"--sub-pc icc: IC(0) breaks down at local row {bad} (pivot <= 0); "
                             "the block is not an M-matrix; use --sub-pc sgs")
        self._solve = _ic0.solve

    def apply(self, r):
        r = np.ascontiguousarray(r, dtype=np.float64)
        return self._solve(self.indptr, self.indices, self.data, r)
