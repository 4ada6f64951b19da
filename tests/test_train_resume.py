"""hpc.train runs that survive: a rank killed with SIGKILL at a random step, resumed with
--resume auto at the same and at another layout, continues the uninterrupted float64 curve to
1e-12; SIGTERM / SIGUSR1 checkpoint and exit 0; a corrupt checkpoint exits 2 naming the file
and the field; numeric options have finite ranges; a resumed run is validated against its
checkpoint, not by a falling loss over a short window."""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import ROOT, TEST_ENV, load_json, run_app
from hpc.core.launch import mpiexec_cmd, progress_env

# Tiny float64 model with a warm-up and cosine schedule, weight decay and active clipping, so
# the checkpoint must carry every piece of state for the curve to continue exactly.
TINY = ["--layers", "4", "--hidden", "16", "--heads", "4", "--seq-len", "8", "--vocab", "200",
        "--global-batch", "12", "--micro-batches", "2", "--dtype", "float64", "--lr", "1e-2",
        "--seed", "11", "--lr-warmup-steps", "3", "--lr-decay-style", "cosine",
        "--lr-decay-steps", "40", "--min-lr", "1e-3", "--weight-decay", "0.1", "--clip-grad", "0.5",
        "--reference", "off"]
STEPS = 40


def train(tmp_path: Path, n: int, *args: str, name: str = "run", check: bool = True,
          timeout: int = 240):
    out = tmp_path / f"{name}.json"
    r = run_app("train", n, *TINY, "--json", str(out), *args, timeout=timeout)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
        return load_json(out)
    return r


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The one-rank curve of STEPS steps, and its last checkpoint's history."""
    d = tmp_path_factory.mktemp("whole")
    rec = train(d, 1, "--steps", str(STEPS), "--save-dir", str(d / "ck"))
    assert rec["metrics"]["checkpoints"][-1].endswith(f"step_{STEPS:08d}.h5")
    return rec["metrics"]["losses"]


def _valid_record(rec: dict) -> None:
    """The record matches hpc.core's JSON Schema (when jsonschema is installed)."""
    try:
        from hpc.core.provenance import validate_record
        validate_record(rec)
    except ImportError:
        pass


