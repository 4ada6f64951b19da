"""Run a long, quiet build with its output in a log, printing where it is at a bounded rate.

    python tools/build_watch.py --log LOG [--every 10] [--label NAME] -- COMMAND...

Used by tools/run_tests.sh for the PETSc build (about 30 minutes, silent under ``pip -q``):
the command's stdout and stderr go to LOG; every ``--every`` seconds (at least one line every
30 s, at most one a second: :class:`hpc.core.progress.Progress`) a line says the elapsed time,
the build's stage read from the log (configure, compiling N files, linking, installing) and
the log's last line. The exit status is the command's; on failure the log's tail is printed.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from hpc.core.progress import MAX_INTERVAL, Progress

#: (pattern on a log line, stage name); the last matching line decides the stage
STAGES = (
    (re.compile(rb"configur", re.I), "configure"),
    (re.compile(rb"^\s*(CC|CXX|FC|CU|NVCC)\s", re.M), "compiling"),
    (re.compile(rb"^\s*(CLINKER|LINK|AR)\b|Linking", re.M), "linking"),
    (re.compile(rb"[Ii]nstall|Building wheel|Created wheel", re.M), "installing"),
)
_COMPILE = re.compile(rb"^\s*(?:CC|CXX|FC|CU|NVCC)\s", re.M)


def stage(log: bytes) -> tuple[str, int, str]:
    """(stage, files compiled so far, last non-empty line) of a build log."""
    lines = [ln for ln in log.splitlines() if ln.strip()]
    last = lines[-1].decode("utf-8", "replace").strip()[:100] if lines else ""
    name = "starting"
    for ln in reversed(lines[-200:]):
        for pat, what in STAGES:
            if pat.search(ln):
                name = what
                break
        else:
            continue
        break
    return name, len(_COMPILE.findall(log)), last


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", required=True, help="file the command's output goes to")
    ap.add_argument("--every", type=float, default=10.0,
                    help=f"seconds between looks at the log (at most {MAX_INTERVAL:g})")
    ap.add_argument("--label", default="build", help="the phase named in each line")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    a = ap.parse_args(argv)
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        ap.error("no command given (put it after --)")
    every = min(max(a.every, 1.0), MAX_INTERVAL)
    log = Path(a.log)
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        with Progress(None, a.label, unit="files compiled", stream=sys.stdout,
                      mode="plain") as prog:
            while True:
                try:
                    code = proc.wait(timeout=every)
                    break
                except subprocess.TimeoutExpired:
                    pass
                name, files, last = stage(log.read_bytes())
                prog.set(files, stage=name, last=repr(last))
    text = log.read_bytes().decode("utf-8", "replace")
    if code != 0:
        sys.stdout.write(f"{a.label}: failed (exit {code}); last lines of {log}:\n")
        sys.stdout.write("\n".join(text.splitlines()[-30:]) + "\n")
    else:
        print(f"{a.label}: done ({log})", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
