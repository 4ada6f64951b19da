"""hpc.core.launch: the one home of the mpiexec lookup and MPICH's progress settings."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpc.core import launch as L
from hpc.core.errors import UsageError

YIELD_KEYS = set(L.YIELD_ENV)


def test_yield_env_is_mpich_progress_settings():
    assert L.YIELD_ENV == {
        "MPIR_CVAR_POLLS_BEFORE_YIELD": "1",
        "MPIR_CVAR_CH4_PROGRESS_THROTTLE": "true",
        "MPIR_CVAR_CH4_PROGRESS_THROTTLE_NO_PROGRESS_COUNT": "1",
    }


def test_cores_is_the_affinity_mask():
    assert L.cores() == len(os.sched_getaffinity(0)) >= 1


def test_progress_env_throttle_and_busy():
    base = {"PATH": "/bin", "MPIR_CVAR_POLLS_BEFORE_YIELD": "7"}
    t = L.progress_env("throttle", 1, base=base)
    assert {k: t[k] for k in YIELD_KEYS} == L.YIELD_ENV  # the choice replaces the base's value
    assert t["PATH"] == "/bin"
    b = L.progress_env("busy", 10**6, base=base)
    assert not YIELD_KEYS & set(b) and b == {"PATH": "/bin"}


def test_progress_env_auto_throttles_only_when_oversubscribed():
    n = L.cores()
    assert not YIELD_KEYS & set(L.progress_env("auto", n, base={}))
    assert {k: v for k, v in L.progress_env("auto", n + 1, base={}).items()} == L.YIELD_ENV


def test_progress_env_extra_wins_and_base_defaults_to_environ(monkeypatch):
    monkeypatch.setenv("HPC_TEST_MARK", "x")
    e = L.progress_env("throttle", 1, extra={"MPIR_CVAR_CH4_PROGRESS_THROTTLE": "false", "A": "1"})
    assert e["HPC_TEST_MARK"] == "x" and e["A"] == "1"
    assert e["MPIR_CVAR_CH4_PROGRESS_THROTTLE"] == "false"


def test_progress_env_rejects_unknown_mode():
    with pytest.raises(ValueError, match="progress mode must be one of"):
        L.progress_env("fast", 2)


def _fake_mpiexec(d: Path) -> Path:
    exe = d / "mpiexec"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return exe


def test_find_mpiexec_explicit_beside_python_then_path(tmp_path, monkeypatch):
    assert L.find_mpiexec("/opt/x/mpiexec") == "/opt/x/mpiexec"
    # the default: the mpich wheel's, beside this Python
    assert L.find_mpiexec() == str(Path(sys.executable).parent / "mpiexec")
    # no mpiexec beside the interpreter: the first one on PATH
    pydir, bindir = tmp_path / "py", tmp_path / "bin"
    pydir.mkdir()
    bindir.mkdir()
    monkeypatch.setattr(L.sys, "executable", str(pydir / "python"))
    monkeypatch.setenv("PATH", str(bindir))
    with pytest.raises(UsageError, match="no mpiexec found"):
        L.find_mpiexec()
    with pytest.raises(ValueError):  # a UsageError is a ValueError to API callers
        L.find_mpiexec()
    exe = _fake_mpiexec(bindir)
    assert L.find_mpiexec() == str(exe)
    beside = _fake_mpiexec(pydir)
    assert L.find_mpiexec() == str(beside)


def test_mpiexec_cmd():
    cmd = L.mpiexec_cmd(3, ["--n", 5], module="hpc.stream", mpiexec="/x/mpiexec", python="/y/python")
    assert cmd == ["/x/mpiexec", "-n", "3", "/y/python", "-m", "hpc.stream", "--n", "5"]
    assert L.mpiexec_cmd(1, ["s.py"])[1:] == ["-n", "1", sys.executable, "s.py"]


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hpc.core.launch", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def test_cli_env_prints_exports_a_set_variable_wins():
    clean = {k: v for k, v in os.environ.items() if k not in YIELD_KEYS}
    r = _cli("env", env=clean)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == sorted(f"export {k}={v}" for k, v in L.YIELD_ENV.items())
    r = _cli("env", env={**clean, "MPIR_CVAR_CH4_PROGRESS_THROTTLE": "false"})
    assert "MPIR_CVAR_CH4_PROGRESS_THROTTLE=" not in r.stdout
    assert "export MPIR_CVAR_POLLS_BEFORE_YIELD=1" in r.stdout.splitlines()
    assert _cli("env", "--mode", "busy", env=clean).stdout == ""
    assert _cli("env", "--ranks", "1", env=clean).stdout == ""  # one rank never oversubscribes
    # the shell sees exactly those variables
    sh = subprocess.run(["bash", "-c", f'eval "$({sys.executable} -m hpc.core.launch env)"; '
                         'echo "$MPIR_CVAR_POLLS_BEFORE_YIELD $MPIR_CVAR_CH4_PROGRESS_THROTTLE"'],
                        capture_output=True, text=True, env=clean, timeout=60)
    assert sh.stdout.strip() == "1 true"


def test_cli_mpiexec_and_usage_errors():
    r = _cli("mpiexec")
    assert r.returncode == 0 and r.stdout.strip() == L.find_mpiexec()
    assert Path(r.stdout.strip()).exists()
    r = _cli("frobnicate")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = _cli("env", "--mode", "fast")
    assert r.returncode == 2


def test_cli_does_not_initialise_mpi():
    """The launcher runs before mpiexec: it must not import mpi4py (nor start MPI)."""
    code = ("import sys, runpy; sys.argv = ['x', 'mpiexec']\n"
            "try:\n    runpy.run_module('hpc.core.launch', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('mpi4py.MPI' in sys.modules, 'numpy' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "False False"


def test_launch_runs_a_two_rank_job(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(
        "import os\nfrom mpi4py import MPI\nc = MPI.COMM_WORLD\n"
        "s = c.allreduce(c.Get_rank() + 1)\n"
        "line = (f\"rank {c.Get_rank()} of {c.Get_size()} sum {s} \"\n"
        "        f\"yield {os.environ.get('MPIR_CVAR_POLLS_BEFORE_YIELD')} \"\n"
        "        f\"timeout {os.environ.get('MPIEXEC_TIMEOUT')} mark {os.environ.get('HPC_MARK')}\")\n"
        "lines = c.gather(line)\n"  # printed by rank 0 alone: ranks' output may interleave
        "if c.Get_rank() == 0:\n    print('\\n'.join(lines), flush=True)\n")
    r = L.launch(2, [script], progress="throttle", env={"HPC_MARK": "m"}, timeout=120,
                 capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.startswith("rank")]
    assert lines == [f"rank {i} of 2 sum 3 yield 1 timeout 120 mark m" for i in range(2)]
    r = L.launch(2, [script], progress="busy", timeout=120, capture_output=True, text=True)
    assert r.returncode == 0 and "yield None" in r.stdout


def test_launch_reports_a_failing_job(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text("from mpi4py import MPI\nimport sys\nsys.exit(3 if MPI.COMM_WORLD.Get_rank() == 1 else 0)\n")
    r = L.launch(2, [script], timeout=120, capture_output=True, text=True)
    assert r.returncode != 0


def _no_records_left(monkeypatch, tmp_path) -> Path:
    """Point tempfile's directory at an empty folder, to see what run_record leaves there."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(L.tempfile, "tempdir", str(tmp))
    return tmp


