"""The DCDM options of hpc.cg's command line reach the solver."""
from __future__ import annotations

from conftest import load_json, run_app


def test_dcdm_keep_and_backend_options(tmp_path):
    out = tmp_path / "r.json"
    r = run_app("cg", 2, "--problem", "poisson3d:16", "--method", "dcdm", "--rtol", "1e-6",
                "--dcdm-keep", "4", "--dcdm-backend", "numpy", "--json", out)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = load_json(out)
    assert rec["params"]["dcdm_keep"] == 4 and rec["validation"]["passed"]


def test_dcdm_missing_model_is_a_usage_error(tmp_path):
    r = run_app("cg", 2, "--problem", "poisson3d:16", "--method", "dcdm",
                "--dcdm-model", str(tmp_path / "none.h5"))
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "none.h5" in lines[0]


def test_train_dcdm_option_errors_exit_2(tmp_path):
    """train-dcdm's options are checked before PyTorch is needed (one error: line, exit 2)."""
    for args, fragment in ((["--val-every", "2", "--checkpoint-every", "3"], "use one of the two"),
                           (["--val-every", "-1"], "--val-every"),
                           (["--grid", "7"], "even"),
                           (["--init", str(tmp_path / "none.h5")], "none.h5")):
        r = run_app("cg", 1, "train-dcdm", "--save", str(tmp_path / "m.h5"), *args)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), r.stderr
        assert fragment in lines[0], lines[0]


def test_ritz_cache_is_written_atomically_and_checked_on_load(tmp_path):
    """--ritz-cache: written through the atomic writer (no temporary left beside it), reused
    when its key and contents match, recomputed when the key matches but the arrays do not."""
    import numpy as np

    from hpc.cg.dcdm.train import TrainOptions, _ritz

    cache = tmp_path / "ritz.npz"
    opts = TrainOptions(save=str(tmp_path / "m.h5"), grid=6, ritz=12, seed=3,
                        ritz_cache=str(cache))
    said: list[str] = []
    vals, ritz = _ritz(opts, np.random.default_rng(3), said.append)
    assert cache.is_file() and [p.name for p in tmp_path.iterdir()] == ["ritz.npz"]
    v2, r2 = _ritz(opts, np.random.default_rng(3), said.append)
    assert any("from" in s for s in said) and np.array_equal(v2, vals) and np.array_equal(r2, ritz)
    # same key, wrong shape: recomputed (equal to the fresh result), never returned as is
    np.savez(cache, n=6, m=12, seed=3, vals=vals[:5], ritz=ritz)
    said.clear()
    v3, r3 = _ritz(opts, np.random.default_rng(3), said.append)
    assert any("recomputing" in s for s in said)
    assert np.array_equal(v3, vals) and np.array_equal(r3, ritz)
