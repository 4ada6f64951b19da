#!/usr/bin/env bash
# Run tests against an AddressSanitizer + UndefinedBehaviorSanitizer build of hpc._core.
# Usage: tools/sanitize.sh tests/test_spgemm_onepass.py [more pytest arguments]
#
# Builds _core with -fsanitize=address,undefined into build/sanitize (about 15 minutes on 2
# cores the first time, incremental after), copies the package with that module into a fresh
# temporary tree and runs pytest there with the sanitizer runtimes preloaded (the interpreter
# is not instrumented, so leak reports are off) and halt_on_error: any report fails the run.
# The editable install's import hook (scikit-build-core's, from a .pth file) is taken off
# sys.meta_path first, or it would load the in-place module instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
case "$PY" in /*) ;; *) PY="$PWD/$PY" ;; esac
B=${HPC_SANITIZE_BUILD:-build/sanitize}  # the build folder (kept between runs)
mkdir -p "$(dirname "$B")"
cmake -S . -B "$B" -G Ninja -DHPC_NATIVE_ARCH=ON -DHPC_STDPAR=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-omit-frame-pointer" \
  "-DCMAKE_MODULE_LINKER_FLAGS=-fsanitize=address,undefined" \
  -DPython_EXECUTABLE="$PY" -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" \
  > "$B.configure.log" 2>&1 || { cat "$B.configure.log"; exit 1; }
cmake --build "$B" -j"$(nproc)" --target _core
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
cp -r hpc tests pyproject.toml "$tree"/
rm -f "$tree"/hpc/_core.*.so
cp "$B"/_core.*.so "$tree"/hpc/
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$tree"
"$PY" - "$tree" "$@" <<'PYEOF'
import sys
sys.meta_path[:] = [f for f in sys.meta_path
                    if not type(f).__module__.startswith("_editable_skbc_")]
tree = sys.argv[1]
sys.path.insert(0, tree)
import hpc._core
assert hpc._core.__file__.startswith(tree), hpc._core.__file__
print("sanitized module:", hpc._core.__file__, flush=True)
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[2:]]))
PYEOF
