"""A one-node Slurm on this machine, for testing the job scripts on a real scheduler.

``LocalCluster(tmpdir).start()`` writes a slurm.conf for this host (its CPUs, a little of its
memory, proctrack/linuxproc, task/none, select/cons_tres, no cgroups, SlurmUser root, every
state/spool/log file under tmpdir), starts munged with a generated key (auth/none if munge
cannot run), then slurmctld and slurmd in the foreground as child processes, and waits until
the node is idle. ``stop()`` cancels the jobs and ends exactly the daemons it started. It needs
Debian's slurm-wlm and munge, and root (SlurmUser=root).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")


class ClusterError(RuntimeError):
    """The local cluster could not start; the message says why."""


def missing_tools() -> list[str]:
    return [t for t in DAEMONS if shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _exe(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class LocalCluster:
    """slurmctld + slurmd (+ munged) for one node, all state under one folder."""

    def __init__(self, root: Path | str, cpus: int | None = None, memory_mb: int = 2048):
        self.root = Path(root)
        self.cpus = cpus or len(os.sched_getaffinity(0))
        self.memory_mb = memory_mb
        self.host = socket.gethostname().split(".")[0]
        self.procs: dict[str, subprocess.Popen] = {}
        self.auth = "munge"
        self.conf = self.root / "slurm.conf"
        self.cgroup_plugin = ("cgroup/v2" if Path("/sys/fs/cgroup/cgroup.controllers").exists()
                              else "cgroup/v1")

    # -- environment for clients ------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        e = dict(os.environ)
        e["SLURM_CONF"] = str(self.conf)
        return e

    def run(self, *cmd: str, check: bool = True, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
        p = subprocess.run(list(cmd), env=self.env, capture_output=True, text=True,
                           timeout=timeout, **kw)
        if check and p.returncode != 0:
            raise ClusterError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
        return p

    # -- munge ------------------------------------------------------------------------------
    def _start_munge(self) -> bool:
        mdir = self.root / "munge"
        mdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(mdir, 0o700)
        key = mdir / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        self.munge_socket = mdir / "munge.socket"
        cmd = [_exe("munged"), "--foreground", "--force", f"--key-file={key}",
               f"--socket={self.munge_socket}", f"--pid-file={mdir / 'munged.pid'}",
               f"--log-file={mdir / 'munged.log'}", f"--seed-file={mdir / 'munged.seed'}"]
        if not Path(cmd[0]).exists():
            return False
        self.procs["munged"] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                                stderr=open(mdir / "munged.stderr", "w"))
        for _ in range(100):
            if self.munge_socket.exists():
                return True
            if self.procs["munged"].poll() is not None:
                return False
            time.sleep(0.05)
        return False

    # -- slurm ------------------------------------------------------------------------------
    def write_conf(self) -> None:
        r = self.root
        for d in ("state", "spool", "log"):
            (r / d).mkdir(parents=True, exist_ok=True)
        auth = (["AuthType=auth/munge", f"AuthInfo=socket={self.munge_socket}",
                 "CredType=cred/munge"] if self.auth == "munge"
                else ["AuthType=auth/none", "CredType=cred/none"])
        lines = [
            "ClusterName=hpclocal", f"SlurmctldHost={self.host}(127.0.0.1)",
            "SlurmUser=root", "SlurmdUser=root",
            f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
            *auth,
            f"StateSaveLocation={r / 'state'}", f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}", f"SlurmdPidFile={r / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
            "SlurmctldDebug=info", "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
            "SchedulerType=sched/backfill", "MpiDefault=none", "ReturnToService=2",
            "JobCompType=jobcomp/none", "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "MaxArraySize=1001", "InactiveLimit=0", "KillWait=5", "MinJobAge=300",
            "SchedulerParameters=defer_batch=0",
            f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} "
            f"RealMemory={self.memory_mb} State=UNKNOWN",
            f"PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP "
            "OverSubscribe=NO",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        # Slurm 22.05's slurmd always loads a cgroup plug-in, though with proctrack/linuxproc
        # and task/none it never creates a cgroup; 23.x accepts "disabled".
        (r / "cgroup.conf").write_text(f"CgroupPlugin={self.cgroup_plugin}\nCgroupAutomount=no\n"
                                       "ConstrainCores=no\nConstrainRAMSpace=no\n")

    def start(self, timeout: float = 60) -> "LocalCluster":
        if os.geteuid() != 0:
            raise ClusterError("the local Slurm runs with SlurmUser=root: run as root")
        miss = missing_tools()
        if miss:
            raise ClusterError(f"Slurm tools missing: {', '.join(miss)} (apt-get install "
                               "slurm-wlm munge)")
        self.root.mkdir(parents=True, exist_ok=True)
        if not self._start_munge():
            self.auth = "none"
        self.write_conf()
        logs = self.root / "log"
        self.procs["slurmctld"] = subprocess.Popen(
            [_exe("slurmctld"), "-D", "-i", "-f", str(self.conf)], env=self.env,
            stdout=open(logs / "slurmctld.out", "w"), stderr=subprocess.STDOUT)
        time.sleep(0.5)
        self.procs["slurmd"] = subprocess.Popen(
            [_exe("slurmd"), "-D", "-f", str(self.conf), "-N", self.host], env=self.env,
            stdout=open(logs / "slurmd.out", "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise ClusterError(f"{name} exited with {p.returncode}: {self.log_tail(name)}")
            p = self.run(_exe("sinfo"), "-h", "-N", "-o", "%T", check=False)
            state = p.stdout.strip()
            if p.returncode == 0 and state.startswith("idle"):
                return self
            time.sleep(0.5)
        raise ClusterError(f"node not idle after {timeout:.0f} s (state {state!r}): "
                           f"{self.log_tail('slurmd')}")

    def log_tail(self, name: str, n: int = 8) -> str:
        for path in (self.root / "log" / f"{name}.log", self.root / "log" / f"{name}.out",
                     self.root / "munge" / "munged.log"):
            if path.exists() and path.stat().st_size:
                return " | ".join(path.read_text(errors="replace").strip().splitlines()[-n:])
        return "(no log)"

    def wait(self, job_ids: list[str], timeout: float = 300) -> dict[str, str]:
        """Wait until the jobs (array jobs: all elements) left the queue; their final states."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = self.run(_exe("squeue"), "-h", "-o", "%i", check=False)
            ids = p.stdout.split()
            if not any(i == j or i.startswith(j + "_") for i in ids for j in job_ids):
                break
            time.sleep(0.5)
        else:
            raise ClusterError(f"jobs {job_ids} still queued after {timeout:.0f} s")
        out = {}
        for j in job_ids:
            p = self.run(_exe("scontrol"), "show", "job", "-o", j, check=False)
            for line in p.stdout.splitlines():
                f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                key = f.get("JobId", j) + (f"_{f['ArrayTaskId']}" if "ArrayTaskId" in f else "")
                out[key] = f"{f.get('JobState', '?')} {f.get('ExitCode', '?')}"
        return out

    def stop(self) -> None:
        """Cancel every job, then end the daemons this object started (TERM, then KILL)."""
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            self.run(_exe("scancel"), "--full", "-u", "root", check=False)
            time.sleep(1)
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.procs.clear()