def _children(pid: int) -> list[int]:
    """Every descendant process of ``pid`` (from /proc)."""
    parents: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(p.name))
    out, todo = [], [pid]
    while todo:
        for c in parents.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _ranks(pid: int) -> list[int]:
    """The rank processes (python -m hpc.train) under mpiexec ``pid``."""
    found = []
    for c in _children(pid):
        try:
            cmd = Path(f"/proc/{c}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"hpc.train" in cmd and any(b"python" in a for a in cmd[:1]):
            found.append(c)
    return found


def start(n: int, *args: str) -> subprocess.Popen:
    cmd = mpiexec_cmd(n, [*TINY, *args], module="hpc.train")
    env = progress_env("throttle", n, extra={**TEST_ENV, "MPIEXEC_TIMEOUT": "240"})
    return subprocess.Popen(cmd, env=env, cwd=str(ROOT), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_for_step(proc: subprocess.Popen, step: int, seen: list[str]) -> None:
    """Read the run's output until its progress line of ``step`` (or its end)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if " step " in line and int(line.split(" step ")[1].split()[0]) >= step:
            return
    raise AssertionError("the run ended before step %d:\n%s" % (step, "".join(seen)))


def finish(proc: subprocess.Popen, seen: list[str]) -> str:
    out, _ = proc.communicate(timeout=300)
    return "".join(seen) + (out or "")


def combined(folder: Path) -> list[float]:
    """The loss history since step 0 in a folder's newest checkpoint."""
    newest = sorted(folder.glob("step_*.h5"))[-1]
    with h5py.File(newest) as f:
        return f["/history/losses"][...].tolist()


def test_kill9_at_random_step_resumes_the_same_curve(tmp_path, uninterrupted):
    rng = random.Random(os.environ.get("PYTEST_XDIST_WORKER", "") + str(time.time()))
    # from step 7 on, step 3's file is complete: the step-6 save waited for its writer
    kill_after = rng.randint(7, 16)
    ck = tmp_path / "ck"
    proc = start(2, "--pp", "2", "--steps", str(STEPS), "--save-every", "3", "--keep", "2",
                 "--save-dir", str(ck))
    seen: list[str] = []
    try:
        wait_for_step(proc, kill_after, seen)
        victims = _ranks(proc.pid)
        assert len(victims) == 2, (victims, "".join(seen))
        os.kill(rng.choice(victims), signal.SIGKILL)
        out = finish(proc, seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0, out
    saved = sorted(ck.glob("step_*.h5"))
    assert saved and len(saved) <= 2, saved  # --keep 2
    at = int(saved[-1].stem.split("_")[1])
    assert at % 3 == 0 and 3 <= at < STEPS
    other = tmp_path / "ck_other"
    shutil.copytree(ck, other)
    # the same layout, then another (3 ranks of data parallelism, ZeRO-1)
    for folder, n, layout in ((ck, 2, ["--pp", "2"]), (other, 3, ["--dp", "3", "--zero1"])):
        rec = train(tmp_path, n, *layout, "--steps", str(STEPS), "--save-dir", str(folder),
                    "--resume", "auto", "--save-every", "3", name=f"resume{n}")
        assert rec["metrics"]["first_step"] == at
        assert rec["validation"]["passed"] and rec["validation"]["continues_checkpoint_curve"]
        np.testing.assert_allclose(rec["metrics"]["losses"], uninterrupted[at:], rtol=1e-12)
        np.testing.assert_allclose(combined(folder), uninterrupted, rtol=1e-12)
    # asked again, the run is complete: nothing more to do, still a valid record
    rec = train(tmp_path, 1, "--steps", str(STEPS), "--save-dir", str(ck), "--resume", "auto",
                name="again")
    assert rec["metrics"]["losses"] == [] and rec["metrics"]["first_step"] == STEPS
    assert rec["validation"]["passed"]
    _valid_record(rec)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_checkpoints_and_exits_0(tmp_path, uninterrupted, sig):
    ck = tmp_path / "ck"
    proc = start(3, "--steps", "100000", "--save-dir", str(ck), "--json",
                 str(tmp_path / "s.json"))
    seen: list[str] = []
    try:
        wait_for_step(proc, 3, seen)
        proc.send_signal(sig)  # mpiexec passes it to every rank, as srun does under Slurm
        out = finish(proc, seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    rec = load_json(tmp_path / "s.json")
    stop = rec["metrics"]["last_step"]
    assert rec["metrics"]["stopped_by_signal"] == sig.name
    path = ck / f"step_{stop:08d}.h5"
    assert f"{sig.name}: stopped after step {stop}, checkpoint written to {path}" in out
    with h5py.File(path) as f:
        assert int(f.attrs["step"]) == stop
        hist = f["/history/losses"][...]
    assert len(hist) == stop
    n = min(stop, STEPS)
    np.testing.assert_allclose(hist[:n], uninterrupted[:n], rtol=1e-12)


def test_resumed_short_run_is_valid_against_its_checkpoint(tmp_path):
    """Two steps resumed need not lower the loss (issue 17 item 11): the record checks them
    against the checkpoint and the one-rank reference instead."""
    ck = tmp_path / "ck.h5"
    train(tmp_path, 1, "--steps", "3", "--save", str(ck), name="a")
    rec = train(tmp_path, 2, "--tp", "2", "--steps", "2", "--load", str(ck), "--reference",
                "on", name="b")
    v = rec["validation"]
    assert v["passed"] and v["continues_checkpoint_curve"] and "loss_decreased" not in v
    assert v["reference_max_rel_diff"] <= 1e-9


def _corrupt(src: Path, dst: Path, how: str) -> None:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        if how == "shape":
            del f["/params/layers.1.mlp.fc1.w"]
            f["/params/layers.1.mlp.fc1.w"] = np.zeros((16, 63))
        elif how == "step":
            f.attrs["step"] = -5
        elif how == "nan":
            a = f["/params/embed.wpe"][...]
            a[2, 3] = np.nan
            f["/params/embed.wpe"][...] = a
        elif how == "missing":
            del f["/adam/v/head.lnf.g"]
        elif how == "negative-v":
            f["/adam/v/layers.0.ln1.b"][...] = -1.0
        elif how == "history":
            del f["/history/losses"]
            f["/history/losses"] = np.zeros(1)
        elif how == "history-start":
            f.attrs["history_start"] = 7
        elif how == "adam_t":
            f.attrs["adam_t"] = 10 ** 6


CORRUPT = {"shape": "/params/layers.1.mlp.fc1.w has shape (16, 63), expected (16, 64)",
           "step": "step must be >= 0, got -5",
           "nan": "/params/embed.wpe has 1 non-finite values",
           "missing": "/adam/v/head.lnf.g is missing",
           "negative-v": "/adam/v/layers.0.ln1.b has negative values",
           "history": "/history/losses has 1 entries, the checkpoint's steps 0 to 2 are 2",
           "history-start": "history_start 7 is more than step 2",
           "adam_t": "adam_t 1000000 is more than step"}


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("good")
    train(d, 1, "--steps", "2", "--save", str(d / "ck.h5"))
    return d / "ck.h5"


@pytest.mark.parametrize("how", list(CORRUPT))
def test_corrupt_checkpoint_raises_naming_file_and_field(tmp_path, good_checkpoint, how):
    """Trainer.load (in process, one rank) names the file and the field."""
    from mpi4py import MPI

    from hpc.core.errors import UsageError
    from hpc.train import GPTConfig, Trainer

    bad = tmp_path / f"{how}.h5"
    _corrupt(good_checkpoint, bad, how)
    cfg = GPTConfig(vocab=200, hidden=16, heads=4, layers=4, seq_len=8)
    with Trainer(cfg, dtype="float64", global_batch=12, micro_batches=2, seed=11,
                 comm=MPI.COMM_SELF) as t:
        with pytest.raises(UsageError) as e:
            t.load(bad)
    assert str(e.value).startswith(f"load {bad}: ") and CORRUPT[how] in str(e.value)


@pytest.mark.parametrize("how,n", [("shape", 3), ("nan", 1)])
def test_corrupt_checkpoint_exits_2_naming_file_and_field(tmp_path, good_checkpoint, how, n):
    bad = tmp_path / f"{how}.h5"
    _corrupt(good_checkpoint, bad, how)
    r = train(tmp_path, n, "--steps", "1", "--load", str(bad), check=False)
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.returncode == 2 and len(errs) == 1, r.stdout + r.stderr
    assert f"--load {bad}: " in errs[0] and CORRUPT[how] in errs[0], errs[0]
    assert "Traceback" not in r.stderr


PARSER_BAD = {  # refused by the parser's range checks (in process: no launch needed)
    "lr-huge": ["--lr", "1e400"], "lr-nan": ["--lr", "nan"], "lr-zero": ["--lr", "0"],
    "weight-decay-inf": ["--weight-decay", "inf"], "clip-nan": ["--clip-grad", "nan"],
    "clip-negative": ["--clip-grad", "-1"], "eval-fraction": ["--eval-fraction", "0.9"],
    "keep-0": ["--keep", "0"], "save-every-neg": ["--save-every", "-2"],
    "steps-huge": ["--steps", "1e20"], "peak-inf": ["--peak-tflops", "inf"],
}


@pytest.mark.parametrize("case", list(PARSER_BAD))
def test_numeric_options_have_finite_ranges(case):
    from hpc.core.errors import UsageError
    from hpc.train.app import parser

    with pytest.raises(UsageError) as e:  # the CLI's exit 2 with one error: line
        parser().parse_args(PARSER_BAD[case])
    assert PARSER_BAD[case][0] in str(e.value) and "expected" in str(e.value), str(e.value)


BAD_OPTIONS = {  # refused before any work, on every rank
    "min-lr-above": (["--min-lr", "0.5"], "--min-lr 0.5 is above --lr"),
    "save-every-no-dir": (["--save-every", "2"], "--save-every needs --save-dir"),
    "resume-auto-no-dir": (["--resume", "auto"], "--resume auto needs --save-dir"),
    "save-dir-file": (["--save-dir", "{tmp}/file.txt"], "is a file, not a directory"),
    "resume-missing": (["--resume", "/nonexistent/ck.h5"], "--resume /nonexistent/ck.h5: "
                                                           "cannot open"),
    "decay-before-warmup": (["--lr-warmup-steps", "5", "--lr-decay-style", "linear",
                             "--lr-decay-steps", "5"], "--lr-decay-steps"),
}


@pytest.mark.parametrize("case", list(BAD_OPTIONS))
def test_bad_options_exit_2(tmp_path, case):
    args, msg = BAD_OPTIONS[case]
    (tmp_path / "file.txt").write_text("a file")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = train(tmp_path, 1, "--steps", "1", *args, check=False)
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.returncode == 2 and len(errs) == 1 and msg in errs[0], r.stdout + r.stderr
    assert "Traceback" not in r.stderr


def test_slurm_job_asks_for_the_signal_and_resumes():
    from hpc.jobs import render as R

    script = R.render(R.JobSpec(app="train", nodes=1, ntasks_per_node=2, time="01:00:00",
                                python="/opt/venv/bin/python", workdir="/scratch/me"))
    assert "#SBATCH --signal=USR1@120" in script
    assert "--save-dir checkpoints --save-every 50 --resume auto" in script


def test_eval_loss_in_progress_record_and_plot(tmp_path):
    """--eval-every: the held-out loss in the progress line and the record, and the loss
    curve (train and eval) drawn from the record by python -m hpc report --plot."""
    pytest.importorskip("matplotlib")
    rec_path = tmp_path / "ev.json"
    r = run_app("train", 1, *TINY, "--steps", "4", "--eval-every", "2", "--eval-batches", "2",
                "--json", str(rec_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert sum("eval-loss" in ln for ln in r.stdout.splitlines()) == 2
    _valid_record(load_json(rec_path))
    m = load_json(rec_path)["metrics"]
    assert m["eval_steps"] == [2, 4] and len(m["eval_losses"]) == 2
    assert all(4.0 < x < 6.0 for x in m["eval_losses"])  # about ln 200 = 5.3 untrained
    png = tmp_path / "curve.png"
    p = subprocess.run([sys.executable, "-m", "hpc", "report", str(rec_path), "--plot",
                        str(png)], capture_output=True, text=True, cwd=str(ROOT), timeout=120)
    assert p.returncode == 0, p.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_newest_complete_checkpoint_and_keep(tmp_path, good_checkpoint):
    """--resume auto's choice: the highest step whose file opens as a format-2 checkpoint
    (a damaged newest file is passed over; temporaries and other names are ignored)."""
    from hpc.train import checkpoint as ck

    for step in (2, 4, 6):
        shutil.copy(good_checkpoint, tmp_path / ck.file_name(step))
    (tmp_path / ck.file_name(8)).write_bytes(b"not HDF5: a file cut short")
    (tmp_path / ".step_00000010.h5.tmp.x").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    assert [s for s, _ in ck.listing(tmp_path)] == [2, 4, 6, 8]
    assert ck.newest(tmp_path) == tmp_path / ck.file_name(6)
    assert ck.newest(tmp_path / "none") is None


def test_checkpoint_without_history_continues(tmp_path, good_checkpoint):
    """A checkpoint of the first format (no history) loads; the history then begins at its
    step, and the next checkpoint says so, so it loads too."""
    old = tmp_path / "old.h5"
    shutil.copy(good_checkpoint, old)
    with h5py.File(old, "r+") as f:
        del f["/history"]
        del f.attrs["history_start"]
        del f.attrs["format"]
    new = tmp_path / "new.h5"
    rec = train(tmp_path, 1, "--steps", "2", "--load", str(old), "--save", str(new),
                "--reference", "on")
    assert rec["validation"]["passed"] and rec["metrics"]["first_step"] == 2
    with h5py.File(new) as f:
        assert int(f.attrs["history_start"]) == 2 and int(f.attrs["step"]) == 4
        assert len(f["/history/losses"]) == 2
    rec = train(tmp_path, 1, "--steps", "1", "--load", str(new), name="again")
    assert rec["validation"]["continues_checkpoint_curve"]
