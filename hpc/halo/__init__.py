"""hpc.halo: 3D halo exchange with TEMPI-style canonical datatypes, fast packers and a model.

The public API is :class:`HaloExchange` (build it from a Cartesian communicator, the local
block shape, the radius, the quantities and the method; then ``exchange(field)``, or the split
``start(field)`` / ``wait()``), with :func:`decompose` / :class:`Decomposition` (the suite's
one block decomposition, :mod:`hpc.core.decomp`) to make the Cartesian communicator and the
blocks::

    from hpc.halo import HaloExchange, decompose

    dec = decompose(None, (64, 64, 64))                  # MPI.COMM_WORLD, periodic
    with HaloExchange(dec.cart, dec.local_shape, radius=1, quantities=2) as halo:
        u = halo.allocate()
        halo.interior(u)[...] = ...                      # this rank's cells
        halo.exchange(u)                                 # every ghost cell filled

Modules:

- :mod:`.engine`: the exchange engine (``HaloExchange``)
- :mod:`.canonical`: MPI derived datatype -> canonical strided block (or a list of them)
- :mod:`.datatype`: ``fast(dt)``, the suite's packer for any mpi4py program's datatypes
- :mod:`.stencil`: 7/27-point sweeps with the exchange overlapped by the interior update
- :mod:`.packers`: CPU packers (native C++/OpenMP, Numba, NumPy); :mod:`.gpu`: CUDA packers
- :mod:`.model`: the measured send model behind ``method="auto"``
- :mod:`.bench`, :mod:`.app`: ``python -m hpc.halo`` (and ``python -m hpc.halo measure``)
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from hpc.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "HaloExchange": ".engine", "Decomposition": "hpc.core.decomp", "decompose": "hpc.core.decomp",
})
__all__ = ["HaloExchange", "Decomposition", "decompose"]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ resolves these
    from hpc.core.decomp import Decomposition, decompose

    from .engine import HaloExchange
