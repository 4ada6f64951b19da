"""hpc.pagerank: distributed PageRank and PowerWalk personalized PageRank.

The Python API (works in a plain ``python`` process and unchanged under ``mpiexec -n N``):

- :func:`pagerank` -- global PageRank with ``networkx.pagerank``'s semantics and stopping rule;
- :func:`personalized` -- PowerWalk personalized PageRank of a batch of sources (top-k);
- :class:`PPRIndex` -- PowerWalk's fingerprint index (``build``, ``save``, ``load``).

The command line, ``python -m hpc.pagerank``, is a thin layer over it (``app.py``).
"""
from .api import PowerIterationFailedConvergence, PPRIndex, TopK, pagerank, personalized

__all__ = ["pagerank", "personalized", "PPRIndex", "TopK", "PowerIterationFailedConvergence"]
