"""Memory-bounded phases of the 1D product at 1-4 ranks: the chunks of C, stacked, are the
unphased product bit for bit, and no chunk holds much more than 1/K of this rank's C."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from mpi4py import MPI

from hpc.sparse import DistCSR
from hpc.sparse.randgen import rmat_edges
from hpc.spgemm import dist

comm = MPI.COMM_WORLD


@pytest.mark.mpi
@pytest.mark.parametrize("phases", [1, 3, 4, 7])
def test_phased_product_identical_and_bounded(phases):
    s, d = rmat_edges(10, 8, 4, None)
    G = sp.csr_matrix((np.ones(s.size), (s, d)), shape=(1024, 1024))
    G.sum_duplicates()
    A = DistCSR.from_scipy(G, comm)
    full = dist.multiply_1d(A, A, "native", 2, dist.Costs()).local
    chunks = []
    peak = dist.multiply_1d_phased(A, A, "native", 2, dist.Costs(), phases,
                                   lambda r0, C: chunks.append((r0, C)))
    assert [r0 for r0, _ in chunks] == sorted(r0 for r0, _ in chunks)
    C = sp.vstack([c for _, c in chunks], format="csr") if chunks else full
    np.testing.assert_array_equal(C.indptr, full.indptr)
    np.testing.assert_array_equal(C.indices, full.indices)
    np.testing.assert_array_equal(C.data, full.data)
    total = full.indptr.nbytes + full.indices.nbytes + full.data.nbytes
    # equal-work chunks: within a row's weight of 1/K (R-MAT rows are skewed: some slack)
    assert peak <= 1.6 * total / phases + 4096
