"""Rendered job scripts on a real Slurm: one node on this machine (slurmctld + slurmd + munged).

Opt-in (HPC_WITH_SLURM=1; tools/run_tests.sh passes it through and .ci/run sets it): needs
root (SlurmUser=root) and Debian's slurm-wlm and munge, which the fixture installs with apt-get
when they are missing. Every job runs hpc.stream on tiny arrays and must validate.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import MPI_ENV, ROOT

pytestmark = pytest.mark.skipif(
    os.environ.get("HPC_WITH_SLURM") != "1",
    reason="real-Slurm job tests are opt-in: set HPC_WITH_SLURM=1 (needs root and Debian's "
           "slurm-wlm and munge; .ci/run sets it)")

STREAM = ["--arraysize", "2000", "--numtimes", "4", "--backend", "numpy"]
YIELD = [f"--env={k}={v}" for k, v in MPI_ENV.items() if k.startswith("MPIR_")]


def _install() -> str | None:
    """apt-get install slurm-wlm munge; None on success, else why not."""
    if shutil.which("apt-get") is None:
        return "apt-get not available"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "slurm-wlm", "munge"]):
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if p.returncode != 0:
            return f"{' '.join(cmd)} failed: {(p.stderr or p.stdout).strip()[-300:]}"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from hpc.jobs.localcluster import ClusterError, LocalCluster, missing_tools

    if os.geteuid() != 0:
        pytest.skip("the one-node Slurm runs with SlurmUser=root: these tests need root")
    if missing_tools():
        why = _install()
        if missing_tools():
            pytest.skip(f"Slurm not installable here ({why or 'tools still missing'}): "
                        f"missing {', '.join(missing_tools())}")
    c = LocalCluster(tmp_path_factory.mktemp("slurm"), cpus=2)
    try:
        c.start()
    except ClusterError as exc:
        c.stop()
        pytest.skip(f"Slurm daemons could not run in this sandbox: {exc}")
    yield c
    c.stop()


def jobs_cli(cluster, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "hpc.jobs", *map(str, args)], capture_output=True,
                       text=True, env=cluster.env, cwd=str(cwd), timeout=120)
    assert p.returncode == 0, p.stderr
    return p


def ids_in(text: str) -> list[str]:
    return re.findall(r"job(?: array)? (\d+)", text)


def test_cluster_is_up(cluster):
    p = cluster.run("sinfo", "-h", "-N", "-o", "%N %c %T")
    assert p.stdout.split()[1:] == ["2", "idle"], p.stdout
    assert cluster.auth in ("munge", "none")


@pytest.mark.parametrize("launcher", ["srun", "mpiexec"])
def test_rendered_job_runs_and_validates(cluster, tmp_path, launcher):
    script = jobs_cli(cluster, tmp_path, "render", "--app", "stream", "--nodes", "1",
                      "--ntasks-per-node", "2", "--time", "00:03:00", "--workdir", tmp_path,
                      "--launcher", launcher, "--job-name", f"t-{launcher}", *YIELD,
                      "--", *STREAM).stdout
    (tmp_path / "job.sbatch").write_text(script)
    jid = cluster.run("sbatch", "--parsable", "job.sbatch", cwd=str(tmp_path)).stdout.strip()
    states = cluster.wait([jid], timeout=180)
    out = (tmp_path / f"t-{launcher}-{jid}.out").read_text()
    assert states[jid] == "COMPLETED 0:0", out
    assert "stream: VALID" in out
    rec = json.loads((tmp_path / f"t-{launcher}-{jid}.json").read_text())
    assert rec["ranks"] == 2 and rec["validation"]["passed"] is True
    assert rec["params"]["arraysize"] == 2000


def test_submit_cli(cluster, tmp_path):
    p = jobs_cli(cluster, tmp_path, "submit", "--app", "stream", "--ntasks-per-node", "2",
                 "--time", "00:03:00", "--workdir", tmp_path, *YIELD, "--", *STREAM,
                 "--json", "rec.json")
    (jid,) = ids_in(p.stdout)
    assert cluster.wait([jid], timeout=180)[jid] == "COMPLETED 0:0"
    assert json.loads((tmp_path / "rec.json").read_text())["validation"]["passed"] is True


def test_failed_app_fails_the_job(cluster, tmp_path):
    p = jobs_cli(cluster, tmp_path, "submit", "--app", "stream", "--time", "00:03:00",
                 "--workdir", tmp_path, "--", "--numtimes", "1", "--backend", "numpy")
    (jid,) = ids_in(p.stdout)
    state = cluster.wait([jid], timeout=180)[jid]
    assert state.startswith("FAILED") and state.endswith(" 2:0"), state  # the app's exit 2
    assert "error: --numtimes must be at least 2" in (tmp_path / f"hpc-stream-{jid}.out").read_text()


@pytest.mark.parametrize("how", ["array", "chain", "chain-script"])
def test_scaling_study_as_jobs(cluster, tmp_path, how):
    """A study as a job array, as a chain submitted from Python, and as the chain script
    (what jobs/scaling-chain.sh is) run with bash."""
    extra = {"array": ["--submit"], "chain": ["--chain", "--submit"],
             "chain-script": ["--chain"]}[how]
    p = jobs_cli(cluster, tmp_path, "scaling", "--app", "stream", "--mode", "weak",
                 "--ranks", "1,2", "--repeat", "2", "--ntasks-per-node", "2", "--time", "00:03:00",
                 "--workdir", tmp_path, "--out", "study", *extra, *YIELD,
                 "--", *STREAM)
    if how == "chain-script":
        (tmp_path / "chain.sh").write_text(p.stdout)
        p = subprocess.run(["bash", "chain.sh"], capture_output=True, text=True,
                           env=cluster.env, cwd=str(tmp_path), timeout=120)
        assert p.returncode == 0, p.stderr
    ids = ids_in(p.stdout)
    assert len(ids) == (1 if how == "array" else 4), p.stdout
    states = cluster.wait(ids, timeout=300)
    assert len(states) == 4 and all(s == "COMPLETED 0:0" for s in states.values()), states
    rows = list(csv.DictReader(open(tmp_path / "study" / "results.csv")))
    assert sorted((int(r["ranks"]), int(r["rep"])) for r in rows) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert all(r["passed"] == "True" and float(r["time_s"]) > 0 for r in rows), rows
    plot = subprocess.run([sys.executable, "-m", "hpc.scaling", "plot", str(tmp_path / "study")],
                          capture_output=True, text=True, cwd=str(ROOT))
    assert plot.returncode == 0, plot.stderr
    assert (tmp_path / "study" / "scaling.png").exists()
