"""python -m hpc.cg under mpiexec: exit codes, the record, HDF5 output, errors (contract)."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from conftest import data_file, load_json, run_app

MTX_HEAD = "%%MatrixMarket matrix coordinate real symmetric\n"


def test_hpcg_mg_validates_with_record_and_h5(tmp_path):
    js, h5 = tmp_path / "r.json", tmp_path / "x.h5"
    p = run_app("cg", 4, "--problem", "hpcg:8", "--method", "pcg", "--pc", "mg",
                "--json", js, "--output", h5)
    assert p.returncode == 0, p.stderr
    assert "cg: VALID" in p.stdout
    rec = load_json(js)
    m = rec["metrics"]
    assert rec["app"] == "cg" and rec["ranks"] == 4
    assert m["converged"] is True and m["final_relres"] <= 1e-8 and 0 < m["iterations"] < 20
    assert m["error_vs_exact_inf"] < 1e-6
    with h5py.File(h5) as f:
        x, res = f["/x"][...], f["/residuals"][...]
    np.testing.assert_allclose(x, 1.0, atol=1e-6)     # hpcg: exact solution all ones
    assert res.shape == (m["iterations"] + 1,) and res[0] == pytest.approx(1.0) and res[-1] < 1e-8


@pytest.mark.parametrize("method,pc", [("pcg", "bjacobi"), ("cg1", "jacobi"), ("pipecg", "chebyshev")])
def test_methods_on_real_matrix(method, pc, tmp_path):
    path = data_file("matrices", "1138_bus.mtx")
    js = tmp_path / "r.json"
    p = run_app("cg", 2, "--matrix", path, "--method", method, "--pc", pc, "--rtol", "1e-6",
                "--json", js, "--quiet")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""
    m = load_json(js)["metrics"]
    assert m["converged"] and m["final_relres"] <= 1e-6


@pytest.mark.parametrize("backend", ["numba", "numpy", "scipy"])
def test_backends_agree(backend, tmp_path):
    js = tmp_path / "r.json"
    p = run_app("cg", 2, "--problem", "poisson3d:10", "--backend", backend, "--json", js,
                "--exchange", "p2p")
    assert p.returncode == 0, p.stderr
    m = load_json(js)["metrics"]
    assert m["iterations"] == 25 and m["final_relres"] <= 1e-8   # native's count, same arithmetic


def test_breakdown_exit_1(tmp_path):
    mtx = tmp_path / "indef.mtx"
    mtx.write_text(MTX_HEAD + "4 4 4\n1 1 1\n2 2 -3\n3 3 2\n4 4 1\n")
    js = tmp_path / "r.json"
    p = run_app("cg", 2, "--matrix", mtx, "--json", js)
    assert p.returncode == 1
    assert "breakdown" in p.stderr and "not symmetric positive definite" in p.stderr
    rec = load_json(js)
    assert rec["metrics"]["converged"] is False and "breakdown" in rec["validation"]


def test_maxiter_reached_exit_1(tmp_path):
    js = tmp_path / "r.json"
    p = run_app("cg", 2, "--problem", "poisson2d:30", "--maxiter", "5", "--json", js)
    assert p.returncode == 1 and "INVALID" in p.stdout
    rec = load_json(js)
    assert rec["metrics"]["converged"] is False and rec["metrics"]["iterations"] == 5
    assert "not converged" in rec["validation"]["failure"]


@pytest.mark.parametrize("args,fragment", [
    (["--problem", "poisson4d:8"], "unknown problem"),
    (["--problem", "hpcg:0"], "positive integer"),
    (["--method", "cg", "--pc", "jacobi"], "takes no preconditioner"),
    (["--pc", "gamg", "--method", "pcg"], "--backend petsc"),
    (["--pc", "mg", "--method", "pcg", "--matrix", "MTX"], "structured problem"),
    (["--rtol", "-1"], "positive"),
    (["--rhs", "missing.npy"], "cannot read"),
])
def test_usage_errors_exit_2(args, fragment, tmp_path):
    mtx = tmp_path / "ok.mtx"
    mtx.write_text(MTX_HEAD + "2 2 2\n1 1 2\n2 2 2\n")
    args = [str(mtx) if a == "MTX" else a for a in args]
    p = run_app("cg", 3, *args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and fragment in lines[0], p.stderr
    assert "Traceback" not in p.stderr


def test_malformed_matrix_names_file_and_line(tmp_path):
    mtx = tmp_path / "bad.mtx"
    rows = "".join(f"{i} {i} 4\n" for i in range(1, 40))
    mtx.write_text(MTX_HEAD + "40 40 40\n" + rows + "40 4O 4\n")   # letter O, last rank's share
    p = run_app("cg", 4, "--matrix", mtx)
    assert p.returncode == 2
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and f"{mtx}:42: column index '4O'" in err[0], p.stderr


def test_petsc_backend_side_by_side(tmp_path):
    pytest.importorskip("petsc4py", reason="petsc4py not installed (HPC_WITH_PETSC=1 installs it)")
    out = {}
    for be in ("native", "petsc"):
        js = tmp_path / f"{be}.json"
        p = run_app("cg", 2, "--problem", "poisson3d:10", "--method", "pcg", "--pc", "jacobi",
                    "--backend", be, "--json", js)
        assert p.returncode == 0, p.stderr
        out[be] = load_json(js)["metrics"]
    assert abs(out["native"]["iterations"] - out["petsc"]["iterations"]) <= 1
    assert out["petsc"]["final_relres"] <= 1e-8


def test_petsc_missing_is_usage_error():
    try:
        import petsc4py  # noqa: F401
        pytest.skip("petsc4py is installed here")
    except ImportError:
        pass
    p = run_app("cg", 2, "--backend", "petsc")
    assert p.returncode == 2 and "petsc4py not installed" in p.stderr


def test_matrix_free_operator_same_iterations(tmp_path):
    its = {}
    for op in ("assembled", "stencil"):
        js = tmp_path / f"{op}.json"
        p = run_app("cg", 3, "--problem", "poisson3d:9", "--operator", op, "--json", js)
        assert p.returncode == 0, p.stderr
        rec = load_json(js)
        its[op] = rec["metrics"]["iterations"]
        assert rec["note"].startswith("matrix-free") == (op == "stencil")
    assert its["assembled"] == its["stencil"]
