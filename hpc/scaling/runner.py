"""`python -m hpc.scaling run`: one mpiexec launch per rank count and repeat, records collected.

Each run is ``mpiexec -n P python -m hpc.<app> <options> --json DIR/records/pP-rR.json``; its
stdout/stderr go to DIR/logs/. The launcher and MPICH's progress settings come from
:mod:`hpc.core.launch`: when the ranks outnumber the cores the yield settings are set (unless
already in the environment) so oversubscribed ranks sleep instead of spinning. One progress
line per run, with the study's elapsed time and an estimate of what remains, and a line every
30 s while a long run is still going (:data:`HEARTBEAT_S`); DIR/results.{csv,json} are
rewritten after every run so an interrupted study keeps what it measured.
"""
from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from hpc.core.launch import YIELD_ENV, cores, find_mpiexec, mpiexec_cmd
from hpc.core.progress import format_seconds

from . import apps, results

__all__ = ["Study", "run_study", "collect_study", "require_app"]

#: seconds between the lines that say a long run is still going
HEARTBEAT_S = 30.0


@contextmanager
def heartbeat(say: Callable[[str], None], what: str, interval: float = HEARTBEAT_S) -> Iterator[None]:
    """While the block runs, ``say`` a line every ``interval`` seconds: ``what`` and the time
    it has been running (a thread, so a blocking launch still reports)."""
    stop = threading.Event()
    t0 = time.monotonic()

    def beat() -> None:
        while not stop.wait(interval):
            say(f"{what}: still running, {format_seconds(time.monotonic() - t0)}")

    th = threading.Thread(target=beat, daemon=True)
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join()


def require_app(app: str) -> None:
    """A clear error when the workload's module is not in this build yet."""
    apps.spec(app)
    try:
        found = importlib.util.find_spec(f"hpc.{app}.__main__") is not None
    except ImportError:  # the package itself is missing
        found = False
    if not found:
        raise apps.StudyError(f"hpc.{app} is not in this build (no module hpc.{app}.__main__): "
                              f"its study runs once the workload lands")


@dataclass
class Study:
    """What `run` was asked to do."""

    app: str
    mode: str
    ranks: list[int]
    out: Path
    app_args: list[str] = field(default_factory=list)
    repeat: int = 1
    threads: int = 1
    timeout: int = 600
    mpiexec: str | None = None
    name: str | None = None


