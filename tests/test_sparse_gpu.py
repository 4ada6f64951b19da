"""The CuPy path of hpc.sparse / hpc.cg (skips without a CUDA GPU and CuPy)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import load_json, run_app
from hpc.core import backends

pytestmark = pytest.mark.gpu


def _need_cupy():
    why = backends.why_unavailable("cupy")
    if why:
        pytest.skip(f"cupy back end unavailable: {why}")


def test_cupy_spmv_matches_scipy():
    _need_cupy()
    import cupy
    import scipy.sparse as sp
    from mpi4py import MPI

    from hpc.sparse import DistCSR

    R = sp.random(300, 300, density=0.05, random_state=2, format="csr") + sp.eye(300)
    A = DistCSR.from_scipy(R, MPI.COMM_WORLD, backend="cupy")
    x = np.random.default_rng(1).standard_normal(300)
    y = A.spmv(cupy.asarray(x)).get()
    np.testing.assert_allclose(y, R @ x, rtol=1e-12, atol=1e-12)


def test_cg_cupy_backend(tmp_path):
    _need_cupy()
    js = tmp_path / "r.json"
    p = run_app("cg", 2, "--problem", "poisson3d:12", "--backend", "cupy", "--method", "pcg",
                "--pc", "jacobi", "--json", js)
    assert p.returncode == 0, p.stderr
    ref = tmp_path / "n.json"
    run_app("cg", 2, "--problem", "poisson3d:12", "--method", "pcg", "--pc", "jacobi", "--json", ref)
    assert abs(load_json(js)["metrics"]["iterations"] - load_json(ref)["metrics"]["iterations"]) <= 1
