"""Medoid silhouette clustering and the silhouettes at any rank count (tools/run_tests.sh runs
1..4 ranks), against the `kmedoids` package (a test-only reference): FastMSC, FasterMSC,
PAMMEDSIL and DynMSC give the package's medoids, labels, loss, n_iter and n_swap from the same
initial medoids (k = 2, its special case, and k >= 3), on every back end of this machine."""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI
from scipy.spatial.distance import cdist

import hpc.kmedoids as hk
from hpc.core import backends as registry

kmedoids = pytest.importorskip("kmedoids")
comm = MPI.COMM_WORLD
N, DIM = 161, 3  # odd n: uneven row blocks


def _points(k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.uniform(-7, 7, (k, DIM))
    return c[rng.integers(0, k, N)] + rng.standard_normal((N, DIM))


X = _points(5, 11)
D = cdist(X, X)
BACKENDS = [b for b in ("native", "numpy", "numba") if not registry.why_unavailable(b)]


def _same(got, ref) -> None:
    assert got.medoids.tolist() == ref.medoids.tolist()  # slot order too
    assert got.labels.tolist() == ref.labels.tolist()
    assert got.loss == pytest.approx(ref.loss, rel=1e-12)
    assert (got.n_iter, got.n_swap) == (ref.n_iter, ref.n_swap)


@pytest.mark.mpi
@pytest.mark.parametrize("k", [2, 3, 7])
@pytest.mark.parametrize("method", ["fastmsc", "fastermsc", "pammedsil"])
def test_msc_equal_reference_from_same_init(method, k):
    init = np.random.default_rng(k).choice(N, k, replace=False)
    got = getattr(hk, method)(D, init)
    _same(got, getattr(kmedoids, method)(D, init.astype(np.uintp)))
    assert got.n_swap > 0  # a real run, not the initial medoids


@pytest.mark.mpi
@pytest.mark.parametrize("backend", BACKENDS)
def test_msc_backends_equal_reference(backend):
    init = np.random.default_rng(4).choice(N, 6, replace=False)
    for method in ("fastmsc", "fastermsc"):
        _same(getattr(hk, method)(D, init, backend=backend),
              getattr(kmedoids, method)(D, init.astype(np.uintp)))


@pytest.mark.mpi
@pytest.mark.parametrize("method", ["fastmsc", "fastermsc", "pammedsil"])
def test_msc_from_build_and_k1(method):
    _same(getattr(hk, method)(D, 4, init="build"), getattr(kmedoids, method)(D, 4, init="build"))
    one = getattr(hk, method)(D, np.array([5]))  # k = 1: the medoid of least total distance
    _same(one, getattr(kmedoids, method)(D, np.array([5], dtype=np.uintp)))


@pytest.mark.mpi
@pytest.mark.parametrize("kmax,kmin,seed", [(8, 2, 3), (6, 3, 1), (4, 2, 8)])
def test_dynmsc_equals_reference(kmax, kmin, seed):
    Xs = _points(4, seed)
    Ds = cdist(Xs, Xs)
    init = np.random.default_rng(seed + 10).choice(N, kmax, replace=False)
    got = hk.dynmsc(Ds, init, minimum_k=kmin)
    ref = kmedoids.dynmsc(Ds, init.astype(np.uintp), minimum_k=kmin)
    _same(got, ref)
    np.testing.assert_allclose(got.losses, ref.losses, rtol=1e-12)
    assert got.rangek.tolist() == list(ref.rangek) and got.bestk == ref.bestk


@pytest.mark.mpi
def test_estimator_msc_on_points_and_record_quality():
    km = hk.KMedoids(5, method="fastermsc", init="build").fit(X)
    ref = kmedoids.fastermsc(D, 5, init="build")
    assert km.medoid_indices_.tolist() == ref.medoids.tolist()
    # the medoid silhouette from SciPy's distances
    two = np.sort(cdist(X, km.cluster_centers_), axis=1)[:, :2]
    assert ref.loss == pytest.approx(np.mean(1 - two[:, 0] / two[:, 1]), rel=1e-12)


@pytest.mark.mpi
def test_silhouettes_equal_reference():
    labels = kmedoids.fasterpam(D, 5, init="build", n_cpu=1).labels.astype(np.int64)
    avg, per = hk.silhouette(D, labels, samples=True)
    ravg, rper = kmedoids.silhouette(D, labels, True, n_cpu=1)
    assert avg == pytest.approx(ravg, rel=1e-12)
    np.testing.assert_allclose(per, rper, rtol=1e-12, atol=1e-15)
    # a singleton cluster counts 0, as in Rousseeuw's definition
    lab = np.random.default_rng(2).integers(0, 3, N)
    lab[7] = 9
    assert hk.silhouette(D, lab)[0] == pytest.approx(kmedoids.silhouette(D, lab, n_cpu=1)[0],
                                                     rel=1e-12)
    meds = np.array([3, 40, 77, 120])
    mavg, mper = hk.medoid_silhouette(D, meds, samples=True)
    ravg, rper = kmedoids.medoid_silhouette(D, meds.astype(np.uintp), True)
    assert mavg == pytest.approx(ravg, rel=1e-12)
    np.testing.assert_allclose(mper, rper, rtol=1e-12)


@pytest.mark.mpi
@pytest.mark.parametrize("call,exc,match", [
    (lambda: hk.dynmsc(D, 4, minimum_k=5), ValueError, "minimum_k"),
    (lambda: hk.dynmsc(D, 4, minimum_k=1), ValueError, "minimum_k"),
    (lambda: hk.silhouette(D, np.zeros(N - 1, dtype=int)), ValueError, "labels"),
    (lambda: hk.medoid_silhouette(D, np.array([1, 1])), ValueError, "distinct"),
    (lambda: hk.fastmsc(D, N + 1), ValueError, "number of medoids"),
])
def test_msc_wrong_inputs_raise(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
