"""hpc.cg --method dcdm: the network's kernels against PyTorch, model files, and the solver.

The distributed network's rank-count independence is tested in tests/mpi/test_dcdm_mpi.py
(1-4 ranks) and here through the app on 1-3 ranks.
"""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from hpc.core.errors import UsageError


def _torch():
    return pytest.importorskip("torch", reason="PyTorch not installed (optional ml extra)")


# -- kernels and the network ------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_network_equals_torch(backend):
    """numpy / numba inference of the whole network equals torch's conv3d network."""
    torch = _torch()
    from hpc.cg.dcdm.infer import serial_forward
    from hpc.cg.dcdm.torch_net import DCDMNet
    from hpc.cg.dcdm.weights import Model

    net = DCDMNet(16, seed=5)
    model = Model(net.export(), 16)
    r = np.random.default_rng(0).standard_normal((6, 8, 10)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(r)[None, None])[0, 0].numpy()
    out = serial_forward(model, r, backend)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_cupy_network_equals_numpy():
    from hpc.core import backends

    if not backends.is_available("cupy"):
        pytest.skip(f"cupy back end: {backends.why_unavailable('cupy')}")
    from hpc.cg.dcdm.infer import serial_forward
    from hpc.cg.dcdm.weights import random_model

    m = random_model(16, seed=4)
    r = np.random.default_rng(0).standard_normal((8, 10, 12))
    ref = serial_forward(m, r, "numpy")
    np.testing.assert_allclose(serial_forward(m, r, "cupy"), ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_single_conv_equals_torch():
    torch = _torch()
    import torch.nn.functional as F

    from hpc.cg.dcdm.kernels import ArrayKernels

    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 7, 4, 3)).astype(np.float32)  # (Z, Y, X, C_in)
    w = rng.standard_normal((3, 3, 3, 3, 6)).astype(np.float32)
    k = ArrayKernels()
    xp = k.empty_field((5, 7, 4), 3)
    xp[1:-1, 1:-1, 1:-1] = x
    out = k.conv3(xp, w, relu=False)[1:-1, 1:-1, 1:-1]
    ref = F.conv3d(torch.from_numpy(x).permute(3, 0, 1, 2)[None],
                   torch.from_numpy(w).permute(4, 3, 0, 1, 2), padding=1)[0].permute(1, 2, 3, 0)
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-5, atol=1e-5)


def test_pool_and_up():
    from hpc.cg.dcdm.kernels import ArrayKernels

    k = ArrayKernels()
    a = np.arange(4 * 6 * 2 * 2, dtype=np.float32).reshape(4, 6, 2, 2)
    f = k.empty_field((4, 6, 2), 2)
    f[1:-1, 1:-1, 1:-1] = a
    p = k.pool(f)[1:-1, 1:-1, 1:-1]
    assert p.shape == (2, 3, 1, 2)
    np.testing.assert_allclose(p[1, 2, 0], a[2:4, 4:6, 0:2].reshape(-1, 2).mean(axis=0))
    u = k.up(k.pool(f))[1:-1, 1:-1, 1:-1]
    assert u.shape == a.shape
    np.testing.assert_array_equal(u[3, 5, 1], p[1, 2, 0])


# -- model files ------------------------------------------------------------------------
def test_shipped_model():
    from hpc.cg.dcdm import weights as W

    m = W.load()
    assert m.problem == "poisson3d" and m.trained_grid == 32 and m.channels == 16
    assert W.DEFAULT_MODEL.stat().st_size < 1 << 20
    assert m.attrs["steps"] > 0 and np.isfinite(m.attrs["validation_loss"])


def test_model_roundtrip_and_bad_files(tmp_path):
    import h5py

    from hpc.cg.dcdm import weights as W

    m = W.random_model(8, seed=2)
    path = tmp_path / "m.h5"
    W.save(path, m.weights, 8, "poisson3d", 16, {"note": "test"})
    back = W.load(path)
    assert back.channels == 8 and back.trained_grid == 16 and back.attrs["note"] == "test"
    for k, v in m.weights.items():
        np.testing.assert_array_equal(back.weights[k], v)
    with pytest.raises(UsageError, match="not found"):
        W.load(tmp_path / "missing.h5")
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(UsageError, match="not a DCDM model"):
        W.load(bad)
    with h5py.File(path, "a") as f:
        del f["weights/c7"]
    with pytest.raises(UsageError, match="c7"):
        W.load(path)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(UsageError, match="cannot read"):
        W.load(text)


def test_model_from_another_grid_runs_on_any_even_grid():
    """Fully convolutional: a model trained on one grid applies to another; odd is refused."""
    from hpc.cg.dcdm import weights as W
    from hpc.cg.dcdm.infer import serial_forward

    m = W.load()  # trained on 32^3
    r = np.random.default_rng(0).standard_normal((10, 12, 14))
    d = serial_forward(m, r)
    assert d.shape == r.shape and np.all(np.isfinite(d)) and np.abs(d).max() > 0
    with pytest.raises(UsageError, match="even"):
        W.check_grid((10, 12, 15))


