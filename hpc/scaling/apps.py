"""What the study runner and the job generator know about each workload: a view of the specs.

Everything app-specific lives in the workload's own ``hpc/<app>/spec.py`` (a
:class:`hpc.core.spec.WorkloadSpec`): tiny default options for a study, where a run's time is
found in its record, how weak and strong scaling change the options with the ranks, which
options a rank count forces (train's layout), the performance model and the GPU options of a
job. The rest of hpc.scaling and hpc.jobs is generic over the contract (docs/contract.md).

Weak scaling keeps the work per rank constant. The options given for a study describe the
problem at the study's smallest rank count ``p0``; at ``p`` ranks the problem grows by
``f = p / p0`` (each app's rule is in its spec; ``python -m hpc.scaling run --help`` lists
them). Strong scaling keeps the global problem fixed: options that are per-rank sizes
(stream's --arraysize) shrink by f, global sizes stay as given.

Rounded sizes make the per-rank work only nearly constant; the runner records the options
each rank count actually ran with. Input files (``--matrix``, ``--graph``, ``--a``, a data
file) cannot be grown, so weak scaling with one is a clear error.
"""
from __future__ import annotations

import textwrap
from typing import Sequence

from hpc.core.spec import StudyError, WorkloadSpec, all_specs, load, names

__all__ = ["StudyError", "spec", "names", "args_for", "run_time", "rules_text"]


def spec(app: str) -> WorkloadSpec:
    """The workload's spec; a :class:`StudyError` naming the known apps when there is none."""
    return load(app)


def args_for(app: str, mode: str, app_argv: Sequence[str], p: int, p0: int) -> list[str]:
    """The app options one run of a study uses at p ranks (smallest rank count p0)."""
    return load(app).study_argv(mode, app_argv, p, p0)


def run_time(app: str, record: dict) -> tuple[float | None, str]:
    """(seconds, where it came from) for one run's record; the app's first source present.

    Falls back to metrics.time_s, then to the sum of every phase's best time.
    """
    if app in names():
        return load(app).run_time(record)
    return WorkloadSpec(name=app, description="").run_time(record)


def _first_line(fn) -> str:
    return " ".join((fn.__doc__ or "").strip().split("\n\n")[0].split()) if fn else ""


def rules_text(width: int = 92) -> str:
    """Each workload's weak- and strong-scaling rule, from the specs' rule docstrings."""
    out = ["per-app rules (hpc/<app>/spec.py):"]
    for s in all_specs():
        weak = _first_line(s.weak) or "no weak scaling."
        strong = _first_line(s.strong) or "global sizes, unchanged."
        text = f"weak: {weak} strong: {strong}"
        if s.layout is not None:
            text += f" Every mode: {_first_line(s.layout)}"
        out.append(textwrap.fill(text, width, initial_indent=f"  {s.name:<9}",
                                 subsequent_indent=" " * 11))
    return "\n".join(out)
