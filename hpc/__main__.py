"""`hpc` (or `python -m hpc`): the suite's entry point.

With no command it lists the workloads in this suite and the back ends available on this
machine; ``hpc suite``, ``hpc scaling`` and ``hpc jobs`` run those tools (the same as
``python -m hpc.suite`` and so on). Each workload runs as its own module:
``mpiexec -n N python -m hpc.<app> [options]``.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import Sequence

from hpc import WORKLOADS, __version__
from hpc.core.cli import AppParser, Subcommand, dispatch, subcommand_epilog
from hpc.core.errors import EXIT_USAGE, UsageError

COMMANDS = (
    Subcommand("list", "hpc.__main__:list_main",
               "the workloads and the back ends on this machine (the default)"),
    Subcommand("suite", "hpc.__main__:suite_main",
               "every workload at laptop size, one VALID/INVALID table (python -m hpc.suite)"),
    Subcommand("scaling", "hpc.scaling.cli:entry",
               "strong and weak scaling studies, plots and models (python -m hpc.scaling)"),
    Subcommand("jobs", "hpc.jobs.cli:entry",
               "SLURM job scripts for every workload (python -m hpc.jobs)"),
    Subcommand("report", "hpc.report:main",
               "one table from result records, suite records and study folders"),
    Subcommand("compare", "hpc.compare:main",
               "compare two sets of runs; exit 1 when a headline metric regressed"),
)


def _workload_lines() -> list[str]:
    lines = []
    for name, what in WORKLOADS.items():
        present = importlib.util.find_spec(f"hpc.{name}") is not None
        lines.append(f"  {name:<10} {'' if present else '[not in this build] '}{what}")
    return lines


def _parser() -> AppParser:
    description = "\n".join([
        f"hpc {__version__}: an MPI-parallel HPC application suite",
        "",
        "Workloads (mpiexec -n N python -m hpc.<app>; each takes --help):",
        *_workload_lines(),
        "",
        "With no command, hpc lists the workloads and the back ends on this machine.",
    ])
    p = AppParser(prog="hpc", description=description, epilog=subcommand_epilog(COMMANDS),
                  formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"hpc {__version__}")
    return p


def list_main(argv: Sequence[str] | None = None) -> int:
    """Print the workloads and the back ends available here (``hpc list``)."""
    _parser().parse_args(list(argv or []))
    from hpc.core import backends

    print(f"hpc {__version__}: an MPI-parallel HPC application suite\n")
    print("Workloads (mpiexec -n N python -m hpc.<app>):")
    print("\n".join(_workload_lines()))
    print("  suite      every workload at laptop size, one VALID/INVALID table")
    print("  scaling    strong and weak scaling studies, plots and models")
    print("  jobs       SLURM job scripts for every workload")
    print("\nBack ends on this machine:")
    for name, b in backends.REGISTRY.items():
        why = backends.why_unavailable(name)
        extra = ""
        if name == "kokkos" and why is None:
            from hpc import _kokkos

            extra = f" [execution space: {_kokkos.execution_space}]"
        print(f"  {name:<8} {'yes' if why is None else 'no '}  {b.description}{extra}"
              + (f"  ({why})" if why else ""))
    return 0


def suite_main(argv: Sequence[str] | None = None) -> int:
    """``hpc suite ...``: hpc.suite under the SPMD runner (exit codes, abort on exception)."""
    from hpc import suite
    from hpc.core.runtime import run

    run(suite.main, list(argv or []))  # exits with the suite's status


def main(argv: Sequence[str] | None = None) -> int:
    """The ``hpc`` console script: a verb from :data:`COMMANDS`, else the listing.

    An unknown verb is a usage error: one ``error:`` line, exit 2.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    verbs = [c.name for c in COMMANDS]
    try:
        if argv and not argv[0].startswith("-") and argv[0] not in verbs:
            raise UsageError(f"hpc: unknown command {argv[0]!r} (choose from "
                             f"{', '.join(verbs)}; see hpc --help)")
        return dispatch("hpc", COMMANDS, argv, default="list")
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
