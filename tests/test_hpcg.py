"""python -m hpc.cg hpcg, launched: the run's figures against HPCG 3.1's own xhpcg on the same
problem (stored figures, and a slow test that builds xhpcg), the record, the exit codes of bad
input, the non-symmetric MG test hook (INVALID), the 8-rank operator/SYMGS check, and HPCG's
process-grid factorisation."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, load_json, mpirun, run_app
from hpc.cg.hpcg.geometry import checked_process_grid, process_grid
from hpc.core.errors import UsageError

# Figures of HPCG 3.1's xhpcg (configure MPI_GCC_OMP, the mpich wheel's mpicxx), from its
# report HPCG-Benchmark_3.1_*.txt, produced by
#   OMP_NUM_THREADS=1 mpiexec -n N bin/xhpcg --nx=NX --ny=NY --nz=NZ --rt=0
# "Scaled residual mean" is the residual after the 50 reference iterations (its optimised CG
# is its reference CG).
XHPCG = {
    (3, (16, 16, 16)): {"grid": [3, 1, 1], "no_prec": 11, "prec": 2, "residual": 1.04493e-28},
    (3, (32, 24, 16)): {"grid": [3, 1, 1], "no_prec": 11, "prec": 2, "residual": 3.61717e-22},
    (1, (32, 24, 16)): {"grid": [1, 1, 1], "no_prec": 11, "prec": 1, "residual": 1.37575e-29},
}


def test_process_grid_as_hpcg_factorises():
    assert process_grid(1) == (1, 1, 1)
    assert process_grid(2) == (2, 1, 1)
    assert process_grid(4) == (2, 2, 1)
    assert process_grid(6) == (2, 3, 1)
    assert process_grid(8) == (2, 2, 2)
    assert process_grid(12) == (2, 3, 2)
    assert process_grid(16) == (4, 2, 2)
    assert process_grid(30) == (2, 3, 5)
    for p in range(1, 65):
        x, y, z = process_grid(p)
        assert x * y * z == p
    with pytest.raises(UsageError, match="too far from a cube"):
        checked_process_grid(11)


@pytest.mark.parametrize("ranks,local", [(3, (16, 16, 16)), (1, (32, 24, 16))])
def test_run_matches_xhpcg(tmp_path, ranks, local):
    ref = XHPCG[(ranks, local)]
    out = tmp_path / "hpcg.json"
    nx, ny, nz = (str(v) for v in local)
    h5 = tmp_path / "hpcg.h5"
    r = run_app("cg", ranks, "hpcg", "--nx", nx, "--ny", ny, "--nz", nz, "--json", str(out),
                "--output", str(h5))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "HPCG result is VALID" in r.stdout
    import h5py
    import numpy as np

    with h5py.File(h5) as f:
        n = ranks * int(np.prod(local))
        assert sorted(f["/global_rows"][:].tolist()) == list(range(n))
        np.testing.assert_allclose(f["/x"][:], 1.0, atol=1e-10)   # the exact solution
    rec = load_json(out)
    m = rec["metrics"]
    assert rec["validation"]["passed"] and rec["ranks"] == ranks
    assert m["process_grid"] == ref["grid"]
    assert m["spectral"]["max_iters_no_prec"] == ref["no_prec"]
    assert m["spectral"]["max_iters_prec"] == ref["prec"]
    assert m["symmetry"]["spmv"] <= 1.0 and m["symmetry"]["mg"] <= 1.0
    assert m["reference_scaled_residual"] == pytest.approx(ref["residual"], rel=2e-3)
    # the optimised kernels compute the reference values: no convergence penalty
    assert m["optimised_iterations"] == 50 and m["convergence_penalty"] == 1.0
    assert m["gflops_rating"] > 0 and m["cg_sets"] >= 1
    assert m["flops"]["with_convergence"] == pytest.approx(m["flops"]["total"])
    assert set(m["phase_times_s"]) == {"total", "ddot", "waxpby", "spmv", "mg", "allreduce"}


@pytest.mark.parametrize("args,reason", [
    (("--nx", "20"), "multiple of 8"),
    (("--rt", "nan"), "--rt"),
])
def test_bad_input_exits_2(args, reason):
    r = run_app("cg", 1, "hpcg", *args, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and reason in lines[0], r.stderr


@pytest.mark.parametrize("args,reason", [
    (("--ny", "8"), "--ny"),
    (("--nz", "256"), "aspect-ratio"),
    (("--nx", "24", "--ny", "20"), "multiple of 8"),
    (("--rt", "-1"), "--rt"),
    (("--rt", "inf"), "--rt"),
])
def test_bad_input_is_a_usage_error_before_any_work(args, reason):
    from hpc.cg.hpcg.app import main

    with pytest.raises(UsageError, match=reason):
        main(list(args))


def test_nonsymmetric_mg_hook_is_invalid(tmp_path):
    out = tmp_path / "bad.json"
    r = run_app("cg", 1, "hpcg", "--test-nonsymmetric-mg", "--json", str(out), timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "HPCG result is INVALID" in r.stdout
    rec = load_json(out)
    assert rec["validation"]["passed"] is False
    assert rec["validation"]["symmetry_test"] is False


def test_operator_halo_and_symgs_at_8_ranks():
    """tests/mpi/test_hpcg_mpi.py's serial-assembly checks at 8 ranks (a 2x2x2 grid: every
    rank has all 7 other boxes as neighbours through faces, edges and a corner)."""
    r = mpirun(8, "-m", "mpi4py", "-m", "pytest", "--with-mpi", "-q", "-p", "no:cacheprovider",
               "-o", "addopts=", "tests/mpi/test_hpcg_mpi.py", "-k",
               "process_grid or operator or coupled_symgs", timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert " passed" in r.stdout


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("HPC_WITH_XHPCG") != "1",
                    reason="opt-in (HPC_WITH_XHPCG=1): builds xhpcg from the HPCG 3.1 tarball")
def test_against_a_fresh_xhpcg_build(tmp_path):
    """Build xhpcg from ../shared/refs/hpcg-3.1.tar.gz (the benchmark's builder) and compare
    a 2-rank run figure by figure."""
    tarball = ROOT.parent / "shared" / "refs" / "hpcg-3.1.tar.gz"
    if not tarball.exists() or shutil.which("make") is None:
        pytest.skip("the HPCG 3.1 tarball or make is not here")
    script = ROOT / "scaling" / "compare" / "hpcg_compare.py"
    exe = subprocess.run([sys.executable, str(script), "--build-only"], capture_output=True,
                         text=True, timeout=1800, cwd=str(ROOT))
    assert exe.returncode == 0, exe.stderr
    xhpcg = exe.stdout.strip().splitlines()[-1]
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("hpcg_compare", script)
    mod = module_from_spec(spec)
    spec.loader.exec_module(mod)
    theirs = mod.run_xhpcg(xhpcg, 2, 1, 16, 0)
    ours = mod.run_suite(2, 1, 16, 0)
    assert theirs["valid"] and ours["valid"]
    assert (ours["no_prec"], ours["prec"]) == (theirs["no_prec"], theirs["prec"])
    assert ours["residual"] == pytest.approx(theirs["residual"], rel=0.1)
