#!/bin/bash
# Submits hpc.stream weak scaling (21 jobs) as a dependency chain: each job starts after the previous one ends (afterany), so runs never share nodes.
# Rendered by `python -m hpc.jobs scaling --chain`.
set -euo pipefail
dep=()
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 1 rank(s), repeat 1
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p1
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 1 rank(s), repeat 1"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=1 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p1-r1.json" > "$OUT/logs/p1-r1.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p1-r1.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 1 rank(s) repeat 1: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 1 rank(s), repeat 2
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p1
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 1 rank(s), repeat 2"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=1 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p1-r2.json" > "$OUT/logs/p1-r2.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p1-r2.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 1 rank(s) repeat 2: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 1 rank(s), repeat 3
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p1
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 1 rank(s), repeat 3"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=1 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p1-r3.json" > "$OUT/logs/p1-r3.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p1-r3.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 1 rank(s) repeat 3: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 2 rank(s), repeat 1
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p2
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 2 rank(s), repeat 1"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=2 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p2-r1.json" > "$OUT/logs/p2-r1.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p2-r1.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 2 rank(s) repeat 1: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 2 rank(s), repeat 2
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p2
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 2 rank(s), repeat 2"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=2 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p2-r2.json" > "$OUT/logs/p2-r2.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p2-r2.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 2 rank(s) repeat 2: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 2 rank(s), repeat 3
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p2
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 2 rank(s), repeat 3"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=2 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p2-r3.json" > "$OUT/logs/p2-r3.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p2-r3.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 2 rank(s) repeat 3: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 4 rank(s), repeat 1
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p4
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 4 rank(s), repeat 1"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=4 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p4-r1.json" > "$OUT/logs/p4-r1.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p4-r1.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 4 rank(s) repeat 1: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 4 rank(s), repeat 2
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p4
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 4 rank(s), repeat 2"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=4 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p4-r2.json" > "$OUT/logs/p4-r2.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p4-r2.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 4 rank(s) repeat 2: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 4 rank(s), repeat 3
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p4
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 4 rank(s), repeat 3"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=4 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p4-r3.json" > "$OUT/logs/p4-r3.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p4-r3.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 4 rank(s) repeat 3: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 8 rank(s), repeat 1
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p8
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 8 rank(s), repeat 1"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=8 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p8-r1.json" > "$OUT/logs/p8-r1.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p8-r1.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 8 rank(s) repeat 1: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 8 rank(s), repeat 2
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p8
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 8 rank(s), repeat 2"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=8 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p8-r2.json" > "$OUT/logs/p8-r2.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p8-r2.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 8 rank(s) repeat 2: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 8 rank(s), repeat 3
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p8
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 8 rank(s), repeat 3"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=8 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p8-r3.json" > "$OUT/logs/p8-r3.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p8-r3.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 8 rank(s) repeat 3: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 16 rank(s), repeat 1
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p16
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 16 rank(s), repeat 1"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=16 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p16-r1.json" > "$OUT/logs/p16-r1.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p16-r1.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 16 rank(s) repeat 1: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 16 rank(s), repeat 2
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p16
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 16 rank(s), repeat 2"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=16 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p16-r2.json" > "$OUT/logs/p16-r2.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p16-r2.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 16 rank(s) repeat 2: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 16 rank(s), repeat 3
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p16
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 16 rank(s), repeat 3"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=16 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p16-r3.json" > "$OUT/logs/p16-r3.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p16-r3.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 16 rank(s) repeat 3: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 32 rank(s), repeat 1
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p32
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 32 rank(s), repeat 1"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=32 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p32-r1.json" > "$OUT/logs/p32-r1.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p32-r1.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 32 rank(s) repeat 1: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 32 rank(s), repeat 2
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p32
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 32 rank(s), repeat 2"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=32 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p32-r2.json" > "$OUT/logs/p32-r2.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p32-r2.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 32 rank(s) repeat 2: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 32 rank(s), repeat 3
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p32
#SBATCH --nodes=1
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
echo "hpc.stream weak scaling: 32 rank(s), repeat 3"
set +e
srun --mpi=pmi2 --nodes=1 --ntasks=32 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p32-r3.json" > "$OUT/logs/p32-r3.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p32-r3.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 32 rank(s) repeat 3: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 64 rank(s), repeat 1
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p64
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
echo "hpc.stream weak scaling: 64 rank(s), repeat 1"
set +e
srun --mpi=pmi2 --nodes=2 --ntasks=64 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p64-r1.json" > "$OUT/logs/p64-r1.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p64-r1.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 64 rank(s) repeat 1: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 64 rank(s), repeat 2
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p64
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
echo "hpc.stream weak scaling: 64 rank(s), repeat 2"
set +e
srun --mpi=pmi2 --nodes=2 --ntasks=64 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p64-r2.json" > "$OUT/logs/p64-r2.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p64-r2.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 64 rank(s) repeat 2: job $id"
dep=(--dependency="afterany:$id")
id=$(sbatch --parsable "${dep[@]}" <<'HPC_JOB_SCRIPT_END'
#!/bin/bash
# hpc.stream weak scaling study: 64 rank(s), repeat 3
# Rendered by `python -m hpc.jobs render`; every value below was validated and shell-quoted.
#SBATCH --job-name=hpc-stream-weak-p64
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
echo "hpc.stream weak scaling: 64 rank(s), repeat 3"
set +e
srun --mpi=pmi2 --nodes=2 --ntasks=64 --ntasks-per-node=32 --cpus-per-task="$SRUN_CPUS_PER_TASK" --cpu-bind=cores "$PYTHON" -m hpc.stream --arraysize 200000 --numtimes 10 --json "$OUT/records/p64-r3.json" > "$OUT/logs/p64-r3.log" 2>&1
rc=$?
set -e
echo "exit $rc" >> "$OUT/logs/p64-r3.log"
hpc_collect
exit $rc
HPC_JOB_SCRIPT_END
)
id=${id%%;*}
echo "submitted 64 rank(s) repeat 3: job $id"
dep=(--dependency="afterany:$id")