# -- the solver -------------------------------------------------------------------------
def _poisson(N):
    from hpc.cg.methods import Problem
    from hpc.sparse.generators import structured

    comm = MPI.COMM_WORLD
    A = structured("poisson3d", N, comm, backend="numpy")
    return comm, A, Problem


def _cg_iterations(A, b, rtol):
    import scipy.sparse.linalg as spla

    its = []
    spla.cg(A, b, rtol=rtol, maxiter=5000, callback=lambda xk: its.append(1))
    return len(its)


def _solve_in_process(N, b):
    from hpc.cg.dcdm.solver import solve_method
    from hpc.cg.methods import SolveOptions

    comm, A, Problem = _poisson(N)
    res = solve_method(Problem(comm, A, b, grid=(N, N, N), stencil="poisson3d"),
                       SolveOptions(rtol=1e-6, maxiter=300, backend="numpy"))
    return A.gather(), res


def test_dcdm_converges_random_rhs_16():
    """poisson3d 16^3 (a grid the model was not trained on), standard normal b, rtol 1e-6:
    converges on the true residual, in fewer iterations than CG; two matvecs and one network
    evaluation per iteration."""
    b = np.random.default_rng(3).standard_normal(16 ** 3)
    As, res = _solve_in_process(16, b)
    true = np.linalg.norm(b - As @ res.x) / np.linalg.norm(b)
    assert res.converged and res.breakdown is None
    assert true < 1e-6
    assert res.residuals[-1] == pytest.approx(true, rel=1e-6)
    assert res.extra["network_evals"] == res.iterations
    assert res.matvecs == 2 * res.iterations
    assert res.iterations < _cg_iterations(As, b, 1e-6)


@pytest.mark.slow
def test_dcdm_converges_random_rhs_32():
    """poisson3d 32^3, the training grid, standard normal b, rtol 1e-6."""
    b = np.random.default_rng(4).standard_normal(32 ** 3)
    As, res = _solve_in_process(32, b)
    true = np.linalg.norm(b - As @ res.x) / np.linalg.norm(b)
    assert res.converged and true < 1e-6
    assert res.iterations < _cg_iterations(As, b, 1e-6)


# -- through the app (python -m hpc.cg --method dcdm) ------------------------------------------
def _app(n, *args, tmp_path=None):
    from conftest import load_json, run_app

    js = tmp_path / f"r{n}.json"
    proc = run_app("cg", n, "--method", "dcdm", "--backend", "numpy", "--json", str(js), *args,
                   timeout=600)
    return proc, (load_json(js) if proc.returncode == 0 and js.exists() else None)


