"""hpc.spgemm.multiply at any rank count (tools/run_tests.sh runs 1..4 ranks) against SciPy's
``A @ B``: SciPy operands (the product on every rank, sorted column indices, the exact
structure and the values to rounding) and DistCSR operands (a DistCSR product), square and
rectangular, 1d and 2d layouts; wrong inputs raise ValueError/TypeError."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core import backends
from hpc.sparse import DistCSR
from hpc.spgemm import multiply

comm = MPI.COMM_WORLD
SQUARE = int(round(np.sqrt(comm.size))) ** 2 == comm.size
HOST = [b for b in ("native", "numba", "scipy") if backends.is_available(b)]


def _rand(m, n, density, seed):
    rng = np.random.default_rng(seed)
    M = sp.random(m, n, density, format="lil", random_state=rng,
                  data_rvs=lambda s: rng.standard_normal(s))
    if m > 3:
        M[2, :] = 0          # an empty row
        M[3, :] = 1.25       # a full row
    return M.tocsr()


def _reference(A, B) -> sp.csr_matrix:
    R = (sp.csr_matrix(A) @ sp.csr_matrix(B)).tocsr()
    R.sum_duplicates()
    R.sort_indices()
    return R


def _same(C, R) -> None:
    """The same structure exactly (sorted columns), the same values to rounding."""
    assert C.shape == R.shape
    np.testing.assert_array_equal(C.indptr, R.indptr)
    np.testing.assert_array_equal(C.indices, R.indices)
    np.testing.assert_allclose(C.data, R.data, rtol=1e-12, atol=1e-12)
    for i in range(C.shape[0]):  # columns strictly ascending in every row
        assert np.all(np.diff(C.indices[C.indptr[i]:C.indptr[i + 1]]) > 0)


LAYOUTS = ["1d", pytest.param("2d", marks=pytest.mark.skipif(
    not SQUARE, reason="2d needs a square number of ranks"))]
SHAPES = [(60, 60, 60), (47, 83, 29), (90, 13, 71)]


@pytest.mark.mpi
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_scipy_in_scipy_out(layout, m, k, n):
    A, B = _rand(m, k, 0.08, 1), _rand(k, n, 0.1, 2)
    C = multiply(A, B, layout=layout, threads=2)
    assert isinstance(C, sp.csr_matrix) and C.dtype == np.float64
    _same(C, _reference(A, B))
    assert C.has_sorted_indices
    # the same on every rank
    assert comm.allgather(float(abs(C).sum())) == [float(abs(C).sum())] * comm.size


@pytest.mark.mpi
@pytest.mark.parametrize("backend", HOST)
def test_backends_and_formats(backend):
    A = _rand(70, 50, 0.1, 3).tocoo()           # any sparse format
    B = sp.csr_array(_rand(50, 40, 0.1, 4))     # a sparse array gives a sparse array
    C = multiply(A, B, backend=backend)
    assert isinstance(C, sp.csr_array)
    _same(sp.csr_matrix(C), _reference(A, B))
    Ci = multiply(sp.csr_matrix(np.eye(5, dtype=np.int64) * 2),
                  sp.csr_matrix(np.arange(25).reshape(5, 5)), backend=backend)
    np.testing.assert_array_equal(Ci.toarray(), 2.0 * np.arange(25).reshape(5, 5))


@pytest.mark.mpi
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_distcsr_in_distcsr_out(layout, m, k, n):
    A, B = _rand(m, k, 0.08, 5), _rand(k, n, 0.1, 6)
    dA, dB = DistCSR.from_scipy(A, comm), DistCSR.from_scipy(B, comm)
    dC = multiply(dA, dB, layout=layout)
    assert isinstance(dC, DistCSR)
    assert dC.shape == (m, n)
    np.testing.assert_array_equal(dC.row_offsets, dA.row_offsets)  # distributed like A's rows
    R = _reference(A, B)
    lo, hi = dC.row_range
    _same(dC.local, R[lo:hi])
    _same(dC.to_scipy(), R)


@pytest.mark.mpi
def test_empty_product_and_subcommunicator():
    A = sp.csr_matrix((7, 5))
    C = multiply(A, _rand(5, 9, 0.3, 7))
    assert C.shape == (7, 9) and C.nnz == 0
    sub = comm.Split(comm.rank % 2, comm.rank)
    A, B = _rand(40, 30, 0.1, 8), _rand(30, 20, 0.1, 9)
    _same(multiply(A, B, comm=sub), _reference(A, B))
    sub.Free()


@pytest.mark.mpi
@pytest.mark.parametrize("call,exc,match", [
    (lambda A, B: multiply(A, A), ValueError, "incompatible shapes"),
    (lambda A, B: multiply(A.toarray(), B), TypeError, "SciPy sparse"),
    (lambda A, B: multiply(A, B, layout="3d"), ValueError, "layout"),
    (lambda A, B: multiply(A, B, backend="cupy"), ValueError, "backend"),
    (lambda A, B: multiply(A, B, backend="mkl"), ValueError, "backend"),
    (lambda A, B: multiply(A, B, threads=0), ValueError, "threads"),
    (lambda A, B: multiply(A, B, threads=1.5), TypeError, "threads"),
    (lambda A, B: multiply(A.astype(np.complex128), B), TypeError, "real entries"),
    (lambda A, B: multiply(DistCSR.from_scipy(A, comm), B), TypeError, "both"),
    (lambda A, B: multiply(DistCSR.from_scipy(A, comm), DistCSR.from_scipy(A, comm)),
     ValueError, "incompatible shapes"),
    (lambda A, B: multiply(A, B, comm="world"), TypeError, "comm"),
])
def test_wrong_inputs_raise(call, exc, match):
    A, B = _rand(20, 30, 0.1, 10), _rand(30, 10, 0.1, 11)
    with pytest.raises(exc, match=match):
        call(A, B)


@pytest.mark.mpi
@pytest.mark.skipif(SQUARE, reason="needs a rank count that is not a square")
def test_2d_needs_square_rank_count():
    A, B = _rand(20, 30, 0.1, 10), _rand(30, 10, 0.1, 11)
    with pytest.raises(ValueError, match="square number of ranks"):
        multiply(A, B, layout="2d")
