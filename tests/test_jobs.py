"""hpc.jobs: every app's script (CPU/GPU, srun/mpiexec) parses; inputs validated; no injection."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hpc.core.spec import load, names
from hpc.scaling.argv import find as A_find
from hpc.jobs import render as R
from hpc.jobs.cli import write_examples
from conftest import ROOT

APPS = names()


def jobs_cli(*args: str, env: dict | None = None, cwd: Path | None = None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "hpc.jobs", *map(str, args)],
                          capture_output=True, text=True, env=e, cwd=str(cwd or ROOT), timeout=120)


def bash_n(script: str, tmp_path: Path, name: str = "job.sh") -> None:
    path = tmp_path / name
    path.write_text(script)
    p = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert p.returncode == 0, f"bash -n failed: {p.stderr}\n{script}"


def spec(app: str, **kw) -> R.JobSpec:
    base = dict(app=app, nodes=2, ntasks_per_node=4, time="00:10:00", python="/opt/venv/bin/python",
                workdir="/scratch/me")
    base.update(kw)
    return R.JobSpec(**base)


@pytest.mark.parametrize("app", list(APPS))
@pytest.mark.parametrize("variant", ["cpu-srun", "cpu-mpiexec", "gpu-srun", "gpu-mpiexec",
                                     "cpu-pmix"])
def test_render_every_app_parses(app, variant, tmp_path):
    kind, launcher = variant.split("-")
    kw = {"launcher": "mpiexec" if launcher == "mpiexec" else "srun",
          "mpi": "pmix" if launcher == "pmix" else "pmi2", "partition": "gpu", "account": "proj1"}
    if kind == "gpu":
        kw.update(ntasks_per_node=4, gpus_per_node=4, cpus_per_task=8)
    script = R.render(spec(app, **kw))
    bash_n(script, tmp_path)
    assert script.startswith("#!/bin/bash\n")
    assert "#SBATCH --nodes=2" in script and "#SBATCH --ntasks-per-node=4" in script
    assert "#SBATCH --partition=gpu" in script and "#SBATCH --account=proj1" in script
    assert "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-" in script
    assert "export OMP_PLACES=cores" in script
    assert "export SRUN_CPUS_PER_TASK=" in script  # Slurm >= 22.05
    assert f"-m hpc.{app} " in script
    if launcher == "mpiexec":
        assert "\"$MPIEXEC\" -n \"$SLURM_NTASKS\" -ppn 4" in script and "srun --" not in script
    else:
        mpi = "pmix" if launcher == "pmix" else "pmi2"
        assert f"srun --mpi={mpi} " in script
        assert '--cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores' in script
    if kind == "gpu":
        assert "#SBATCH --gpus-per-node=4" in script and "hpc_one_gpu" in script
        assert load(app).gpu_args and " ".join(load(app).gpu_args) in script
        if launcher == "srun":
            assert "--gpu-bind=none" in script
    else:
        assert "gpus" not in script and "hpc_one_gpu" not in script


@pytest.mark.parametrize("app", list(APPS))
@pytest.mark.parametrize("mode", ["strong", "weak"])
def test_render_studies_parse(app, mode, tmp_path):
    ranks = [1, 2, 4, 8]
    st = R.StudyJob(spec(app, nodes=1, ntasks_per_node=4), mode=mode, ranks=ranks,
                    out="results/x", repeat=2)
    arr = R.render_array(st)
    bash_n(arr, tmp_path, "array.sh")
    assert "#SBATCH --array=0-7" in arr and "#SBATCH --nodes=2" in arr
    assert 'flock "$OUT/.collect.lock"' in arr and "hpc.scaling collect" in arr
    chain = R.render_chain(st)
    bash_n(chain, tmp_path, "chain.sh")
    bash_n(R.chain_job(st), tmp_path, "job.sh")
    # one job script and a loop, not one copy per run
    assert chain.count("sbatch --parsable") == 1 and chain.count("#SBATCH --nodes") == 1
    assert 'afterany:$id' in chain and "for P in 1 2 4 8; do" in chain
    subs = R.chain_submissions(st)
    assert [(p, r) for p, r, _ in subs] == [(p, r) for p in ranks for r in (1, 2)]
    for p, rep, opts in subs:
        assert f"--nodes={max(1, -(-p // 4))}" in opts and f"--export=ALL,HPC_P={p},HPC_R={rep}" in opts


def _fake_sbatch(tmp_path: Path) -> Path:
    """An sbatch stand-in: logs its options, keeps the script, answers ids 101, 102, ..."""
    log = tmp_path / "sbatch.log"
    _exe(tmp_path / "sbatch", f"""#!/bin/bash
