"""hpc.stream: BabelStream's six kernels with one interface and many back ends, MPI-parallel.

The API is :func:`run` (``hpc.stream.run(arraysize, backend="native", ntimes=100,
comm=None)`` returns each kernel's best/average/worst time and bandwidth and the validation
verdict); ``python -m hpc.stream`` is the command line over it (:mod:`.app`); one back end
per module in :mod:`.models`.
"""
from .api import run

__all__ = ["run"]
