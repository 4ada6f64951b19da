"""In-process hpc.kmedoids tests at any rank count (tools/run_tests.sh runs 1..4 ranks):
distributed PAM/FastPAM1/FasterPAM equal the `kmedoids` package, in matrix, tiled and
precomputed mode; CLARA does not depend on the rank count; input errors agree across ranks."""
from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from mpi4py import MPI

from hpc.core import UsageError
from hpc.core.partition import block_range
from hpc.kmedoids import algorithms, data
from hpc.kmedoids.kernels import load
from hpc.kmedoids.oracle import MatrixOracle, TiledOracle

kmedoids = pytest.importorskip("kmedoids")
comm = MPI.COMM_WORLD
N, DIM, K = 301, 3, 7  # odd n: uneven blocks


def _points():
    rng = np.random.default_rng(11)
    c = rng.uniform(-8, 8, (K, DIM))
    return c[rng.integers(0, K, N)] + rng.standard_normal((N, DIM))


def _solver(mode: str, backend: str = "numpy"):
    from scipy.spatial.distance import cdist

    X = _points()
    lo, hi = block_range(N, comm.size, comm.rank)
    Kn = load(backend)
    if mode == "matrix":
        o = MatrixOracle.from_data(X[lo:hi], X, lo, comm, Kn, "euclidean")
    elif mode == "tiled":
        o = TiledOracle(X[lo:hi], X, lo, comm, Kn, "euclidean")
    else:  # precomputed: only the row block, no data
        o = MatrixOracle(cdist(X[lo:hi], X), N, lo, comm, Kn, "precomputed")
    return algorithms.Solver(o, comm, Kn, K), X


@pytest.mark.mpi
@pytest.mark.parametrize("mode", ["matrix", "tiled", "precomputed"])
@pytest.mark.parametrize("method", ["pam", "fastpam1", "fasterpam"])
def test_distributed_equals_reference(mode, method):
    from scipy.spatial.distance import cdist

    s, X = _solver(mode)
    D = cdist(X, X)
    if method == "fasterpam":
        init = np.random.default_rng(3).choice(N, K, replace=False)
        ref = kmedoids.fasterpam(D, init.astype(np.uint64), n_cpu=1)
        got = algorithms.run_from(s, method, init, 100)
    else:
        ref = getattr(kmedoids, method)(D, K, init="build")
        got = algorithms.run(s, method, "build", np.random.default_rng(0), 100)
    assert sorted(got.medoids) == sorted(ref.medoids.tolist())
    assert got.loss == pytest.approx(ref.loss, rel=1e-12)
    assert got.swaps == ref.n_swap
    assert s.min_delta() >= -1e-9 * got.loss


@pytest.mark.mpi
def test_submatrix_collective_in_precomputed_mode():
    from scipy.spatial.distance import cdist

    s, X = _solver("precomputed")
    rows, cols = np.array([300, 0, 150, 7]), np.array([5, 299, 5, 100, 0])
    np.testing.assert_allclose(s.o.submatrix(rows, cols), cdist(X[rows], X[cols]), rtol=1e-12)


@pytest.mark.mpi
def test_clara_and_lab_do_not_depend_on_rank_count():
    s, X = _solver("matrix")
    got = algorithms.run(s, "clara", "lab", np.random.default_rng(5), 100, samples=3,
                         comm_self=MPI.COMM_SELF)
    Kn = load("numpy")
    one = algorithms.Solver(MatrixOracle.from_data(X, X, 0, MPI.COMM_SELF, Kn, "euclidean"),
                            MPI.COMM_SELF, Kn, K)
    ref = algorithms.run(one, "clara", "lab", np.random.default_rng(5), 100, samples=3,
                         comm_self=MPI.COMM_SELF)
    assert got.medoids.tolist() == ref.medoids.tolist()
    assert got.loss == pytest.approx(ref.loss, rel=1e-12)


@pytest.mark.mpi
def test_csv_error_on_one_rank_reaches_all():
    d = tempfile.mkdtemp(prefix="hpc_km_") if comm.rank == 0 else None
    d = comm.bcast(d)
    path = os.path.join(d, "x.csv")
    if comm.rank == 0:
        lines = [f"{i},{i * 2}" for i in range(40)]
        lines[37] = "1,2,3"  # in the last rank's block
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    comm.Barrier()
    with pytest.raises(UsageError, match="line 38"):
        data.read(path, comm, 0)