n=$(( $(cat {tmp_path}/n 2>/dev/null || echo 100) + 1 )); echo $n > {tmp_path}/n
printf '%s\\n' "ARGS $*" >> {log}; cat > {tmp_path}/script-$n.sh
echo "$n;cluster"
""")
    return log


@pytest.mark.parametrize("app,mode,args", [
    ("stream", "weak", ["--arraysize", "1000", "--numtimes", "3"]),
    ("train", "weak", ["--global-batch", "4", "--tp", "2"]),
    ("halo", "strong", ["--grid", "8", "8", "8", "--radius", "1"]),
])
def test_chain_script_submits_each_run_sized_and_chained(tmp_path, app, mode, args):
    """Run the compact chain under bash with a stand-in sbatch, then each submitted job with
    its HPC_P/HPC_R and stand-in srun and python: every run gets its nodes, its place in the
    chain and its own rank count's options."""
    log = _fake_sbatch(tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake_py = _exe(bindir / "python", FAKE_PY.format(py=sys.executable))
    _exe(bindir / "srun", FAKE_SRUN)
    ranks = [2, 4, 8]
    st = R.StudyJob(spec(app, nodes=1, ntasks_per_node=4, python=str(fake_py),
                         workdir=str(tmp_path), app_args=args), mode=mode, ranks=ranks,
                    out="study", repeat=2)
    chain = tmp_path / "chain.sh"
    chain.write_text(R.render_chain(st))
    env = dict(os.environ, PATH=f"{bindir}:{tmp_path}:{os.environ['PATH']}")
    r = subprocess.run(["bash", str(chain)], capture_output=True, text=True, env=env,
                       cwd=str(tmp_path), timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "submitted 8 rank(s) repeat 2: job 106"
    calls = log.read_text().splitlines()
    assert calls == [f"ARGS --parsable {dep}--job-name=hpc-{app}-{mode}-p{p} "
                     f"--nodes={-(-p // 4)} --export=ALL,HPC_P={p},HPC_R={rep}"
                     for k, (p, rep) in enumerate((p, rep) for p in ranks for rep in (1, 2))
                     for dep in [f"--dependency=afterany:{100 + k} " if k else ""]]
    job = R.chain_job(st)
    plan = st.plan()
    out = tmp_path / "calls.jsonl"
    for n, (p, rep) in enumerate(((p, rep) for p in ranks for rep in (1, 2)), start=101):
        script = tmp_path / f"script-{n}.sh"
        assert script.read_text() == job  # byte for byte the script of the chain
        e = dict(env, HPC_P=str(p), HPC_R=str(rep), FAKE_OUT=str(out), SLURM_CPUS_PER_TASK="1")
        jr = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=e,
                            cwd=str(tmp_path), timeout=60)
        assert jr.returncode == 0, jr.stderr
        run, collect = [json.loads(ln)["argv"] for ln in out.read_text().splitlines()[-2:]]
        rec = str(Path("study") / "records" / f"p{p}-r{rep}.json")
        assert run == ["-m", f"hpc.{app}", *plan[p], "--json", rec]
        assert collect[:4] == ["-m", "hpc.scaling", "collect", "--app"]
    assert A_find(plan[8], "--dp" if app == "train" else "--arraysize" if app == "stream"
                  else "--grid") is not None
    bad = subprocess.run(["bash", "-c", f"HPC_P=3 HPC_R=1 bash {tmp_path}/script-101.sh"],
                         capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=60)
    assert bad.returncode == 2 and "rank count 3 is not in this study" in bad.stderr


def test_examples_in_jobs_are_current(tmp_path):
    """jobs/ is exactly what `python -m hpc.jobs examples` writes, byte for byte, with no
    path of the machine that generated it, and no script of hundreds of lines."""
    p = jobs_cli("examples", "--out", tmp_path / "jobs")
    assert p.returncode == 0, p.stderr
    written = sorted((tmp_path / "jobs").iterdir())
    assert len(written) == 2 * len(APPS) + 2
    committed = sorted(f.name for f in (ROOT / "jobs").iterdir() if f.name != "README.md")
    assert committed == [f.name for f in written], "jobs/ has files the generator does not write"
    for path in written:
        text = path.read_text()
        assert (ROOT / "jobs" / path.name).read_bytes() == path.read_bytes(), \
            f"jobs/{path.name} is stale: run python -m hpc.jobs examples"
        assert str(ROOT) not in text and sys.executable not in text and str(Path.home()) not in text
        assert len(text.splitlines()) < 100, path.name
        bash_n(text, tmp_path, "x.sh")
    again = write_examples(tmp_path / "again")
    assert [f.read_bytes() for f in sorted(again)] == [f.read_bytes() for f in written]


@pytest.mark.parametrize("opts,msg", [
    (["--partition", "debug;rm -rf /"], "--partition"),
    (["--partition", "-x"], "--partition"),
    (["--account", "a b"], "--account"),
    (["--qos", "x$(id)"], "--qos"),
    (["--job-name", "a\nb"], "--job-name"),
    (["--time", "1:00:00;touch x"], "--time"),
    (["--time", "10:61:00"], "--time"),
    (["--time", "1-25:00:00"], "hours"),
    (["--constraint", "$(id)"], "--constraint"),
    (["--mem", "1G; id"], "--mem"),
    (["--job-output", "a b.out"], "--job-output"),
    (["--env", "A B=1"], "--env"),
    (["--env", "X=a\nb"], "control characters"),
    (["--env", "NOVALUE"], "NAME=VALUE"),
    (["--nodes", "0"], "--nodes"),
    (["--cpus-per-task", "-1"], "--cpus-per-task"),
    (["--gpus-per-node", "4", "--ntasks-per-node", "2"], "one rank per GPU"),
    (["--python", "/x\n/y"], "control characters"),
    (["--", "--arraysize", "1\nrm -rf /"], "control characters"),
])
def test_bad_inputs_rejected(opts, msg):
    p = jobs_cli("render", "--app", "stream", "--time", "00:05:00", *opts)
    assert p.returncode == 2, p.stdout
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and msg in lines[0], p.stderr
    assert p.stdout == ""


def test_unknown_app_and_bad_study_rejected():
    p = jobs_cli("render", "--app", "bash", "--time", "00:05:00")
    assert p.returncode == 2 and "invalid choice" in p.stderr
    p = jobs_cli("scaling", "--app", "pagerank", "--mode", "weak", "--ranks", "1,3",
                 "--time", "00:05:00", "--out", "x", "--", "--generate", "kron:10:8")
    assert p.returncode == 2 and "powers of 2" in p.stderr
    p = jobs_cli("scaling", "--app", "stream", "--ranks", "1,x", "--time", "00:05:00", "--out", "x")
    assert p.returncode == 2 and "--ranks" in p.stderr


EVIL = ["; touch PWNED1 #", "$(touch PWNED2)", "`touch PWNED3`", "a'b\"c d", "--x=$HOME",
        "*", "&& touch PWNED4", "\\", ""]

FAKE_PY = """#!{py}
import json, os, sys
with open(os.environ["FAKE_OUT"], "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
                        "omp": os.environ.get("OMP_NUM_THREADS"),
                        "places": os.environ.get("OMP_PLACES")}}) + "\\n")
"""
# A launcher stand-in: drop its own options, run the command as rank 0 would.
FAKE_SRUN = """#!/bin/bash
while [[ $# -gt 0 && $1 == --* ]]; do shift; done
export SLURM_LOCALID=1
exec "$@"
"""
FAKE_MPIEXEC = """#!/bin/bash
while [[ $# -gt 0 && $1 == -* ]]; do case $1 in -bind-to|-n|-ppn) shift 2;; *) shift;; esac; done
export MPI_LOCALRANKID=2
exec "$@"
"""


def _exe(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.mark.parametrize("launcher", ["srun", "mpiexec"])
@pytest.mark.parametrize("gpu", [False, True])
def test_app_options_reach_the_app_verbatim(tmp_path, launcher, gpu):
    """Run the rendered script under bash with stand-in launchers: no option is re-parsed."""
    bindir = tmp_path / "dir with 'quote' and space"
    bindir.mkdir()
    fake_py = _exe(bindir / "python", FAKE_PY.format(py=sys.executable))
    _exe(bindir / "mpiexec", FAKE_MPIEXEC)
    _exe(tmp_path / "srun", FAKE_SRUN)
    work = tmp_path / "work $(touch PWNED5)"
    work.mkdir()
    out = tmp_path / "calls.jsonl"
    opts = ["--launcher", launcher, "--python", str(fake_py), "--workdir", str(work),
            "--env", "HPC_NOTE=$(touch PWNED6) `x` 'y'", "--cpus-per-task", "3"]
    if gpu:
        opts += ["--gpus-per-node", "4"]
    p = jobs_cli("render", "--app", "stream", "--time", "00:05:00", *opts, "--", *EVIL)
    assert p.returncode == 0, p.stderr
    script = tmp_path / "job.sh"
    script.write_text(p.stdout)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}", FAKE_OUT=str(out),
               SLURM_NTASKS="4", SLURM_JOB_NUM_NODES="1", SLURM_CPUS_PER_TASK="3",
               SLURM_JOB_ID="77", SLURM_JOB_NAME="hpc-stream", CUDA_VISIBLE_DEVICES="4,5,6,7")
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env,
                       cwd=str(tmp_path), timeout=60)
    assert r.returncode == 0, r.stderr
    call = json.loads(out.read_text().splitlines()[0])
    want = ["-m", "hpc.stream", *EVIL]
    if gpu:
        want += ["--backend", "cuda"]
    assert call["argv"] == want + ["--json", "hpc-stream-77.json"]
    assert call["omp"] == "3" and call["places"] == "cores"
    if gpu:  # srun's stand-in says local rank 1, mpiexec's 2: each gets its own GPU
        assert call["cuda"] == ("5" if launcher == "srun" else "6")
    assert not list(tmp_path.rglob("PWNED*")), "an option was executed by the shell"


