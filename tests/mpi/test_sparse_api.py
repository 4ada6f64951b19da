"""The public hpc.sparse API in-process under mpiexec (1-4 ranks), against SciPy:
read_matrix vs scipy.io.mmread, from_scipy/to_scipy round trips, matvec vs ``A @ x`` for
global and distributed inputs, and wrong inputs raising ValueError/TypeError."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from mpi4py import MPI

from hpc.sparse import DistCSR, read_matrix

pytestmark = pytest.mark.mpi
comm = MPI.COMM_WORLD
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "matrices"


def matrix_path(name: str) -> Path:
    path = DATA / f"{name}.mtx"
    if not path.exists():
        pytest.skip(f"real data not present: {path}")
    return path


@pytest.mark.parametrize("name", ["1138_bus", "jagmesh7", "dwt_992"])
def test_read_matrix_against_mmread(name):
    path = matrix_path(name)
    A = read_matrix(path)                          # comm=None: COMM_WORLD
    R = sp.csr_matrix(scipy.io.mmread(str(path)))
    assert isinstance(A, DistCSR) and A.comm == comm
    assert A.shape == R.shape and A.nnz == R.nnz and A.dtype == np.float64
    G = A.to_scipy()                               # on every rank
    assert G.shape == R.shape and abs(G - R).max() == 0 and G.has_sorted_indices
    # the distributed product against SciPy's
    x = np.random.default_rng(1).standard_normal(R.shape[1])
    y = A.gather_vector(A.matvec(A.local_slice(x, rows=False)), root=None)
    np.testing.assert_allclose(y, R @ x, rtol=1e-12, atol=1e-12 * abs(R).max())


@pytest.mark.parametrize("kind", ["csr_matrix", "coo_matrix", "csr_array", "csc_array"])
def test_from_scipy_to_scipy_round_trip(kind):
    R = sp.random(37, 23, density=0.2, random_state=4, format="csr")
    R.data = np.arange(1, R.nnz + 1) / 3.0
    S = getattr(sp, kind)(R)
    A = DistCSR.from_scipy(S, comm)
    assert A.shape == (37, 23) and A.nnz == R.nnz and A.dtype == np.float64
    lo, hi = A.row_range
    assert A.local.shape == (hi - lo, 23) and (A.local != R[lo:hi]).nnz == 0
    G = A.to_scipy()
    assert isinstance(G, sp.csr_matrix) and (G != R).nnz == 0
    root = comm.size - 1
    H = A.to_scipy(root=root)
    if comm.rank == root:
        assert (H != R).nnz == 0
    else:
        assert H is None
    G0 = A.gather(root=0)
    assert (G0 is None) == (comm.rank != 0)


@pytest.mark.parametrize("exchange", ["neighbor", "p2p"])
@pytest.mark.parametrize("shape", [(60, 60), (45, 70), (70, 45)])
def test_matvec_against_scipy(exchange, shape):
    R = sp.random(*shape, density=0.1, random_state=8, format="csr")
    R = R + sp.eye(*shape, format="csr")
    A = DistCSR.from_scipy(R, comm, exchange=exchange)
    x = np.random.default_rng(2).standard_normal(shape[1])
    xl = A.local_slice(x, rows=False)
    assert xl.shape == (A.local_cols,)
    yl = A.matvec(xl)
    lo, hi = A.row_range
    np.testing.assert_allclose(yl, (R @ x)[lo:hi], rtol=1e-13, atol=1e-13)
    y0 = A.gather_vector(yl, root=0)
    if comm.rank == 0:
        np.testing.assert_allclose(y0, R @ x, rtol=1e-13, atol=1e-13)
    else:
        assert y0 is None
    # integer vectors are used as float64; the product repeats with the same plan
    xi = np.arange(shape[1])
    np.testing.assert_allclose(A.matvec(A.local_slice(xi, rows=False)), (R @ xi)[lo:hi],
                               rtol=1e-13, atol=1e-12)


def test_matvec_with_own_row_partition_and_subcommunicator():
    """Any communicator and any row partition: ranks split in two halves, each with its own
    matrix; the first rank of each half holds no row."""
    sub = comm.Split(comm.rank % 2, comm.rank)
    p = sub.Get_size()
    n = 30 + comm.rank % 2
    R = sp.random(n, n, density=0.15, random_state=3 + comm.rank % 2, format="csr") + sp.eye(n)
    off = np.concatenate(([0, 0], np.linspace(0, n, p, dtype=np.int64)[1:])) if p > 1 \
        else np.array([0, n])
    A = DistCSR.from_scipy(R, sub, row_offsets=off)
    x = np.cos(np.arange(n))
    y = A.gather_vector(A.matvec(A.local_slice(x)), root=None)
    np.testing.assert_allclose(y, R @ x, rtol=1e-13, atol=1e-13)
    assert (A.to_scipy() != sp.csr_matrix(R)).nnz == 0
    A.free()
    sub.Free()


def test_wrong_inputs():
    R = sp.random(12, 9, density=0.3, random_state=0, format="csr")
    with pytest.raises(TypeError, match="A must be a scipy.sparse matrix or array, got ndarray"):
        DistCSR.from_scipy(R.toarray(), comm)
    with pytest.raises(TypeError, match="comm must be an mpi4py intracommunicator"):
        DistCSR.from_scipy(R, comm="world")
    A = DistCSR.from_scipy(R)
    with pytest.raises(ValueError, match=rf"matvec: x_local has shape \({A.local_cols + 1},\), "
                                         rf"expected \({A.local_cols},\)"):
        A.matvec(np.ones(A.local_cols + 1))
    with pytest.raises(ValueError, match="expected"):
        A.matvec([1.0] * A.local_cols)              # not an array: no shape
    with pytest.raises(ValueError, match=r"local_slice: the global vector has shape \(12,\)"):
        A.local_slice(np.ones(12), rows=False)
    with pytest.raises(ValueError, match="gather_vector: v_local has shape"):
        A.gather_vector(np.ones(A.local_rows + 1))
    with pytest.raises(ValueError, match="square"):  # not square where square is required
        A.spmv_dot(np.ones(A.local_cols))
    with pytest.raises(ValueError, match=f"root {comm.size} is not a rank"):
        A.to_scipy(root=comm.size)
    with pytest.raises(TypeError, match="root must be an int or None"):
        A.to_scipy(root="0")
    with pytest.raises(ValueError, match="bad offsets"):
        DistCSR.from_scipy(R, comm, row_offsets=[0, 5])
    with pytest.raises(ValueError, match="unknown back end 'fortran'"):
        DistCSR.from_scipy(R, comm, backend="fortran")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got int"):
        read_matrix(1138)
    with pytest.raises(ValueError, match="cannot open"):
        read_matrix("/nonexistent/matrix.mtx")
