"""Range checks for numbers: argparse ``type=`` callables and checkers of API arguments.

Every numeric option of every app has a documented, finite range checked here, before any work
starts: NaN, infinities and out-of-range values are usage errors (exit 2 on the command line,
:class:`~hpc.core.errors.UsageError` from the API), and the message states the range::

    p.add_argument("--lr", type=checks.real(0, 10, lo_open=True), default=1e-3)
    p.add_argument("--seed", type=checks.SEED, default=0)
    tol = checks.check_real("tol", tol, 0, 1)
    k = checks.check_int("k", k, 1)

One home for these checks: apps and APIs use them instead of their own helpers, so a range reads
the same in every message.
"""
from __future__ import annotations

import argparse
import math
import numbers
from typing import Any, Callable, Collection, TypeVar

from .errors import InputTypeError, UsageError

__all__ = ["real", "integer", "SEED", "SEED_MAX", "REPEAT_MAX", "check_real", "check_int",
           "check_choice", "describe_real", "describe_int"]

SEED_MAX = 2**63 - 1
"""The largest seed: seeds are 0 <= seed < 2**63, so they fit a signed 64-bit integer."""

REPEAT_MAX = 1_000_000
"""The largest --repeat: more than that is a typo, not a measurement."""

T = TypeVar("T")


def _num(x: float) -> str:
    """A bound as a person writes it: 1, 0.5, 1e-12, 2**63-1 in full."""
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) < 1e16):
        return str(int(x))
    return f"{x:g}"


def describe_real(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
                  hi_open: bool = False) -> str:
    """The range of a real as a message says it: ``a finite number in (0, 1]``, ``... > 0``."""
    if lo is None and hi is None:
        return "a finite number"
    if hi is None:
        return f"a finite number {'>' if lo_open else '>='} {_num(lo)}"
    if lo is None:
        return f"a finite number {'<' if hi_open else '<='} {_num(hi)}"
    return (f"a finite number in {'(' if lo_open else '['}{_num(lo)}, {_num(hi)}"
            f"{')' if hi_open else ']'}")


def describe_int(lo: int | None = None, hi: int | None = None) -> str:
    """The range of an integer as a message says it: ``an integer in [1, 10]``, ``>= 0``."""
    if lo is None and hi is None:
        return "an integer"
    if hi is None:
        return "a positive integer" if lo == 1 else f"an integer >= {lo}"
    if lo is None:
        return f"an integer <= {hi}"
    return f"an integer in [{lo}, {hi}]"


def _real_ok(v: float, lo, hi, lo_open: bool, hi_open: bool) -> bool:
    if not math.isfinite(v):
        return False
    if lo is not None and (v < lo or (lo_open and v == lo)):
        return False
    if hi is not None and (v > hi or (hi_open and v == hi)):
        return False
    return True


def _int_ok(v: int, lo, hi) -> bool:
    return (lo is None or v >= lo) and (hi is None or v <= hi)


# -- argparse types ----------------------------------------------------------------------------
def real(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
         hi_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type=`` for a finite real in [lo, hi] (open ends with ``lo_open`` /
    ``hi_open``; None: unbounded on that side, still finite). NaN, ``inf`` and ``1e400`` are
    refused, with the range in the message."""
    want = describe_real(lo, hi, lo_open=lo_open, hi_open=hi_open)

    def parse(text: str) -> float:
        try:
            v = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}") from None
        if not _real_ok(v, lo, hi, lo_open, hi_open):
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}")
        return v

    parse.__name__ = "real"  # argparse names the type in some messages
    parse.range = want  # type: ignore[attr-defined]  # for help texts and the docs
    parse.bounds = (lo, hi, lo_open, hi_open)  # type: ignore[attr-defined]  # for the tests
    return parse


def integer(lo: int | None = None, hi: int | None = None, *,
            describe: str | None = None) -> Callable[[str], int]:
    """An argparse ``type=`` for a decimal integer in [lo, hi] (None: unbounded on that
    side). ``1e20``, ``2.5`` and ``0x10`` are refused, with the range (or ``describe``) in
    the message."""
    want = describe or describe_int(lo, hi)

    def parse(text: str) -> int:
        s = text.strip() if isinstance(text, str) else text
        try:
            v = int(s, 10)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}") from None
        if not _int_ok(v, lo, hi):
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}")
        return v

    parse.__name__ = "integer"
    parse.range = want  # type: ignore[attr-defined]
    parse.bounds = (lo, hi)  # type: ignore[attr-defined]
    return parse


SEED = integer(0, SEED_MAX, describe="an integer 0 <= seed < 2**63")
"""The argparse type of every app's --seed: any integer 0 <= seed < 2**63."""

REPEAT = integer(1, REPEAT_MAX)
"""The argparse type of every app's --repeat: 1 to REPEAT_MAX timed repetitions."""


# -- API checks -------------------------------------------------------------------------------
def check_real(name: str, value: Any, lo: float | None = None, hi: float | None = None, *,
               lo_open: bool = False, hi_open: bool = False) -> float:
    """``value`` as a finite float in the range (see :func:`real`).

    Raises
    ------
    InputTypeError
        ``value`` is not a real number (a bool, a string, None, a complex...).
    UsageError
        NaN, an infinity, or outside the range; the message names ``name`` and the range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputTypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not _real_ok(v, lo, hi, lo_open, hi_open):
        want = describe_real(lo, hi, lo_open=lo_open, hi_open=hi_open)
        raise UsageError(f"{name} must be {want}, got {value!r}")
    return v


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an int in [lo, hi] (Python or NumPy integers; bools are refused).

    Raises
    ------
    InputTypeError
        ``value`` is not an integer (a float such as ``2.0`` included).
    UsageError
        Outside the range; the message names ``name`` and the range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if not _int_ok(v, lo, hi):
        raise UsageError(f"{name} must be {describe_int(lo, hi)}, got {v}")
    return v


def check_choice(name: str, value: T, choices: Collection[T]) -> T:
    """``value`` if it is one of ``choices``.

    Raises
    ------
    InputTypeError
        ``value`` is not of the choices' type (for string choices: not a string).
    UsageError
        Not one of them; the message lists them.
    """
    listed = ", ".join(str(c) for c in choices)
    kinds = {type(c) for c in choices}
    if len(kinds) == 1 and not isinstance(value, next(iter(kinds))):
        raise InputTypeError(f"{name} must be one of {listed}; got {type(value).__name__}")
    try:
        ok = value in choices
    except TypeError:  # an unhashable value against a set
        ok = False
    if not ok:
        raise UsageError(f"{name} must be one of {listed}, got {value!r}")
    return value
