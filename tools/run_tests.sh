#!/usr/bin/env bash
# The test command behind `make test`: the in-process MPI unit tests under mpiexec at 1-4 ranks
# (pytest-mpi, as `python -m mpi4py` so a failing rank aborts the job), then the main suite,
# whose tests launch the apps under mpiexec themselves.
# Opt-ins: HPC_WITH_PETSC=1 (builds petsc4py, ~30 min the first time), HPC_WITH_SLURM=1.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
# mpiexec and MPICH's progress settings from their one home, hpc.core.launch: the tests run up
# to 4 ranks on machines of any size, so waiting ranks always yield (a variable already set wins).
MPIEXEC=$("$PY" -m hpc.core.launch mpiexec) || exit 2
eval "$("$PY" -m hpc.core.launch env --mode throttle)" || exit 2
export MPIEXEC_TIMEOUT=${MPIEXEC_TIMEOUT:-900}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# PETSc must be built against the same MPI as mpi4py (the mpich wheel's, which ships mpicc);
# pip's isolated build cannot see it and silently configures --with-mpi=0. So the wheels are
# built once, explicitly, into a wheelhouse outside the checkout and installed from there.
if [ "${HPC_WITH_PETSC:-0}" = 1 ] && ! "$PY" -c "from petsc4py import PETSc; assert PETSc.Sys.getVersion()" 2>/dev/null; then
  VENV=$(cd "$(dirname "$PY")/.." && pwd)
  WH=${HPC_PETSC_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/hpc/petsc-wheels}
  mkdir -p "$WH"
  export PETSC_CONFIGURE_OPTIONS=${PETSC_CONFIGURE_OPTIONS:-"--with-fc=0 --with-debugging=0"}
  export MPICC=${MPICC:-$VENV/bin/mpicc} MPICXX=${MPICXX:-$VENV/bin/mpicxx}
  if ! ls "$WH"/petsc-*.whl >/dev/null 2>&1; then
    echo "== building PETSc against $VENV's MPI (HPC_WITH_PETSC=1; about 30 minutes, once)"
    # pip -v into a log; tools/build_watch.py prints the stage and files compiled every 10 s
    "$PY" tools/build_watch.py --log "$WH/petsc-build.log" --label "PETSc build" -- \
      "$PY" -m pip wheel -v --no-deps --no-cache-dir "petsc==${HPC_PETSC_VERSION:-3.26.1}" -w "$WH" || { echo "PETSc build failed"; exit 1; }
  fi
  if ! ls "$WH"/petsc4py-*.whl >/dev/null 2>&1; then
    echo "== building petsc4py against that PETSc"
    PIP_FIND_LINKS="$WH" "$PY" tools/build_watch.py --log "$WH/petsc4py-build.log" --label "petsc4py build" -- \
      "$PY" -m pip wheel -v --no-deps --no-cache-dir "petsc4py==${HPC_PETSC_VERSION:-3.26.1}" -w "$WH" || { echo "petsc4py build failed"; exit 1; }
  fi
  "$PY" -m pip install -q --no-index --find-links "$WH" --force-reinstall --no-deps petsc petsc4py || exit 1
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
