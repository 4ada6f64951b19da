"""SpGEMM: SMASH-style hash sparse matrix-matrix products, native and distributed.

The public API is :func:`multiply` (:mod:`hpc.spgemm.api`): SciPy in, SciPy CSR out on every
rank; :class:`hpc.sparse.DistCSR` in, ``DistCSR`` out. ``python -m hpc.spgemm`` is the command
line (app.py); local.py holds the one-rank back ends (``BACKENDS``), dist.py the 1D and 2D
(Sparse SUMMA) distributed products.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from hpc.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "Product": ".api",
    "multiply": ".api",
    "Plan": ".api",
    "symbolic": ".api",
    "ptap": ".ptap",
    "count_triangles": ".triangles",
})
__all__ = ["multiply", "symbolic", "Plan", "Product", "ptap", "count_triangles"]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ resolves these
    from .api import Plan, Product, multiply, symbolic
    from .ptap import ptap
    from .triangles import count_triangles
