"""hpc.spgemm.ptap (PᵀAP, distributed without a global transpose of P) against SciPy, and
hpc.spgemm.count_triangles against networkx, at 1-4 ranks."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from mpi4py import MPI

from hpc.sparse import DistCSR
from hpc.spgemm import count_triangles, ptap

comm = MPI.COMM_WORLD


def _int_sparse(rng, m, n, density):
    """Integer-valued float entries: every sum is exact, whatever its order."""
    M = sp.random(m, n, density, format="csr", random_state=rng,
                  data_rvs=lambda s: rng.integers(-4, 5, size=s).astype(np.float64))
    return M


def _aggregation_p(n, m, rng):
    """A prolongator-like P: every row 1-3 entries, every column used."""
    rows = np.concatenate([np.arange(n), rng.integers(0, n, size=n)])
    cols = np.concatenate([np.arange(n) * m // n, rng.integers(0, m, size=n)])
    return sp.csr_matrix((rng.integers(1, 4, size=rows.size).astype(np.float64), (rows, cols)),
                         shape=(n, m))


@pytest.mark.mpi
@pytest.mark.parametrize("n,m", [(60, 13), (45, 45), (7, 3), (30, 1)])
def test_ptap_scipy_operands_exact(n, m):
    rng = np.random.default_rng(n + m)
    A = _int_sparse(rng, n, n, 0.15)
    P = _aggregation_p(n, m, rng)
    R = (P.T @ A @ P).tocsr()
    R.sum_duplicates()
    C = ptap(A, P, threads=2)
    assert C.shape == (m, m)
    np.testing.assert_array_equal(C.toarray(), R.toarray())


@pytest.mark.mpi
def test_ptap_distcsr_float_and_partition():
    rng = np.random.default_rng(5)
    n, m = 80, 17
    A = sp.random(n, n, 0.1, format="csr", random_state=rng) + sp.eye(n)
    A = (A + A.T).tocsr()
    P = _aggregation_p(n, m, rng)
    P.data = rng.random(P.nnz)
    Ad = DistCSR.from_scipy(A, comm)
    Pd = DistCSR.from_scipy(P, comm, row_offsets=Ad.col_offsets)
    C = ptap(Ad, Pd)
    assert isinstance(C, DistCSR) and C.shape == (m, m)
    np.testing.assert_array_equal(C.row_offsets, Pd.col_offsets)
    Cg = C.to_scipy(root=None)
    np.testing.assert_allclose(Cg.toarray(), (P.T @ A @ P).toarray(), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(Cg.toarray(), Cg.toarray().T, rtol=1e-13, atol=1e-13)


@pytest.mark.mpi
def test_ptap_wrong_inputs():
    A = sp.eye(5, format="csr")
    with pytest.raises(ValueError, match="rows"):
        ptap(A, sp.eye(4, format="csr"))
    with pytest.raises(ValueError, match="square"):
        ptap(sp.random(5, 4, 0.5, format="csr"), sp.eye(4, format="csr"))
    with pytest.raises(TypeError, match="both"):
        ptap(DistCSR.from_scipy(A, comm), A)


@pytest.mark.mpi
@pytest.mark.parametrize("seed", [1, 2])
def test_count_triangles_scipy_and_distcsr(seed):
    rng = np.random.default_rng(seed)
    n = 90
    # directed, with duplicates and self loops: counted as undirected and simple
    s = rng.integers(0, n, size=900)
    d = np.where(rng.random(900) < 0.7, (s + rng.integers(0, 8, size=900)) % n,
                 rng.integers(0, n, size=900))
    G = sp.coo_matrix((np.ones(s.size), (s, d)), shape=(n, n)).tocsr()
    ref = nx.Graph()
    ref.add_edges_from(zip(s.tolist(), d.tolist()))
    ref.remove_edges_from(nx.selfloop_edges(ref))
    want = sum(nx.triangles(ref).values()) // 3
    assert count_triangles(G, threads=2) == want
    assert count_triangles(DistCSR.from_scipy(G, comm)) == want
