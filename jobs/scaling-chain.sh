#!/bin/bash
# Submits hpc.stream weak scaling (21 jobs: ranks 1 2 4 8 16 32 64 x 3 repeat(s)) as a dependency chain:
# each job starts after the previous one ends (afterany), so runs never share nodes, and asks
# for the nodes of its own rank count.
# Rendered by `python -m hpc.jobs scaling --chain`.
set -euo pipefail
# The one job script; each submission sets its rank count and repeat (HPC_P, HPC_R).
IFS= read -r -d '' JOB <<'HPC_JOB_SCRIPT_END' || true
#!/bin/bash
# hpc.stream weak scaling study, ranks [1, 2, 4, 8, 16, 32, 64] x 3 repeat(s): one run per job (HPC_P ranks, repeat HPC_R), each sized for its ranks
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=32
#SBATCH --cpus-per-task=1
#SBATCH --time=00:30:00
#SBATCH --partition=PARTITION
#SBATCH --account=ACCOUNT
#SBATCH --output=%x-%j.out
set -euo pipefail

cd /path/to/hpc
PYTHON=/path/to/venv/bin/python
# One OpenMP thread per CPU of the task, pinned to its cores.
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
export OMP_PLACES=cores
export OMP_PROC_BIND=close
# Slurm >= 22.05: srun no longer inherits sbatch's --cpus-per-task; this restores it.
export SRUN_CPUS_PER_TASK=${SLURM_CPUS_PER_TASK:-1}
# srun's pmi2 plug-in also serves the PMI-1 wire protocol the mpich wheel speaks by default
# (its PMI-2 client, MPIR_CVAR_PMI_VERSION=2, fails against Slurm 22.05's plug-in: tested).

OUT=scaling/results/stream_weak_cluster
mkdir -p "$OUT/records" "$OUT/logs"
hpc_collect() {  # results.csv/json from every record so far (serialised)
  flock "$OUT/.collect.lock" "$PYTHON" -m hpc.scaling collect --app stream --mode weak --ranks 1,2,4,8,16,32,64 --repeat 3 --out "$OUT" || true
}
P=${HPC_P:?submit it through the chain (python -m hpc.jobs scaling --chain)}
R=${HPC_R:?submit it through the chain (python -m hpc.jobs scaling --chain)}
NODES=$(( (P + 32 - 1) / 32 ))
case "$P" in
  1) ARGS=(--arraysize 200000 --numtimes 10) ;;
  2) ARGS=(--arraysize 200000 --numtimes 10) ;;
  4) ARGS=(--arraysize 200000 --numtimes 10) ;;
  8) ARGS=(--arraysize 200000 --numtimes 10) ;;
  16) ARGS=(--arraysize 200000 --numtimes 10) ;;
  32) ARGS=(--arraysize 200000 --numtimes 10) ;;
  64) ARGS=(--arraysize 200000 --numtimes 10) ;;
  *) echo "rank count $P is not in this study" >&2; exit 2 ;;
esac
echo "hpc.stream weak scaling: $P rank(s) on $NODES node(s), repeat $R"
set +e
srun --mpi=pmi2 --nodes="$NODES" --ntasks="$P" --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream "${ARGS[@]}" --json "$OUT/records/p${P}-r${R}.json" > "$OUT/logs/p${P}-r${R}.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p${P}-r${R}.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
dep=()
for P in 1 2 4 8 16 32 64; do
  for R in $(seq 1 3); do
    id=$(printf '%s' "$JOB" | sbatch --parsable "${dep[@]}" --job-name=hpc-stream-weak-p"$P" --nodes=$(( (P + 32 - 1) / 32 )) --export="ALL,HPC_P=$P,HPC_R=$R")
    id=${id%%;*}
    echo "submitted $P rank(s) repeat $R: job $id"
    dep=(--dependency="afterany:$id")
  done
done
