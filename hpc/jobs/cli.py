"""`python -m hpc.jobs`: SLURM batch scripts for every workload, and their submission.

  render    print a ready sbatch script for one run of an app (CPU nodes, or GPU nodes
            with one rank per GPU when --gpus-per-node is given)
  submit    the same script, handed to sbatch (prints the job id)
  scaling   a whole scaling study: one job array (default) or a dependency chain of jobs
            sized per rank count (--chain); --submit hands it to sbatch
  examples  regenerate every script in jobs/ (every app, CPU and GPU, and a study as a job
            array and as a chain); a test checks the committed jobs/ are current

App options go after `--`, e.g.
  python -m hpc.jobs render --app cg --nodes 4 --ntasks-per-node 32 --time 00:30:00 \\
      --partition compute -- --problem hpcg:192 --method pipecg
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from hpc.core.atomic import atomic_path
from hpc.core.cli import AppParser, mark_output, split_passthrough
from hpc.core.errors import EXIT_USAGE, UsageError
from hpc.core.spec import all_specs, names

from . import render as R


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _fmt(prog: str) -> argparse.HelpFormatter:
    # The help texts state their defaults; ArgumentDefaultsHelpFormatter would repeat them.
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _job_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--app", required=True, choices=names(), help="workload")
    p.add_argument("--nodes", type=_int, default=1, help="nodes (default: 1)")
    p.add_argument("--ntasks-per-node", type=_int, help="MPI ranks per node (default: "
                   "--gpus-per-node on GPU nodes, else 1)")
    p.add_argument("--gpus-per-node", type=_int, help="GPUs per node: a GPU job, one rank per GPU")
    p.add_argument("--cpus-per-task", type=_int, default=1,
                   help="cores per rank = OMP_NUM_THREADS (default: 1)")
    p.add_argument("--time", required=True, help="wall-clock limit, HH:MM:SS or D-HH:MM:SS")
    p.add_argument("--partition", help="partition (default: the cluster's)")
    p.add_argument("--account", help="account to charge")
    p.add_argument("--qos", help="quality of service")
    p.add_argument("--constraint", help="node features, e.g. 'a100&ib'")
    p.add_argument("--mem", help="memory per node, e.g. 64G")
    p.add_argument("--exclusive", action="store_true", help="whole nodes")
    p.add_argument("--job-name", help="job name (default: hpc-APP)")
    p.add_argument("--job-output", help="sbatch --output pattern (default: %%x-%%j.out)")
    p.add_argument("--launcher", choices=R.LAUNCHERS, default="srun",
                   help="srun (default) or mpiexec (Hydra inside the allocation)")
    p.add_argument("--mpi", choices=R.MPI_PLUGINS, default="pmi2",
                   help="srun's --mpi plug-in: pmi2 for the mpich wheel (PMI-1/2), pmix for "
                        "an MPI built with PMIx (default: pmi2)")
    p.add_argument("--python", default=sys.executable,
                   help="Python on the compute nodes (default: this one)")
    p.add_argument("--workdir", default=str(Path.cwd()), help="folder the job runs in "
                   "(default: the current one)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="export this in the job (repeatable)")


def parser() -> AppParser:
    p = AppParser(prog="python -m hpc.jobs", description=__doc__, formatter_class=_fmt)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=AppParser)
    for name, what in (("render", "print an sbatch script"), ("submit", "submit it with sbatch")):
        s = sub.add_parser(name, help=what, formatter_class=_fmt)
        _job_options(s)
        if name == "submit":
            s.add_argument("--sbatch", default="sbatch", help="sbatch command (default: sbatch)")
            s.add_argument("--dependency", help="sbatch --dependency, e.g. afterok:1234")
    s = sub.add_parser("scaling", help="a scaling study as a job array or chain",
                       formatter_class=_fmt)
    _job_options(s)
    s.add_argument("--mode", choices=["strong", "weak"], default="strong", help="study mode")
    s.add_argument("--ranks", required=True, help="comma-separated rank counts, e.g. 1,2,4,8")
    s.add_argument("--repeat", type=_int, default=1, help="runs per rank count (default: 1)")
    s.add_argument("--out", required=True, help="study folder (records, logs, results.csv)")
    s.add_argument("--chain", action="store_true",
                   help="a bash script submitting one job per run, each after the previous")
    s.add_argument("--submit", action="store_true", help="submit instead of printing")
    s.add_argument("--sbatch", default="sbatch", help="sbatch command (default: sbatch)")
    e = sub.add_parser("examples", help="regenerate every script in jobs/",
                       formatter_class=_fmt,
                       description="Write every file of jobs/ but its README, deterministically: "
                                   "placeholders (PARTITION, ACCOUNT, /path/to/venv/bin/python, "
                                   "/path/to/hpc) instead of this machine's paths.")
    mark_output(e, e.add_argument("--out", default="jobs", help="folder (default: jobs)"),
                directory=True)
    return p


def _spec(a: argparse.Namespace, app_args: list[str]) -> R.JobSpec:
    env = {}
    for item in a.env:
        k, sep, v = item.partition("=")
        if not sep:
            raise R.JobError(f"--env expects NAME=VALUE, got {item!r}")
        env[k] = v
    return R.JobSpec(app=a.app, nodes=a.nodes, ntasks_per_node=a.ntasks_per_node,
                     time=a.time, gpus_per_node=a.gpus_per_node, cpus_per_task=a.cpus_per_task,
                     partition=a.partition, account=a.account, qos=a.qos,
                     constraint=a.constraint, mem=a.mem, exclusive=a.exclusive,
                     job_name=a.job_name, output=a.job_output, launcher=a.launcher, mpi=a.mpi,
                     python=a.python, workdir=a.workdir, env=env, app_args=app_args)


def sbatch(script: str, cmd: str = "sbatch", extra: Sequence[str] = ()) -> str:
    """Submit a script on stdin; return the job id."""
    exe = shutil.which(cmd)
    if exe is None:
        raise R.JobError(f"{cmd}: not found (is Slurm installed here?)")
    proc = subprocess.run([exe, "--parsable", *extra], input=script, text=True,
                          capture_output=True)
    if proc.returncode != 0:
        raise R.JobError(f"sbatch failed: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout.strip().split(";")[0]


def _ranks(text: str) -> list[int]:
    try:
        vals = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise R.JobError(f"--ranks {text!r}: expected rank counts like 1,2,4") from None
    if not vals:
        raise R.JobError("--ranks: at least one rank count")
    return vals


#: The placeholders of jobs/: nothing of the machine that generated them (jobs/README.md).
EXAMPLE = dict(time="00:30:00", python="/path/to/venv/bin/python", workdir="/path/to/hpc",
               partition="PARTITION", account="ACCOUNT")


def write_examples(out: Path) -> list[Path]:
    """The scripts of jobs/: every app on CPU and GPU nodes, and a study as an array and as a
    chain. Deterministic (a test regenerates them and compares byte for byte)."""
    out.mkdir(parents=True, exist_ok=True)
    scripts: dict[str, str] = {}
    for spec in all_specs():
        cpu = R.JobSpec(app=spec.name, nodes=2, ntasks_per_node=32, exclusive=True, **EXAMPLE)
        gpu = R.JobSpec(app=spec.name, nodes=2, gpus_per_node=4, cpus_per_task=8,
                        exclusive=True, **EXAMPLE)
        scripts[f"{spec.name}-cpu.sbatch"] = R.render(cpu)
        scripts[f"{spec.name}-gpu.sbatch"] = R.render(gpu)
    st = R.StudyJob(R.JobSpec(app="stream", nodes=1, ntasks_per_node=32, **EXAMPLE),
                    mode="weak", ranks=[1, 2, 4, 8, 16, 32, 64],
                    out="scaling/results/stream_weak_cluster", repeat=3)
    scripts["scaling-array.sbatch"] = R.render_array(st)
    scripts["scaling-chain.sh"] = R.render_chain(st)
    written = []
    for name, text in scripts.items():
        path = out / name
        with atomic_path(path) as tmp:
            tmp.write_text(text)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    argv, tail = split_passthrough(argv)
    p = parser()
    a, extra = p.parse_known_args(argv)
    if extra:
        p.error(f"unrecognized arguments: {' '.join(extra)} (app options go after --)")
    try:
        if a.cmd == "examples":
            for path in write_examples(Path(a.out)):
                print(f"wrote {path}")
            return 0
        spec = _spec(a, tail)
        if a.cmd == "render":
            sys.stdout.write(R.render(spec))
            return 0
        if a.cmd == "submit":
            script = R.render(spec)
            extra_args = []
            if a.dependency:
                if not re.fullmatch(r"[a-z]+(:\d+)+(,[a-z]+(:\d+)+)*", a.dependency):
                    raise R.JobError(f"--dependency {a.dependency!r}: expected e.g. afterok:1234")
                extra_args.append(f"--dependency={a.dependency}")
            print(f"submitted job {sbatch(script, a.sbatch, extra_args)}")
            return 0
        st = R.StudyJob(spec, mode=a.mode, ranks=_ranks(a.ranks), out=a.out, repeat=a.repeat)
        if not a.submit:
            sys.stdout.write(R.render_chain(st) if a.chain else R.render_array(st))
            return 0
        if not a.chain:
            print(f"submitted job array {sbatch(R.render_array(st), a.sbatch)} "
                  f"({len(st.ranks) * st.repeat} runs); results in {a.out}/results.csv")
            return 0
        script = R.chain_job(st)
        dep: list[str] = []
        for ranks, rep, opts in R.chain_submissions(st):
            jid = sbatch(script, a.sbatch, dep + opts)
            print(f"submitted {ranks} rank(s) repeat {rep}: job {jid}")
            dep = [f"--dependency=afterany:{jid}"]
        return 0
    except R.JobError as exc:
        raise UsageError(str(exc)) from None


def entry(argv: Sequence[str] | None = None) -> int:
    try:
        return main(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
