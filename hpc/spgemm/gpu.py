"""GPU back ends: the CUDA hash kernel (hpc._cuda.spgemm, nsparse-style) and cuSPARSE via cupyx.

Both take host SciPy CSR operands and return a host canonical CSR product (the distributed
layer works on host arrays); the transfers are part of the timed multiply. They are the
``cuda`` and ``cusparse`` back ends of hpc.spgemm.local (imported when first used: the CUDA
extension and CuPy are optional).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .local import check, products


def multiply_cuda(a: sp.csr_matrix, b: sp.csr_matrix, threads: int = 1):
    """CUDA hash SpGEMM with per-block shared-memory tables by row bin (native/cuda/spgemm.cu);
    ``threads`` is ignored."""
    from hpc import _cuda  # the optional CUDA extension

    check(a, b)
    if max(a.shape[0], a.shape[1], b.shape[1]) >= 2**31:
        raise ValueError("the CUDA kernel needs dimensions below 2^31")
    indptr, indices, data, stats = _cuda.spgemm.multiply(
        a.indptr.astype(np.int64), a.indices.astype(np.int32), np.ascontiguousarray(a.data, np.float64),
        a.shape[0], a.shape[1], b.indptr.astype(np.int64), b.indices.astype(np.int32),
        np.ascontiguousarray(b.data, np.float64), b.shape[1])
    c = sp.csr_matrix((data, indices, indptr), shape=(a.shape[0], b.shape[1]), copy=False)
    c.has_sorted_indices = True
    c.has_canonical_format = True
    return c, dict(stats)


def multiply_cusparse(a: sp.csr_matrix, b: sp.csr_matrix, threads: int = 1):
    """cuSPARSE SpGEMM (cupyx.scipy.sparse), the GPU comparison; ``threads`` is ignored."""
    import cupyx.scipy.sparse as csp  # optional: CuPy

    check(a, b)
    da, db = csp.csr_matrix(a), csp.csr_matrix(b)
    dc = da @ db
    dc.sum_duplicates()
    c = dc.get().tocsr()
    c.sort_indices()
    return c, {"products": products(a, b)}
