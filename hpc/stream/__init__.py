"""hpc.stream: BabelStream's six kernels with one interface and many back ends, MPI-parallel.

The API is :func:`run` (``hpc.stream.run(arraysize, backend="native", ntimes=100,
comm=None)`` returns each kernel's best/average/worst time and bandwidth and the validation
verdict); ``python -m hpc.stream`` is the command line over it (:mod:`.app`); one back end
per module in :mod:`.models`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from hpc.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {"run": ".api"})
__all__ = ["run"]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ resolves these
    from .api import run
