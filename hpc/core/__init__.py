"""The shared SPMD runtime: one home for what every app needs.

- :mod:`.runtime`: ``run(main)`` (errors to exit codes, exceptions to MPI Abort), ``collective``
- :mod:`.cli`: the contract's common options
- :mod:`.app`: the per-run context, result record and VALID/INVALID verdict
- :mod:`.timers`, :mod:`.partition`, :mod:`.backends`, :mod:`.envinfo`, :mod:`.memory`,
  :mod:`.h5io`, :mod:`.atomic`
"""
from .app import App
from .cli import make_parser, nonneg_int, positive_float, positive_int
from .errors import EXIT_INVALID, EXIT_OK, EXIT_USAGE, UsageError
from .runtime import agree, collective, run, world

__all__ = ["App", "make_parser", "positive_int", "nonneg_int", "positive_float", "UsageError",
           "EXIT_OK", "EXIT_INVALID", "EXIT_USAGE", "run", "collective", "agree", "world"]
