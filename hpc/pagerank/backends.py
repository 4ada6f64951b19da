"""PageRank's local kernels per back end: the pattern SpMV (all edge values are 1) and the
update x_new = d*y + base that also returns the L1 change and the new dangling mass.

Every back end is one module of this package with a class ``Kernels`` giving the same
interface:

- ``local(csr)`` -> an object with ``spmv(x, y, accumulate=False)`` for one local block;
- ``update(y, x, xs, inv_deg, d, base) -> (l1_change, dangling_mass)``; sets x = x_new and
  xs = x_new * inv_deg (what the neighbours pull), inv_deg = 0 marking a dangling vertex;
- ``xp`` (numpy or cupy), ``asarray`` (host -> back end), ``host`` (back end -> host);
- ``sparse_kernel``: the name of the hpc.sparse kernel DistCSR uses for this back end.

A new back end is one module and one line in :data:`BACKENDS`.
"""
from __future__ import annotations

import importlib

from hpc.core.errors import UsageError

#: back end name -> (module of this package, the hpc.core.backends entry it needs)
BACKENDS: dict[str, tuple[str, str]] = {
    "native": ("native", "native"),
    "numba": ("numba_", "numba"),
    "numpy": ("numpy_", "numpy"),
    "cupy": ("cupy_", "cupy"),
}


def make(name: str):
    """The kernels of back end ``name`` (availability checked by the caller)."""
    if name not in BACKENDS:
        raise UsageError(f"unknown PageRank back end {name!r} (one of {', '.join(BACKENDS)})")
    return importlib.import_module(f"{__package__}.{BACKENDS[name][0]}").Kernels()
