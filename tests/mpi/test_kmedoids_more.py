"""Alternating k-medoids and CLARA keeping its best medoids, at any rank count
(tools/run_tests.sh runs 1..4 ranks), against the `kmedoids` package (a test-only reference)."""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI
from scipy.spatial.distance import cdist

import hpc.kmedoids as hk

kmedoids = pytest.importorskip("kmedoids")
comm = MPI.COMM_WORLD
N, DIM, K = 241, 3, 6


def _points(seed: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.uniform(-9, 9, (K, DIM))
    return c[rng.integers(0, K, N)] + rng.standard_normal((N, DIM))


X = _points()
D = cdist(X, X)


@pytest.mark.mpi
@pytest.mark.parametrize("k", [1, 3, 6, 11])
def test_alternating_equals_reference(k):
    init = np.random.default_rng(k).choice(N, k, replace=False)
    got = hk.alternating(D, init)
    ref = kmedoids.alternating(D, init.astype(np.uintp))
    assert got.medoids.tolist() == ref.medoids.tolist()
    assert got.labels.tolist() == ref.labels.tolist()
    assert got.loss == pytest.approx(ref.loss, rel=1e-12)
    assert got.n_iter == ref.n_iter


@pytest.mark.mpi
def test_alternating_estimator_tiled_float32():
    ref = kmedoids.alternating(D, K, init="build")
    km = hk.KMedoids(K, method="alternating", init="build", distances="tiled").fit(X)
    assert km.medoid_indices_.tolist() == ref.medoids.tolist()
    k32 = hk.KMedoids(K, method="alternating", init="build", dtype="float32").fit(X)
    assert k32.inertia_ == pytest.approx(ref.loss, rel=1e-6)


@pytest.mark.mpi
def test_clara_keeps_best_medoids():
    ref = kmedoids.fasterpam(D, K, init="build", n_cpu=1).loss
    for keep in (True, False):
        km = hk.KMedoids(K, method="clara", init="lab", random_state=3,
                         method_params={"samples": 6, "keep_medoids": keep}).fit(X)
        assert ref * 0.99 <= km.inertia_ <= ref * 1.10
        assert km.inertia_ == pytest.approx(cdist(X, km.cluster_centers_).min(axis=1).sum(),
                                            rel=1e-9)
        # the same result on one rank: it does not depend on the rank count
        solo = hk.KMedoids(K, method="clara", init="lab", random_state=3, comm=MPI.COMM_SELF,
                           method_params={"samples": 6, "keep_medoids": keep}).fit(X)
        assert solo.medoid_indices_.tolist() == km.medoid_indices_.tolist()


@pytest.mark.mpi
def test_clara_keep_starts_each_sample_from_the_best():
    from hpc.core.partition import block_range
    from hpc.kmedoids import api, data

    lo, hi = block_range(N, comm.size, comm.rank)
    loc = data.Local(np.ascontiguousarray(X[lo:hi]), N, DIM, lo, "array")
    oracle = api.distance_oracle(loc, X_all=X, comm=comm)
    res, _ = api.cluster(oracle, K, method="clara", init="lab", samples=5, sample_size=40,
                         rng=np.random.default_rng(1))
    losses = res.extra["sample_losses"]
    assert len(losses) == 5 and res.extra["keep_medoids"] is True
    assert res.loss == pytest.approx(min(losses), rel=1e-12)
    assert len(res.init_medoids) == K  # the first sample's medoids
    with pytest.raises(ValueError, match="sample_size"):
        hk.clara(D, 5, sample_size=3)


def _blobs(n: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.uniform(-12, 12, (k, 5))
    return c[rng.integers(0, k, n)] + rng.standard_normal((n, 5))


@pytest.mark.mpi
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_onebatch_loss_near_fasterpam_on_blobs(dtype):
    """OneBatchPAM estimates the loss on 100 ln(k n) points; on well-separated clusters its
    true loss stays within 1% of FasterPAM's (the `kmedoids` package's, from BUILD)."""
    Xb = _blobs(1501, 8, 6)
    ref = kmedoids.fasterpam(cdist(Xb, Xb), 8, init="build", n_cpu=1)
    km = hk.KMedoids(8, method="onebatch", init="lab", random_state=2, dtype=dtype).fit(Xb)
    assert km.inertia_ == pytest.approx(cdist(Xb, km.cluster_centers_).min(axis=1).sum(),
                                        rel=1e-6)
    assert ref.loss * 0.999 <= km.inertia_ <= ref.loss * 1.01
    # the batch SWAP is the sequential one at any rank count
    solo = hk.KMedoids(8, method="onebatch", init="lab", random_state=2, dtype=dtype,
                       comm=MPI.COMM_SELF).fit(Xb)
    assert solo.medoid_indices_.tolist() == km.medoid_indices_.tolist()
    assert solo.labels_.tolist() == km.labels_.tolist()


@pytest.mark.mpi
def test_onebatch_small_batch_and_errors():
    Xb = _blobs(600, 4, 1)
    km = hk.KMedoids(4, method="onebatch", random_state=0, init="random",
                     method_params={"batch_size": 50}).fit(Xb)
    assert len(set(km.medoid_indices_.tolist())) == 4
    with pytest.raises(ValueError, match="onebatch"):
        hk.KMedoids(4, method="onebatch", metric="precomputed").fit(cdist(Xb, Xb))


@pytest.mark.mpi
@pytest.mark.parametrize("params,match", [
    ({"neighbors": float("inf")}, "neighbors"),
    ({"neighbors": 0.0}, "neighbors"),
    ({"samples": 0}, "samples"),
    ({"sample_size": 3}, "sample_size"),
    ({"restarts": 10**9}, "restarts"),
    ({"batch_size": 1}, "batch_size"),
])
def test_estimator_ranges_refused(params, match):
    method = "clarans" if "neighbors" in params or "restarts" in params else (
        "onebatch" if "batch_size" in params else "clara")
    with pytest.raises(ValueError, match=match):
        hk.KMedoids(K, method=method, method_params=params).fit(X)
    if "neighbors" in params:
        with pytest.raises(ValueError, match="neighbors"):
            hk.clarans(D, K, neighbors=params["neighbors"])


@pytest.mark.mpi
def test_uneven_rows_agree_on_block_width(monkeypatch):
    """Candidate blocks narrower than n with row blocks of unequal size (n % p != 0): every
    rank must cut the same blocks, or the reductions pair different blocks and hang. Before
    the width came from the largest row block, 2 ranks hung on OneBatchPAM at n = 30,000."""
    from hpc.kmedoids import oracle

    monkeypatch.setattr(oracle, "TILE_BYTES", 8 * 81 * 100)  # about 100 columns a block
    init = np.random.default_rng(7).choice(N, K, replace=False)
    got = hk.fasterpam(D, init)
    ref = kmedoids.fasterpam(D, init.astype(np.uintp), n_cpu=1)
    assert got.medoids.tolist() == ref.medoids.tolist()
    assert (got.n_iter, got.n_swap) == (ref.n_iter, ref.n_swap)
    km = hk.KMedoids(K, method="onebatch", init="lab", random_state=1,
                     method_params={"batch_size": 161}).fit(X)
    solo = hk.KMedoids(K, method="onebatch", init="lab", random_state=1, comm=MPI.COMM_SELF,
                       method_params={"batch_size": 161}).fit(X)
    assert km.medoid_indices_.tolist() == solo.medoid_indices_.tolist()


@pytest.mark.mpi
@pytest.mark.parametrize("tiled", [False, True])
def test_onebatch_refinement_with_whole_clusters_is_alternating(tiled):
    """OneBatchPAM's refinement with a sample as large as every cluster is the alternating
    (Voronoi) step on all points: from the same medoids it ends where the `kmedoids` package's
    ``alternating`` does (medoids in slot order, loss), at any rank count."""
    from hpc.core import backends as registry
    from hpc.core.partition import block_range
    from hpc.kmedoids import algorithms, onebatch
    from hpc.kmedoids.kernels import load
    from hpc.kmedoids.oracle import MatrixOracle, TiledOracle

    Xb = _blobs(403, 5, 3)
    init = np.random.default_rng(5).choice(Xb.shape[0], 5, replace=False)
    ref = kmedoids.alternating(cdist(Xb, Xb), init.astype(np.uintp), max_iter=100)
    comm = MPI.COMM_WORLD
    lo, hi = block_range(Xb.shape[0], comm.Get_size(), comm.Get_rank())
    kern = load("native" if not registry.why_unavailable("native") else "numpy")
    o = (TiledOracle(Xb[lo:hi], Xb, lo, comm, kern, "euclidean") if tiled
         else MatrixOracle.from_data(Xb[lo:hi], Xb, lo, comm, kern, "euclidean"))
    s = algorithms.Solver(o, comm, kern, 5)
    before = s.assign(init)
    rounds, moved = onebatch.refine(s, np.random.default_rng(0), Xb.shape[0], 100)
    assert rounds > 0 and moved > 0 and s.loss < before
    assert s.med.tolist() == ref.medoids.tolist()
    assert s.loss == pytest.approx(ref.loss, rel=1e-12)
