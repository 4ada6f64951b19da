"""Reading and rewriting options in an app's argument list (``--opt v`` or ``--opt=v``).

The study runner forwards the app's own options verbatim; weak scaling and job layouts change a
few of them per rank count, and this module is the one place that knows how.
"""
from __future__ import annotations

from typing import Sequence


def find(argv: Sequence[str], name: str, nargs: int = 1) -> list[str] | None:
    """The values of the last ``name`` option in argv, or None when it is absent."""
    found: list[str] | None = None
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == name:
            vals = list(argv[i + 1:i + 1 + nargs])
            if len(vals) < nargs:
                raise ValueError(f"option {name} needs {nargs} value(s)")
            found = vals
            i += 1 + nargs
            continue
        if nargs == 1 and tok.startswith(name + "="):
            found = [tok[len(name) + 1:]]
        i += 1
    return found


def remove(argv: Sequence[str], name: str, nargs: int = 1) -> list[str]:
    """argv without any ``name`` option (and its values)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == name:
            i += 1 + nargs
            continue
        if nargs == 1 and tok.startswith(name + "="):
            i += 1
            continue
        out.append(tok)
        i += 1
    return out


def replace(argv: Sequence[str], name: str, values: Sequence[str] | str) -> list[str]:
    """argv with ``name`` set to values (appended when absent, replaced in place otherwise)."""
    vals = [values] if isinstance(values, str) else [str(v) for v in values]
    out: list[str] = []
    done = False
    i = 0
    n = len(vals)
    while i < len(argv):
        tok = argv[i]
        if tok == name or (n == 1 and tok.startswith(name + "=")):
            if not done:
                out += [name, *vals]
                done = True
            i += 1 + (n if tok == name else 0)
            continue
        out.append(tok)
        i += 1
    if not done:
        out += [name, *vals]
    return out
