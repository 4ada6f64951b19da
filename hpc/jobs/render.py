"""SLURM batch scripts for the suite's workloads: validated inputs, shell-quoted values.

Nothing a user types reaches the script unchecked: names, partitions and accounts match strict
patterns (they go on ``#SBATCH`` lines, which sbatch parses without a shell), counts are
bounded integers, the time is ``[D-]HH:MM:SS``, and every app option, path and environment
value is passed through :func:`shlex.quote`; control characters are refused everywhere.
"""
from __future__ import annotations

import math
import re
import shlex
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Sequence

from hpc.core.spec import StudyError, load, names

NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
TIME_RE = re.compile(r"(?:(\d{1,3})-)?(\d{1,3}):([0-5]\d):([0-5]\d)")
CONSTRAINT_RE = re.compile(r"[A-Za-z0-9_.:&|,\[\]*-]{1,128}")
MEM_RE = re.compile(r"\d{1,9}[KMGT]?")
SBATCH_PATH_RE = re.compile(r"[A-Za-z0-9_./%+-]{1,255}")
MPI_PLUGINS = ("pmi2", "pmix", "none")
LAUNCHERS = ("srun", "mpiexec")
MAX_COUNT = 1_000_000


class JobError(ValueError):
    """Invalid job input: the message names the option."""


