"""DistCSR, generators and the parallel Matrix Market reader, in-process under mpiexec (1-4 ranks).

References are SciPy (scipy.io.mmread, sparse products) on the gathered matrix.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core.errors import UsageError
from hpc.sparse import DistCSR
from hpc.sparse.generators import hpcg, parse_problem, poisson2d, poisson3d
from hpc.sparse.kernels import KERNELS
from hpc.sparse.mmio import read_matrix, write_mm
from hpc.core import backends

pytestmark = pytest.mark.mpi
comm = MPI.COMM_WORLD
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "matrices"
HOST_KERNELS = [k for k in KERNELS if k != "cupy" and backends.is_available(k)]


def bcast_global(A: DistCSR) -> sp.csr_matrix:
    return comm.bcast(A.gather(root=0), root=0)


def shared_tmpdir() -> str:
    d = tempfile.mkdtemp(prefix="hpc_sparse_") if comm.rank == 0 else None
    return comm.bcast(d, root=0)


def spmv_global(A: DistCSR, x: np.ndarray) -> np.ndarray:
    return A.gather_vector(A.spmv(A.local_slice(x, rows=False)), root=None)


@pytest.mark.parametrize("backend", HOST_KERNELS)
@pytest.mark.parametrize("exchange", ["neighbor", "p2p"])
def test_spmv_matches_scipy(backend, exchange):
    rng = np.random.default_rng(7)
    R = sp.random(53, 53, density=0.15, random_state=11, format="csr") + sp.eye(53)
    A = DistCSR.from_scipy(R, comm, backend=backend, exchange=exchange)
    x = rng.standard_normal(53)
    np.testing.assert_allclose(spmv_global(A, x), R @ x, rtol=1e-13, atol=1e-13)
    # the plan is built once and reused; a second product gives the same answer
    np.testing.assert_allclose(spmv_global(A, 2 * x), R @ (2 * x), rtol=1e-13, atol=1e-13)
    assert A.nnz == R.nnz


def test_rectangular_spmv_and_transpose():
    R = sp.random(41, 17, density=0.2, random_state=3, format="csr")
    A = DistCSR.from_scipy(R, comm)
    x = np.arange(17.0)
    np.testing.assert_allclose(spmv_global(A, x), R @ x, rtol=1e-13)
    T = A.transpose()
    assert T.shape == (17, 41)
    assert abs(bcast_global(T) - R.T).max() == 0
    y = np.linspace(0, 1, 41)
    np.testing.assert_allclose(spmv_global(T, y), R.T @ y, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("gen,N,n,nnz_row_max,diag", [(poisson2d, 6, 36, 5, 4.0),
                                                     (poisson3d, 4, 64, 7, 6.0),
                                                     (hpcg, 5, 125, 27, 26.0)])
def test_generators(gen, N, n, nnz_row_max, diag):
    A = gen(N, comm)
    G = bcast_global(A)
    assert G.shape == (n, n)
    assert abs(G - G.T).max() == 0
    assert np.all(G.diagonal() == diag)
    assert np.diff(G.indptr).max() == nnz_row_max
    np.testing.assert_array_equal(A.diagonal(), np.full(A.local_rows, diag))
    # rows sum to zero in the interior (a Laplacian), positive on the boundary
    assert G.sum(axis=1).min() >= 0
    # Against an independent construction from Kronecker products
    if gen is not hpcg:
        T = sp.diags([-1, 2, -1], [-1, 0, 1], shape=(N, N), dtype=float)
        I = sp.eye(N)
        K = sp.kron(I, T) + sp.kron(T, I) if gen is poisson2d else (
            sp.kron(sp.kron(I, I), T) + sp.kron(sp.kron(I, T), I) + sp.kron(sp.kron(T, I), I))
        assert abs(G - K).max() == 0
    else:
        T = sp.diags([1, 1, 1], [-1, 0, 1], shape=(N, N), dtype=float)
        K = 27 * sp.eye(n) - sp.kron(sp.kron(T, T), T)
        assert abs(G - K).max() == 0


def test_parse_problem():
    assert parse_problem("poisson3d:64") == ("poisson3d", 64)
    for bad in ("poisson4d:3", "hpcg", "hpcg:0", "hpcg:x"):
        with pytest.raises(UsageError):
            parse_problem(bad)


@pytest.mark.parametrize("name", ["1138_bus", "bcsstk13", "ani4", "dwt_992", "jagmesh7"])
def test_read_real_matrices(name):
    path = DATA / f"{name}.mtx"
    if not path.exists():
        pytest.skip(f"real data not present: {path}")
    A = read_matrix(path, comm)
    G = bcast_global(A)
    R = sp.csr_matrix(scipy.io.mmread(str(path)))
    assert G.shape == R.shape and abs(G - R).max() == 0
    # each rank holds only its rows
    assert A.local.shape[0] == A.local_rows


def test_write_read_roundtrip():
    d = shared_tmpdir()
    A = hpcg(4, comm)
    for sym in (False, True):
        path = os.path.join(d, f"h{int(sym)}.mtx")
        write_mm(path, A, symmetric=sym)
        B = read_matrix(path, comm)
        assert abs(bcast_global(B) - bcast_global(A)).max() == 0
    R = sp.random(9, 5, density=0.4, random_state=1, format="csr")
    R.data = np.pi * np.arange(1, R.nnz + 1) / 7
    path = os.path.join(d, "r.mtx")
    write_mm(path, DistCSR.from_scipy(R, comm))
    if comm.rank == 0:
        assert abs(sp.csr_matrix(scipy.io.mmread(path)) - R).max() == 0  # exact: %.17g


def _write(d: str, name: str, text: str) -> str:
    path = os.path.join(d, name)
    if comm.rank == 0:
        with open(path, "w") as f:
            f.write(text)
    comm.Barrier()
    return path


HEAD = "%%MatrixMarket matrix coordinate real general\n% comment\n"
GOOD_ROWS = "".join(f"{i} {i} {i}.5\n" for i in range(1, 21))


@pytest.mark.parametrize("text,fragment", [
    (HEAD + "20 20 21\n" + GOOD_ROWS, ":3: declares 21 entries but the file has 20"),
    (HEAD + "20 20 19\n" + GOOD_ROWS, ":23: more entries than the 19 declared on line 3"),
    (HEAD + "20 20 20\n" + GOOD_ROWS.replace("7 7 7.5", "7 21 7.5"), ":10: column index 21 out of range 1..20"),
    (HEAD + "20 20 20\n" + GOOD_ROWS.replace("15 15", "0 15"), ":18: row index 0 out of range"),
    (HEAD + "20 20 20\n" + GOOD_ROWS.replace("12.5", "1x2"), ":15: value '1x2' is not a valid number"),
    (HEAD + "20 20 20\n" + GOOD_ROWS.replace("3 3 3.5", "3 a 3.5"), ":6: column index 'a' is not"),
    (HEAD + "20 20 20\n" + GOOD_ROWS.replace("5 5 5.5", "5 5"), ":8: expected 3 fields"),
    (HEAD + "20 20 20\n" + GOOD_ROWS[:-9], ":23: expected 3 fields"),  # truncated mid-line
    (HEAD + "20 20\n" + GOOD_ROWS, ":3: bad size line"),
    (HEAD, ":2: file ends before the size line"),
    ("%%MatrixMarket matrix tensor real general\n2 2\n1\n2\n3\n4\n", ":1: format 'tensor' not supported"),
    ("%%MatrixMarket matrix array pattern general\n2 2\n", ":1: an 'array' matrix cannot"),
    ("hello\n", ":1: not a Matrix Market file"),
    ("%%MatrixMarket matrix coordinate complex general\n1 1 1\n1 1 1 0\n", "field 'complex'"),
    ("%%MatrixMarket matrix coordinate real symmetric\n2 3 1\n1 1 1\n", "must be square"),
    ("%%MatrixMarket matrix coordinate real skew-symmetric\n2 2 1\n1 1 1\n", ":3: diagonal entry"),
    ("%%MatrixMarket matrix coordinate integer general\n2 2 1\n1 1 1.5\n", ":3: integer value '1.5'"),
])
def test_malformed(text, fragment):
    d = shared_tmpdir()
    path = _write(d, "bad.mtx", text)
    with pytest.raises(UsageError) as ei:
        read_matrix(path, comm)
    msg = str(ei.value)
    assert path in msg and fragment in msg, msg


def test_missing_file():
    with pytest.raises(UsageError, match="cannot open"):
        read_matrix("/nonexistent/x.mtx", comm)


def test_symmetric_pattern_blank_lines_and_skew():
    d = shared_tmpdir()
    path = _write(d, "s.mtx", "%%MatrixMarket matrix coordinate pattern symmetric\n4 4 4\n"
                             "1 1\n\n2 1\n3 2\n   \n4 4\n")
    G = bcast_global(read_matrix(path, comm))
    E = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], float)
    np.testing.assert_array_equal(G.toarray(), E)
    path = _write(d, "k.mtx", "%%MatrixMarket matrix coordinate integer skew-symmetric\n3 3 2\n"
                             "2 1 5\n3 1 -2\n")
    G = bcast_global(read_matrix(path, comm))
    np.testing.assert_array_equal(G.toarray(), [[0, -5, 2], [5, 0, 0], [-2, 0, 0]])


@pytest.mark.parametrize("backend", HOST_KERNELS)
@pytest.mark.parametrize("gen,N", [(poisson3d, 10), (hpcg, 9)])
def test_spmv_dot_and_compressed_ghost_block(backend, gen, N):
    """spmv_dot = (A x, x.Ax) and the ghost kernel stores only the rows with ghost entries."""
    A = gen(N, comm, backend=backend)
    G = bcast_global(A)
    x = np.random.default_rng(9).standard_normal(G.shape[0])
    xl = A.local_slice(x, rows=False)
    y, d = A.spmv_dot(xl)
    np.testing.assert_allclose(A.gather_vector(y, root=None), G @ x, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(comm.allreduce(d), x @ (G @ x), rtol=1e-12)
    np.testing.assert_allclose(A.spmv(xl), y, rtol=1e-15, atol=0)
    ok = True   # checked on every rank, asserted together (a one-rank failure would hang)
    if A._k_gh is not None:
        ghost_rows = np.flatnonzero(np.diff(A.A_gh.indptr))
        k = A._k_gh
        stored = k.csr.nrows if backend == "native" else k.inner.shape[0]
        ok = (k.shape[0] == A.local_rows and stored == ghost_rows.size
              and np.array_equal(A._gh_rows, ghost_rows)
              and (A.rank in (0, A.size - 1)) <= (ghost_rows.size < A.local_rows))
    assert comm.allreduce(not ok) == 0
    assert comm.allreduce(A.spmv_traffic_bytes()) >= G.nnz * 12


def test_spmv_dot_needs_aligned_partitions():
    R = sp.random(41, 17, density=0.2, random_state=3, format="csr")
    A = DistCSR.from_scipy(R, comm)
    with pytest.raises(ValueError, match="square"):
        A.spmv_dot(np.ones(A.local_cols))