def run_study(st: Study, say: Callable[[str], None] = print) -> int:
    """Run every rank count and repeat; exit 0 if all validated, 1 otherwise, 2 bad input."""
    if st.mode not in ("strong", "weak"):
        raise apps.StudyError(f"--mode must be strong or weak, got {st.mode!r}")
    require_app(st.app)
    p0 = min(st.ranks)
    plan = {p: apps.args_for(st.app, st.mode, st.app_args, p, p0) for p in st.ranks}
    mpiexec = find_mpiexec(st.mpiexec)
    ncores = cores()
    out = st.out
    (out / "records").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    doc = {
        "study": {"name": st.name or f"{st.app}_{st.mode}", "app": st.app, "mode": st.mode,
                  "ranks": st.ranks, "repeat": st.repeat, "threads": st.threads,
                  "app_args": list(st.app_args) or list(apps.spec(st.app).study_args),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "machine": {"hostname": socket.gethostname(), "cores": ncores, "mpiexec": mpiexec,
                    "python": sys.executable},
        "runs": [],
    }
    total = len(st.ranks) * st.repeat
    k = 0
    status = 0
    t0 = time.monotonic()
    for p in st.ranks:
        for rep in range(1, st.repeat + 1):
            k += 1
            with heartbeat(say, f"[scaling {k}/{total}] {st.app} {st.mode} ranks={p} rep={rep}"):
                run = _launch(st, p, rep, plan[p], mpiexec, ncores)
            doc["runs"].append(run)
            results.write(out, doc)
            say(_progress(st, k, total, run, time.monotonic() - t0))
            if run["exit_code"] == 2:
                say(f"error: hpc.{st.app} rejected its options at {p} ranks "
                    f"(see {run['log']}): {run.get('error', '')}")
                return 2
            if not run["passed"]:
                status = 1
    doc["study"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results.write(out, doc)
    return status


def _launch(st: Study, p: int, rep: int, args: Sequence[str], mpiexec: str, ncores: int) -> dict:
    out = st.out
    rec_path = out / "records" / f"p{p}-r{rep}.json"
    log_path = out / "logs" / f"p{p}-r{rep}.log"
    if rec_path.exists():
        rec_path.unlink()
    env = dict(os.environ)
    oversub = p * st.threads > ncores
    if oversub:
        for kname, v in YIELD_ENV.items():
            env.setdefault(kname, v)
    env["OMP_NUM_THREADS"] = str(st.threads)
    env["MPIEXEC_TIMEOUT"] = str(st.timeout)
    env.setdefault("PYTHONUNBUFFERED", "1")
    cmd = mpiexec_cmd(p, [*args, "--json", str(rec_path)], module=f"hpc.{st.app}",
                      mpiexec=mpiexec)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              timeout=st.timeout + 30)
        code, text = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        code = 124
        text = f"timed out after {st.timeout + 30} s\n{exc.stdout or ''}{exc.stderr or ''}"
    wall = time.perf_counter() - t0
    log_path.write_text("$ " + " ".join(cmd) + "\n" + text)
    record = None
    if rec_path.exists():
        try:
            record = json.loads(rec_path.read_text())
        except ValueError:
            record = None
    t, src = apps.run_time(st.app, record) if record else (None, "none")
    passed = bool(code == 0 and record and (record.get("validation") or {}).get("passed"))
    run = {"ranks": p, "rep": rep, "args": list(args), "exit_code": code, "wall_s": wall,
           "time_s": t, "time_source": src, "passed": passed, "oversubscribed": oversub,
           "log": str(log_path.relative_to(out)), "record": record}
    if code != 0:
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        errs = [ln for ln in lines if ln.startswith("error:")]
        run["error"] = (errs or lines or ["(no output)"])[-1][:300]
    return run


def collect_study(st: Study, say: Callable[[str], None] = print) -> int:
    """Build DIR/results.{csv,json} from the records batch jobs wrote (hpc.jobs scaling).

    Each run's record is DIR/records/pP-rR.json; a run without one (still queued, or failed
    before writing it) is listed as not passed. Exit 0 when every planned run validated.
    """
    require_app_known(st.app)
    p0 = min(st.ranks)
    plan = {p: apps.args_for(st.app, st.mode, st.app_args, p, p0) for p in st.ranks}
    ncores = cores()
    doc = {
        "study": {"name": st.name or f"{st.app}_{st.mode}", "app": st.app, "mode": st.mode,
                  "ranks": st.ranks, "repeat": st.repeat, "threads": st.threads,
                  "app_args": list(st.app_args) or list(apps.spec(st.app).study_args),
                  "collected": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "machine": {"hostname": socket.gethostname(), "cores": ncores, "mpiexec": "batch jobs",
                    "python": sys.executable},
        "runs": [],
    }
    done = 0
    for p in st.ranks:
        for rep in range(1, st.repeat + 1):
            rec_path = st.out / "records" / f"p{p}-r{rep}.json"
            record = None
            if rec_path.exists():
                try:
                    record = json.loads(rec_path.read_text())
                except ValueError:
                    record = None
            t, src = apps.run_time(st.app, record) if record else (None, "none")
            passed = bool(record and (record.get("validation") or {}).get("passed"))
            env = (record or {}).get("env") or {}
            doc["runs"].append({
                "ranks": p, "rep": rep, "args": plan[p],
                "exit_code": 0 if passed else (1 if record else None), "wall_s": 0.0,
                "time_s": t, "time_source": src, "passed": passed,
                "oversubscribed": bool(env.get("oversubscribed", False)),
                "log": f"logs/p{p}-r{rep}.log", "record": record})
            done += passed
    results.write(st.out, doc)
    total = len(st.ranks) * st.repeat
    say(f"[scaling collect] {st.app} {st.mode}: {done}/{total} runs validated -> "
        f"{st.out / 'results.csv'}")
    return 0 if done == total else 1


def require_app_known(app: str) -> None:
    apps.spec(app)


def _progress(st: Study, k: int, total: int, run: dict, elapsed: float | None = None) -> str:
    t = f"{run['time_s']:.4g} s ({run['time_source']})" if run["time_s"] is not None else "no time"
    verdict = "VALID" if run["passed"] else f"FAILED exit {run['exit_code']}"
    over = "  [oversubscribed: ranks > cores]" if run["oversubscribed"] else ""
    eta = ""
    if elapsed is not None:
        # runs at more ranks take longer in a weak study: the estimate is the plain average
        eta = (f"; study {format_seconds(elapsed)} elapsed, "
               f"~{format_seconds(elapsed * (total - k) / k)} remaining")
    return (f"[scaling {k}/{total}] {st.app} {st.mode} ranks={run['ranks']} rep={run['rep']}: "
            f"{t}, {verdict}, wall {run['wall_s']:.1f} s{over}{eta}")
