"""hpc.stream as the suite, the scaling tools and the job generator see it (hpc.core.spec)."""
from __future__ import annotations

from typing import Sequence

from hpc.core.spec import Metric, StudyError, SuiteRow, WorkloadSpec
from hpc.scaling import argv as A
from hpc.scaling.rules import BandwidthModel, factor, num, opt


def weak(argv: Sequence[str], p: int, p0: int) -> list[str]:
    """--arraysize is already per rank: unchanged."""
    factor(p, p0)
    return list(argv)


def strong(argv: Sequence[str], p: int, p0: int) -> list[str]:
    """--arraysize is per rank: divided by p/p0 so the global array length stays fixed."""
    f = factor(p, p0)
    n = int((A.find(argv, "--arraysize") or A.find(argv, "-s") or [str(2**25)])[0])
    if n % f:
        raise StudyError(f"strong scaling hpc.stream divides --arraysize {n} by ranks/{p0} = "
                         f"{f}: pick a size divisible by every ratio")
    return A.replace(A.remove(argv, "-s"), "--arraysize", str(n // f))


def triad_bytes(run: dict) -> float:
    """Bytes one run's Triad moved over all ranks: three arrays per rank."""
    m = (run.get("record") or {}).get("metrics") or {}
    per_rank = num(m, "bytes_per_array_per_rank")
    if per_rank is None:
        per_rank = 8.0 * int((opt(run, "--arraysize") or ["0"])[0])
    return 3 * per_rank * run["ranks"]


def _row(backend: str, size: str) -> SuiteRow:
    return SuiteRow(f"stream/{backend}", ("--backend", backend, "-s", size, "-n", "10"),
                    backend=backend)


SPEC = WorkloadSpec(
    name="stream",
    description="BabelStream's six kernels across back ends (memory bandwidth)",
    order=10,
    suite=tuple(_row(b, "1048576") for b in ("numpy", "numba", "native", "stdpar", "kokkos"))
    + tuple(_row(b, "16777216") for b in ("cupy", "cuda")),
    headline=Metric("triad_GBps", "triad GB/s"),
    study_args=("--arraysize", "200000", "--numtimes", "10"),
    time_sources=("timings.triad", "metrics.time_s"),
    weak=weak,
    strong=strong,
    # Triad: 2 flops per 24 bytes, so it stays on the roofline's memory-bound slope.
    model=BandwidthModel("stream", triad_bytes, flops_per_byte=2 / 24, kernel="triad",
                         label="triad time (s)"),
    gpu_args=("--backend", "cuda"),
    job_args=("--arraysize", "33554432", "--numtimes", "100"),
)
