"""What produced a result: the record's ``provenance`` block.

Everything a reader needs to say exactly what ran where: UTC start and end, the command line,
every host (name, CPU model, sockets/cores/threads, memory, the ranks placed there), the build
of the native extensions (compiler, flags, back ends, CUDA architectures: recorded at build
time, :func:`build_info`), the package version and git commit, the BLAS and OpenMP pools
(threadpoolctl), the SLURM allocation and the environment variables that change results.

:func:`capture` is collective (one gather of the host facts); the rest is local and cheap
(the git and host facts are cached for the life of the process).
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from .. import __version__

#: the version of the record layout (record.schema.json); bump on an incompatible change
SCHEMA_VERSION = "2.0"

#: environment variables that change results or speed, recorded when set
ENV_PATTERNS = (r"OMP_.*", r"MPIR_CVAR_.*", r"HPC_.*", r"CUDA_VISIBLE_DEVICES",
                r"(OPENBLAS|MKL|NUMBA|BLIS|VECLIB_MAXIMUM)_NUM_THREADS", r"KOKKOS_.*",
                r"I_MPI_.*", r"OMPI_MCA_.*", r"UCX_.*", r"FI_PROVIDER")
SLURM_VARS = ("SLURM_JOB_ID", "SLURM_JOB_NAME", "SLURM_JOB_NODELIST", "SLURM_JOB_NUM_NODES",
              "SLURM_NTASKS", "SLURM_TASKS_PER_NODE", "SLURM_CPUS_PER_TASK",
              "SLURM_JOB_PARTITION", "SLURM_CLUSTER_NAME", "SLURM_STEP_ID")


def utc_now() -> str:
    """The current time, ISO 8601 in UTC with a Z (``2026-12-05T12:44:57.123Z``)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def command_line(argv: list[str] | None = None) -> str:
    """This process's command line as a shell would need it quoted."""
    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith("__main__.py"):  # python -m pkg: name the module, not the file
        mod = sys.modules.get("__main__")
        spec = getattr(mod, "__spec__", None)
        if spec is not None and spec.name:
            name = spec.name.removesuffix(".__main__")
            argv = [Path(sys.executable).name, "-m", name] + argv[1:]
    return " ".join(shlex.quote(a) for a in argv)


def environment() -> dict[str, str]:
    """The set environment variables that change results (:data:`ENV_PATTERNS`), sorted."""
    pat = re.compile("|".join(f"(?:{p})" for p in ENV_PATTERNS) + r"\Z")
    return {k: os.environ[k] for k in sorted(os.environ) if pat.match(k)}


def slurm() -> dict[str, str] | None:
    """The SLURM job id, nodes and task layout, or None outside SLURM."""
    if "SLURM_JOB_ID" not in os.environ:
        return None
    return {k.removeprefix("SLURM_").lower(): os.environ[k] for k in SLURM_VARS
            if k in os.environ}


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


@lru_cache(maxsize=None)
def host_info() -> dict[str, Any]:
    """This host's name, CPU model, sockets, cores, hardware threads and memory (Linux
    /proc; fields that cannot be read are None)."""
    import platform

    from mpi4py import MPI

    cpuinfo = _read("/proc/cpuinfo")
    model = None
    sockets, cores = set(), set()
    phys = None
    for line in cpuinfo.splitlines():
        key, _, val = line.partition(":")
        key, val = key.strip(), val.strip()
        if key == "model name" and model is None:
            model = val
        elif key == "physical id":
            phys = val
            sockets.add(val)
        elif key == "core id":
            cores.add((phys, val))
    if model is None:
        model = platform.processor() or platform.machine() or None
    mem = None
    m = re.search(r"^MemTotal:\s+(\d+) kB", _read("/proc/meminfo"), re.M)
    if m:
        mem = int(m.group(1)) * 1024
    threads = os.cpu_count()
    return {
        "name": MPI.Get_processor_name(),
        "cpu_model": model,
        "sockets": len(sockets) or None,
        "cores": len(cores) or None,
        "threads": threads,
        "memory_bytes": mem,
        "os": f"{platform.system()} {platform.release()}",
    }


