# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
BUILD   := build/dev
NP      ?= 4
EXTRAS  ?= test
export MPIEXEC_TIMEOUT ?= 600
# mpiexec and MPICH's progress settings come from hpc.core.launch, their one home: it prints
# `export` lines (yield instead of busy-polling when ranks outnumber cores; a variable already
# set wins) and the mpiexec to use.
LAUNCH   = eval "$$($(PY) -m hpc.core.launch env --ranks $(NP))" && \
           "$$($(PY) -m hpc.core.launch mpiexec)" -n $(NP)

.PHONY: all system-deps venv build demo test test-fast bench clean

all: build

$(VENV)/.deps: pyproject.toml tools/deps.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) tools/deps.py $(EXTRAS) > $(VENV)/requirements.txt
	$(PY) -m pip install -q -r $(VENV)/requirements.txt
	$(PY) -m pip install -q --no-build-isolation --no-deps -e . -Cwheel.cmake=false
	touch $@

venv: $(VENV)/.deps

# The venv holds an editable install of this tree (scikit-build-core, editable.mode = inplace,
# no rebuild on import): Python imports hpc/ from here and `hpc` is on the venv's PATH. The
# extensions are built here, in build/dev, and copied into hpc/ (hpc/_core*.so, and
# _kokkos/_cuda where found); flock keeps concurrent builds from sharing one tree at once.
system-deps:
	@if [ "$(HPC_INSTALL_SYSTEM_DEPS)" = 1 ]; then ./tools/system_deps.sh; fi

build: system-deps venv
	@mkdir -p build
	flock build/.lock sh -c '\
	  cmake -S . -B $(BUILD) -G Ninja -DHPC_INPLACE=ON -DHPC_NATIVE_ARCH=ON \
	 -DPython_EXECUTABLE=$(abspath $(PY)) \
	 -Dpybind11_DIR=$$($(PY) -m pybind11 --cmakedir) $(CMAKE_ARGS) >$(BUILD).configure.log 2>&1 \
	  || { cat $(BUILD).configure.log; exit 1; }; \
	  cmake --build $(BUILD) -j2'

demo: build
	$(LAUNCH) $(PY) -m hpc.suite

test: build
	./tools/run_tests.sh

clean:
	rm -rf build hpc/_core*.so hpc/_kokkos*.so hpc/_cuda*.so
