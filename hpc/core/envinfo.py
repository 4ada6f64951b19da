"""Environment capture for the result record: MPI library, CUDA awareness, threads, hosts, GPU."""
from __future__ import annotations

import ctypes
import os
import platform
import sys

import mpi4py
import numpy as np
from mpi4py import MPI

from .backends import _gpu_count
from .exchange import node_comm


def mpi_library() -> str:
    return MPI.Get_library_version().strip().splitlines()[0].strip()


def _libmpi_path() -> str | None:
    """The MPI library this process actually loaded (from /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "libmpi" in os.path.basename(path) and ".so" in path:
                    return path
    except OSError:
        pass
    return None


def cuda_aware() -> bool:
    """Whether MPI can take device pointers: HPC_CUDA_AWARE overrides, else ask the library."""
    env = os.environ.get("HPC_CUDA_AWARE")
    if env is not None:
        return env.strip().lower() in ("1", "true", "yes", "on")
    path = _libmpi_path()
    if path is None:
        return False
    try:
        lib = ctypes.CDLL(path)
        query = lib.MPIX_Query_cuda_support
    except (OSError, AttributeError):
        return False
    query.restype = ctypes.c_int
    try:
        return bool(query())
    except Exception:  # noqa: BLE001
        return False


def gpu_name() -> str | None:
    n, _ = _gpu_count()
    if not n:
        return None
    try:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        return props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    except Exception:  # noqa: BLE001
        return f"{n} CUDA device(s)"


def _affinity() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:
        return set(range(os.cpu_count() or 1))


def cores_on_host(comm=None) -> int:
    """Cores the ranks on this host may use: the union of their affinity masks (collective
    when comm is given), so a launcher binding each rank to one core is not mistaken for a
    one-core host."""
    if comm is None or comm.Get_size() == 1:
        return len(_affinity())
    union = set().union(*node_comm(comm).allgather(_affinity()))
    return len(union)


def ranks_on_host(comm) -> int:
    return node_comm(comm).Get_size()


def default_threads(comm) -> int:
    """OMP_NUM_THREADS if set, else this host's cores shared evenly by its ranks."""
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0]
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, cores_on_host(comm) // ranks_on_host(comm))


def capture(comm, threads: int) -> dict:
    """The record's ``env`` block (collective: counts distinct hosts)."""
    hosts = len(set(comm.allgather(MPI.Get_processor_name())))
    cores = cores_on_host(comm)
    return {
        "mpi": mpi_library(),
        "mpi4py": mpi4py.__version__,
        "cuda_aware": cuda_aware(),
        "threads": threads,
        "hosts": hosts,
        "cores_per_host": cores,
        "oversubscribed": comm.Get_size() * threads > cores * hosts,
        "gpu": gpu_name(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": sys.platform,
    }