def hosts(comm, root_extra: Any = None) -> tuple[list[dict[str, Any]], Any]:
    """Every host of the job with the ranks placed there, in order of first rank, and
    ``root_extra`` as rank 0 gave it (collective: one allgather; the result is complete on
    every rank)."""
    rank = comm.Get_rank()
    facts = comm.allgather((rank, host_info(), root_extra if rank == 0 else None))
    out: dict[str, dict[str, Any]] = {}
    for r, info, _ in facts:
        h = out.setdefault(info["name"], {**info, "ranks": []})
        h["ranks"].append(r)
    return list(out.values()), facts[0][2]


@lru_cache(maxsize=None)
def git_info() -> dict[str, Any] | None:
    """The commit and dirtiness of the checkout the package runs from, or None when it is not
    a git checkout (an installed wheel) or git is missing."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        run = lambda *a: subprocess.run(["git", "-C", str(root), *a], capture_output=True,  # noqa: E731
                                        text=True, timeout=10, check=True).stdout.strip()
        commit = run("rev-parse", "HEAD")
        dirty = bool(run("status", "--porcelain", "--untracked-files=no"))
        branch = run("rev-parse", "--abbrev-ref", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty, "branch": branch}


def package() -> dict[str, Any]:
    """The package version, its location, and the git commit when run from a checkout."""
    return {"name": "hpc", "version": __version__,
            "path": str(Path(__file__).resolve().parents[1]), "git": git_info()}


def build_info() -> dict[str, Any] | None:
    """How the native extensions were built (recorded into ``hpc._core`` at build time):
    compiler and version, flags, build type, extensions and back ends built, CUDA
    architectures. None when ``hpc._core`` is not built."""
    try:
        from hpc import _core
    except ImportError:
        return None
    get = getattr(_core, "build_info", None)
    if get is None:  # an extension built before build_info existed
        return {"compiler": None, "note": "hpc._core predates build_info (rebuild)"}
    info = dict(get())
    exts = {}
    for name in ("_core", "_cuda", "_kokkos"):
        try:
            __import__(f"hpc.{name}")
            exts[name] = True
        except ImportError:
            exts[name] = False
    info["extensions_importable"] = exts
    return info


def thread_pools() -> list[dict[str, Any]]:
    """The BLAS and OpenMP libraries loaded in this process and their thread counts."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("user_api", "internal_api", "prefix", "version", "num_threads", "threading_layer",
            "architecture", "filepath")
    return [{k: _plain(p.get(k)) for k in keep if k in p} for p in threadpool_info()]


def _plain(v: Any) -> Any:
    """A JSON value from a thread-pool field: SciPy's fast_matrix_market controller reports its
    version as a function (``_fmm_version``), which would make the record unwritable."""
    if callable(v):
        try:
            v = v()
        except Exception:  # noqa: BLE001 - a third party's getter; the record keeps its name
            return getattr(v, "__qualname__", str(v))
    return v if isinstance(v, (str, int, float, bool, type(None))) else str(v)


def capture(comm, started: str, finished: str | None = None,
            argv: list[str] | None = None) -> dict[str, Any]:
    """The record's ``provenance`` block (collective over ``comm``).

    Parameters
    ----------
    comm : mpi4py communicator
        The run's communicator (its hosts and rank placement are recorded).
    started, finished : str
        UTC ISO 8601 times (:func:`utc_now`); ``finished`` defaults to now.
    argv : list of str, optional
        The command line (default ``sys.argv``).
    """
    from mpi4py import MPI

    # git runs on rank 0 only (thousands of ranks must not each start it on a shared file
    # system); the other facts are cheap and local
    placed, pkg = hosts(comm, package() if comm.Get_rank() == 0 else None)
    return {
        "started_utc": started,
        "finished_utc": finished or utc_now(),
        "command": command_line(argv),
        "world_size": MPI.COMM_WORLD.Get_size(),
        "hosts": placed,
        "package": pkg,
        "build": build_info(),
        "thread_pools": thread_pools(),
        "slurm": slurm(),
        "environment": environment(),
    }


def schema() -> dict[str, Any]:
    """The JSON Schema of the result record (``hpc/core/record.schema.json``, package data)."""
    import json
    from importlib.resources import files

    return json.loads(files("hpc.core").joinpath("record.schema.json").read_text())


def validate_record(record: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``record`` matches :func:`schema` (needs
    the ``jsonschema`` package: ``pip install jsonschema``)."""
    import jsonschema

    jsonschema.Draft202012Validator(schema()).validate(record)
