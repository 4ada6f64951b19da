"""python -m hpc.kmedoids launched under mpiexec: the medoid silhouette methods against the
`kmedoids` package (a test-only reference), the quality measures in the record, float32, and
bad numbers refused before any work (exit 2, one ``error:`` line, no traceback)."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from conftest import load_json, run_app

kmedoids = pytest.importorskip("kmedoids")
datasets = pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    X = datasets.load_digits().data.astype(np.float64)
    p = tmp_path_factory.mktemp("kmc") / "digits.npy"
    np.save(p, X)
    return X, p


def test_app_fastermsc_equals_reference_3_ranks(tmp_path, digits):
    X, path = digits
    D = cdist(X, X)
    out, js = tmp_path / "o.h5", tmp_path / "o.json"
    r = run_app("kmedoids", 3, "--data", path, "--k", "10", "--method", "fastermsc", "--init",
                "build", "--output", out, "--json", js, "--quiet")
    assert r.returncode == 0, r.stderr
    ref = kmedoids.fastermsc(D, 10, init="build")
    with h5py.File(out, "r") as f:
        meds, labels = f["medoids"][:], f["labels"][:]
    assert meds.tolist() == sorted(ref.medoids.tolist())
    m = load_json(js)["metrics"]
    assert m["loss"] == pytest.approx(ref.loss, rel=1e-12)
    assert (m["swaps"], m["iterations"]) == (ref.n_swap, ref.n_iter)
    # the record's quality measures, against the package's functions
    assert m["medoid_silhouette"] == pytest.approx(ref.loss, rel=1e-12)
    assert m["silhouette"] == pytest.approx(kmedoids.silhouette(D, labels, n_cpu=1)[0], rel=1e-9)
    assert m["total_deviation"] == pytest.approx(D[:, meds].min(axis=1).sum(), rel=1e-9)


def test_app_dynmsc_float32_tiled_2_ranks(tmp_path):
    js = tmp_path / "o.json"
    recs = []
    for dtype in ("float64", "float32"):
        r = run_app("kmedoids", 2, "--data", "blobs:900:5:4", "--k", "7", "--min-k", "2",
                    "--method", "dynmsc", "--distances", "tiled", "--dtype", dtype,
                    "--init", "lab", "--json", js, "--quiet")
        assert r.returncode == 0, r.stderr
        recs.append(load_json(js))
    a, b = recs
    assert a["validation"]["passed"] and b["validation"]["passed"]
    assert a["metrics"]["k_best"] == b["metrics"]["k_best"] == 4  # the four blobs
    assert b["metrics"]["loss"] == pytest.approx(a["metrics"]["loss"], rel=1e-6)


@pytest.mark.parametrize("args,needle", [
    (["--method", "clarans", "--neighbors", "inf"], "--neighbors"),
    (["--method", "clarans", "--neighbors", "nan"], "--neighbors"),
    (["--method", "clara", "--sample-size", "2", "--k", "3"], "--sample-size"),
    (["--seed", "-1"], "--seed"),
    (["--max-iter", "1e20"], "--max-iter"),
    (["--method", "dynmsc", "--k", "3", "--min-k", "4"], "--min-k"),
    (["--data", "blobs:100000000000:2:3"], "needs"),
    (["--dtype", "float16"], "--dtype"),
])
def test_bad_numbers_exit_2_before_work(args, needle):
    base = ["--data", "blobs:60:2:3", "--k", "3"]
    r = run_app("kmedoids", 3, *base, *args, timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errs) == 1 and needle in errs[0], r.stderr
    assert "Traceback" not in r.stderr
