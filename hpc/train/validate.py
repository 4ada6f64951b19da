"""Argument checks of the hpc.train API, and how their messages name an argument: as the
Python API spells it (``heads``) or, inside :func:`cli_names` (what ``python -m hpc.train``
runs under), as the command line spells it (``--heads``).

Every check of hpc.train lives once, in the API; this is what lets one message read right to
a script (``heads 3 is not divisible by tp 2``) and to a shell user (``--heads 3 is not
divisible by --tp 2``).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

import numpy as np

from hpc.core.errors import InputTypeError, UsageError

_CLI: ContextVar[bool] = ContextVar("hpc_train_cli_names", default=False)


def arg(name: str) -> str:
    """``name`` as the caller spells it: ``seq_len`` in the API, ``--seq-len`` on the CLI."""
    return "--" + name.replace("_", "-") if _CLI.get() else name


@contextmanager
def cli_names() -> Iterator[None]:
    """Within the block, error messages name command-line options instead of arguments."""
    token = _CLI.set(True)
    try:
        yield
    finally:
        _CLI.reset(token)


def integer(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int of at least ``minimum``; InputTypeError for a non-integer (bool
    included), UsageError for one too small."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputTypeError(f"{arg(name)} must be an integer, got {type(value).__name__}")
    if value < minimum:
        what = "positive" if minimum == 1 else f"at least {minimum}"
        raise UsageError(f"{arg(name)} must be {what}, got {value}")
    return int(value)


def real(value: Any, name: str, minimum: float = 0.0, strict: bool = False) -> float:
    """``value`` as a finite float >= ``minimum`` (> with ``strict``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputTypeError(f"{arg(name)} must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v) or v < minimum or (strict and v == minimum):
        bound = "" if minimum == -math.inf else f" {'>' if strict else '>='} {minimum:g}"
        raise UsageError(f"{arg(name)} must be a finite number{bound}, got {value}")
    return v


def flag(value: Any, name: str) -> bool:
    """``value`` as a bool (True/False or a NumPy bool only)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputTypeError(f"{arg(name)} must be True or False, got {type(value).__name__}")
    return bool(value)


def choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """``value`` as one of the strings ``choices``."""
    if not isinstance(value, str):
        raise InputTypeError(f"{arg(name)} must be a string, one of {', '.join(choices)}; "
                             f"got {type(value).__name__}")
    if value not in choices:
        raise UsageError(f"{arg(name)} must be one of {', '.join(choices)}, got {value!r}")
    return value
