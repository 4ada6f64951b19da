"""PageRank's local kernels per back end: the pattern SpMV (all edge values are 1) and the
update x_new = d*y + base that also returns the L1 change and the new dangling mass.

Every back end gives the same interface:
- ``local(csr)`` -> an object with ``spmv(x, y, accumulate=False)`` for one local block;
- ``update(y, x, xs, inv_deg, d, base) -> (l1_change, dangling_mass)``; sets x = x_new and
  xs = x_new * inv_deg (what the neighbours pull), inv_deg = 0 marking a dangling vertex;
- ``xp`` (numpy or cupy), ``asarray`` (host -> back end), ``host`` (back end -> host);
- ``sparse_kernel``: the name of the hpc.sparse kernel DistCSR uses for this back end.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

BACKENDS = ("native", "numba", "numpy", "cupy")


class NumpyKernels:
    """NumPy for the update, SciPy's compiled CSR product for the pattern SpMV."""

    name = "numpy"
    sparse_kernel = "scipy"
    xp = np

    class _Local:
        def __init__(self, A: sp.csr_matrix):
            self.A = sp.csr_matrix((np.ones(A.nnz), A.indices, A.indptr), shape=A.shape)

        def spmv(self, x, y, accumulate=False):
            if accumulate:
                y += self.A @ x
            else:
                y[:] = self.A @ x

    def local(self, A):
        return self._Local(A)

    @staticmethod
    def update(y, x, xs, inv, d, base):
        xn = d * y + base
        diff = float(np.abs(xn - x).sum())
        x[:] = xn
        np.multiply(xn, inv, out=xs)
        dsum = float(xn[inv == 0.0].sum())
        return diff, dsum

    asarray = staticmethod(np.ascontiguousarray)
    host = staticmethod(np.asarray)


class NativeKernels(NumpyKernels):
    """C++/OpenMP (hpc._core.pagerank): validated pattern CSR with int32 columns, fused sweep."""

    name = "native"
    sparse_kernel = "native"

    class _Local:
        def __init__(self, A: sp.csr_matrix):
            from hpc import _core

            if A.shape[1] >= 2**31:
                raise ValueError("native pagerank kernel: local column space exceeds int32")
            self.k = _core.pagerank.Pull(np.ascontiguousarray(A.indptr, dtype=np.int64),
                                         np.ascontiguousarray(A.indices, dtype=np.int32),
                                         int(A.shape[1]))

        def spmv(self, x, y, accumulate=False):
            self.k.spmv(x, y, accumulate)

        def spmv_update(self, xg, y, x, xs, inv, d, base):
            return self.k.spmv_update(xg, y, x, xs, inv, float(d), float(base))

    @staticmethod
    def update(y, x, xs, inv, d, base):
        from hpc import _core

        return _core.pagerank.update(y, x, xs, inv, float(d), float(base))


class NumbaKernels(NumpyKernels):
    """Numba prange loops (compiled on first use, cached)."""

    name = "numba"
    sparse_kernel = "numba"

    class _Local:
        def __init__(self, A: sp.csr_matrix):
            from . import kern_numba

            self.f = kern_numba.spmv_pattern
            self.indptr = np.ascontiguousarray(A.indptr, dtype=np.int64)
            self.indices = np.ascontiguousarray(A.indices, dtype=np.int32)
            self.shape = A.shape

        def spmv(self, x, y, accumulate=False):
            if x.shape[0] != self.shape[1] or y.shape[0] != self.shape[0]:
                raise ValueError("spmv: vector length does not match the matrix")
            self.f(self.indptr, self.indices, x, y, accumulate)

    @staticmethod
    def update(y, x, xs, inv, d, base):
        from . import kern_numba

        n = y.shape[0]
        if not (x.shape[0] == xs.shape[0] == inv.shape[0] == n):
            raise ValueError("update: vectors differ in length")
        diff, dsum = kern_numba.update(y, x, xs, inv, float(d), float(base))
        return float(diff), float(dsum)


class CupyKernels:
    """CuPy on the GPU: cuSPARSE pattern SpMV, one fused element-wise kernel for the update."""

    name = "cupy"
    sparse_kernel = "cupy"

    def __init__(self):
        import cupy as cp

        self.xp = cp
        self._upd = cp.ElementwiseKernel(
            "float64 y, float64 inv, float64 d, float64 base", "float64 x, float64 xs, float64 dx, float64 dm",
            "double xn = d * y + base; dx = fabs(xn - x); x = xn; xs = xn * inv; dm = inv == 0.0 ? xn : 0.0;",
            "hpc_pagerank_update")

    class _Local:
        def __init__(self, A: sp.csr_matrix):
            import cupyx.scipy.sparse as csp

            self.A = csp.csr_matrix(sp.csr_matrix((np.ones(A.nnz), A.indices, A.indptr), shape=A.shape))

        def spmv(self, x, y, accumulate=False):
            if accumulate:
                y += self.A @ x
            else:
                y[...] = self.A @ x

    def local(self, A):
        return self._Local(A)

    def update(self, y, x, xs, inv, d, base):
        cp = self.xp
        dx = cp.empty_like(y)
        dm = cp.empty_like(y)
        self._upd(y, inv, float(d), float(base), x, xs, dx, dm)
        return float(dx.sum()), float(dm.sum())

    def asarray(self, a):
        return self.xp.asarray(a)

    @staticmethod
    def host(a):
        return a.get() if hasattr(a, "get") else np.asarray(a)


def make(name: str):
    """The kernels of back end ``name`` (availability checked by the caller)."""
    if name == "native":
        return NativeKernels()
    if name == "numba":
        return NumbaKernels()
    if name == "numpy":
        return NumpyKernels()
    if name == "cupy":
        return CupyKernels()
    raise ValueError(f"unknown back end {name!r}")
