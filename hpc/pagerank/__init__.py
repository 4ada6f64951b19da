"""hpc.pagerank: distributed PageRank and PowerWalk personalized PageRank.

The Python API (works in a plain ``python`` process and unchanged under ``mpiexec -n N``):

- :func:`pagerank` -- global PageRank with ``networkx.pagerank``'s semantics and stopping rule;
- :func:`personalized` -- PowerWalk personalized PageRank of a batch of sources (top-k);
- :class:`PPRIndex` -- PowerWalk's fingerprint index (``build``, ``save``, ``load``).

The command line, ``python -m hpc.pagerank``, is a thin layer over it (``app.py``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from hpc.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "PowerIterationFailedConvergence": ".api",
    "PPRIndex": ".api",
    "TopK": ".api",
    "pagerank": ".api",
    "personalized": ".api",
})
__all__ = ["pagerank", "personalized", "PPRIndex", "TopK", "PowerIterationFailedConvergence"]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ resolves these
    from .api import PowerIterationFailedConvergence, PPRIndex, TopK, pagerank, personalized