def _count(name: str, v: int | None, lo: int = 1, hi: int = MAX_COUNT) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise JobError(f"{name} must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def _name(opt: str, v: str | None) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not NAME_RE.fullmatch(v):
        raise JobError(f"{opt} {v!r}: use letters, digits, '_', '.', '-' (at most 64, "
                       "not starting with '.' or '-')")
    return v


def _text(opt: str, v: str) -> str:
    """Any text that will be shell-quoted, minus control characters (newlines, NUL, ...)."""
    if not isinstance(v, str):
        raise JobError(f"{opt}: expected text, got {v!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise JobError(f"{opt}: control characters (newline, tab, NUL, ...) are not allowed: {v!r}")
    return v


def check_time(v: str) -> str:
    m = TIME_RE.fullmatch(v or "")
    if not m:
        raise JobError(f"--time {v!r}: expected HH:MM:SS or D-HH:MM:SS")
    if m.group(1) is not None and int(m.group(2)) > 23:
        raise JobError(f"--time {v!r}: hours must be < 24 when days are given")
    return v


def q(v: str | int | Path) -> str:
    return shlex.quote(str(v))


@dataclass
class JobSpec:
    """One batch job running one workload."""

    app: str
    nodes: int
    ntasks_per_node: int | None = None
    time: str = "00:10:00"
    gpus_per_node: int | None = None
    cpus_per_task: int = 1
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    mem: str | None = None
    exclusive: bool = False
    job_name: str | None = None
    output: str | None = None
    launcher: str = "srun"
    mpi: str = "pmi2"
    python: str = field(default_factory=lambda: sys.executable)
    workdir: str = field(default_factory=lambda: str(Path.cwd()))
    env: dict[str, str] = field(default_factory=dict)
    app_args: list[str] = field(default_factory=list)

    def validate(self) -> "JobSpec":
        if self.app not in names():
            raise JobError(f"--app {self.app!r}: one of {', '.join(names())}")
        _count("--nodes", self.nodes)
        _count("--gpus-per-node", self.gpus_per_node, 1, 64)
        if self.ntasks_per_node is None:
            self.ntasks_per_node = self.gpus_per_node or 1
        _count("--ntasks-per-node", self.ntasks_per_node, 1, 4096)
        _count("--cpus-per-task", self.cpus_per_task, 1, 4096)
        if self.gpus_per_node and self.ntasks_per_node != self.gpus_per_node:
            raise JobError(f"GPU jobs run one rank per GPU: --ntasks-per-node "
                           f"({self.ntasks_per_node}) must equal --gpus-per-node "
                           f"({self.gpus_per_node})")
        check_time(self.time)
        for opt, v in (("--partition", self.partition), ("--account", self.account),
                       ("--qos", self.qos), ("--job-name", self.job_name)):
            _name(opt, v)
        if self.constraint is not None and not CONSTRAINT_RE.fullmatch(self.constraint):
            raise JobError(f"--constraint {self.constraint!r}: not a node feature expression")
        if self.mem is not None and not MEM_RE.fullmatch(self.mem):
            raise JobError(f"--mem {self.mem!r}: expected a size like 4000M or 64G")
        if self.output is not None and not SBATCH_PATH_RE.fullmatch(self.output):
            raise JobError(f"--job-output {self.output!r}: use letters, digits and _ . / % + - "
                           "(sbatch filename patterns like %x-%j.out)")
        if self.launcher not in LAUNCHERS:
            raise JobError(f"--launcher {self.launcher!r}: one of {', '.join(LAUNCHERS)}")
        if self.mpi not in MPI_PLUGINS:
            raise JobError(f"--mpi {self.mpi!r}: one of {', '.join(MPI_PLUGINS)}")
        _text("--python", self.python)
        _text("--workdir", self.workdir)
        for k, v in self.env.items():
            if not ENV_RE.fullmatch(k):
                raise JobError(f"--env {k!r}: not a valid environment variable name")
            _text(f"--env {k}", v)
        for a in self.app_args:
            _text("app option", a)
        return self

    @property
    def ntasks(self) -> int:
        return self.nodes * int(self.ntasks_per_node or 1)


def _template(name: str) -> str:
    return resources.files("hpc.jobs").joinpath("templates", name).read_text()


def _fill(text: str, values: dict[str, str]) -> str:
    for k, v in values.items():
        text = text.replace("{{" + k + "}}", v)
    left = re.findall(r"\{\{[a-z_]+\}\}", text)
    if left:
        raise RuntimeError(f"template placeholders not filled: {left}")
    return re.sub(r"\n{3,}", "\n\n", text)


def sbatch_lines(s: JobSpec, name: str, array: str | None = None,
                 nodes: int | None = None) -> str:
    lines = [f"#SBATCH --job-name={name}", f"#SBATCH --nodes={nodes or s.nodes}",
             f"#SBATCH --ntasks-per-node={s.ntasks_per_node}",
             f"#SBATCH --cpus-per-task={s.cpus_per_task}", f"#SBATCH --time={s.time}"]
    if s.gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={s.gpus_per_node}")
    for opt, v in (("partition", s.partition), ("account", s.account), ("qos", s.qos),
                   ("constraint", s.constraint), ("mem", s.mem)):
        if v is not None:
            lines.append(f"#SBATCH --{opt}={v}")
    if s.exclusive:
        lines.append("#SBATCH --exclusive")
    if s.app == "train":  # it checkpoints and exits 0 on SIGUSR1: sent to every task 2 min
        lines.append("#SBATCH --signal=USR1@120")  # before the time limit (--resume auto)
    if array:
        lines.append(f"#SBATCH --array={array}")
    lines.append(f"#SBATCH --output={s.output or ('%x-%A_%a.out' if array else '%x-%j.out')}")
    return "\n".join(lines)


def words(argv: Sequence[str]) -> str:
    """Each argument shell-quoted, space separated."""
    return " ".join(q(a) for a in argv)


def launch_line(s: JobSpec, ntasks: str, nodes: str, argv_words: str,
                json_arg: str | None) -> str:
    """The srun (or mpiexec) command that starts the workload.

    ntasks, nodes, argv_words and json_arg are shell words already (quoted constants or
    quoted variable expansions), never raw user text.
    """
    parts = ['"$PYTHON"', "-m", f"hpc.{s.app}"] + ([argv_words] if argv_words else [])
    if json_arg:
        parts += ["--json", json_arg]
    prog = " ".join(parts)
    if s.gpus_per_node:
        prog = "bash -c 'hpc_one_gpu \"$@\"' hpc_one_gpu " + prog
    if s.launcher == "srun":
        bind = "--cpu-bind=cores" + (" --gpu-bind=none" if s.gpus_per_node else "")
        return (f"srun --mpi={s.mpi} --nodes={nodes} --ntasks={ntasks} "
                f"--ntasks-per-node={s.ntasks_per_node} --cpus-per-task=\"$SRUN_CPUS_PER_TASK\" "
                f"{bind} {prog}")
    return (f"\"$MPIEXEC\" -n {ntasks} -ppn {s.ntasks_per_node} -bind-to core {prog}")


def _env_block(s: JobSpec) -> str:
    lines = [f"export {k}={q(v)}" for k, v in sorted(s.env.items())]
    if s.launcher == "mpiexec":
        lines.append('MPIEXEC=${MPIEXEC:-$(dirname "$PYTHON")/mpiexec}')
        lines.append('[ -x "$MPIEXEC" ] || MPIEXEC=mpiexec')
        lines.append("# Hydra finds the allocation through Slurm (its slurm bootstrap).")
    elif s.mpi == "pmi2":
        lines.append("# srun's pmi2 plug-in also serves the PMI-1 wire protocol the mpich wheel "
                     "speaks by default")
        lines.append("# (its PMI-2 client, MPIR_CVAR_PMI_VERSION=2, fails against Slurm 22.05's "
                     "plug-in: tested).")
    return "\n".join(lines)


def _app_argv(s: JobSpec, ranks: int) -> tuple[list[str], bool]:
    """The app's options (its spec's cluster default when none given), with the spec's GPU
    options on GPU nodes and the layout its rank count forces."""
    spec = load(s.app)
    argv = list(s.app_args) if s.app_args else list(spec.job_args)
    if s.gpus_per_node:
        argv = spec.gpu_argv(argv)
    if spec.layout is not None:
        argv = spec.layout(argv, ranks)
    has_json = "--json" in argv or any(a.startswith("--json=") for a in argv)
    return argv, has_json


def render(s: JobSpec) -> str:
    """A complete sbatch script for one run of s.app."""
    s.validate()
    try:
        argv, has_json = _app_argv(s, s.ntasks)
    except StudyError as exc:
        raise JobError(str(exc)) from None
    name = s.job_name or f"hpc-{s.app}"
    json_arg = None if has_json else '"${SLURM_JOB_NAME:-' + name + '}-${SLURM_JOB_ID:-0}.json"'
    kind = f"{s.gpus_per_node} GPU(s) per node, one rank per GPU" if s.gpus_per_node else "CPU nodes"
    body = ('echo "hpc.' + s.app + ': $SLURM_NTASKS rank(s) on $SLURM_JOB_NUM_NODES node(s)"\n'
            + launch_line(s, '"$SLURM_NTASKS"', '"$SLURM_JOB_NUM_NODES"', words(argv), json_arg))
    return _fill(_template("job.sbatch.in"), {
        "title": f"hpc.{s.app} on {s.nodes} node(s) x {s.ntasks_per_node} rank(s), {kind}",
        "sbatch": sbatch_lines(s, name), "workdir": q(s.workdir), "python": q(s.python),
        "cpus_per_task": str(s.cpus_per_task), "env": _env_block(s),
        "gpu_setup": _template("gpu_setup.in") if s.gpus_per_node else "", "body": body})


# -- whole studies ----------------------------------------------------------------------
@dataclass
class StudyJob:
    """A scaling study submitted as a job array (or a dependency chain of sized jobs)."""

    job: JobSpec
    mode: str
    ranks: list[int]
    out: str
    repeat: int = 1

    def validate(self) -> "StudyJob":
        self.job.validate()
        if self.mode not in ("strong", "weak"):
            raise JobError(f"--mode {self.mode!r}: strong or weak")
        if not self.ranks or any(_count("--ranks", r) is None for r in self.ranks):
            raise JobError("--ranks: at least one rank count")
        self.ranks = sorted(set(self.ranks))
        _count("--repeat", self.repeat, 1, 1000)
        _text("--out", self.out)
        if self.job.gpus_per_node and any(r % self.job.ntasks_per_node and r > self.job.ntasks_per_node
                                          for r in self.ranks):
            raise JobError("GPU studies need rank counts that fill whole nodes (or one node)")
        return self

    def plan(self) -> dict[int, list[str]]:
        """The app options of each rank count (the spec's study rules, GPU options)."""
        spec = load(self.job.app)
        p0 = min(self.ranks)
        out = {}
        for p in self.ranks:
            try:
                argv = spec.study_argv(self.mode, self.job.app_args, p, p0)
            except StudyError as exc:
                raise JobError(str(exc)) from None
            out[p] = spec.gpu_argv(argv) if self.job.gpus_per_node else argv
        return out

    def nodes_for(self, p: int) -> int:
        return max(1, math.ceil(p / int(self.job.ntasks_per_node or 1)))


def _study_prologue(st: StudyJob) -> str:
    s = st.job
    lines = [f"OUT={q(st.out)}", 'mkdir -p "$OUT/records" "$OUT/logs"']
    collect = ["\"$PYTHON\" -m hpc.scaling collect --app", q(s.app), "--mode", q(st.mode),
               "--ranks", q(",".join(map(str, st.ranks))), "--repeat", str(st.repeat),
               "--out", '"$OUT"']
    base = list(s.app_args)
    if base:
        collect += ["--"] + [q(a) for a in base]
    lines.append("hpc_collect() {  # results.csv/json from every record so far (serialised)")
    lines.append('  flock "$OUT/.collect.lock" ' + " ".join(collect) + " || true")
    lines.append("}")
    return "\n".join(lines)


def _study_script(st: StudyJob, title: str, name: str, select: list[str], array: str | None,
                  nodes: int) -> str:
    """A job script running one point of a study: ``select`` sets P (ranks) and R (repeat)."""
    s = st.job
    plan = st.plan()
    cases = [f"  {p}) ARGS=({words(plan[p])}) ;;" for p in st.ranks]
    body = "\n".join([
        _study_prologue(st), *select,
        f"NODES=$(( (P + {s.ntasks_per_node} - 1) / {s.ntasks_per_node} ))",
        'case "$P" in', *cases,
        '  *) echo "rank count $P is not in this study" >&2; exit 2 ;;', "esac",
        f'echo "hpc.{s.app} {st.mode} scaling: $P rank(s) on $NODES node(s), repeat $R"',
        "set +e",
        launch_line(s, '"$P"', '"$NODES"', '"${ARGS[@]}"', '"$OUT/records/p${P}-r${R}.json"')
        + ' > "$OUT/logs/p${P}-r${R}.log" 2>&1',
        "rc=$?", "set -e", 'echo "exit $rc" >> "$OUT/logs/p${P}-r${R}.log"', "hpc_collect",
        "exit $rc"])
    return _fill(_template("job.sbatch.in"), {
        "title": title, "sbatch": sbatch_lines(s, name, array=array, nodes=nodes),
        "workdir": q(s.workdir), "python": q(s.python), "cpus_per_task": str(s.cpus_per_task),
        "env": _env_block(s), "gpu_setup": _template("gpu_setup.in") if s.gpus_per_node else "",
        "body": body})


def render_array(st: StudyJob) -> str:
    """One sbatch script: a job array with one element per (rank count, repeat)."""
    st.validate()
    n = len(st.ranks) * st.repeat
    select = [f"RANKS=({' '.join(map(str, st.ranks))})", f"REPEAT={st.repeat}",
              "i=${SLURM_ARRAY_TASK_ID:?run this script with sbatch (it is a job array)}",
              "P=${RANKS[$((i / REPEAT))]}", "R=$((i % REPEAT + 1))"]
    return _study_script(
        st, f"hpc.{st.job.app} {st.mode} scaling study, ranks {st.ranks} x {st.repeat} "
            f"repeat(s): a job array, one element per run (each sized for the largest)",
        st.job.job_name or f"hpc-{st.job.app}-{st.mode}", select, f"0-{n - 1}",
        max(st.nodes_for(p) for p in st.ranks))


def chain_job(st: StudyJob) -> str:
    """The job script of a chained study: one run, its ranks and repeat from the environment
    (``HPC_P``, ``HPC_R``; :func:`chain_submissions` gives each job's sbatch options)."""
    st.validate()
    why = "submit it through the chain (python -m hpc.jobs scaling --chain)"
    select = [f"P=${{HPC_P:?{why}}}", f"R=${{HPC_R:?{why}}}"]
    return _study_script(
        st, f"hpc.{st.job.app} {st.mode} scaling study, ranks {st.ranks} x {st.repeat} "
            f"repeat(s): one run per job (HPC_P ranks, repeat HPC_R), each sized for its ranks",
        st.job.job_name or f"hpc-{st.job.app}-{st.mode}", select, None,
        max(st.nodes_for(p) for p in st.ranks))


def chain_submissions(st: StudyJob) -> list[tuple[int, int, list[str]]]:
    """(ranks, repeat, sbatch options) of each job of a chained study, in submission order:
    the job is sized for its rank count (``--nodes`` overrides the script's)."""
    st.validate()
    name = st.job.job_name or f"hpc-{st.job.app}-{st.mode}"
    return [(p, rep, [f"--job-name={name}-p{p}", f"--nodes={st.nodes_for(p)}",
                      f"--export=ALL,HPC_P={p},HPC_R={rep}"])
            for p in st.ranks for rep in range(1, st.repeat + 1)]


def render_chain(st: StudyJob) -> str:
    """A bash script that submits the study's jobs as a chain (each after the previous): one
    job script, submitted once per (rank count, repeat) with its size and point."""
    script = chain_job(st)
    s = st.job
    name = s.job_name or f"hpc-{s.app}-{st.mode}"
    n = len(st.ranks) * st.repeat
    lines = ["#!/bin/bash",
             f"# Submits hpc.{s.app} {st.mode} scaling ({n} jobs: ranks "
             f"{' '.join(map(str, st.ranks))} x {st.repeat} repeat(s)) as a dependency chain:",
             "# each job starts after the previous one ends (afterany), so runs never share "
             "nodes, and asks",
             "# for the nodes of its own rank count.",
             "# Rendered by `python -m hpc.jobs scaling --chain`.", "set -euo pipefail",
             "# The one job script; each submission sets its rank count and repeat (HPC_P, HPC_R).",
             "IFS= read -r -d '' JOB <<'HPC_JOB_SCRIPT_END' || true", script.rstrip("\n"),
             "HPC_JOB_SCRIPT_END",
             "dep=()",
             f"for P in {' '.join(map(str, st.ranks))}; do",
             f"  for R in $(seq 1 {st.repeat}); do",
             f"    id=$(printf '%s' \"$JOB\" | sbatch --parsable \"${{dep[@]}}\" "
             f"--job-name={name}-p\"$P\" "
             f"--nodes=$(( (P + {s.ntasks_per_node} - 1) / {s.ntasks_per_node} )) "
             '--export="ALL,HPC_P=$P,HPC_R=$R")',
             "    id=${id%%;*}",
             '    echo "submitted $P rank(s) repeat $R: job $id"',
             '    dep=(--dependency="afterany:$id")',
             "  done",
             "done"]
    return "\n".join(lines) + "\n"
