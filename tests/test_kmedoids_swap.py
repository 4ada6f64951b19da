"""The native one-rank SWAP loops (hpc._core.kmedoids_swap) against the blocked Python loops
they replace on one rank, and against the `kmedoids` package: the same swaps, medoids,
iterations, loss and per-point state, for FasterPAM and FasterMSC (k = 2, the package's slot
form, and k >= 3), float64 and float32 matrices, a non-symmetric matrix (columns are read, as
the distributed tiles do), and 1 against 2 OpenMP threads."""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from hpc.core import backends as registry
from hpc.kmedoids import algorithms, msc
from hpc.kmedoids.kernels import load
from hpc.kmedoids.oracle import MatrixOracle

pytestmark = pytest.mark.skipif(bool(registry.why_unavailable("native")),
                                reason="native back end not built")

STATE = ("near_i", "near_d", "seco_i", "seco_d")


def _blobs(n: int, seed: int, c: int = 6, d: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, (c, d))
    return centers[rng.integers(0, c, n)] + rng.standard_normal((n, d))


def _matrix(X: np.ndarray, dtype=np.float64, skew: float = 0.0) -> np.ndarray:
    D = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    if skew:  # d(i, j) != d(j, i): the loops must read columns, as the tiles do
        D = D * (1 + skew * np.random.default_rng(1).random(D.shape))
        np.fill_diagonal(D, 0.0)
    return D.astype(dtype)


def _run(D, k: int, method: str, native: bool, monkeypatch, seed: int = 3):
    K = load("native")
    o = MatrixOracle(D, D.shape[0], 0, MPI.COMM_SELF, K, "euclidean")
    cls = msc.MSCSolver if method == "fastermsc" else algorithms.Solver
    s = cls(o, MPI.COMM_SELF, K, k)
    with monkeypatch.context() as m:
        if not native:
            m.setattr(cls, "native_loop", lambda self: None)
        else:
            assert s.native_loop() is not None
        init = np.random.default_rng(seed).choice(D.shape[0], k, replace=False)
        r = (msc.run_msc(s, method, init, 100) if method == "fastermsc"
             else algorithms.run_from(s, method, init, 100))
    return s, r


def _same(a, b, msc_state: bool) -> None:
    (sa, ra), (sb, rb) = a, b
    assert ra.medoids.tolist() == rb.medoids.tolist()
    assert (ra.swaps, ra.iterations) == (rb.swaps, rb.iterations)
    assert ra.loss == pytest.approx(rb.loss, rel=1e-12)
    assert ra.swaps > 0
    names = STATE + (("third_i", "third_d") if msc_state and sa.k > 2 else ())
    if msc_state and sa.k == 2:
        names = ("near_i",)
    for name in names:
        np.testing.assert_array_equal(getattr(sa, name), getattr(sb, name), err_msg=name)
    np.testing.assert_array_equal(sa.DM, sb.DM)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("skew", [0.0, 0.05])
@pytest.mark.parametrize("method,k", [("fasterpam", 2), ("fasterpam", 9),
                                      ("fastermsc", 2), ("fastermsc", 3), ("fastermsc", 9)])
def test_native_loop_equals_blocked_loop(method, k, skew, dtype, monkeypatch):
    D = _matrix(_blobs(301, k), dtype, skew)
    _same(_run(D, k, method, True, monkeypatch), _run(D, k, method, False, monkeypatch),
          method == "fastermsc")


@pytest.mark.parametrize("method", ["fasterpam", "fastermsc"])
@pytest.mark.parametrize("k", [2, 5, 12])
def test_native_loop_equals_package(method, k, monkeypatch):
    kmedoids = pytest.importorskip("kmedoids")
    D = _matrix(_blobs(257, 7))
    init = np.random.default_rng(k).choice(D.shape[0], k, replace=False)
    _, r = _run(D, k, method, True, monkeypatch, seed=k)
    ref = (kmedoids.fasterpam(D, init.astype(np.uintp), n_cpu=1) if method == "fasterpam"
           else kmedoids.fastermsc(D, init.astype(np.uintp)))
    assert r.medoids.tolist() == ref.medoids.tolist()
    assert r.swaps == ref.n_swap and r.iterations == ref.n_iter
    assert r.loss == pytest.approx(ref.loss, rel=1e-12)


@pytest.mark.parametrize("method", ["fasterpam", "fastermsc"])
def test_native_loop_independent_of_threads(method, monkeypatch):
    # every n above the loop's one-thread limit: candidates go one per thread
    monkeypatch.setattr(algorithms, "NATIVE_PAR_ROWS", 0)
    D = _matrix(_blobs(501, 2, c=8, d=2), np.float32)
    runs = []
    try:
        for t in (1, 2):
            registry.set_threads(t)
            runs.append(_run(D, 8, method, True, monkeypatch))
    finally:
        registry.set_threads(1)
    _same(runs[0], runs[1], method == "fastermsc")


