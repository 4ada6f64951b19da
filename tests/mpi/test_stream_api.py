"""hpc.stream.run in-process at any rank count (tools/run_tests.sh runs this at 1-4 ranks).

The arrays a run leaves behind are checked against BabelStream's gold recurrence computed
here independently (a direct simulation of the kernels on scalars); the bandwidth is the
contract's (bytes x ranks / best slowest-rank time); wrong inputs raise ValueError/TypeError.
"""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

import hpc.stream
from hpc.core import backends

comm = MPI.COMM_WORLD
BYTES = {"copy": 2, "mul": 2, "add": 3, "triad": 3, "nstream": 4, "dot": 2}


def _simulate(ntimes: int, n_global: int, dtype) -> tuple[float, float, float, float]:
    """The six kernels on one element each, in the arrays' precision (the gold values)."""
    T = np.dtype(dtype).type
    a, b, c, s = T(0.1), T(0.2), T(0.0), T(0.4)
    dot = 0.0
    for _ in range(ntimes):
        c = a
        b = s * c
        c = a + b
        a = b + s * c
        a = a + (b + s * c)
        dot = float(a) * float(b) * n_global
    return float(a), float(b), float(c), dot


@pytest.mark.mpi
@pytest.mark.parametrize("backend", ["numpy", "native"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_run_validates_against_the_gold_values(backend, dtype):
    if not backends.is_available(backend):
        pytest.skip(backends.why_unavailable(backend))
    n, ntimes = 1001, 4
    r = hpc.stream.run(n, backend=backend, ntimes=ntimes, dtype=dtype)
    assert r["valid"] is True
    assert r["backend"] == backend and r["arraysize"] == n and r["ranks"] == comm.size
    tol = 100 * float(np.finfo(dtype).eps)
    for name in "abc":
        assert r["errors"][f"max_rel_err_{name}"] <= tol
    # run() checked every element against its gold values: they are the simulation's
    want = _simulate(ntimes, n * comm.size, dtype)
    got = hpc.stream.api.gold(dtype, hpc.stream.api.KERNELS, ntimes, n * comm.size)
    assert got[:3] == want[:3] and got[3] == pytest.approx(want[3], rel=1e-15)
    assert r["errors"]["dot_rel_err"] <= (1e-8 if dtype == np.float64 else 1e-4)
    assert set(r["kernels"]) == set(BYTES)
    itemsize = np.dtype(dtype).itemsize
    for k, kr in r["kernels"].items():
        assert 0 < kr["best_s"] <= kr["avg_s"] <= kr["max_s"]
        assert kr["bytes"] == BYTES[k] * n * itemsize * comm.size
        assert kr["GBps"] == pytest.approx(kr["bytes"] / kr["best_s"] / 1e9)
        assert r["samples_s"][k].shape == (ntimes,)   # every iteration, warm-up included
        assert r["timings"][k]["n"] == ntimes - 1       # the summary drops the first
    # every rank holds the same result
    assert comm.allgather(r["kernels"]["triad"]["GBps"]) == [r["kernels"]["triad"]["GBps"]] * comm.size


@pytest.mark.mpi
def test_only_and_repeat_and_a_sub_communicator():
    sub = comm.Split(comm.rank % 2, comm.rank)
    try:
        r = hpc.stream.run(500, backend="numpy", ntimes=3, comm=sub, only="triad", repeat=2)
        assert r["valid"] and list(r["kernels"]) == ["triad"] and r["ranks"] == sub.size
        assert r["samples_s"]["triad"].shape == (6,)
    finally:
        sub.Free()


@pytest.mark.mpi
@pytest.mark.parametrize("kwargs, exc, needle", [
    ({"arraysize": 0}, ValueError, "arraysize must be a positive integer"),
    ({"arraysize": -5}, ValueError, "arraysize"),
    ({"arraysize": 10.5}, TypeError, "arraysize must be an integer"),
    ({"arraysize": 100, "backend": "fortran"}, ValueError, "backend 'fortran'"),
    ({"arraysize": 100, "ntimes": 1}, ValueError, "ntimes must be an integer >= 2"),
    ({"arraysize": 100, "only": "scale"}, ValueError, "only='scale'"),
    ({"arraysize": 100, "dtype": np.int32}, ValueError, "float64 or float32"),
    ({"arraysize": 100, "comm": "world"}, TypeError, "comm must be"),
    ({"arraysize": 2**40}, ValueError, "needs"),
])
def test_wrong_inputs_raise(kwargs, exc, needle):
    n = kwargs.pop("arraysize")
    with pytest.raises(exc, match=needle):
        hpc.stream.run(n, **kwargs)


@pytest.mark.mpi
@pytest.mark.parametrize("backend", ["cupy", "cuda", "kokkos", "stdpar", "numba"])
def test_an_unavailable_backend_says_so(backend):
    need = hpc.stream.api.BACKENDS[backend][1]
    if backends.is_available(need):
        pytest.skip(f"{backend} is available here")
    with pytest.raises(ValueError, match="not available"):
        hpc.stream.run(100, backend=backend, ntimes=2)
