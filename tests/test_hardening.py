"""Issue 17, items 1-3 and 7-9: outputs never destroy, unwritable outputs and bad numbers are
an exit 2 before any work, and the range checks of hpc.core.checks.

Items 4-6, 10 and 11 (caches, indexes, checkpoints) are tested by their owners' packages and
driven with hostile inputs by tests/test_fuzz.py.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, mpirun, run_app
from hpc.core import atomic, checks, h5io
from hpc.core.cli import make_parser
from hpc.core.errors import InputTypeError, UsageError
from hpc.core.memory import available_bytes, require_memory
from hpc.core.runtime import world

PY = sys.executable


def _listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def _one_error(proc: subprocess.CompletedProcess) -> str:
    """The run's single ``error:`` line (asserting there is exactly one, and no traceback)."""
    out = proc.stdout + proc.stderr
    lines = [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, out
    assert "Traceback" not in out, out
    return lines[0]


# -- item 1: a non-regular target is never replaced -------------------------------------------
def test_write_json_to_character_device_writes_in_place():
    before = os.stat("/dev/null")
    atomic.write_json("/dev/null", {"a": 1})
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_write_json_to_dev_full_is_a_usage_error_and_keeps_the_device():
    with pytest.raises(UsageError, match="No space left"):
        atomic.write_json("/dev/full", {"a": 1})
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_write_json_to_fifo_without_reader_fails_fast_and_keeps_it(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    with pytest.raises(UsageError, match="no reader"):
        atomic.write_json(fifo, {"a": 1})
    assert time.monotonic() - t0 < 5
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert _listing(tmp_path) == ["pipe"]


def test_write_json_to_fifo_with_reader(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)  # the reader has the FIFO open
    try:
        atomic.write_json(fifo, {"a": 1})
        out, _ = reader.communicate(timeout=10)
    finally:
        reader.kill()
    assert json.loads(out) == {"a": 1}
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_atomic_path_refuses_socket_and_directory(tmp_path):
    sock_path = tmp_path / "s"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock_path))
    try:
        for target, kind in ((sock_path, "socket"), (tmp_path, "directory")):
            with pytest.raises(UsageError, match=kind):
                with atomic.atomic_path(target):
                    pass
            with pytest.raises(UsageError, match=kind):
                atomic.write_json(target, {})
            with pytest.raises(UsageError, match=kind):
                atomic.check_output(target, "--json", stream=True)
        assert stat.S_ISSOCK(os.lstat(sock_path).st_mode)
        assert _listing(tmp_path) == ["s"]
    finally:
        s.close()


def test_hdf5_output_to_a_device_is_refused_before_writing():
    with pytest.raises(UsageError, match="character device"):
        atomic.check_output("/dev/null", "--output")
    with pytest.raises(UsageError, match="character device"):
        h5io.write("/dev/null", world(), {"/x": np.arange(3)})
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_app_json_dev_full_exits_2_and_keeps_device():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    for n in (1, 3):
        r = run_app("stream", n, "--arraysize", "1000", "--numtimes", "2", "--json", "/dev/full",
                    timeout=120)
        assert r.returncode == 2, r.stdout + r.stderr
        assert "No space left" in _one_error(r)
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


# -- item 2: private, random temporaries; no symlink followed; removed on failure/kill ---------
def test_temporary_is_random_private_and_beside_target(tmp_path):
    names = []
    for _ in range(2):
        with atomic.atomic_path(tmp_path / "out.json") as tmp:
            assert tmp.parent == tmp_path and tmp.exists() and tmp.stat().st_size == 0
            assert stat.S_IMODE(tmp.stat().st_mode) == 0o600
            names.append(tmp.name)
            tmp.write_text("{}")
    assert names[0] != names[1]
    assert str(os.getpid()) in names[0]
    assert _listing(tmp_path) == ["out.json"]


def test_planted_symlinks_for_the_old_names_are_never_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    # The old scheme's names for the next pids (and this one), pointing at the victim.
    for pid in range(os.getpid(), os.getpid() + 50):
        (tmp_path / f".out.json.tmp.{pid}").symlink_to(victim)
    atomic.write_json(tmp_path / "out.json", {"a": 1})
    assert victim.read_text() == "precious"
    assert json.loads((tmp_path / "out.json").read_text()) == {"a": 1}
    assert not (tmp_path / "out.json").is_symlink()