def test_run_record_returns_a_two_rank_apps_record(monkeypatch, tmp_path):
    tmp = _no_records_left(monkeypatch, tmp_path)
    rec = L.run_record(2, "hpc.stream", ["--arraysize", 1000, "--numtimes", 2, "--backend",
                                         "numpy", "--quiet"], progress="throttle",
                       env={"OMP_NUM_THREADS": "1"}, timeout=120)
    assert rec["app"] == "stream" and rec["ranks"] == 2
    assert rec["validation"]["passed"] is True
    assert list(tmp.iterdir()) == []  # the record's private directory is gone


def test_run_record_raises_with_the_error_line(monkeypatch, tmp_path):
    tmp = _no_records_left(monkeypatch, tmp_path)
    for allow_invalid in (False, True):  # exit status 2 is never a record
        with pytest.raises(RuntimeError) as e:
            L.run_record(2, "hpc.stream", ["--arraysize", "0", "--backend", "numpy"],
                         timeout=120, allow_invalid=allow_invalid)
        msg = str(e.value)
        assert "-m hpc.stream --arraysize 0" in msg and "exit status 2" in msg
        assert "error: " in msg and "--arraysize" in msg.splitlines()[-1]
    assert list(tmp.iterdir()) == []
    with pytest.raises(ValueError, match="adds --json itself"):
        L.run_record(1, "hpc.stream", ["--json", "x.json"])


def test_run_record_invalid_runs_exclusive_file_and_no_record(monkeypatch, tmp_path):
    """Exit status 1 is accepted only with allow_invalid; the file is an exclusive temporary in
    a private directory, removed afterwards; a run that writes nothing is an error."""
    tmp = _no_records_left(monkeypatch, tmp_path)
    script = tmp_path / "invalid.py"
    script.write_text(
        "import json, os, stat, sys\nfrom mpi4py import MPI\n"
        "path = sys.argv[sys.argv.index('--json') + 1]\n"
        "if MPI.COMM_WORLD.Get_rank() == 0 and '--write' in sys.argv:\n"
        "    mode = stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode)\n"
        "    size = os.path.getsize(path)\n"
        "    with open(path, 'w') as f:\n"
        "        json.dump({'path': path, 'dir_mode': mode, 'size': size,\n"
        "                   'validation': {'passed': False}}, f)\n"
        "sys.exit(1 if '--write' in sys.argv else 0)\n")
    with pytest.raises(RuntimeError, match="exit status 1"):
        L.run_record(2, None, [script, "--write"], timeout=120)
    rec = L.run_record(2, None, [script, "--write"], timeout=120, allow_invalid=True)
    assert rec["validation"]["passed"] is False
    path = Path(rec["path"])
    assert path.parent.parent == tmp and path.suffix == ".json"
    assert rec["dir_mode"] == 0o700 and rec["size"] == 0  # private directory, fresh empty file
    assert not path.exists() and list(tmp.iterdir()) == []
    with pytest.raises(RuntimeError, match="wrote no readable record"):
        L.run_record(1, None, [script], timeout=120)
    assert list(tmp.iterdir()) == []
