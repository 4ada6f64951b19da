"""Every examples/<workload>.py runs, at 1 and 2 ranks, using only the public API."""
from __future__ import annotations

import pytest

from conftest import ROOT
from hpc.core.launch import launch


def run_example(name: str, ranks: int, timeout: int = 300):
    """``mpiexec -n ranks python examples/<name>.py``; asserts exit 0, returns its stdout."""
    r = launch(ranks, [str(ROOT / "examples" / f"{name}.py")], env={"OMP_NUM_THREADS": "1"},
               timeout=timeout, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.mark.parametrize("ranks", [1, 2])
def test_example_pagerank(ranks):
    pytest.importorskip("networkx")
    out = run_example("pagerank", ranks)
    lines = out.splitlines()
    assert any(ln.startswith("VALID: max |hpc - networkx|") for ln in lines), out
    assert out.count("top vertices:") == 1          # rank 0 prints


@pytest.mark.parametrize("ranks", [1, 2])
def test_example_kmedoids(ranks):
    pytest.importorskip("kmedoids")
    out = run_example("kmedoids_clustering", ranks)
    assert any(ln.startswith("VALID: loss") for ln in out.splitlines()), out
    assert any(ln.startswith("VALID: DynMSC chose k=5") for ln in out.splitlines()), out
    assert out.count("cluster sizes:") == 1         # rank 0 prints


@pytest.mark.parametrize("ranks", [1, 2])
def test_example_spgemm(ranks):
    out = run_example("spgemm", ranks)
    assert any(ln.startswith("VALID: against SciPy") for ln in out.splitlines()), out
    assert any(ln.startswith("VALID:") and "triangles" in ln for ln in out.splitlines()), out
    assert out.count("C = A B:") == 1


@pytest.mark.parametrize("ranks", [1, 2])
def test_example_train(ranks):
    out = run_example("train", ranks)
    assert out.count("loss fell:") == 1, out      # rank 0 prints, and the loss fell
    assert f"on {ranks} rank(s)" in out


@pytest.mark.parametrize("ranks", [1, 2])
def test_example_halo(ranks):
    out = run_example("halo", ranks)
    assert any(ln.startswith("VALID: every ghost cell equals its owner's value")
               for ln in out.splitlines()), out
    assert out.count(f"on {ranks} rank(s)") == 1     # rank 0 prints


@pytest.mark.parametrize("ranks", [1, 2])
def test_example_stream(ranks):
    out = run_example("stream", ranks)
    lines = out.splitlines()
    assert "VALID" in lines, out
    assert sum(ln.startswith("triad bandwidth:") and f"on {ranks} rank(s)" in ln
               for ln in lines) == 1, out


@pytest.mark.parametrize("ranks", [1, 2])
def test_example_cg(ranks):
    out = run_example("cg", ranks)
    assert any(ln.startswith("VALID: against scipy.sparse.linalg.spsolve") for ln in out.splitlines()), out
    assert out.count(f"on {ranks} rank(s):") == 1   # rank 0 prints


@pytest.mark.parametrize("ranks", [1, 2])
def test_example_sparse(ranks):
    out = run_example("sparse", ranks)
    assert any(ln.startswith("VALID: max |A @ x - SciPy|") for ln in out.splitlines()), out
    assert out.count(f"over {ranks} rank(s)") == 1  # rank 0 prints
