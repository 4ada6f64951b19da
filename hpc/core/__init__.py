"""The shared SPMD runtime: one home for what every app needs.

- :mod:`.runtime`: ``run(main)`` (errors to exit codes, exceptions to MPI Abort), ``collective``
- :mod:`.cli`: the contract's common options and the one subcommand dispatcher
- :mod:`.app`: the per-run context, result record and VALID/INVALID verdict
- :mod:`.launch`: finding ``mpiexec`` and MPICH's progress settings (``python -m hpc.core.launch``)
- :mod:`.errors`: exit codes, ``UsageError`` (a ``ValueError``) and ``InputTypeError``
- :mod:`.timers`, :mod:`.partition`, :mod:`.backends`, :mod:`.envinfo`, :mod:`.memory`,
  :mod:`.h5io`, :mod:`.atomic`
- :mod:`.provenance`: the record's provenance block and its JSON Schema
  (``record.schema.json``); :mod:`.progress`: rank-0 progress lines at a bounded rate;
  :mod:`.fileio`: compressed inputs (``open_input``)

The names below are resolved on first use (PEP 562), so importing one submodule (for example
:mod:`.launch`, which starts MPI jobs and must not initialise MPI itself) does not import the
others, nor mpi4py and NumPy.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports

# name -> the submodule that defines it
__getattr__, __dir__ = lazy_exports(__name__, {
    "App": ".app",
    "make_parser": ".cli", "positive_int": ".cli", "nonneg_int": ".cli", "positive_float": ".cli",
    "UsageError": ".errors", "InputTypeError": ".errors",
    "EXIT_OK": ".errors", "EXIT_INVALID": ".errors", "EXIT_USAGE": ".errors",
    "run": ".runtime", "collective": ".runtime", "agree": ".runtime", "world": ".runtime",
})
__all__ = ["App", "make_parser", "positive_int", "nonneg_int", "positive_float", "UsageError",
           "InputTypeError", "EXIT_OK", "EXIT_INVALID", "EXIT_USAGE", "run", "collective",
           "agree", "world"]


if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ resolves these
    from .app import App
    from .cli import make_parser, nonneg_int, positive_float, positive_int
    from .errors import EXIT_INVALID, EXIT_OK, EXIT_USAGE, InputTypeError, UsageError
    from .runtime import agree, collective, run, world
