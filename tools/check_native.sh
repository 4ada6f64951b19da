#!/usr/bin/env bash
# Compile one C++ (or CUDA) source on its own with the extension's flags, without touching the
# shared build: a file that fails here would break `make build` for everyone.
# Usage: tools/check_native.sh native/wip/foo.cpp   (or .cu)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
src=$1
inc="-Inative/include $($PY -m pybind11 --includes)"
case "$src" in
  *.cu) nvcc -std=c++17 -O2 -Xcompiler -fPIC -arch=sm_80 $inc -c "$src" -o /tmp/check_native.$$.o ;;
  *_stdpar.cpp) g++ -std=c++17 -O3 -Wall -Wextra -Wno-unknown-pragmas -fPIC -fopenmp $inc -c "$src" -o /tmp/check_native.$$.o ;;
  *) g++ -std=c++17 -O3 -march=native -Wall -Wextra -Wno-unknown-pragmas -fPIC -fopenmp $inc -c "$src" -o /tmp/check_native.$$.o ;;
esac
rm -f /tmp/check_native.$$.o
echo "ok: $src compiles"