def test_submit_uses_sbatch_and_chains(tmp_path):
    log = _fake_sbatch(tmp_path)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    p = jobs_cli("submit", "--app", "stream", "--time", "00:05:00", "--dependency", "afterok:7",
                 "--", "--arraysize", "1000", env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "submitted job 101"
    rendered = jobs_cli("render", "--app", "stream", "--time", "00:05:00", "--", "--arraysize",
                        "1000").stdout
    assert (tmp_path / "script-101.sh").read_text() == rendered
    p = jobs_cli("scaling", "--app", "stream", "--ranks", "1,2", "--time", "00:05:00", "--out",
                 "o", "--chain", "--submit", "--", "--arraysize", "1000", env=env)
    assert p.returncode == 0, p.stderr
    calls = log.read_text().splitlines()
    assert calls == ["ARGS --parsable --dependency=afterok:7",
                     "ARGS --parsable --job-name=hpc-stream-strong-p1 --nodes=1 "
                     "--export=ALL,HPC_P=1,HPC_R=1",
                     "ARGS --parsable --dependency=afterany:102 --job-name=hpc-stream-strong-p2 "
                     "--nodes=2 --export=ALL,HPC_P=2,HPC_R=1"]
    assert (tmp_path / "script-102.sh").read_text() == (tmp_path / "script-103.sh").read_text()
    printed = jobs_cli("scaling", "--app", "stream", "--ranks", "1,2", "--time", "00:05:00",
                       "--out", "o", "--chain", "--", "--arraysize", "1000").stdout
    assert (tmp_path / "script-102.sh").read_text().rstrip("\n") in printed
    p = jobs_cli("submit", "--app", "stream", "--time", "00:05:00", "--dependency", "x;y", env=env)
    assert p.returncode == 2 and "--dependency" in p.stderr


def test_unknown_verb_is_one_error_line():
    p = jobs_cli("frobnicate")
    assert p.returncode == 2 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "invalid choice" in lines[0]


def test_submit_without_sbatch_is_a_clear_error(tmp_path):
    p = jobs_cli("submit", "--app", "stream", "--time", "00:05:00", "--sbatch",
                 str(tmp_path / "no-sbatch"))
    assert p.returncode == 2 and "not found" in p.stderr
