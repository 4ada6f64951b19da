"""The solver registry of hpc.cg: method and back-end names, and the objects solvers exchange.

A method is a function ``solve(problem: Problem, opts: SolveOptions) -> result`` where the
result has at least ``x`` (this rank's rows), ``converged``, ``iterations``, ``residuals``
(relative residual norms, the initial one first) and ``breakdown`` (None or a sentence);
:class:`SolveResult` is the reference shape, other result dataclasses with those fields work.

Registering a method: add it to METHODS, either the function itself or a lazy
``"module:function"`` string (imported only when chosen, so an optional method whose module or
dependency is missing is a clear usage error, not an import failure of the whole app).
A back end is a row of BACKENDS: ``{name: (module that runs the solve, hpc.core.backends
requirement)}``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from hpc.core.errors import UsageError

if TYPE_CHECKING:
    from .dcdm.solver import DCDMOptions


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
    """How to solve: stop when ||r|| < max(rtol ||b||, atol) (SciPy's rule) or after maxiter."""

    rtol: float = 1e-8
    maxiter: int = 1000
    pc: str = "none"
    pc_options: dict[str, Any] = field(default_factory=dict)
    backend: str = "native"
    preconditioner: Any = None      # prebuilt (so setup is timed apart from the solve)
    atol: float = 0.0
    method: str = "cg"
    dcdm: DCDMOptions | None = None  # --method dcdm's options (None: the defaults)


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

#: back end -> (module that runs the solve, hpc.core.backends requirement). The Krylov
#: solvers run on every hpc.sparse kernel back end; petsc hands the system to petsc4py's KSP.
BACKENDS: dict[str, tuple[str, str]] = {
    "native": ("hpc.cg.krylov", "native"),
    "numba": ("hpc.cg.krylov", "numba"),
    "numpy": ("hpc.cg.krylov", "numpy"),
    "scipy": ("hpc.cg.krylov", "scipy"),
    "cupy": ("hpc.cg.krylov", "cupy"),
    "petsc": ("hpc.cg.petsc_backend", "petsc"),
}
#: the methods and preconditioners --backend petsc offers (KSPCG / KSPPIPECG; PC types)
PETSC_METHODS = ("cg", "pcg", "pipecg")
PETSC_PCS = ("none", "jacobi", "bjacobi", "gamg")


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
