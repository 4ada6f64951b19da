#!/usr/bin/env bash
# The test command behind `make test`: the in-process MPI unit tests under mpiexec at 1-4 ranks
# (pytest-mpi, as `python -m mpi4py` so a failing rank aborts the job), then the main suite,
# whose tests launch the apps under mpiexec themselves.
# Opt-ins: HPC_WITH_PETSC=1 (builds petsc4py, ~30 min the first time), HPC_WITH_SLURM=1.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MPIEXEC=$(dirname "$PY")/mpiexec
export MPIR_CVAR_POLLS_BEFORE_YIELD=${MPIR_CVAR_POLLS_BEFORE_YIELD:-1}
export MPIR_CVAR_CH4_PROGRESS_THROTTLE=${MPIR_CVAR_CH4_PROGRESS_THROTTLE:-true}
export MPIR_CVAR_CH4_PROGRESS_THROTTLE_NO_PROGRESS_COUNT=${MPIR_CVAR_CH4_PROGRESS_THROTTLE_NO_PROGRESS_COUNT:-1}
export MPIEXEC_TIMEOUT=${MPIEXEC_TIMEOUT:-900}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

if [ "${HPC_WITH_PETSC:-0}" = 1 ] && ! "$PY" -c "import petsc4py" 2>/dev/null; then
  echo "== installing petsc4py (HPC_WITH_PETSC=1; pip's cache makes later runs fast)"
  export PETSC_CONFIGURE_OPTIONS=${PETSC_CONFIGURE_OPTIONS:-"--with-fc=0 --with-debugging=0"}
  "$PY" -m pip install -q petsc petsc4py || { echo "petsc4py install failed"; exit 1; }
fi

status=0
if [ -d tests/mpi ]; then
  for n in 1 2 3 4; do
    echo "== tests/mpi on $n rank(s)"
    "$MPIEXEC" -n $n "$PY" -m mpi4py -m pytest --with-mpi -q -p no:cacheprovider tests/mpi \
      -o addopts="" || status=1
  done
fi
echo "== main test suite"
"$PY" -m pytest -p no:cacheprovider -ra "$@" tests --ignore=tests/mpi || status=1
exit $status
