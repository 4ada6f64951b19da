"""Distributed sparse matrices shared by hpc.cg, hpc.spgemm and hpc.pagerank.

- :mod:`.dcsr`: :class:`DistCSR`, 1D row-block CSR with a ghost-exchange SpMV
- :mod:`.mmio`: parallel Matrix Market reader/writer (``read_mm``, ``write_mm``)
- :mod:`.generators`: ``poisson2d``, ``poisson3d``, ``hpcg``, ``parse_problem``
- :mod:`.kernels`: local SpMV back ends (native, numba, numpy, scipy, cupy)
"""
from .dcsr import DistCSR, pdot, pnorm

__all__ = ["DistCSR", "pdot", "pnorm"]
