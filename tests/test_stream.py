"""hpc.stream: every available back end validates at 1-4 ranks; errors; the record; a wrong
kernel is caught by the gold-recurrence check."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import load_json, run_app
from hpc.core import backends
from hpc.stream import models
from hpc.stream.api import ARRAYS_MOVED, gold

ALL = list(models.BACKENDS)
AVAILABLE = [b for b in ALL if backends.is_available(models.BACKENDS[b][1])]
GPU = ["cupy", "cuda"]


@pytest.mark.parametrize("backend", ALL)
def test_backend_validates_one_rank(backend, tmp_path):
    need = models.BACKENDS[backend][1]
    if not backends.is_available(need):
        pytest.skip(f"{backend}: {backends.why_unavailable(need)}")
    out = tmp_path / "r.json"
    r = run_app("stream", 1, "--backend", backend, "-s", "20000", "-n", "4", "--json", out)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = load_json(out)
    assert rec["validation"]["passed"] is True
    for k in ARRAYS_MOVED:
        assert rec["metrics"][f"{k}_GBps"] > 0


@pytest.mark.parametrize("backend", ["numpy", "native", "numba"])
@pytest.mark.parametrize("float32", [False, True])
def test_float32_validates(backend, float32, tmp_path):
    args = ["--backend", backend, "-s", "12345", "-n", "5"] + (["--float"] if float32 else [])
    r = run_app("stream", 1, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stream: VALID" in r.stdout


@pytest.mark.parametrize("ranks", [2, 3, 4])
def test_mpi_aggregate_and_record(ranks, tmp_path):
    out = tmp_path / "r.json"
    r = run_app("stream", ranks, "--backend", "native", "-s", "10001", "-n", "3", "--json", out,
                "--csv")
    assert r.returncode == 0, r.stdout + r.stderr
    rec = load_json(out)
    for key in ("app", "version", "ranks", "backend", "params", "metrics", "timings",
                "validation", "env"):
        assert key in rec
    assert rec["app"] == "stream" and rec["ranks"] == ranks and rec["backend"] == "native"
    assert rec["params"]["arraysize"] == 10001 and rec["params"]["numtimes"] == 3
    assert set(rec["timings"]) == set(ARRAYS_MOVED) | {"init", "read"}  # BabelStream 5
    t = rec["timings"]["triad"]
    assert t["min"] <= t["mean"] <= t["max"] and t["n"] == 2  # first iteration dropped
    # aggregate bandwidth = bytes x ranks / best slowest-rank time
    expect = 3 * 10001 * 8 * ranks / t["min"] / 1e9
    assert rec["metrics"]["triad_GBps"] == pytest.approx(expect, rel=1e-9)
    assert rec["env"]["mpi"] and rec["env"]["threads"] == 1 and rec["env"]["hosts"] == 1
    assert "cuda_aware" in rec["env"]
    assert "function,num_times,n_elements,sizeof" in r.stdout


def test_only_kernel_and_hdf5(tmp_path):
    import h5py

    out = tmp_path / "s.h5"
    r = run_app("stream", 2, "--backend", "numpy", "-s", "1000", "-n", "6", "--only", "nstream",
                "--output", out)
    assert r.returncode == 0, r.stdout + r.stderr
    with h5py.File(out) as f:
        assert f["/times/nstream"].shape == (6,)


def test_peak_fraction_reported(tmp_path):
    out = tmp_path / "r.json"
    r = run_app("stream", 1, "-s", "1000", "-n", "3", "--peak-GBps", "1000", "--json", out)
    assert r.returncode == 0
    rec = load_json(out)
    assert 0 < rec["metrics"]["triad_fraction_of_peak"] < 1
    assert "of peak" in r.stdout


@pytest.mark.parametrize("args,needle", [
    (["--arraysize", "0"], "--arraysize"),
    (["--numtimes", "1"], "--numtimes"),
    (["--backend", "fortran"], "--backend"),
    (["--only", "scale"], "--only"),
    (["--arraysize", str(2**40)], "needs"),
])
def test_usage_errors_exit_2_one_line(args, needle):
    r = run_app("stream", 2, *args)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]


@pytest.mark.parametrize("backend", GPU)
def test_gpu_backends_unavailable_is_clear_error(backend):
    if backends.is_available(models.BACKENDS[backend][1]):
        pytest.skip("a GPU is present: covered by test_backend_validates_one_rank")
    r = run_app("stream", 1, "--backend", backend)
    assert r.returncode == 2
    assert "not available" in r.stderr


def test_gold_recurrence_matches_a_direct_simulation():
    n = 7
    a, b, c = np.full(n, 0.1), np.full(n, 0.2), np.zeros(n)
    s = 0.4
    for _ in range(3):
        c[:] = a
        b[:] = s * c
        c[:] = a + b
        a[:] = b + s * c
        a[:] += b + s * c
        dot = float(a @ b)
    ga, gb, gc, gsum = gold(np.float64, ["copy", "mul", "add", "triad", "nstream", "dot"], 3, n)
    assert (ga, gb, gc) == (a[0], b[0], c[0])
    assert gsum == pytest.approx(dot, rel=1e-15)


WRONG_KERNEL = """
import sys
from hpc.core import run, world
import hpc.stream.api as api
import hpc.stream.app as app
from hpc.stream.models.native import NativeStream

class Wrong(NativeStream):
    def triad(self, scalar):
        super().triad(scalar)
        if world().Get_rank() == world().Get_size() - 1:
            self.a[len(self.a) // 2] *= 1.0 + 1e-9   # one element, one rank, barely off

api.load = lambda name: Wrong   # the model hpc.stream.run builds
run(app.main)
"""


@pytest.mark.parametrize("ranks", [1, 3])
def test_wrong_kernel_is_caught(tmp_path, ranks):
    script = tmp_path / "wrong.py"
    script.write_text(WRONG_KERNEL)
    out = tmp_path / "r.json"
    r = __import__("conftest").mpirun(ranks, script, "-s", "999", "-n", "3", "--json", out)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "stream: INVALID" in r.stdout
    assert load_json(out)["validation"]["passed"] is False
