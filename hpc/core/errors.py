"""Exit codes and the user-error exception of the suite's contract (../shared/CONTRACT.md)."""
from __future__ import annotations

EXIT_OK = 0        # ran and validated
EXIT_INVALID = 1   # ran, validation failed
EXIT_USAGE = 2     # bad usage or bad input


class UsageError(ValueError):
    """Bad option or input (a ``ValueError`` to API callers): every rank exits 2 and rank 0 prints one ``error:`` line.

    Raise it on every rank (arguments are parsed everywhere), or raise it on some ranks inside
    :func:`hpc.core.runtime.collective` so the others learn of it; a UsageError that only
    some ranks see outside such a block still ends the job (with MPI Abort) after a short wait.
    """


class InputTypeError(UsageError, TypeError):
    """An input of the wrong type given to a public API function: a ``TypeError`` to API
    callers, exit 2 with one ``error:`` line on the command line, like :class:`UsageError`."""
