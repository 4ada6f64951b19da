"""PageRank's native back end: C++/OpenMP kernels of ``hpc._core.pagerank`` (the interface is
described in :mod:`hpc.pagerank.backends`)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hpc import _core

from .numpy_ import Kernels as NumpyKernels


class Kernels(NumpyKernels):
    """C++/OpenMP (hpc._core.pagerank): validated pattern CSR with int32 columns, fused sweep."""

    name = "native"
    sparse_kernel = "native"

    class _Local:
        def __init__(self, A: sp.csr_matrix):
            if A.shape[1] >= 2**31:
                raise ValueError("native pagerank kernel: local column space exceeds int32")
            self.k = _core.pagerank.Pull(np.ascontiguousarray(A.indptr, dtype=np.int64),
                                         np.ascontiguousarray(A.indices, dtype=np.int32),
                                         int(A.shape[1]))

        def spmv(self, x, y, accumulate=False):
            self.k.spmv(x, y, accumulate)

        def spmv_update(self, xg, y, x, xs, inv, d, base):
            return self.k.spmv_update(xg, y, x, xs, inv, float(d), float(base))

    class _Valued:
        """A local block with its values (edge weights): the suite's native CSR product
        (``_core.sparse.Csr``, OpenMP)."""

        def __init__(self, A: sp.csr_matrix):
            A = sp.csr_matrix(A, dtype=np.float64)
            self.k = _core.sparse.Csr(np.ascontiguousarray(A.indptr, dtype=np.int64),
                                      np.ascontiguousarray(A.indices, dtype=np.int64),
                                      np.ascontiguousarray(A.data, dtype=np.float64),
                                      int(A.shape[1]), None, int(A.shape[0]))

        def spmv(self, x, y, accumulate=False):
            self.k.matvec(x, y, accumulate)

    def local(self, A, values: bool = False):
        return self._Valued(A) if values else self._Local(A)

    @staticmethod
    def update(y, x, xs, inv, d, base):
        return _core.pagerank.update(y, x, xs, inv, float(d), float(base))
