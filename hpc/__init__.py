"""hpc: an MPI-parallel HPC application suite.

Each workload is a Python API first (``import hpc; hpc.cg.solve(A, b)``: the sub-packages
load on first use) and a command line over it, ``mpiexec -n N python -m hpc.<app>``;
``hpc.sparse`` holds the distributed sparse matrix, ``hpc.core`` the shared SPMD runtime
(launching, command line, result record, timers, errors, partitions, back ends). The ``hpc``
command lists the workloads and runs the suite, scaling and job tools.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any

__version__ = "0.1.0"


def _workloads() -> dict[str, str]:
    """name -> one-line description of every workload, in the suite's order, read from the
    workloads' specs (``hpc/<name>/spec.py``, :mod:`hpc.core.spec`): nothing else lists them."""
    from hpc.core.spec import all_specs

    return {s.name: s.description for s in all_specs()}


def __getattr__(name: str) -> Any:
    # WORKLOADS and the sub-packages resolve on first use (PEP 562): ``import hpc`` stays free.
    if name == "WORKLOADS":
        return _workloads()
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    import pkgutil

    return sorted(set(globals()) | {"WORKLOADS"}
                  | {m.name for m in pkgutil.iter_modules(__path__) if m.ispkg})
