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

from . import atomic, checks
from .errors import UsageError


def _rank() -> int:
    return MPI.COMM_WORLD.Get_rank()


class AppParser(argparse.ArgumentParser):
    """argparse with the suite's error handling; output paths (:func:`mark_output`) are
    checked as soon as the arguments are parsed, before any work starts."""

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        ns, rest = super().parse_known_args(args, namespace)
        check_outputs(self, ns)
        return ns, rest

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see --help)")

    def print_help(self, file=None):  # noqa: D401
        if _rank() == 0:
            super().print_help(file)
            (file or sys.stdout).flush()

    def _print_message(self, message: str, file=None) -> None:
        if _rank() == 0:  # --version and usage text: once, not once per rank
            super()._print_message(message, file)

    def exit(self, status: int = 0, message: str | None = None):  # type: ignore[override]
        if message and _rank() == 0:
            sys.stderr.write(message)
        raise SystemExit(status)


class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the description's layout and shows every default once: not for a help text
    that states its own ``[default: ...]``, nor for None, False or a count's 0."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or any(action.default is v for v in (None, False, argparse.SUPPRESS)) \
                or isinstance(action, (argparse._CountAction, argparse._VersionAction)):
            return text
        return super()._get_help_string(action)


def configure_logging(verbose: int = 0, quiet: bool = False) -> None:
    """The ``logging`` level of the ``hpc`` loggers from ``-v``/``-vv`` and ``--quiet``:
    WARNING by default, INFO with -v, DEBUG with -vv, ERROR with --quiet. Messages go to
    stderr on rank 0 (every rank with -vv, each line tagged with its rank)."""
    import logging

    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logger = logging.getLogger("hpc")
    logger.setLevel(level)
    rank = _rank()
    for h in list(logger.handlers):
        if getattr(h, "_hpc", False):
            logger.removeHandler(h)
    if rank == 0 or verbose >= 2:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter(f"[%(name)s r{rank}] %(levelname)s %(message)s"))
        h._hpc = True  # type: ignore[attr-defined]
        logger.addHandler(h)
    logger.propagate = False


positive_int = checks.integer(1, checks.SEED_MAX)
"""argparse type: an integer 1 <= n < 2**63 (what a C int64 holds)."""

nonneg_int = checks.integer(0, checks.SEED_MAX)
"""argparse type: an integer 0 <= n < 2**63."""

positive_float = checks.real(0, None, lo_open=True)
"""argparse type: a finite number > 0 (NaN, inf and 1e400 refused)."""


def mark_output(p: argparse.ArgumentParser, action: argparse.Action, stream: bool = False,
                what: str | None = None, directory: bool = False) -> argparse.Action:
    """Declare ``action`` an output path of ``p``: an :class:`AppParser` checks it after
    parsing (:func:`hpc.core.atomic.check_output`; ``stream``: a device or FIFO is written
    in place; ``directory``: a folder to write in) and refuses two outputs naming one file."""
    outs = p.__dict__.setdefault("_hpc_outputs", [])
    outs.append((action.dest, what or (action.option_strings or [action.dest])[-1],
                 "dir" if directory else stream))
    return action


def mark_outputs(p: argparse.ArgumentParser, *options: str, stream: bool = False,
                 directory: bool = False) -> None:
    """:func:`mark_output` for options already added, named by an option string
    (``mark_outputs(p, "--save")`` before ``return p``)."""
    for opt in options:
        mark_output(p, p._option_string_actions[opt], stream=stream, directory=directory)


def check_outputs(p: argparse.ArgumentParser, ns: argparse.Namespace) -> None:
    """Check the output paths declared with :func:`mark_output` (UsageError if unwritable)."""
    outs = [(dest, what, stream) for dest, what, stream in p.__dict__.get("_hpc_outputs", ())
            if getattr(ns, dest, None) not in (None, "")]
    try:
        for dest, what, kind in outs:
            atomic.check_output(getattr(ns, dest), what, stream=kind is True,
                                directory=kind == "dir")
        atomic.check_distinct(**{what: getattr(ns, dest) for dest, what, _ in outs})
    except UsageError as e:
        raise UsageError(f"{p.prog}: {e}") from None


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
    mark_output(p, g.add_argument("--json", metavar="PATH",
                                  help="rank 0 writes the result record (JSON) here"), stream=True)
    mark_output(p, g.add_argument("--output", metavar="PATH",
                                  help="HDF5 file with the app's result data"))
    if backends:
        g.add_argument("--backend", default=default_backend or backends[0], metavar="NAME",
                       choices=list(backends),
                       help=f"kernel back end: {', '.join(backends)} (python -m hpc lists "
                            "which are available here)")
    g.add_argument("--seed", type=checks.SEED, default=0,
                   help="seed all randomness derives from (0 <= SEED < 2**63)")
    g.add_argument("--repeat", type=checks.REPEAT, default=repeat,
                   help=f"timed repetitions, 1 to {checks.REPEAT_MAX} (the record reports "
                        "min/mean/max)")
    g.add_argument("--threads", type=positive_int, default=None,
                   help="threads per rank [default: OMP_NUM_THREADS, else cores/ranks]")
    g.add_argument("--quiet", action="store_true", help="print nothing on stdout but errors")
    g.add_argument("-v", "--verbose", action="count", default=0,
                   help="more detail through logging on stderr (-vv: debug, every rank)")
    from .. import __version__

    g.add_argument("--version", action="version", version=f"%(prog)s (hpc {__version__})")


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
