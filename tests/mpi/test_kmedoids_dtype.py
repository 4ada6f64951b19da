"""Metrics and float32 distances at any rank count (tools/run_tests.sh runs 1..4 ranks): every
metric against the `kmedoids` package (a test-only reference) on SciPy's distances, for a
FastPAM and a medoid silhouette method; float32 matrices and tiles (half the memory) give the
float64 run's medoids and a loss within 1e-6 relative."""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI
from scipy.spatial.distance import cdist

import hpc.kmedoids as hk
from hpc.core import backends as registry
from hpc.core.partition import block_range
from hpc.kmedoids import api, data

kmedoids = pytest.importorskip("kmedoids")
comm = MPI.COMM_WORLD
N, DIM, K = 187, 4, 5
SCIPY = {"euclidean": "euclidean", "sqeuclidean": "sqeuclidean", "manhattan": "cityblock",
         "cosine": "cosine"}
BACKENDS = [b for b in ("native", "numpy", "numba") if not registry.why_unavailable(b)]


def _points(seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.uniform(-8, 8, (K, DIM))
    return c[rng.integers(0, K, N)] + rng.standard_normal((N, DIM))


X = _points()


@pytest.mark.mpi
@pytest.mark.parametrize("metric", list(SCIPY))
@pytest.mark.parametrize("method", ["fasterpam", "fastermsc"])
def test_metrics_equal_reference(metric, method):
    D = cdist(X, X, SCIPY[metric])
    ref = getattr(kmedoids, method)(D, K, init="build", **({"n_cpu": 1} if method == "fasterpam"
                                                             else {}))
    for distances in ("matrix", "tiled"):
        km = hk.KMedoids(K, method=method, metric=metric, init="build",
                         distances=distances).fit(X)
        assert km.medoid_indices_.tolist() == ref.medoids.tolist(), distances
        assert km.labels_.tolist() == ref.labels.tolist()
        assert km.n_iter_ == ref.n_iter and km.n_swap_ == ref.n_swap
        assert km.inertia_ == pytest.approx(ref.loss, rel=1e-9)


@pytest.mark.mpi
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ["fasterpam", "fastpam1", "fastermsc", "fastmsc"])
def test_float32_matches_float64(method, backend):
    for distances in ("matrix", "tiled"):
        a = hk.KMedoids(K, method=method, init="build", distances=distances,
                        backend=backend).fit(X)
        b = hk.KMedoids(K, method=method, init="build", distances=distances, backend=backend,
                        dtype="float32").fit(X)
        assert b.medoid_indices_.tolist() == a.medoid_indices_.tolist()
        assert b.inertia_ == pytest.approx(a.inertia_, rel=1e-6)
        assert b.inertia_ != a.inertia_ or method.endswith("msc")  # really float32 distances


@pytest.mark.mpi
def test_float32_halves_the_matrix():
    lo, hi = block_range(N, comm.size, comm.rank)
    loc = data.Local(np.ascontiguousarray(X[lo:hi]), N, DIM, lo, "array")
    o64 = api.distance_oracle(loc, distances="matrix", X_all=X, comm=comm)
    o32 = api.distance_oracle(loc, distances="matrix", X_all=X, comm=comm, dtype="float32")
    assert o32.D.dtype == np.float32 and o32.D.nbytes * 2 == o64.D.nbytes
    # each float32 distance is the float64 one rounded once
    np.testing.assert_array_equal(o32.D, o64.D.astype(np.float32))
    t32 = api.distance_oracle(loc, distances="tiled", X_all=X, comm=comm, dtype="float32")
    assert t32.tile(0, 10).dtype == np.float32
    np.testing.assert_array_equal(t32.tile(3, 40), o32.D[:, 3:40])


@pytest.mark.mpi
def test_float32_precomputed_api():
    D = cdist(X, X)
    a = hk.KMedoids(K, metric="precomputed", init="build").fit(D)
    b = hk.KMedoids(K, metric="precomputed", init="build", dtype="float32").fit(D)
    assert b.medoid_indices_.tolist() == a.medoid_indices_.tolist()
    assert b.inertia_ == pytest.approx(a.inertia_, rel=1e-6)
    with pytest.raises(ValueError, match="dtype"):
        hk.KMedoids(K, dtype="float16").fit(X)
