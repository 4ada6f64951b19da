"""The contract's command line: the options every app accepts, and errors that exit 2.

``make_parser`` returns an argparse parser whose errors raise UsageError (one line, exit 2)
and whose --help prints on rank 0 only.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

from mpi4py import MPI

from .errors import UsageError


def _rank() -> int:
    return MPI.COMM_WORLD.Get_rank()


class AppParser(argparse.ArgumentParser):
    """argparse with the suite's error handling."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see --help)")

    def print_help(self, file=None):  # noqa: D401
        if _rank() == 0:
            super().print_help(file)
            (file or sys.stdout).flush()

    def exit(self, status: int = 0, message: str | None = None):  # type: ignore[override]
        if message and _rank() == 0:
            sys.stderr.write(message)
        raise SystemExit(status)


class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the description's layout and shows every default."""


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {v}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {v}")
    return v


def split_passthrough(argv: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """Split a tool's own arguments from the app options after a bare ``--``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        return argv, []
    i = argv.index("--")
    return argv[:i], argv[i + 1:]


def add_common(p: argparse.ArgumentParser, backends: Sequence[str] | None = None,
               default_backend: str | None = None, repeat: int = 1) -> None:
    """Add the options every app accepts (../shared/CONTRACT.md)."""
    g = p.add_argument_group("common options (every app)")
    g.add_argument("--json", metavar="PATH", help="rank 0 writes the result record (JSON) here")
    g.add_argument("--output", metavar="PATH", help="HDF5 file with the app's result data")
    if backends:
        g.add_argument("--backend", default=default_backend or backends[0], metavar="NAME",
                       choices=list(backends),
                       help=f"kernel back end: {', '.join(backends)} (python -m hpc lists "
                            "which are available here)")
    g.add_argument("--seed", type=int, default=0, help="seed all randomness derives from")
    g.add_argument("--repeat", type=positive_int, default=repeat,
                   help="timed repetitions (the record reports min/mean/max)")
    g.add_argument("--threads", type=positive_int, default=None,
                   help="threads per rank [default: OMP_NUM_THREADS, else cores/ranks]")
    g.add_argument("--quiet", action="store_true", help="print nothing on stdout but errors")


def make_parser(app: str, description: str, backends: Sequence[str] | None = None,
                default_backend: str | None = None, repeat: int = 1,
                epilog: str | None = None) -> AppParser:
    """A parser for `python -m hpc.<app>` with the common options already added."""
    p = AppParser(prog=f"python -m hpc.{app}", description=description, epilog=epilog,
                  formatter_class=Formatter)
    add_common(p, backends, default_backend, repeat)
    return p


# -- subcommands ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Subcommand:
    """One verb of an app: ``target`` is ``"module:function"``, a ``main(argv) -> int``
    imported only when the verb runs (so ``--help`` of the others stays fast)."""

    name: str
    target: str
    help: str


def _resolve(target: str) -> Callable[[Sequence[str]], int]:
    mod, _, fn = target.partition(":")
    return getattr(importlib.import_module(mod), fn)


def subcommand_epilog(commands: Sequence[Subcommand]) -> str:
    """The list of verbs, for the epilog of a default command's --help."""
    width = max(len(c.name) for c in commands)
    return "subcommands:\n" + "\n".join(f"  {c.name:<{width}}  {c.help}" for c in commands)


def dispatch(prog: str, commands: Sequence[Subcommand], argv: Sequence[str] | None = None,
             default: str | None = None, description: str | None = None) -> int:
    """Run the verb named by ``argv[0]`` with the rest of ``argv``: the one subcommand
    mechanism of every app and tool.

    With ``default`` (an app whose plain form runs a workload: ``python -m hpc.cg ...``),
    arguments that do not start with a known verb go to that verb, so the plain command line
    keeps working; its ``--help`` should end with :func:`subcommand_epilog`. Without one,
    an argparse parser with one subparser per verb answers ``--help`` and rejects an unknown
    or missing verb with a usage error (exit 2).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    by_name = {c.name: c for c in commands}
    if argv and argv[0] in by_name:
        return _resolve(by_name[argv[0]].target)(argv[1:])
    if default is not None:
        return _resolve(by_name[default].target)(argv)
    p = AppParser(prog=prog, description=description, formatter_class=Formatter)
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True, parser_class=AppParser)
    for c in commands:
        sub.add_parser(c.name, help=c.help, add_help=False)
    p.parse_args(argv[:1])  # --help, or an unknown/missing verb: a UsageError
    raise UsageError(f"{prog}: unknown command {argv[0]!r} (see --help)")  # not reached
