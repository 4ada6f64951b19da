"""Launching MPI jobs: the one home of the ``mpiexec`` lookup and MPICH's progress settings.

Every script, test helper, benchmark, the Makefile and ``tools/run_tests.sh`` use this module;
shell scripts call it as ``python -m hpc.core.launch`` (see :func:`main`). A driver that wants an
app's result record back runs it with :func:`run_record`.

When ranks outnumber cores (a laptop, CI), MPICH's default busy polling makes every rank spin
for its time slice; the settings in :data:`YIELD_ENV` make a waiting rank yield instead, which
made oversubscribed runs up to 30x faster here.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

from .errors import UsageError

#: MPICH settings that make a waiting rank yield its core instead of busy-polling.
YIELD_ENV: dict[str, str] = {
    "MPIR_CVAR_POLLS_BEFORE_YIELD": "1",
    "MPIR_CVAR_CH4_PROGRESS_THROTTLE": "true",
    "MPIR_CVAR_CH4_PROGRESS_THROTTLE_NO_PROGRESS_COUNT": "1",
}

PROGRESS_MODES = ("auto", "throttle", "busy")


def cores() -> int:
    """Cores this process may run on (its affinity mask, as the apps count them)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def progress_env(mode: str, ranks: int, extra: Mapping[str, str] | None = None,
                 base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for a launch with MPICH's progress settings chosen explicitly.

    Parameters
    ----------
    mode : {'auto', 'throttle', 'busy'}
        'throttle' sets :data:`YIELD_ENV`; 'busy' removes it (MPICH's default polling, best
        when every rank has a core); 'auto' throttles only when ``ranks`` exceed :func:`cores`.
    ranks : int
        Ranks the launch will start.
    extra : mapping, optional
        Variables added after the choice (they win).
    base : mapping, optional
        The environment to start from (default: this process's).
    """
    if mode not in PROGRESS_MODES:
        raise ValueError(f"progress mode must be one of {PROGRESS_MODES}, got {mode!r}")
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in YIELD_ENV}
    if mode == "throttle" or (mode == "auto" and ranks > cores()):
        env.update(YIELD_ENV)
    env.update(extra or {})
    return env


def find_mpiexec(explicit: str | None = None) -> str:
    """The ``mpiexec`` to launch with: ``explicit``, else the one beside this Python (the
    ``mpich`` wheel's), else the first on ``PATH``.

    Raises
    ------
    UsageError
        When none is found.
    """
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.exists():
        return str(beside)
    found = shutil.which("mpiexec")
    if not found:
        raise UsageError("no mpiexec found (beside this Python or on PATH); pass --mpiexec")
    return found


def mpiexec_cmd(ranks: int, args: Sequence[str], *, module: str | None = None,
                mpiexec: str | None = None, python: str | None = None) -> list[str]:
    """``mpiexec -n ranks python [-m module] args...`` as an argument list.

    Parameters
    ----------
    ranks : int
        Ranks to start (``-n``).
    args : sequence
        Arguments after the interpreter (and ``-m module``); each is passed through ``str``.
    module : str, optional
        Run ``python -m module`` instead of a script.
    mpiexec : str, optional
        The launcher; default :func:`find_mpiexec`'s choice.
    python : str, optional
        The interpreter; default this one (``sys.executable``).

    Raises
    ------
    UsageError
        When no ``mpiexec`` is found.
    """
    cmd = [find_mpiexec(mpiexec), "-n", str(int(ranks)), python or sys.executable]
    if module:
        cmd += ["-m", module]
    return cmd + [str(a) for a in args]


def launch(ranks: int, args: Sequence[str], *, module: str | None = None,
           progress: str = "auto", env: Mapping[str, str] | None = None,
           timeout: float | None = None, mpiexec: str | None = None,
           **run_kwargs) -> subprocess.CompletedProcess:
    """Run ``mpiexec -n ranks python [-m module] args`` and wait for it.

    Parameters
    ----------
    ranks, args, module, mpiexec
        As for :func:`mpiexec_cmd`.
    progress : {'auto', 'throttle', 'busy'}, default 'auto'
        MPICH's progress settings, chosen by :func:`progress_env` for ``ranks``.
    env : mapping, optional
        Variables added to this process's environment after the progress choice (they win).
    timeout : float, optional
        Seconds: ``MPIEXEC_TIMEOUT`` is set from it so that a hung job is killed by mpiexec
        itself, and the subprocess gets a minute more before :func:`subprocess.run` gives up.
    **run_kwargs
        Passed to :func:`subprocess.run` (``capture_output``, ``text``, ``cwd``, ...).

    Returns
    -------
    subprocess.CompletedProcess
        mpiexec's exit status is the job's (non-zero when any rank failed).
    """
    e = progress_env(progress, ranks, extra=env)
    if timeout is not None:
        e["MPIEXEC_TIMEOUT"] = str(int(timeout))
        run_kwargs.setdefault("timeout", timeout + 60)
    return subprocess.run(mpiexec_cmd(ranks, args, module=module, mpiexec=mpiexec),
                          env=e, **run_kwargs)


#: Characters of a failed job's output that :func:`run_record` puts in its error.
TAIL_CHARS = 2000


def run_record(ranks: int, module: str | None, args: Sequence[str], *, progress: str = "auto",
               env: Mapping[str, str] | None = None, timeout: float | None = None,
               cwd: str | os.PathLike | None = None, allow_invalid: bool = False) -> dict:
    """Run ``mpiexec -n ranks python -m module args --json TMP`` and return the record it wrote.

    The record file is a fresh exclusive temporary (:func:`tempfile.mkstemp` in a private
    temporary directory), removed with its directory afterwards whatever happens.

    Parameters
    ----------
    ranks : int
        Ranks to start.
    module : str or None
        The app, e.g. ``'hpc.stream'``; None runs a script named by ``args[0]`` instead (it
        must take ``--json PATH`` like the apps).
    args : sequence
        The app's arguments, without ``--json`` (added here); each is passed through ``str``.
    progress : {'auto', 'throttle', 'busy'}, default 'auto'
        MPICH's progress settings, as for :func:`launch`.
    env : mapping, optional
        Variables added to this process's environment (they win), as for :func:`launch`.
    timeout : float, optional
        Seconds the job may run (``MPIEXEC_TIMEOUT``), as for :func:`launch`.
    cwd : path, optional
        Working directory of the job.
    allow_invalid : bool, default False
        Also accept exit status 1 (ran, validation failed); the record then says so in
        ``record['validation']['passed']``.

    Returns
    -------
    dict
        The parsed JSON record.

    Raises
    ------
    RuntimeError
        When the exit status is not 0 (not 0 or 1 with ``allow_invalid``), or the job wrote
        no readable record; the message names the command and ends with the tail of its
        stderr (of its stdout when stderr is empty).
    ValueError
        When ``args`` already holds ``--json``.
    subprocess.TimeoutExpired
        When the job outlives ``timeout`` by a minute (mpiexec did not stop it).
    """
    args = [str(a) for a in args]
    if "--json" in args:
        raise ValueError("run_record adds --json itself; leave it out of args")
    accepted = (0, 1) if allow_invalid else (0,)
    with tempfile.TemporaryDirectory(prefix="hpc-record-") as d:
        fd, path = tempfile.mkstemp(prefix="record-", suffix=".json", dir=d)
        os.close(fd)
        p = launch(ranks, [*args, "--json", path], module=module, progress=progress, env=env,
                   timeout=timeout, capture_output=True, text=True, cwd=cwd)
        cmd = shlex.join(p.args)
        tail = (p.stderr.strip() or p.stdout.strip())[-TAIL_CHARS:]
        if p.returncode not in accepted:
            raise RuntimeError(f"{cmd} failed (exit status {p.returncode}):\n{tail}")
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            raise RuntimeError(f"{cmd} exited {p.returncode} but wrote no readable record "
                               f"({e}):\n{tail}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hpc.core.launch mpiexec`` prints the mpiexec path; ``... env [--ranks N]
    [--mode M]`` prints ``export`` lines of the progress settings for a shell (only the
    variables not already set, so a user's own choice wins)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m hpc.core.launch", description=main.__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("mpiexec", help="print the mpiexec to use")
    e = sub.add_parser("env", help="print export lines of MPICH's progress settings")
    e.add_argument("--ranks", type=int, default=1 << 30,
                   help="ranks of the launch (default: more than cores, so 'auto' throttles)")
    e.add_argument("--mode", choices=PROGRESS_MODES, default="auto")
    a = p.parse_args(argv)
    if a.cmd == "mpiexec":
        try:
            print(find_mpiexec())
        except UsageError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0
    chosen = progress_env(a.mode, a.ranks, base={})
    for k, v in chosen.items():
        if k not in os.environ:
            print(f"export {k}={shlex.quote(v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
