"""hpc.kmedoids against the `kmedoids` package (Rust; GPL, a test reference only) and SciPy.

In-process tests drive the solver on one rank; app tests launch `python -m hpc.kmedoids` under
mpiexec on 1-4 ranks and compare its HDF5 output with the reference.
"""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from conftest import load_json, run_app

kmedoids = pytest.importorskip("kmedoids")
datasets = pytest.importorskip("sklearn.datasets")

from hpc.core import backends as registry  # noqa: E402
from hpc.kmedoids import algorithms  # noqa: E402
from hpc.kmedoids.kernels import load  # noqa: E402
from hpc.kmedoids.oracle import MatrixOracle, TiledOracle  # noqa: E402

HOST_BACKENDS = [b for b in ("native", "numba", "numpy") if registry.is_available(b)]


@pytest.fixture(scope="module")
def digits():
    return datasets.load_digits().data.astype(np.float64)


@pytest.fixture(scope="module")
def digits_D(digits):
    return cdist(digits, digits)


@pytest.fixture(scope="module")
def digits_npy(tmp_path_factory, digits):
    p = tmp_path_factory.mktemp("km") / "digits.npy"
    np.save(p, digits)
    return p


def blobs(n=400, d=3, c=6, seed=5):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, (c, d))
    return centers[rng.integers(0, c, n)] + rng.standard_normal((n, d))


def solver(X, k, backend="native", tiled=False, metric="euclidean"):
    from mpi4py import MPI

    K = load(backend)
    comm = MPI.COMM_SELF
    o = (TiledOracle(X, X, 0, comm, K, metric) if tiled
         else MatrixOracle.from_data(X, X, 0, comm, K, metric))
    return algorithms.Solver(o, comm, K, k)


# -- kernels -------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("metric,scipy_name", [("euclidean", "euclidean"),
                                               ("sqeuclidean", "sqeuclidean"),
                                               ("manhattan", "cityblock"), ("cosine", "cosine")])
