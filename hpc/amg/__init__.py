"""Algebraic multigrid on the suite's SpGEMM: smoothed aggregation over hpc.sparse.DistCSR.

:class:`SmoothedAggregation` builds the hierarchy (strength, aggregation, smoothed
prolongation, Galerkin coarse operators by :func:`hpc.spgemm.ptap`) once and applies a V-cycle;
``python -m hpc.cg --method pcg --pc amg`` uses it as the CG preconditioner (sa.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from hpc.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "SmoothedAggregation": ".sa",
    "aggregate": ".sa",
})
__all__ = ["SmoothedAggregation", "aggregate"]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ resolves these
    from .sa import SmoothedAggregation, aggregate