def test_native_loop_rejects_bad_state():
    from hpc import _core

    sw = _core.kmedoids_swap
    n, k = 5, 3
    D = np.zeros((n, n))
    good = dict(DM=np.zeros((n, k)), med=np.arange(k, dtype=np.int64),
                is_med=np.zeros(n, dtype=bool), rl=np.zeros(k),
                near_i=np.zeros(n, dtype=np.int64), seco_i=np.ones(n, dtype=np.int64),
                near_d=np.zeros(n), seco_d=np.zeros(n), loss=0.0, j=0, lastswap=n, budget=10)
    sw.fasterpam_sweep(D, **good)  # valid: runs (nothing improves on an all-zero matrix)
    for key, bad in [("near_i", np.full(n, 7, dtype=np.int64)), ("med", np.array([0, 1, 9])),
                     ("near_d", np.zeros(n, dtype=np.float32)), ("DM", np.zeros((n, 1))),
                     ("is_med", np.zeros(n - 1, dtype=bool)), ("j", n + 1), ("budget", 0)]:
        with pytest.raises(ValueError):
            sw.fasterpam_sweep(D, **{**good, key: bad})
    with pytest.raises(ValueError):
        sw.fasterpam_sweep(np.zeros((n, n + 1)), **good)
    ro = np.zeros(n)
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        sw.fasterpam_sweep(D, **{**good, "near_d": ro})
    third = dict(third_i=np.full(n, 2, dtype=np.int64), third_d=np.zeros(n))
    with pytest.raises(ValueError):  # k = 3 is not the slot form
        sw.fastermsc_sweep(D, **good, **third, slot2=True)
    with pytest.raises(ValueError):
        sw.fastermsc_sweep(D, **good, **{**third, "third_i": np.full(n, 3, dtype=np.int64)},
                           slot2=False)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_slab_partials_equal_tile_kernel(dtype):
    """The distributed loop's per-rank pass (a gathered slab of candidate columns, terms summed
    over the points below their limit only) gives kmedoids.fastpam_delta's sums bit for bit,
    on a rank's row block (rows x all columns, a strided view) and any column range."""
    from hpc import _core

    sw, K = _core.kmedoids_swap, load("native")
    X = _blobs(240, 4)
    D = _matrix(X, dtype, skew=0.05)[50:170]  # a rank's rows: 120 x 240, row stride 240
    rng = np.random.default_rng(0)
    k = 7
    near_i = rng.integers(0, k, D.shape[0]).astype(np.int64)
    near_d = rng.uniform(0, 8, D.shape[0])
    seco_d = near_d + rng.uniform(0, 8, D.shape[0])
    seco_d[::17] = near_d[::17]  # ties: a point as far from its second as from its nearest
    for j0, j1 in [(0, 240), (3, 4), (17, 150), (239, 240)]:
        S = sw.gather(D, j0, j1)
        assert S.dtype == dtype and S.shape == (j1 - j0, D.shape[0])
        np.testing.assert_array_equal(S, D[:, j0:j1].T)
        got = sw.fasterpam_partials(S, near_i, near_d, seco_d, k)
        ref = K.fastpam_delta(np.ascontiguousarray(D[:, j0:j1]), near_i, near_d, seco_d, k)
        np.testing.assert_array_equal(got, ref)
        # and the tile kernel on the strided view (its vectorised skip) gives the same
        np.testing.assert_array_equal(K.fastpam_delta(D[:, j0:j1], near_i, near_d, seco_d, k),
                                      ref)
    for bad in [lambda: sw.gather(D, 5, 4), lambda: sw.gather(D, 0, 241),
                lambda: sw.gather(D.astype(np.int64), 0, 3),
                lambda: sw.fasterpam_partials(sw.gather(D, 0, 3), near_i[:-1], near_d, seco_d, k),
                lambda: sw.fasterpam_partials(sw.gather(D, 0, 3), near_i + k, near_d, seco_d, k),
                lambda: sw.fasterpam_partials(sw.gather(D, 0, 3), near_i, near_d, seco_d, 0)]:
        with pytest.raises(ValueError):
            bad()


@pytest.mark.parametrize("slab", [1, 1 << 30])
def test_blocked_loop_slabs_equal_native_loop(slab, monkeypatch):
    """The blocked loop with slabs narrower than its blocks (re-gathered mid-sweep) or holding
    every column: the native loop's swaps and state."""
    monkeypatch.setattr(algorithms, "SLAB_BYTES", slab)
    D = _matrix(_blobs(401, 5, c=9), np.float32)
    _same(_run(D, 9, "fasterpam", True, monkeypatch),
          _run(D, 9, "fasterpam", False, monkeypatch), False)


def test_correct_equals_a_new_pass():
    """After a state change on some points, the corrected terms of a block equal a new pass
    (up to rounding: the changed points' terms are taken out and added, not summed in order)."""
    from hpc import _core

    sw = _core.kmedoids_swap
    D = _matrix(_blobs(200, 6), np.float32)[:130]
    rng = np.random.default_rng(2)
    k = 5
    ni = rng.integers(0, k, 130).astype(np.int64)
    nd = rng.uniform(0, 6, 130)
    sd = nd + rng.uniform(0, 6, 130)
    X = sw.gather(D, 20, 90)
    part = sw.fasterpam_partials(X, ni, nd, sd, k)
    S = np.sort(rng.choice(130, 40, replace=False))
    ni2, nd2, sd2 = ni.copy(), nd.copy(), sd.copy()
    ni2[S] = rng.integers(0, k, S.size)
    nd2[S] = rng.uniform(0, 6, S.size)
    sd2[S] = nd2[S] + rng.uniform(0, 6, S.size)
    sw.fasterpam_correct(X, S, ni, nd, sd, ni2, nd2, sd2, part)
    np.testing.assert_allclose(part, sw.fasterpam_partials(X, ni2, nd2, sd2, k), rtol=1e-12,
                               atol=1e-9)
    with pytest.raises(ValueError):
        sw.fasterpam_correct(X, S + 130, ni, nd, sd, ni2, nd2, sd2, part)
    with pytest.raises(ValueError):
        sw.fasterpam_correct(X, S, ni, nd, sd, ni2, nd2, sd2, part[1:])
