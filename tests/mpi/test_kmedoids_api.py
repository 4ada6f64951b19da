"""The public hpc.kmedoids API at any rank count (tools/run_tests.sh runs 1..4 ranks), against
the `kmedoids` package (a test-only reference): the functions give the package's medoids,
labels, loss, n_iter and n_swap from the same initial medoids; the estimator on points and on
precomputed distances; predict; the parameter protocol; wrong inputs raise."""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI
from scipy.spatial.distance import cdist

import hpc.kmedoids as hk

kmedoids = pytest.importorskip("kmedoids")
comm = MPI.COMM_WORLD
N, DIM, K = 203, 3, 6  # odd n: uneven row blocks


def _points(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.uniform(-8, 8, (K, DIM))
    return c[rng.integers(0, K, N)] + rng.standard_normal((N, DIM))


X = _points()
D = cdist(X, X)
INIT = np.random.default_rng(5).choice(N, K, replace=False)


def _reference(method: str, medoids, **kw):
    extra = {"n_cpu": 1} if method == "fasterpam" else {}
    return getattr(kmedoids, method)(D, medoids, **kw, **extra)


def _same(got: hk.KMedoidsResult, ref) -> None:
    assert got.medoids.tolist() == ref.medoids.tolist()  # slot order too
    assert got.labels.tolist() == ref.labels.tolist()
    assert got.loss == pytest.approx(ref.loss, rel=1e-12)
    assert (got.n_iter, got.n_swap) == (ref.n_iter, ref.n_swap)


@pytest.mark.mpi
@pytest.mark.parametrize("method", ["fasterpam", "fastpam1", "pam"])
def test_functions_equal_reference_from_same_init(method):
    got = getattr(hk, method)(D, INIT)
    _same(got, _reference(method, INIT.astype(np.uint64)))
    assert got.n_swap > 0  # a real run, not the initial medoids


@pytest.mark.mpi
@pytest.mark.parametrize("method", ["fasterpam", "fastpam1", "pam"])
def test_functions_equal_reference_from_build(method):
    _same(getattr(hk, method)(D, K, init="build"), _reference(method, K, init="build"))


@pytest.mark.mpi
def test_pam_build_equals_reference():
    got, ref = hk.pam_build(D, K), kmedoids.pam_build(D, K)
    assert got.medoids.tolist() == ref.medoids.tolist()
    assert got.loss == pytest.approx(ref.loss, rel=1e-12)
    assert got.labels.tolist() == ref.labels.tolist()


@pytest.mark.mpi
def test_estimator_on_points_equals_reference():
    km = hk.KMedoids(K, init="build").fit(X)  # euclidean, fasterpam
    ref = _reference("fasterpam", K, init="build")
    assert km.medoid_indices_.tolist() == ref.medoids.tolist()
    assert km.labels_.tolist() == ref.labels.tolist()
    assert km.inertia_ == pytest.approx(ref.loss, rel=1e-9)
    assert km.n_iter_ == ref.n_iter
    np.testing.assert_array_equal(km.cluster_centers_, X[ref.medoids.astype(np.int64)])
    # the same on every rank
    assert comm.allgather(km.medoid_indices_.tolist()) == [km.medoid_indices_.tolist()] * comm.size
    # the loss is the sum of distances to the nearest medoid (independent: SciPy)
    assert km.inertia_ == pytest.approx(cdist(X, km.cluster_centers_).min(axis=1).sum(), rel=1e-9)


@pytest.mark.mpi
@pytest.mark.parametrize("distances", ["matrix", "tiled"])
@pytest.mark.parametrize("method", ["pam", "fastpam1", "fasterpam"])
def test_estimator_methods_and_distance_modes(method, distances):
    km = hk.KMedoids(K, method=method, init="build", distances=distances).fit(X)
    ref = _reference(method, K, init="build")
    assert km.medoid_indices_.tolist() == ref.medoids.tolist()
    assert km.inertia_ == pytest.approx(ref.loss, rel=1e-9)


@pytest.mark.mpi
def test_estimator_precomputed_and_predict():
    km = hk.KMedoids(K, metric="precomputed", init="build").fit(D)
    ref = _reference("fasterpam", K, init="build")
    assert km.cluster_centers_ is None
    assert km.medoid_indices_.tolist() == ref.medoids.tolist()
    assert km.inertia_ == pytest.approx(ref.loss, rel=1e-12)
    np.testing.assert_array_equal(km.predict(D), km.labels_)
    # new points: the nearest medoid by SciPy's distances
    Y = np.random.default_rng(9).uniform(-9, 9, (40, DIM))
    kp = hk.KMedoids(K, init="build").fit(X)
    expect = np.argmin(cdist(Y, X[kp.medoid_indices_]), axis=1)
    np.testing.assert_array_equal(kp.predict(Y), expect)
    np.testing.assert_array_equal(km.predict(cdist(Y, X)), expect)
    np.testing.assert_array_equal(kp.fit_predict(X), kp.labels_)


@pytest.mark.mpi
@pytest.mark.parametrize("method,margin", [("fastpam2", 0.01), ("clara", 0.10),
                                           ("clarans", 0.05)])
def test_estimator_approximate_methods(method, margin):
    ref = _reference("fasterpam", K, init="build").loss
    km = hk.KMedoids(K, method=method, init="lab" if method == "clara" else "build",
                     random_state=1).fit(X)
    assert ref * 0.97 <= km.inertia_ <= ref * (1 + margin)
    assert km.inertia_ == pytest.approx(cdist(X, km.cluster_centers_).min(axis=1).sum(),
                                        rel=1e-9)
    # CLARA's samples are spread over the ranks: the result does not depend on their count
    if method == "clara":
        solo = hk.KMedoids(K, method=method, init="lab", random_state=1, comm=MPI.COMM_SELF)
        assert solo.fit(X).medoid_indices_.tolist() == km.medoid_indices_.tolist()


@pytest.mark.mpi
def test_subcommunicator():
    sub = comm.Split(comm.rank % 2, comm.rank)
    got = hk.fasterpam(D, INIT, comm=sub)
    _same(got, _reference("fasterpam", INIT.astype(np.uint64)))
    sub.Free()


@pytest.mark.mpi
def test_params_protocol_and_clone():
    km = hk.KMedoids(4, method="pam", random_state=2)
    p = km.get_params()
    assert p["n_clusters"] == 4 and p["method"] == "pam" and p["metric"] == "euclidean"
    assert p["init"] == "build" and p["max_iter"] == 100 and p["comm"] is None
    assert km.set_params(n_clusters=5, init="random") is km
    assert (km.n_clusters, km.init) == (5, "random")
    with pytest.raises(ValueError, match="Invalid parameter 'nope'"):
        km.set_params(nope=1)
    assert "n_clusters=5" in repr(km)
    base = pytest.importorskip("sklearn.base")
    c = base.clone(km)
    assert c is not km and c.get_params() == km.get_params()
    assert not hasattr(c, "labels_")


@pytest.mark.mpi
@pytest.mark.parametrize("call,exc,match", [
    (lambda: hk.fasterpam(D, N + 1), ValueError, "number of medoids"),
    (lambda: hk.fasterpam(D[:, :-1], 3), ValueError, "square"),
    (lambda: hk.pam(np.where(np.eye(N, dtype=bool), 0, np.nan), 3), ValueError, "NaN"),
    (lambda: hk.fasterpam(-D, 3), ValueError, "negative"),
    (lambda: hk.fasterpam(D, np.array([1, 1, 2])), ValueError, "distinct"),
    (lambda: hk.fasterpam(D, np.array([0, N])), ValueError, "indices"),
    (lambda: hk.fasterpam(D, 3.5), TypeError, "medoids"),
    (lambda: hk.fasterpam("D.npy", 3), TypeError, "diss"),
    (lambda: hk.fasterpam(D, 3, init="kmeans++"), ValueError, "init"),
    (lambda: hk.fasterpam(D, 3, backend="fortran"), ValueError, "backend"),
    (lambda: hk.KMedoids(N + 1).fit(X), ValueError, "larger than the number of points"),
    (lambda: hk.KMedoids(3, method="alternate").fit(X), ValueError, "method"),
    (lambda: hk.KMedoids(3, metric="chebyshev").fit(X), ValueError, "metric"),
    (lambda: hk.KMedoids(3, metric="precomputed").fit(X), ValueError, "square"),
    (lambda: hk.KMedoids(0).fit(X), ValueError, "n_clusters"),
    (lambda: hk.KMedoids("3").fit(X), TypeError, "n_clusters"),
    (lambda: hk.KMedoids(3).fit(np.where(X > 5, np.nan, X)), ValueError, "NaN"),
    (lambda: hk.KMedoids(3).fit(np.array([["a", "b"], ["c", "d"]])), TypeError, "numeric"),
    (lambda: hk.KMedoids(3).fit(X[0]), ValueError, "2-D"),
    (lambda: hk.KMedoids(3).predict(X), ValueError, "not fitted"),
    (lambda: hk.KMedoids(3, comm="world").fit(X), TypeError, "comm"),
])
def test_wrong_inputs_raise(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