def test_app_rank_count_independent(tmp_path):
    """poisson3d:16, b = A 1: the same iterations and final residual on 1 and 3 ranks."""
    runs = {}
    for n in (1, 3):
        proc, rec = _app(n, "--problem", "poisson3d:16", "--rtol", "1e-6", tmp_path=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert rec["validation"]["passed"] and rec["metrics"]["converged"]
        assert rec["metrics"]["final_relres"] < 1e-6
        assert rec["solver"]["network_evals"] == rec["metrics"]["iterations"]
        runs[n] = rec
    assert runs[1]["metrics"]["iterations"] == runs[3]["metrics"]["iterations"]
    assert runs[3]["solver"]["process_grid"] == [3, 1, 1]
    assert runs[1]["metrics"]["final_relres"] == pytest.approx(runs[3]["metrics"]["final_relres"], rel=1e-3)


@pytest.mark.parametrize("args, message", [
    (["--problem", "poisson3d:15"], "even"),
    (["--problem", "poisson2d:16"], "3D"),
    (["--problem", "hpcg:8"], "trained for poisson3d"),
    (["--problem", "poisson3d:8", "--pc", "mg"], "takes no --pc"),
    (["--problem", "poisson3d:8", "--pc", "jacobi"], "takes no --pc"),
])
def test_app_bad_usage_exits_2(tmp_path, args, message):
    proc, _ = _app(2, *args, tmp_path=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_dcdm_matrix_file_is_a_usage_error(tmp_path):
    mtx = tmp_path / "a.mtx"
    mtx.write_text("%%MatrixMarket matrix coordinate real symmetric\n2 2 2\n1 1 2.0\n2 2 2.0\n")
    proc, _ = _app(1, "--matrix", str(mtx), tmp_path=tmp_path)
    assert proc.returncode == 2 and "structured 3D grid" in proc.stderr


@pytest.mark.slow
def test_app_converges_poisson3d_32_ones(tmp_path):
    """32^3 through the app on 2 ranks, b = A 1, rtol 1e-6; x matches the exact solution."""
    proc, rec = _app(2, "--problem", "poisson3d:32", "--rtol", "1e-6", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert rec["metrics"]["converged"] and rec["metrics"]["final_relres"] < 1e-6
    assert rec["metrics"]["error_vs_exact_inf"] < 1e-3


@pytest.mark.slow
def test_app_converges_poisson3d_64(tmp_path):
    """64^3 (the benchmark's size; the shipped model was trained on 32^3), 2 ranks, random b,
    rtol 1e-6 with the paper's two directions: at most a quarter of CG's 184 iterations."""
    proc, rec = _app(2, "--problem", "poisson3d:64", "--rhs", "random", "--rtol", "1e-6",
                     tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert rec["metrics"]["converged"] and rec["metrics"]["final_relres"] < 1e-6
    assert rec["metrics"]["iterations"] <= 184 // 4


def test_breakdown_on_indefinite_matrix():
    """d.Ad <= 0 stops the solve unconverged, with the reason."""
    from hpc.cg.dcdm.solver import dcdm_solve

    A = -np.diag(np.arange(1.0, 9.0))
    b = np.ones(8)
    res = dcdm_solve(MPI.COMM_WORLD, lambda v: A @ v, b, lambda r: r.copy(), 1e-8, 50)
    assert not res.converged and "not SPD" in res.breakdown


def test_identity_direction_is_cg():
    """With f = identity, DCDM's two-term A-orthogonalisation reproduces CG's iterations."""
    from hpc.cg.dcdm.solver import dcdm_solve
    from hpc.cg.dcdm.train import poisson3d_csr

    A = poisson3d_csr(12)
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    res = dcdm_solve(MPI.COMM_WORLD, lambda v: A @ v, b, lambda r: r.copy(), 1e-8, 500)
    assert res.converged
    assert abs(res.iterations - _cg_iterations(A, b, 1e-8)) <= 1


# -- training (train-dcdm): the wall-time schedule and keep-best-by-validation ----------------
def test_lr_schedule_is_cosine_to_one_percent():
    from hpc.cg.dcdm.train import lr_factor

    assert lr_factor(0.0) == pytest.approx(1.0)
    assert lr_factor(0.5) == pytest.approx(0.505)
    assert lr_factor(1.0) == pytest.approx(0.01)
    assert lr_factor(3.0) == pytest.approx(0.01)       # past the budget: the floor
    f = [lr_factor(t) for t in np.linspace(0, 1, 11)]
    assert all(a > b for a, b in zip(f, f[1:]))


def _train(tmp_path, name, **kw):
    from hpc.cg.dcdm.train import TrainOptions, train

    lines: list[str] = []
    opts = TrainOptions(save=str(tmp_path / name), grid=8, ritz=40, channels=4, batch=2,
                        threads=1, **kw)
    meta = train(opts, say=lambda *a: lines.append(" ".join(map(str, a))))
    return meta, lines


def test_train_keeps_the_best_weights_by_validation(tmp_path):
    _torch()
    import h5py

    from hpc.cg.dcdm import weights as W

    meta, lines = _train(tmp_path, "best.h5", steps=8, val_every=2, val_size=4, data_seed=5)
    vals = {}
    for ln in lines:   # "step 0 val V (...)" and "step k/8 loss L val V lr ..."
        if ln.startswith("step ") and " val " in ln:
            step = int(ln.split()[1].split("/")[0])
            if step % 2 == 0:
                vals[step] = float(ln.split(" val ")[1].split()[0])
    assert sorted(vals) == [0, 2, 4, 6, 8]
    best_step = min(vals, key=vals.get)
    assert meta["best_step"] == best_step
    assert meta["validation_loss"] == pytest.approx(vals[best_step], rel=1e-4)
    m = W.load(tmp_path / "best.h5")
    assert m.attrs["best_step"] == best_step and m.attrs["data_seed"] == 5
    with h5py.File(tmp_path / "best.h5") as f:
        assert f["/training/loss"].shape == (8,)


def test_train_time_budget_and_init(tmp_path):
    """--time-limit with an unreachable --steps: the run stops on time, the learning rate
    having decayed with the elapsed fraction; --init continues from a saved model."""
    _torch()
    from hpc.cg.dcdm import weights as W

    _train(tmp_path, "a.h5", steps=2)
    meta, lines = _train(tmp_path, "b.h5", steps=10 ** 6, time_limit=2.0, log_every=1,
                         init=str(tmp_path / "a.h5"))
    assert meta["stopped_early"] and 0 < meta["steps"] < 10 ** 6
    assert meta["previous_steps"] == 2 and "a.h5" in meta["init"]
    lrs = [float(ln.split(" lr ")[1].split()[0]) for ln in lines if ln.startswith("step ")]
    assert lrs[0] > 0.9e-3 and lrs[-1] < 0.5e-3       # decayed over the wall-time budget
    assert W.load(tmp_path / "b.h5").attrs["schedule"].startswith("cosine to lr/100 over max")
