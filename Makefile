# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
BUILD   := build/dev
NP      ?= 4
EXTRAS  ?= test
# Yield instead of busy-polling when ranks outnumber cores (30x faster oversubscribed).
export MPIR_CVAR_POLLS_BEFORE_YIELD ?= 1
export MPIR_CVAR_CH4_PROGRESS_THROTTLE ?= true
export MPIR_CVAR_CH4_PROGRESS_THROTTLE_NO_PROGRESS_COUNT ?= 1
export MPIEXEC_TIMEOUT ?= 600
MPIEXEC := $(VENV)/bin/mpiexec

.PHONY: all system-deps venv build demo test test-fast bench clean

all: build

$(VENV)/.deps: pyproject.toml tools/deps.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) tools/deps.py $(EXTRAS) > $(VENV)/requirements.txt
	$(PY) -m pip install -q -r $(VENV)/requirements.txt
	$(PY) -c "import site,os; open(os.path.join(site.getsitepackages()[0],'hpc-dev.pth'),'w').write(os.getcwd()+'\n')"
	touch $@

venv: $(VENV)/.deps

# In-place native build (hpc/_core*.so, and _kokkos/_cuda where found); flock keeps concurrent
# builds from sharing one tree at once.
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
	$(MPIEXEC) -n $(NP) $(PY) -m hpc.suite

test: build
	./tools/run_tests.sh

clean:
	rm -rf build hpc/_core*.so hpc/_kokkos*.so hpc/_cuda*.so