def test_symlinked_target_updates_the_file_it_names(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    (tmp_path / "link.json").symlink_to(real)
    atomic.write_json(tmp_path / "link.json", {"a": 2})
    assert (tmp_path / "link.json").is_symlink()
    assert json.loads(real.read_text()) == {"a": 2}


def test_failed_write_removes_the_temporary_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "r.json"
    target.write_text('{"old": true}\n')
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert _listing(tmp_path) == ["r.json"]
    assert json.loads(target.read_text()) == {"old": True}


def test_replaced_file_keeps_its_mode(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("{}")
    target.chmod(0o640)
    atomic.write_json(target, {"a": 1})
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


KILLED_WRITER = """
import os, signal, sys, time
from hpc.core import atomic
# As started from a terminal: a runner under nohup hands SIGHUP down ignored, and an ignored
# signal must stay ignored (the writer then keeps writing), which is not what is tested here.
signal.signal(signal.SIGHUP, signal.SIG_DFL)
with atomic.atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "wb") as f:
        f.write(b"x" * (1 << 20))
    print("writing", atomic._WATCHER["proc"].pid, flush=True)
    time.sleep(60)
"""


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaps counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def _wait_gone(pids, timeout: float = 30.0) -> None:
    """Wait until every process in ``pids`` has exited: a file it removes is removed by then."""
    deadline = time.monotonic() + timeout
    while not all(_gone(p) for p in pids):
        assert time.monotonic() < deadline, [p for p in pids if not _gone(p)]
        time.sleep(0.01)


def _start_writer(path: Path) -> tuple[subprocess.Popen, int]:
    """A process holding a 1 MiB temporary of ``path``; returns it and its watcher's pid."""
    p = subprocess.Popen([PY, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE,
                         text=True, cwd=str(ROOT))
    word, watcher = p.stdout.readline().split()
    assert word == "writing"
    return p, int(watcher)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_terminating_signal_removes_the_temporary(tmp_path, sig):
    """The writer's own handler removes it before the process dies (no waiting for anyone)."""
    p, _ = _start_writer(tmp_path / "ckpt.h5")
    try:
        assert len(_listing(tmp_path)) == 1  # the temporary
        p.send_signal(sig)
        p.wait(timeout=30)
    finally:
        p.kill()
    assert p.returncode != 0
    assert _listing(tmp_path) == []


def test_an_ignored_sighup_stays_ignored(tmp_path):
    """Under nohup the writer keeps writing through SIGHUP; SIGTERM still removes the file."""
    src = KILLED_WRITER.replace("signal.SIG_DFL)", "signal.SIG_IGN)")
    p = subprocess.Popen([PY, "-c", src, str(tmp_path / "ckpt.h5")], stdout=subprocess.PIPE,
                         text=True, cwd=str(ROOT))
    try:
        assert p.stdout.readline().split()[0] == "writing"
        p.send_signal(signal.SIGHUP)
        with pytest.raises(subprocess.TimeoutExpired):
            p.wait(timeout=0.5)
        assert len(_listing(tmp_path)) == 1
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    finally:
        p.kill()
    assert p.returncode != 0
    assert _listing(tmp_path) == []


def test_sigkilled_writer_temporary_is_removed_by_its_watcher(tmp_path):
    """SIGKILL runs no handler: the watcher process removes the file when the writer dies."""
    p, watcher = _start_writer(tmp_path / "ckpt.h5")
    try:
        assert len(_listing(tmp_path)) == 1
        p.kill()
        p.wait(timeout=30)
    finally:
        p.kill()
    _wait_gone([p.pid, watcher])
    assert _listing(tmp_path) == []


def test_killed_writer_temporary_is_removed_by_the_next_run(tmp_path):
    """Writer and watcher killed together (a node or cgroup kill): the next write sweeps."""
    p, watcher = _start_writer(tmp_path / "ckpt.h5")
    try:
        os.kill(watcher, signal.SIGKILL)
        p.kill()  # SIGKILL: no handler runs, and no watcher is left
        p.wait(timeout=30)
    finally:
        p.kill()
    _wait_gone([p.pid, watcher])
    left = _listing(tmp_path)
    assert len(left) == 1 and left[0].startswith(".ckpt.h5.")
    # Someone else's temporary (another live pid, another name) is never touched.
    other = tmp_path / f".ckpt.h5.hpc-{os.getpid()}-{atomic._host_tag()}-abcdef.tmp"
    other.write_text("live")
    atomic.check_output(tmp_path / "ckpt.h5", "--save")  # before the next run's work
    assert _listing(tmp_path) == [other.name]


def test_handlers_are_installed_only_while_a_temporary_is_live(tmp_path):
    """A process that is not writing gets its signals as it would without hpc.core.atomic."""
    before = {s: signal.getsignal(s) for s in atomic._SIGNALS}
    with atomic.atomic_path(tmp_path / "a.json") as tmp:
        assert all(signal.getsignal(s) is atomic._on_signal for s in atomic._SIGNALS)
        assert str(tmp) in atomic._LIVE
        tmp.write_text("{}")
    assert {s: signal.getsignal(s) for s in atomic._SIGNALS} == before
    assert not atomic._LIVE and not atomic._HANDLED


MPI_WRITER = """
import os, sys, time
from pathlib import Path
from hpc.core import atomic, run, world
def main(argv):
    c = world()
    pids = Path(sys.argv[2])
    (pids / str(os.getpid())).touch()  # files, not stdout: mpiexec may split lines it forwards
    in_mpi = sys.argv[3] == "collective"
    if c.Get_rank() == 0:
        with atomic.atomic_path(sys.argv[1]) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"x" * (1 << 20))
            (pids / str(atomic._WATCHER["proc"].pid)).touch()
            print("writing", flush=True)
            if in_mpi:  # blocked in C when the signal comes: no Python handler can run
                c.Barrier()
            else:
                time.sleep(120)
    elif in_mpi:
        time.sleep(120)
    if not in_mpi:
        c.Barrier()
    return 0
run(main)
"""


@pytest.mark.parametrize("where", ["python", "collective"])
def test_sigterm_to_mpiexec_removes_the_writers_temporary(tmp_path, where):
    """A 3-rank job stopped with SIGTERM (scancel, timeout) mid-save leaves nothing.

    mpiexec forwards SIGTERM to every rank and SIGKILLs the rest a few milliseconds after the
    first one dies, which may be before the writer's handler has run ("python": a race it
    usually wins; "collective": the writer is blocked in a collective, where a Python handler never
    runs): then its watcher removes the file. Every rank and the watcher are waited for before
    the folder is looked at.
    """
    from hpc.core.launch import mpiexec_cmd, progress_env

    script = tmp_path / "w.py"
    script.write_text(MPI_WRITER)
    out, pids = tmp_path / "out", tmp_path / "pids"
    out.mkdir()
    pids.mkdir()
    cmd = mpiexec_cmd(3, [str(script), str(out / "ck.h5"), str(pids), where])
    env = progress_env("throttle", 3, extra={"MPIEXEC_TIMEOUT": "150", "OMP_NUM_THREADS": "1"})
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env=env, cwd=str(ROOT))
    try:
        assert p.stdout.readline().strip() == "writing"
        deadline = time.monotonic() + 60
        while len(_listing(pids)) < 4:  # three ranks and the writer's watcher
            assert time.monotonic() < deadline, _listing(pids)
            time.sleep(0.01)
        assert len(_listing(out)) == 1
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
    finally:
        p.kill()
    _wait_gone([int(x) for x in _listing(pids)])
    assert _listing(out) == []


# -- item 3: unwritable outputs are exit 2 before the work ------------------------------------
@pytest.mark.parametrize("case", ["dir", "proc", "missing-parent-file", "readonly", "empty"])
def test_check_output_refuses_unwritable(tmp_path, case):
    if case == "dir":
        path = tmp_path
    elif case == "proc":
        path = Path("/proc/version")
    elif case == "missing-parent-file":
        (tmp_path / "f").write_text("")
        path = tmp_path / "f" / "sub" / "out.json"
    elif case == "readonly":
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        if os.access(ro, os.W_OK) and os.getuid() == 0:
            # root writes anywhere permissions are concerned; a read-only mount is the case
            path = Path("/proc/sys/hpc-out.json")
        else:
            path = ro / "out.json"
    else:
        path = ""
    before = _listing(tmp_path)
    with pytest.raises(UsageError):
        atomic.check_output(path, "--json")
    assert _listing(tmp_path) == before


def test_check_output_accepts_new_file_in_new_folder_without_creating_it(tmp_path):
    atomic.check_output(tmp_path / "a" / "b" / "out.json", "--json")
    assert _listing(tmp_path) == []


def test_same_path_for_two_outputs_is_refused(tmp_path):
    p = make_parser("x", "d")
    j = str(tmp_path / "r")
    with pytest.raises(UsageError, match="same file"):
        p.parse_args(["--json", j, "--output", j])
    os.symlink(j + ".h5", j + ".link")
    with pytest.raises(UsageError, match="same file"):
        p.parse_args(["--json", j + ".link", "--output", j + ".h5"])
    assert _listing(tmp_path) == ["r.link"]


def _bad_output_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    (tmp_path / "file").write_text("keep")
    return [
        (["--json", str(tmp_path)], "directory"),
        (["--output", str(tmp_path)], "directory"),
        (["--json", "/proc/version"], "/proc"),
        (["--json", str(tmp_path / "file" / "r.json")], "not a directory"),
        (["--json", str(tmp_path / "same"), "--output", str(tmp_path / "same")], "same file"),
    ]


@pytest.mark.parametrize("n", [1, 3])
def test_unwritable_outputs_exit_2_before_the_work(tmp_path, n):
    # A big, slow problem: exit 2 within seconds shows nothing ran before the check.
    cases = _bad_output_cases(tmp_path)
    # test_fuzz runs every case in-process at 1 and 3 ranks; here the real launch of three
    for extra, needle in [cases[0], cases[2]] if n == 1 else cases[-1:]:
        t0 = time.monotonic()
        r = run_app("stream", n, "--arraysize", str(2**26), "--numtimes", "1000", *extra,
                    timeout=120)
        assert r.returncode == 2, (extra, r.stdout, r.stderr)
        assert needle.lower() in _one_error(r).lower()
        assert "Function" not in r.stdout  # no kernel ran
        assert time.monotonic() - t0 < 60
        assert _listing(tmp_path) == ["file"] and (tmp_path / "file").read_text() == "keep"


def test_scaling_run_out_naming_a_file_exits_2(tmp_path):
    f = tmp_path / "FILE"
    f.write_text("keep")
    r = subprocess.run([PY, "-m", "hpc.scaling", "run", "--app", "stream", "--ranks", "1",
                        "--out", str(f)], capture_output=True, text=True, cwd=str(ROOT),
                       timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "not a directory" in _one_error(r)
    assert f.read_text() == "keep"


# -- item 7: memory estimates --------------------------------------------------------------------
def test_require_memory_message_gives_estimate_and_available():
    with pytest.raises(UsageError) as err:
        require_memory(8 * 2**40, "a 10^12-row matrix", world())
    msg = str(err.value)
    assert "8192.00 GiB per rank" in msg and "available" in msg and "\n" not in msg
    require_memory(1024, "a small thing", world())
    assert available_bytes() > 0


def test_stream_too_large_exits_2_with_estimate():
    r = run_app("stream", 1, "--arraysize", str(2**50), timeout=120)
    assert r.returncode == 2
    line = _one_error(r)
    assert "GiB" in line and "available" in line


# -- items 8 and 9: --seed, --repeat and every numeric range -----------------------------------
def test_seed_type_is_the_same_everywhere():
    p = make_parser("x", "d")
    assert p.parse_args(["--seed", str(2**63 - 1)]).seed == 2**63 - 1
    assert p.parse_args(["--seed", "0"]).seed == 0
    for bad in ("-1", str(2**63), "1.5", "1e3", "nan", "", "0x10"):
        with pytest.raises(UsageError, match="--seed"):
            p.parse_args(["--seed", bad])


def test_repeat_is_bounded():
    p = make_parser("x", "d")
    assert p.parse_args(["--repeat", str(checks.REPEAT_MAX)]).repeat == checks.REPEAT_MAX
    for bad in ("1e20", "0", "-3", str(checks.REPEAT_MAX + 1), "inf"):
        with pytest.raises(UsageError, match="--repeat"):
            p.parse_args(["--repeat", bad])


@pytest.mark.parametrize("lo, hi, lo_open, hi_open, accept, reject", [
    (0, None, True, False, ["1e-300", "5", "1e300"], ["0", "-1", "nan", "inf", "1e400", "x", ""]),
    (0, 1, False, False, ["0", "1", "0.5"], ["-0.1", "1.0000001", "nan", "-inf"]),
    (0, 1, True, True, ["0.5", "1e-9"], ["0", "1"]),
    (None, None, False, False, ["-1e300", "0", "7"], ["nan", "inf", "-inf", "-1e400"]),
])
def test_real_type(lo, hi, lo_open, hi_open, accept, reject):
    t = checks.real(lo, hi, lo_open=lo_open, hi_open=hi_open)
    for a in accept:
        assert t(a) == float(a)
    for r in reject:
        with pytest.raises(argparse.ArgumentTypeError, match="finite number"):
            t(r)


def test_check_helpers():
    assert checks.check_real("lr", 1, 0, 1) == 1.0
    assert checks.check_int("k", np.int64(3), 1) == 3
    assert checks.check_choice("m", "a", ("a", "b")) == "a"
    with pytest.raises(UsageError, match=r"lr must be a finite number in \(0, 10\], got nan"):
        checks.check_real("lr", math.nan, 0, 10, lo_open=True)
    with pytest.raises(InputTypeError, match="lr must be a real number, got str"):
        checks.check_real("lr", "0.1")
    with pytest.raises(InputTypeError):
        checks.check_real("lr", True)
    with pytest.raises(InputTypeError, match="k must be an integer, got float"):
        checks.check_int("k", 2.0, 1)
    with pytest.raises(UsageError, match=r"k must be an integer in \[1, 4\], got 5"):
        checks.check_int("k", 5, 1, 4)
    with pytest.raises(UsageError, match="m must be one of a, b, got 'c'"):
        checks.check_choice("m", "c", ("a", "b"))
    with pytest.raises(InputTypeError):
        checks.check_choice("m", 3, ("a", "b"))
    assert issubclass(UsageError, ValueError) and issubclass(InputTypeError, TypeError)


SCRIPT_FAILED_H5 = """
import numpy as np
from hpc.core import h5io, run, world
def main(argv):
    class Bad:  # fails to convert on rank 0 half-way through the write
        def __array__(self, *a, **k):
            raise RuntimeError("deliberate")
    h5io.write({path!r}, world(), {{"/a": np.arange(4), "/b": Bad()}})
    return 0
run(main)
"""


def test_failed_hdf5_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.h5"
    script = tmp_path / "s.py"
    script.write_text(SCRIPT_FAILED_H5.format(path=str(target)))
    (tmp_path / "keep").write_text("")
    r = mpirun(1, str(script), timeout=120)
    assert r.returncode != 0 and "deliberate" in r.stderr
    assert _listing(tmp_path) == ["keep", "s.py"]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
                    min_size=1, max_size=80).filter(lambda s: s not in (".", "..")),
       pad=st.integers(0, 170))
def test_any_file_name_is_written_and_leaves_nothing_else(tmp_path, name, pad):
    """Hostile names (unicode, spaces, leading dots and dashes, up to NAME_MAX bytes)."""
    name = name + "x" * pad
    if len(name.encode()) > 255:
        name = name.encode()[:255].decode(errors="ignore") or "x"
    d = tmp_path / "h"
    d.mkdir(exist_ok=True)
    for f in d.iterdir():
        f.unlink()
    atomic.check_output(d / name, "--json")
    atomic.write_json(d / name, {"n": name})
    assert _listing(d) == [name]
    assert json.loads((d / name).read_text()) == {"n": name}
