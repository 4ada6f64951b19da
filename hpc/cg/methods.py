"""The solver registry of hpc.cg: method name -> solver, and the objects they exchange.

A method is a function ``solve(problem: Problem, opts: SolveOptions) -> result`` where the
result has at least ``x`` (this rank's rows), ``converged``, ``iterations``, ``residuals``
(relative residual norms, the initial one first) and ``breakdown`` (None or a sentence);
:class:`SolveResult` is the reference shape, other result dataclasses with those fields work.

Registering a method: add it to METHODS, either the function itself or a lazy
``"module:function"`` string (imported only when chosen, so an optional method whose module or
dependency is missing is a clear usage error, not an import failure of the whole app).
Subcommands (``python -m hpc.cg <name> ...``) are registered the same way in SUBCOMMANDS.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from hpc.core.errors import UsageError


@dataclass
class Problem:
    """The linear system A x = b, row-distributed (every vector is this rank's rows)."""

    comm: Any
    A: Any                          # DistCSR (or an operator with spmv/diagonal/row_offsets)
    b: Any                          # local rows of the right-hand side
    x0: Any = None                  # initial guess (None: zero)
    grid: tuple[int, ...] | None = None   # structured problems: (nx, ny, nz)
    stencil: str | None = None            # structured problems: generator name
    exact: Any = None               # local rows of the exact solution, when known
    name: str = ""

    @property
    def row_offsets(self) -> np.ndarray:
        return self.A.row_offsets

    def matvec(self, x, out=None):
        return self.A.spmv(x, out=out)


@dataclass
class SolveOptions:
    rtol: float = 1e-8
    maxiter: int = 1000
    pc: str = "none"
    pc_options: dict[str, Any] = field(default_factory=dict)
    backend: str = "native"
    preconditioner: Any = None      # prebuilt (so setup is timed apart from the solve)
    args: Any = None                # the parsed command line (method-specific options)


@dataclass
class SolveResult:
    x: Any
    converged: bool
    iterations: int
    residuals: list[float]
    breakdown: str | None = None
    matvecs: int = 0
    reductions: int = 0             # blocking + non-blocking all-reductions issued
    replacements: int = 0           # residual replacements after a false convergence
    extra: dict[str, Any] = field(default_factory=dict)


Solver = Callable[[Problem, SolveOptions], Any]

METHODS: dict[str, Solver | str] = {
    "cg": "hpc.cg.krylov:solve_cg",
    "pcg": "hpc.cg.krylov:solve_pcg",
    "cg1": "hpc.cg.krylov:solve_cg1",
    "pipecg": "hpc.cg.krylov:solve_pipecg",
    # The Deep Conjugate Direction Method; hpc/cg/dcdm/ provides solve_method(problem, opts).
    "dcdm": "hpc.cg.dcdm.solver:solve_method",
}

METHOD_HELP = {
    "cg": "conjugate gradients, no preconditioner (two all-reductions per iteration)",
    "pcg": "preconditioned CG (--pc)",
    "cg1": "Chronopoulos-Gear single-reduction PCG (one all-reduction per iteration)",
    "pipecg": "Ghysels-Vanroose pipelined PCG: a non-blocking all-reduction overlaps PC + SpMV",
    "dcdm": "Deep Conjugate Direction Method (learned directions, structured problems)",
}

SUBCOMMANDS: dict[str, str] = {
    "train-dcdm": "hpc.cg.dcdm.train:main",
}


def _load(ref: Callable | str, what: str) -> Callable:
    if callable(ref):
        return ref
    mod, _, attr = ref.partition(":")
    try:
        m = importlib.import_module(mod)
    except ImportError as exc:
        raise UsageError(f"{what} is not available in this build ({mod}: {exc})") from None
    fn = getattr(m, attr, None)
    if fn is None:
        raise UsageError(f"{what} is not available in this build ({mod} has no {attr})")
    return fn


def get_method(name: str) -> Solver:
    if name not in METHODS:
        raise UsageError(f"--method {name}: unknown (known: {', '.join(METHODS)})")
    return _load(METHODS[name], f"--method {name}")


def get_subcommand(name: str) -> Callable:
    return _load(SUBCOMMANDS[name], f"subcommand {name}")


def register_method(name: str, solver: Solver | str, help: str = "") -> None:
    METHODS[name] = solver
    if help:
        METHOD_HELP[name] = help
