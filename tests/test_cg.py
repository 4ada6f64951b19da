"""python -m hpc.cg under mpiexec: exit codes, the record, HDF5 output, errors (contract)."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.sparse as sp

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
    (["--rtol", "-1"], "--rtol: expected a finite number in (0, 1]"),
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


# -- native kernels behind the CG hot path (in-process, no MPI) -------------------------------
def _native():
    from hpc.core import backends

    if not backends.is_available("native"):
        pytest.skip("the native extension is not built")
    from hpc import _core

    return _core.sparse


@pytest.mark.parametrize("itype", [np.int32, np.int64])
def test_native_csr_matches_scipy_and_owns_its_copy(itype):
    import scipy.sparse as sp

    k = _native()
    rng = np.random.default_rng(3)
    # rows of 0..40 entries: both the short-row (two accumulators) and SIMD (>= 16) paths
    lens = rng.integers(0, 41, size=57)
    rows = np.repeat(np.arange(57), lens)
    cols = np.concatenate([rng.choice(45, size=n, replace=False) for n in lens])
    A = sp.csr_matrix((rng.standard_normal(rows.size), (rows, cols)), shape=(57, 45))
    A.sort_indices()
    data = A.data.copy()
    C = k.Csr(A.indptr.astype(np.int64), A.indices.astype(itype), data, 45, None, 57)
    assert (C.nrows, C.ncols, C.nnz, C.index_itemsize, C.indptr_itemsize) == (57, 45, A.nnz, 4, 4)
    x, w = rng.standard_normal(45), rng.standard_normal(57)
    y = np.empty(57)
    assert C.matvec(x, y) == 0.0
    np.testing.assert_allclose(y, A @ x, rtol=1e-13, atol=1e-13)
    data[:] = 0.0                       # the kernel holds its own validated copy
    y0 = y.copy()
    d = C.matvec(x, y, True, w)
    np.testing.assert_allclose(y, y0 + A @ x, rtol=1e-13, atol=1e-13)
    assert d == pytest.approx(w @ (A @ x), rel=1e-12)
    # a row subset: stored rows go to output rows `ro` of a longer y
    ro = np.array([1, 4, 9, 60], dtype=np.int64)
    S = A[:4]
    R = k.Csr(S.indptr.astype(np.int64), S.indices.astype(itype), S.data, 45, ro, 64)
    y = np.full(64, 2.0)
    d = R.matvec(x, y, True, np.ones(64))
    ref = np.full(64, 2.0)
    ref[ro] += S @ x
    np.testing.assert_allclose(y, ref, rtol=1e-13)
    assert d == pytest.approx((S @ x).sum(), rel=1e-12)


def test_native_csr_refuses_bad_input():
    k = _native()
    ip, ix, v = np.array([0, 1, 2], dtype=np.int64), np.array([0, 1], dtype=np.int32), np.ones(2)
    with pytest.raises(ValueError, match="out of range"):
        k.Csr(ip, np.array([0, 2], dtype=np.int32), v, 2, None, 2)
    with pytest.raises(ValueError, match="monotone"):
        k.Csr(np.array([0, 2, 1, 2], dtype=np.int64), np.array([0, 1], dtype=np.int32), v, 2, None, 3)
    with pytest.raises(ValueError, match="span"):
        k.Csr(np.array([0, 1, 1], dtype=np.int64), ix, v, 2, None, 2)
    with pytest.raises(ValueError, match="increasing"):
        k.Csr(ip, ix, v, 2, np.array([3, 3], dtype=np.int64), 5)
    with pytest.raises(ValueError, match="out of range"):
        k.Csr(ip, ix, v, 2, np.array([0, 5], dtype=np.int64), 5)
    C = k.Csr(ip, ix, v, 2, None, 2)
    with pytest.raises(ValueError, match="length"):
        C.matvec(np.ones(3), np.empty(2))
    with pytest.raises(ValueError, match="dtype"):
        C.matvec(np.ones(2, dtype=np.float32), np.empty(2))



@pytest.mark.parametrize("itype", [np.int32, np.int64])
def test_native_sweep_and_spmv_check_every_index(itype):
    """The per-call CSR checks of gs_sweep and spmv read every entry (negative, too large, last)."""
    k = _native()
    n = 50
    A = sp.random(n, n, 0.2, random_state=1, format="csr") + sp.identity(n, format="csr")
    A.sort_indices()
    ip, v = A.indptr.astype(np.int64), A.data.copy()
    diag, b = A.diagonal().copy(), np.ones(n)
    for pos, val in ((-1, n), (-1, -1), (A.nnz // 2, -(2**31) if itype == np.int32 else -(2**40))):
        ix = A.indices.astype(itype)
        ix[pos] = val
        with pytest.raises(ValueError, match="gs_sweep: column index out of range"):
            k.gs_sweep(ip, ix, v, diag, b, np.zeros(n))
        with pytest.raises(ValueError, match="spmv: column index out of range"):
            k.spmv(ip, ix, v, np.ones(n), np.empty(n))
    bad = ip.copy()
    bad[-2] = bad[-1] + 1
    with pytest.raises(ValueError, match="not monotone"):
        k.spmv(bad, A.indices.astype(itype), v, np.ones(n), np.empty(n))
    y = np.empty(n)
    k.spmv(ip, A.indices.astype(itype), v, np.ones(n), y)
    np.testing.assert_allclose(y, A @ np.ones(n), rtol=1e-14)


def test_fused_cg_update_and_jacobi_dots_match_numpy():
    k = _native()
    rng = np.random.default_rng(4)
    n = 1001
    p, q, x, r, dinv = (rng.standard_normal(n) for _ in range(5))
    a = 0.37
    xr, rr_ = x + a * p, r - a * q
    z = np.empty(n)
    rr, rz = k.cg_update(a, p, q, x, r, dinv, z)
    # the kernel may contract a*p + x into one FMA: equal up to one rounding of the inputs' size
    np.testing.assert_allclose(x, xr, rtol=0, atol=1e-15 * np.abs(xr).max() * 4)
    np.testing.assert_allclose(r, rr_, rtol=0, atol=1e-15 * np.abs(rr_).max() * 4)
    np.testing.assert_array_equal(z, dinv * r)
    assert rr == pytest.approx(r @ r, rel=1e-12) and rz == pytest.approx(r @ (dinv * r), rel=1e-12)
    rr2, rz2 = k.cg_update(0.0, p, q, x, r)          # no preconditioner: r.z = r.r
    assert rr2 == rz2 == pytest.approx(r @ r, rel=1e-12)
    z2 = np.empty(n)
    assert k.jacobi_dots(dinv, r, z2) == pytest.approx((r @ r, r @ (dinv * r)), rel=1e-12)
    np.testing.assert_array_equal(z2, dinv * r)
    with pytest.raises(ValueError, match="overlap"):
        k.cg_update(a, p, q, x, x)                  # x and r the same array
    with pytest.raises(ValueError, match="overlap"):
        k.jacobi_dots(dinv, r, r)
    with pytest.raises(ValueError, match="both"):
        k.cg_update(a, p, q, x, r, dinv, None)


def test_subcommands_dispatch(tmp_path):
    """The solve is the default verb (and also 'solve'); --help lists train-dcdm."""
    h = run_app("cg", 1, "--help")
    assert h.returncode == 0 and "train-dcdm" in h.stdout and "subcommands:" in h.stdout
    js = tmp_path / "r.json"
    p = run_app("cg", 2, "solve", "--problem", "poisson2d:12", "--json", js)
    assert p.returncode == 0, p.stderr
    assert load_json(js)["metrics"]["converged"] is True
    t = run_app("cg", 1, "train-dcdm", "--help")
    assert t.returncode == 0 and "--val-every" in t.stdout and "--time-limit" in t.stdout
