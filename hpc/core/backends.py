"""The back-end registry: which kernel implementations exist here, and why not when absent.

Every app asks ``require(name, allowed)``; an unavailable back end is a clear usage error,
never a silent fallback.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from .errors import UsageError


@dataclass(frozen=True)
class Backend:
    name: str
    description: str
    probe: Callable[[], str | None]  # None when available, else the reason it is not


def _import(mod: str) -> str | None:
    try:
        importlib.import_module(mod)
    except Exception as exc:  # noqa: BLE001 - any import failure means unavailable
        return f"cannot import {mod}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    return None


def _numba() -> str | None:
    return _import("numba")


def _native() -> str | None:
    why = _import("hpc._core")
    return why and why + " (build it: make build)"


def _stdpar() -> str | None:
    why = _native()
    if why:
        return why
    from hpc import _core

    return None if _core.has_stdpar else "built without TBB (install libtbb-dev, rebuild)"


def _kokkos() -> str | None:
    return _import("hpc._kokkos") and "built without Kokkos (set Kokkos_ROOT, rebuild)"


def _gpu_count() -> tuple[int, str]:
    if os.environ.get("HPC_NO_GPU"):
        return 0, "HPC_NO_GPU is set"
    try:
        from hpc import _cuda
    except Exception:  # noqa: BLE001
        _cuda = None
    if _cuda is not None:
        n = _cuda.device_count()
        return n, "no CUDA device found" if n == 0 else ""
    try:
        import cupy

        n = cupy.cuda.runtime.getDeviceCount()
        return n, "no CUDA device found" if n == 0 else ""
    except Exception as exc:  # noqa: BLE001
        return 0, f"no CUDA runtime ({str(exc).splitlines()[0] if str(exc) else 'unavailable'})"


def _cupy() -> str | None:
    why = _import("cupy")
    if why:
        return why + " (pip install .[gpu])"
    n, why = _gpu_count()
    return None if n else why


def _cuda() -> str | None:
    why = _import("hpc._cuda")
    if why:
        return "built without CUDA (no nvcc found at build time)"
    n, why = _gpu_count()
    return None if n else why


def _petsc() -> str | None:
    return _import("petsc4py") and "petsc4py not installed (pip install .[petsc])"


REGISTRY: dict[str, Backend] = {}


def register(name: str, description: str, probe: Callable[[], str | None]) -> None:
    """Add a back end; apps that know it can then ask for it by name."""
    REGISTRY[name] = Backend(name, description, probe)


register("numpy", "NumPy array operations", lambda: None)
register("numba", "Numba JIT, parallel loops", _numba)
register("native", "C++17 with OpenMP (hpc._core)", _native)
register("stdpar", "C++17 parallel algorithms on TBB (hpc._core)", _stdpar)
register("kokkos", "Kokkos (hpc._kokkos)", _kokkos)
register("cupy", "CuPy on a CUDA GPU", _cupy)
register("cuda", "native CUDA kernels (hpc._cuda)", _cuda)
register("scipy", "SciPy reference implementation", lambda: _import("scipy"))
register("petsc", "PETSc through petsc4py", _petsc)


@lru_cache(maxsize=None)
def why_unavailable(name: str) -> str | None:
    """None if the back end can run here, else a one-line reason."""
    if name not in REGISTRY:
        return f"unknown back end '{name}'"
    return REGISTRY[name].probe()


def is_available(name: str) -> bool:
    return why_unavailable(name) is None


def require(name: str, allowed: list[str] | tuple[str, ...] | None = None) -> str:
    """Return name if it may run here; otherwise raise UsageError naming the reason."""
    if allowed is not None and name not in allowed:
        raise UsageError(f"--backend {name}: this app supports {', '.join(allowed)}")
    why = why_unavailable(name)
    if why:
        raise UsageError(f"--backend {name} is not available here: {why}")
    return name


def available(names: list[str] | None = None) -> list[str]:
    return [n for n in (names or list(REGISTRY)) if is_available(n)]


_POOL_LIMITS = None  # the threadpoolctl limiter of the last set_threads (kept alive)


def set_threads(n: int) -> None:
    """Use n threads per rank in every threaded back end: OpenMP (native and the BLAS/OpenMP
    pools NumPy and SciPy loaded, through threadpoolctl), Numba, and the BLAS libraries loaded
    later (their ``*_NUM_THREADS`` variables)."""
    import sys

    global _POOL_LIMITS
    os.environ["OMP_NUM_THREADS"] = str(n)
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        os.environ[var] = str(n)  # libraries not loaded yet (SciPy's BLAS) read these
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a declared dependency; without it only the variables above apply
        pass
    else:
        _POOL_LIMITS = threadpool_limits(limits=n)  # every pool loaded now, BLAS and OpenMP
    if "hpc._core" in sys.modules or not _native():
        from hpc import _core

        _core.omp_set_threads(n)
        if _core.has_stdpar:
            _core.stream_stdpar.set_threads(n)
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    else:  # fixes the pool size before numba starts, without paying its import here
        os.environ["NUMBA_NUM_THREADS"] = str(n)
