"""hpc.suite: run every available workload at laptop size and print one VALID/INVALID table.

The suite's main job (`make demo` runs it under `mpiexec -n 4`). Every workload runs in this
same MPI job, one after another, with small arguments; each validates its own answer. The
schedule is data: each workload's rows and headline figure are in its spec
(``hpc/<app>/spec.py``, see hpc.core.spec). A workload missing from this build, or a back end
missing on this machine, shows as SKIPPED with the reason. Exit status 0 only if everything that ran was VALID.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import tempfile
import time
from typing import Sequence

from hpc.core import EXIT_INVALID, EXIT_OK, UsageError, make_parser, run, world
from hpc.core import atomic
from hpc.core import backends as registry
from hpc.core.spec import SuiteRow, WorkloadSpec, all_specs


def schedule() -> list[tuple[WorkloadSpec, SuiteRow]]:
    """(workload, row) for every row of every spec's suite, in the specs' order."""
    return [(spec, row) for spec in all_specs() for row in spec.suite]


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def _figure(spec: WorkloadSpec, rec: dict) -> str:
    """The workload's headline figure from its record, with its unit ('' when absent)."""
    if spec.headline is None:
        return ""
    fig = (rec.get("metrics") or {}).get(spec.headline.key)
    if isinstance(fig, bool) or not isinstance(fig, (int, float)):
        return ""
    return _fmt(fig) + f" {spec.headline.unit}"


def parser():
    p = make_parser("suite", __doc__)
    p.add_argument("--only", metavar="APP[,APP...]", help="run only these workloads")
    p.add_argument("--list", action="store_true", help="print the schedule and exit")
    return p


def _app_main(app: str):
    if importlib.util.find_spec(f"hpc.{app}") is None:
        return None
    try:
        return importlib.import_module(f"hpc.{app}.app").main
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(f"hpc.{app}"):
            return None
        raise


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    comm = world()
    rank = comm.Get_rank()
    only = set(args.only.split(",")) if args.only else None
    plan = [(spec, row) for spec, row in schedule()
            if only is None or spec.name in only or row.label in only]
    if args.list:
        if rank == 0:
            for _, row in plan:
                print(f"{row.label:<18} {' '.join(row.argv)}")
        return EXIT_OK
    say = (lambda *m: print(*m, flush=True)) if rank == 0 and not args.quiet else (lambda *m: None)
    say(f"hpc suite on {comm.Get_size()} rank(s): {len(plan)} runs")
    from hpc.core import envinfo, provenance

    started = provenance.utc_now()
    tmpdir = comm.bcast(tempfile.mkdtemp(prefix="hpc-suite-") if rank == 0 else None)
    rows, records = [], {}
    failed = None  # the record could not be written
    for spec, row in plan:
        main_fn = _app_main(spec.name)
        if main_fn is None:
            rows.append((row.label, "SKIPPED", "", "", f"hpc.{spec.name} is not in this build"))
            continue
        why = registry.why_unavailable(row.backend) if row.backend else None
        why = row.rank_problem(comm.Get_size()) or why
        if why:
            rows.append((row.label, "SKIPPED", "", "", why))
            continue
        out = os.path.join(tmpdir, row.label.replace("/", "_") + ".json")
        say(f"-- {row.label}: python -m hpc.{spec.name} {' '.join(row.argv)}")
        t0 = time.perf_counter()
        try:
            code = main_fn(list(row.argv) + ["--json", out, "--quiet"])
        except UsageError as err:  # raised on every rank: the workload could not start
            rows.append((row.label, "ERROR", "", "", str(err)))
            continue
        dt = time.perf_counter() - t0
        comm.Barrier()
        if rank == 0:
            with open(out) as f:
                rec = json.load(f)
            records[row.label] = rec
            rows.append((row.label, "VALID" if code == 0 else "INVALID",
                         _figure(spec, rec), f"{dt:.1f}s", ""))
    env = envinfo.capture(comm, envinfo.default_threads(comm))
    prov = provenance.capture(comm, started)
    if rank == 0:
        width = max([len("workload")] + [len(r[0]) for r in rows]) + 2
        say("")
        say(f"{'workload':<{width}}{'verdict':<9}{'figure':>22}{'time':>9}  notes")
        for label, verdict, figure, dt, note in rows:
            say(f"{label:<{width}}{verdict:<9}{figure:>22}{dt:>9}  {note}")
        ran = [r for r in rows if r[1] not in ("SKIPPED",)]
        bad = [r for r in ran if r[1] != "VALID"]
        say(f"\n{len(ran) - len(bad)} VALID, {len(bad)} not valid, "
            f"{len(rows) - len(ran)} skipped")
        if args.json:
            from hpc import __version__

            secs = {r[0]: float(r[3][:-1]) for r in rows if r[3]}
            try:
                atomic.write_json(args.json, {
                    "schema_version": provenance.SCHEMA_VERSION, "app": "suite",
                    "version": __version__, "ranks": comm.Get_size(),
                    "runs": [dict(zip(("label", "verdict", "figure", "time", "note"), r),
                                  time_s=secs.get(r[0])) for r in rows],
                    "records": records,
                    "timings": {k: {"min": v, "mean": v, "max": v, "n": 1}
                                for k, v in secs.items()},
                    "validation": {"passed": not bad}, "env": env, "provenance": prov})
            except UsageError as err:  # /dev/full, a full disk: exit 2 on every rank
                failed = str(err)
        status = EXIT_OK if not bad else EXIT_INVALID
    else:
        status = None
    status, failed = comm.bcast((status, failed))
    if failed:
        raise UsageError(failed)
    return status


if __name__ == "__main__":
    run(main)