def test_dist_matches_scipy(backend, metric, scipy_name):
    rng = np.random.default_rng(1)
    A, B = rng.normal(size=(37, 5)), rng.normal(size=(29, 5))
    got = load(backend).dist(A, B, metric)
    np.testing.assert_allclose(got, cdist(A, B, scipy_name), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_delta_kernels_agree_with_brute_force(backend):
    """ΔTD of every (candidate, medoid) swap vs recomputing the loss after the swap."""
    X = blobs(120, 2, 4)
    D = cdist(X, X)
    k = 4
    s = solver(X, k, backend)
    meds = np.array([3, 40, 77, 101])
    s.assign(meds)
    K = load(backend)
    part = K.fastpam_delta(D[:, 10:60], s.near_i, s.near_d, s.seco_d, k)
    pam = K.pam_delta(D[:, 10:60], s.near_i, s.near_d, s.seco_d, k)
    rl = s.removal_loss()
    for c, j in enumerate(range(10, 60)):
        for m in range(k):
            new = meds.copy()
            new[m] = j
            truth = D[:, new].min(axis=1).sum() - s.loss
            assert abs(rl[m] + part[c, m] + part[c, k] - truth) < 1e-9 * s.loss
            assert abs(pam[c, m] - truth) < 1e-9 * s.loss
    np.testing.assert_allclose(K.colsum(D[:, 5:9]), D[:, 5:9].sum(0), rtol=1e-12)
    np.testing.assert_allclose(K.build_gain(D[:, 5:9], s.near_d),
                               np.minimum(D[:, 5:9] - s.near_d[:, None], 0).sum(0), rtol=1e-12)


def test_native_rejects_bad_arrays():
    if "native" not in HOST_BACKENDS:
        pytest.skip("native back end not built")
    from hpc import _core

    D = np.zeros((4, 3))
    with pytest.raises(ValueError):
        _core.kmedoids.fastpam_delta(D, np.array([0, 1, 5, 0]), np.zeros(4), np.zeros(4), 2)
    with pytest.raises(ValueError):
        _core.kmedoids.fastpam_delta(D, np.array([0, 1]), np.zeros(4), np.zeros(4), 2)
    with pytest.raises(ValueError):
        _core.kmedoids.dist(np.zeros((2, 3)), np.zeros((2, 4)), "euclidean")
    with pytest.raises(ValueError):
        _core.kmedoids.dist(np.zeros((2, 3)), np.zeros((2, 3)), "chebyshev")


# -- equality with the reference -------------------------------------------------------------
_REF: dict = {}


def reference(method, D, k, key):
    """The package's result, computed once per (method, data, k)."""
    if (method, key, k) not in _REF:
        _REF[method, key, k] = getattr(kmedoids, method)(D, k, init="build")
    return _REF[method, key, k]


@pytest.mark.parametrize("method", ["pam", "fastpam1"])
def test_pam_fastpam1_equal_reference_on_digits(digits, digits_D, method):
    k = 10
    ref = reference(method, digits_D, k, "digits")
    s = solver(digits, k, "native" if "native" in HOST_BACKENDS else "numpy")
    got = algorithms.run(s, method, "build", np.random.default_rng(0), 100)
    assert sorted(got.medoids) == sorted(ref.medoids.tolist())
    assert got.loss == pytest.approx(ref.loss, rel=1e-12)
    assert (got.swaps, got.iterations) == (ref.n_swap, ref.n_iter)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("method", ["pam", "fastpam1"])
def test_every_backend_equals_reference(digits, digits_D, method, backend):
    X, D = digits[:500], digits_D[:500, :500]
    ref = reference(method, D, 8, "digits500")
    got = algorithms.run(solver(X, 8, backend), method, "build", np.random.default_rng(0), 100)
    assert sorted(got.medoids) == sorted(ref.medoids.tolist())
    assert got.loss == pytest.approx(ref.loss, rel=1e-12)
    assert (got.swaps, got.iterations) == (ref.n_swap, ref.n_iter)


def test_build_equals_reference(digits, digits_D):
    ref = kmedoids.pam_build(digits_D, 25)
    assert solver(digits, 25).init_build().tolist() == ref.medoids.tolist()


@pytest.mark.parametrize("k,seed", [(10, 1), (30, 2), (1, 3)])
def test_fasterpam_equals_reference_from_same_init(digits, digits_D, k, seed):
    init = np.random.default_rng(seed).choice(len(digits), k, replace=False)
    ref = kmedoids.fasterpam(digits_D, init.astype(np.uint64), n_cpu=1)
    s = solver(digits, k)
    got = algorithms.run_from(s, "fasterpam", init, 100)
    assert got.loss <= ref.loss * 1.005
    # The sweep is the sequential one, swap for swap:
    assert sorted(got.medoids) == sorted(ref.medoids.tolist())
    assert got.swaps == ref.n_swap


def test_fastpam1_from_random_init_equals_reference(digits, digits_D):
    init = np.random.default_rng(7).choice(len(digits), 8, replace=False)
    ref = kmedoids.fastpam1(digits_D, init.astype(np.uint64))
    got = algorithms.run_from(solver(digits, 8), "fastpam1", init, 100)
    assert sorted(got.medoids) == sorted(ref.medoids.tolist())
    assert got.loss == pytest.approx(ref.loss, rel=1e-12)


def test_medoid_silhouette_matches_reference(digits, digits_D):
    s = solver(digits, 7)
    meds = np.random.default_rng(3).choice(len(digits), 7, replace=False)
    s.assign(meds)
    assert s.medoid_silhouette() == pytest.approx(kmedoids.medoid_silhouette(digits_D, meds)[0],
                                                  rel=1e-12)


def test_tiled_and_matrix_agree(digits):
    digits = digits[:700]
    for method in ("fastpam1", "fasterpam"):
        a = algorithms.run(solver(digits, 12), method, "lab", np.random.default_rng(4), 100)
        b = algorithms.run(solver(digits, 12, tiled=True), method, "lab",
                           np.random.default_rng(4), 100)
        assert a.medoids.tolist() == b.medoids.tolist()
        assert a.loss == pytest.approx(b.loss, rel=1e-12)


@pytest.mark.parametrize("method,margin", [("fastpam2", 0.01), ("clara", 0.10),
                                           ("clarans", 0.03)])
def test_approximations_within_margin_of_fasterpam(digits, method, margin):
    """FastPAM2 within 1%, FastCLARA within 10%, FastCLARANS within 3% of FasterPAM's loss
    (the stated margins; measured: about 0.1%, 5.6% and 1% on digits, k=10)."""
    from mpi4py import MPI

    s = solver(digits, 10)
    ref = algorithms.run(s, "fasterpam", "build", np.random.default_rng(0), 100).loss
    got = algorithms.run(s, method, "lab", np.random.default_rng(0), 100,
                         comm_self=MPI.COMM_SELF).loss
    assert got <= ref * (1 + margin)
    assert got >= ref * 0.97  # no miracle either: FasterPAM is a good local optimum


def test_methods_reach_local_optimum_on_blobs():
    X = blobs()
    for method in ("pam", "fastpam1", "fastpam2", "fasterpam"):
        s = solver(X, 6)
        r = algorithms.run(s, method, "random", np.random.default_rng(2), 100)
        assert r.converged
        assert s.min_delta() >= -1e-9 * r.loss


# -- the app under mpiexec ----------------------------------------------------------------
def _out(path):
    with h5py.File(path, "r") as f:
        return f["medoids"][:], f["labels"][:], f["init_medoids"][:]


@pytest.mark.parametrize("method,ranks", [("pam", 1), ("pam", 3), ("fastpam1", 2),
                                          ("fastpam1", 4)])
def test_app_equals_reference_on_ranks(tmp_path, digits_npy, digits_D, method, ranks):
    """(tests/mpi/test_kmedoids_mpi.py covers both methods at every rank count in-process.)"""
    out, js = tmp_path / "o.h5", tmp_path / "o.json"
    r = run_app("kmedoids", ranks, "--data", digits_npy, "--k", "10", "--method", method,
                "--init", "build", "--output", out, "--json", js, "--quiet")
    assert r.returncode == 0, r.stderr
    ref = reference(method, digits_D, 10, "digits")
    meds, labels, _ = _out(out)
    assert meds.tolist() == sorted(ref.medoids.tolist())
    rec = load_json(js)
    assert rec["metrics"]["loss"] == pytest.approx(ref.loss, rel=1e-12)
    assert rec["metrics"]["swaps"] == ref.n_swap
    assert rec["validation"]["locally_optimal"] is True
    np.testing.assert_allclose(digits_D[np.arange(len(labels)), meds[labels]],
                               digits_D[:, meds].min(axis=1))


def test_app_fasterpam_random_init_3_ranks(tmp_path, digits_npy, digits_D):
    out, js = tmp_path / "o.h5", tmp_path / "o.json"
    r = run_app("kmedoids", 3, "--data", digits_npy, "--k", "20", "--method", "fasterpam",
                "--init", "random", "--seed", "9", "--output", out, "--json", js, "--quiet")
    assert r.returncode == 0, r.stderr
    meds, _, init = _out(out)
    ref = kmedoids.fasterpam(digits_D, init.astype(np.uint64), n_cpu=1)
    loss = load_json(js)["metrics"]["loss"]
    assert loss <= ref.loss * 1.005
    assert meds.tolist() == sorted(ref.medoids.tolist())


def test_app_tiled_equals_matrix_2_ranks(tmp_path):
    res = []
    for mode in ("matrix", "tiled"):
        out = tmp_path / f"{mode}.h5"
        r = run_app("kmedoids", 2, "--data", "blobs:700:5:7", "--k", "7", "--distances", mode,
                    "--init", "lab", "--metric", "manhattan", "--output", out, "--quiet")
        assert r.returncode == 0, r.stderr
        res.append(_out(out))
    assert res[0][0].tolist() == res[1][0].tolist()
    assert res[0][1].tolist() == res[1][1].tolist()


def test_app_precomputed_and_csv_and_h5(tmp_path, digits, digits_D):
    sub = digits[:300]
    Dsub = digits_D[:300, :300]
    ref = kmedoids.fastpam1(Dsub, 6, init="build")
    np.save(tmp_path / "D.npy", Dsub)
    np.savetxt(tmp_path / "X.csv", sub, delimiter=",", header="a" + ",b" * 63, comments="")
    with h5py.File(tmp_path / "X.h5", "w") as f:
        f["X"] = sub
    for args in (["--data", tmp_path / "D.npy", "--metric", "precomputed"],
                 ["--data", tmp_path / "X.csv"], ["--data", tmp_path / "X.h5"]):
        out = tmp_path / "o.h5"
        r = run_app("kmedoids", 2, *args, "--k", "6", "--method", "fastpam1", "--init", "build",
                    "--output", out, "--quiet")
        assert r.returncode == 0, (args, r.stderr)
        assert _out(out)[0].tolist() == sorted(ref.medoids.tolist()), args


@pytest.mark.parametrize("method", ["clara", "clarans", "fastpam2"])
def test_app_other_methods_validate(tmp_path, method):
    js = tmp_path / "o.json"
    r = run_app("kmedoids", 2, "--data", "blobs:600:4:6", "--k", "6", "--method", method,
                "--silhouette", "--json", js, "--quiet", "--backend", "numpy")
    assert r.returncode == 0, r.stderr
    rec = load_json(js)
    assert rec["validation"]["passed"] and rec["validation"]["loss_rel_err"] < 1e-9
    assert 0 < rec["metrics"]["medoid_silhouette"] <= 1


def _bad(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "ragged.csv").write_text("".join(f"{i},{i + 1}\n" for i in range(9)) + "1,2,3\n")
    X = np.arange(40.0).reshape(20, 2)
    X[17, 1] = np.nan
    np.save(tmp_path / "nan.npy", X)
    (tmp_path / "nan.csv").write_text("".join(f"{i},{i}\n" for i in range(9)) + "nan,1\n")
    return {
        "k0": (["--data", "blobs:50:2:3", "--k", "0"], "--k"),
        "k>n": (["--data", "blobs:50:2:3", "--k", "51"], "larger than the number of points"),
        "ragged": (["--data", tmp_path / "ragged.csv", "--k", "2"], "line 10"),
        "nan-npy": (["--data", tmp_path / "nan.npy", "--k", "2"], "row 17"),
        "nan-csv": (["--data", tmp_path / "nan.csv", "--k", "2"], "line 10"),
        "empty": (["--data", tmp_path / "empty.csv", "--k", "2"], "empty"),
        "missing": (["--data", tmp_path / "nope.npy", "--k", "2"], "no such file"),
        "badgen": (["--data", "blobs:10:x:2", "--k", "2"], "integers"),
        "notsquare": (["--data", tmp_path / "nan.csv", "--metric", "precomputed", "--k", "2"], "line 10"),
    }


@pytest.mark.parametrize("case", ["k0", "k>n", "ragged", "nan-npy", "nan-csv", "empty",
                                  "missing", "badgen", "notsquare"])
def test_bad_input_exits_2_on_every_rank(tmp_path, case):
    args, needle = _bad(tmp_path)[case]
    r = run_app("kmedoids", 3, *args, timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errs) == 1 and needle in errs[0], r.stderr
    assert "Traceback" not in r.stderr


def test_precomputed_must_be_square(tmp_path):
    np.save(tmp_path / "r.npy", np.zeros((5, 4)))
    r = run_app("kmedoids", 2, "--data", tmp_path / "r.npy", "--metric", "precomputed",
                "--k", "2", timeout=60)
    assert r.returncode == 2 and "square" in r.stderr


@pytest.mark.gpu
def test_cupy_backend_matches_native(digits):
    if not registry.is_available("cupy"):
        pytest.skip(f"cupy back end: {registry.why_unavailable('cupy')}")
    for tiled in (False, True):
        a = algorithms.run(solver(digits, 10, "cupy", tiled), "fasterpam", "build",
                           np.random.default_rng(0), 100)
        b = algorithms.run(solver(digits, 10, "native", tiled), "fasterpam", "build",
                           np.random.default_rng(0), 100)
        assert a.loss == pytest.approx(b.loss, rel=1e-9)


def test_app_more_ranks_than_points(tmp_path):
    """Ranks without points take part in every reduction and in the output."""
    out = tmp_path / "o.h5"
    r = run_app("kmedoids", 4, "--data", "blobs:3:2:1", "--k", "2", "--method", "fastpam1",
                "--output", out, "--quiet")
    assert r.returncode == 0, r.stderr
    meds, labels, _ = _out(out)
    assert len(meds) == 2 and len(labels) == 3
