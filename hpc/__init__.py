"""hpc: an MPI-parallel HPC application suite.

Each workload is a Python API first (``import hpc; hpc.cg.solve(A, b)``: the sub-packages
load on first use) and a command line over it, ``mpiexec -n N python -m hpc.<app>``;
``hpc.sparse`` holds the distributed sparse matrix, ``hpc.core`` the shared SPMD runtime
(launching, command line, result record, timers, errors, partitions, back ends). The ``hpc``
command lists the workloads and runs the suite, scaling and job tools.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Workloads in the order the suite runs them; a missing one is reported, not fatal.
WORKLOADS: dict[str, str] = {
    "stream": "BabelStream's six kernels across back ends (memory bandwidth)",
    "halo": "3D halo exchange with TEMPI-style canonical datatypes and packers",
    "pagerank": "distributed PageRank and PowerWalk personalized PageRank",
    "kmedoids": "PAM, FastPAM1/2, FasterPAM, CLARA, CLARANS, distributed",
    "spgemm": "SMASH-style hash SpGEMM, 1D and 2D distributed",
    "cg": "CG, PCG, single-reduction and pipelined CG, DCDM",
    "train": "Megatron-style tensor x pipeline x data parallel GPT training",
}

# Sub-packages reachable as attributes of ``hpc`` without importing them first (PEP 562).
_SUBPACKAGES = frozenset(WORKLOADS) | {"core", "sparse"}


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBPACKAGES)
