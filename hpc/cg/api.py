"""The public API of hpc.cg: :func:`solve`, :class:`Solver` and :class:`SolveInfo`.

``hpc.cg.solve(A, b)`` is ``scipy.sparse.linalg.cg(A, b)`` run by every rank of a
communicator: one call in a plain ``python`` process (one rank), the same call unchanged under
``mpiexec -n N``. The command line (``python -m hpc.cg``, :mod:`hpc.cg.app`) is a thin layer
over :class:`Solver`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core import backends as registry
from hpc.core.checks import check_int, check_real
from hpc.core.errors import InputTypeError, UsageError
from hpc.core.runtime import as_comm, collective
from hpc.sparse import DistCSR, read_matrix

from .dcdm.solver import DCDMOptions
from .methods import (BACKENDS, METHODS, PETSC_METHODS, PETSC_PCS, Problem, SolveOptions,
                      get_method)
from .petsc_backend import PetscSolver
from .precond import PCS, make_preconditioner
from .stencil import StencilOperator

#: the iteration limit when ``maxiter`` is None (the command line's --maxiter default)
DEFAULT_MAXITER = 10000

__all__ = ["DCDMOptions", "DEFAULT_MAXITER", "SolveInfo", "Solver", "check_options", "solve"]


@dataclass
class SolveInfo:
    """What a solve did (the same on every rank).

    Attributes
    ----------
    converged : bool
        True when the solver stopped on its tolerance without a breakdown and the true
        residual confirms it: ``||b - A x|| <= rtol ||b||`` or ``<= atol``.
    iterations : int
        Iterations taken (each one SpMV for the CG methods; one network evaluation and two
        SpMVs for DCDM).
    recursive_relres : float
        The solver's own last relative residual norm ``||r_k|| / ||b||`` (the recursively
        updated one for the CG methods; DCDM computes the true one every iteration).
    true_relres : float
        ``||b - A x|| / ||b||`` of the returned x, computed after the solve (``||b - A x||``
        when b = 0).
    breakdown : str or None
        None, or why the iteration stopped early: ``p.Ap <= 0`` or ``r.z <= 0`` (A or the
        preconditioner is not symmetric positive definite), ``d.Ad <= 0`` for DCDM, a PETSc
        divergence reason.
    residuals : list of float
        The relative residual history, the initial one first.
    method, pc : str
        The method and preconditioner that ran.
    matvecs, reductions, replacements : int
        Matrix-vector products, global all-reductions, and residual replacements (the
        recursive residual replaced by the true one after a false convergence).
    details : dict
        Method-specific facts (the preconditioner's description; DCDM's network timings).
    """

    converged: bool
    iterations: int
    recursive_relres: float
    true_relres: float
    breakdown: str | None = None
    residuals: list[float] = field(default_factory=list)
    method: str = "cg"
    pc: str = "none"
    matvecs: int = 0
    reductions: int = 0
    replacements: int = 0
    details: dict[str, Any] = field(default_factory=dict)


def _check_maxiter(maxiter) -> int:
    return DEFAULT_MAXITER if maxiter is None else check_int("maxiter", maxiter, 0)


def _as_vector(name: str, v, n: int, what: str) -> np.ndarray:
    """v as a float64 vector of length n (SciPy's (n,) or (n, 1)), finite, or a clear error."""
    if hasattr(v, "get") and not isinstance(v, np.ndarray):   # a CuPy array
        v = v.get()
    if sp.issparse(v):
        raise InputTypeError(f"{name}: expected a dense vector, got a sparse {type(v).__name__}")
    try:
        a = np.asarray(v)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is a type error here
        raise InputTypeError(f"{name}: cannot be read as an array ({exc})") from None
    if a.dtype.kind not in "biuf":
        kind = "complex" if a.dtype.kind == "c" else f"dtype {a.dtype}"
        raise InputTypeError(f"{name}: expected real numbers, got {kind}")
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.shape != (n,):
        raise UsageError(f"{name} has shape {a.shape}, expected ({n},) ({what})")
    a = np.array(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise UsageError(f"{name} has {int(np.count_nonzero(~np.isfinite(a)))} non-finite "
                         "entries (inf or nan)")
    return a


def kernel_backend(backend: str) -> str:
    """The hpc.sparse kernels of a matrix the API builds for ``backend``."""
    kern = backend if backend != "petsc" else "native"
    if kern == "native" and not registry.is_available("native"):
        kern = "scipy"
    return kern


def _check_finite(data: np.ndarray) -> None:
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise UsageError(f"A has {bad} non-finite entries (inf or nan)")


def _distributed(A, comm, backend: str):
    """(the operator, whether the input was global): A as a row-distributed operator."""
    if isinstance(A, (DistCSR, StencilOperator)):
        if MPI.Comm.Compare(A.comm, comm) not in (MPI.IDENT, MPI.CONGRUENT):
            raise UsageError("comm: A is distributed over another communicator (pass comm=None "
                             "or A's own)")
        if isinstance(A, DistCSR):
            with collective(A.comm):
                _check_finite(A.local.data)
        return A, False
    if sp.issparse(A):
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise UsageError(f"A has shape {A.shape}: CG needs a square matrix")
        if A.dtype.kind not in "biuf":
            raise InputTypeError(f"A: expected a real matrix, got dtype {A.dtype}")
        A = sp.csr_matrix(A, dtype=np.float64)
        _check_finite(A.data)
        return DistCSR.from_scipy(A, comm, backend=kernel_backend(backend)), True
    if isinstance(A, (str, os.PathLike)):
        with collective(comm):
            if not os.path.isfile(A):
                raise UsageError(f"A: no such Matrix Market file: {os.fspath(A)}")
        return read_matrix(A, comm, backend=kernel_backend(backend)), True
    if isinstance(A, np.ndarray):
        raise InputTypeError("A: expected a SciPy sparse matrix or array, a hpc.sparse.DistCSR "
                             "or a Matrix Market path, got a dense numpy array (use "
                             "scipy.sparse.csr_array(A))")
    raise InputTypeError("A: expected a SciPy sparse matrix or array, a hpc.sparse.DistCSR or a "
                         f"Matrix Market path, got {type(A).__name__}")


def check_options(method: str, pc: str | None, backend: str) -> str:
    """Check a method / preconditioner / back end combination; returns the preconditioner
    (None resolved: ``"none"`` for cg and dcdm, ``"jacobi"`` otherwise). Raises UsageError
    (a ValueError) for an unknown name, a combination that cannot run, or a back end that
    is not available here."""
    if not isinstance(method, str) or method not in METHODS:
        raise UsageError(f"method={method!r}: unknown (known: {', '.join(METHODS)})")
    if pc is None:
        pc = "none" if method in ("cg", "dcdm") else "jacobi"
    known_pcs = list(PCS) + ["gamg"]
    if not isinstance(pc, str) or pc not in known_pcs:
        raise UsageError(f"pc={pc!r}: unknown (known: {', '.join(known_pcs)})")
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise UsageError(f"backend={backend!r}: unknown (known: {', '.join(BACKENDS)})")
    registry.require(BACKENDS[backend][1])
    if backend == "petsc":
        if method not in PETSC_METHODS:
            raise UsageError(f"--backend petsc runs {', '.join(PETSC_METHODS)}, not {method}")
        if pc not in PETSC_PCS:
            raise UsageError(f"--backend petsc: --pc {pc} not offered (use {', '.join(PETSC_PCS)})")
    elif pc == "gamg":
        raise UsageError("--pc gamg is PETSc's algebraic multigrid: use it with --backend petsc")
    if method == "cg" and pc != "none":
        raise UsageError(f"--method cg takes no preconditioner (got --pc {pc}); use --method pcg")
    if method == "dcdm" and pc != "none":
        raise UsageError(f"--method dcdm takes no --pc (the network supplies the directions; "
                         f"got --pc {pc})")
    return pc


class Solver:
    """A linear system's operator, method and preconditioner, set up once for many solves.

    ``Solver(A, ...).solve(b)`` is :func:`solve` with the set-up (the preconditioner: a
    factorisation, a multigrid hierarchy, PETSc's KSP) kept for the next right-hand side;
    the command line uses it to time set-up and solve apart. Parameters are those of
    :func:`solve`, plus:

    Parameters
    ----------
    pc_options : dict, optional
        Preconditioner settings, the command line's: ``sub_pc`` (``"sgs"`` or ``"icc"``,
        block Jacobi's local solver), ``cheb_degree`` (3), ``cheb_ratio`` (30.0),
        ``mg_levels`` (4), ``seed`` (0, Chebyshev's power iteration); ``amg_theta``,
        ``amg_max_coarse``, ``amg_smoother``, ``amg_degree``, ``amg_order``
        (:class:`hpc.amg.SmoothedAggregation`).
    dcdm : DCDMOptions, optional
        ``method="dcdm"``'s model file, directions kept and network kernels.

    Raises
    ------
    ValueError, TypeError
        As :func:`solve`, for the matrix and the options (collective: every rank raises).
    """

    def __init__(self, A, *, method: str = "cg", pc: str | None = None, rtol: float = 1e-8,
                 atol: float = 0.0, maxiter: int | None = None, comm=None,
                 backend: str = "native", pc_options: dict[str, Any] | None = None,
                 dcdm: DCDMOptions | None = None):
        comm = as_comm(comm)
        pc = check_options(method, pc, backend)
        rtol, atol = check_real("rtol", rtol, 0), check_real("atol", atol, 0)
        maxiter = _check_maxiter(maxiter)
        if dcdm is not None and not isinstance(dcdm, DCDMOptions):
            raise InputTypeError(f"dcdm: expected hpc.cg.DCDMOptions, got {type(dcdm).__name__}")
        self.A, self.global_input = _distributed(A, comm, backend)
        if self.A.shape[0] != self.A.shape[1]:
            raise UsageError(f"A has shape {self.A.shape[0]} x {self.A.shape[1]}: CG needs a "
                             "square matrix")
        self.comm = self.A.comm
        self.method, self.pc, self.backend = method, pc, backend
        self.opts = SolveOptions(rtol=rtol, maxiter=maxiter, pc=pc, pc_options=dict(pc_options or {}),
                                 backend=backend, atol=atol, method=method, dcdm=dcdm)
        self._petsc = None
        setup = Problem(self.comm, self.A, None, None, getattr(self.A, "grid", None),
                        getattr(self.A, "stencil", None))
        if backend == "petsc":
            self._petsc = PetscSolver(setup, self.opts)
        else:
            self._solver = get_method(method)
            if method != "dcdm":
                with collective(self.comm):
                    self.opts.preconditioner = make_preconditioner(pc, setup, self.opts)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.A.shape)  # type: ignore[return-value]

    def solve(self, b, x0=None, *, callback: Callable[[np.ndarray], None] | None = None):
        """Solve A x = b; returns ``(x, info)`` as :func:`solve` does (collective)."""
        A, comm = self.A, self.comm
        if callback is not None and not callable(callback):
            raise InputTypeError(f"callback: expected a callable, got {type(callback).__name__}")
        n = A.shape[0]
        lo, hi = A.row_range
        if self.global_input:
            bl = _as_vector("b", b, n, "one entry per row of A, the same on every rank")[lo:hi]
            xl = (None if x0 is None else
                  _as_vector("x0", x0, n, "one entry per column of A, the same on every rank")[lo:hi])
        else:
            with collective(comm):
                what = f"this rank's {hi - lo} rows of the distributed vector"
                bl = _as_vector("b", b, hi - lo, what)
                xl = None if x0 is None else _as_vector("x0", x0, hi - lo, what)
        if self._petsc is not None and (x0 is not None or callback is not None):
            raise UsageError("backend='petsc' starts from x0 = 0 and takes no callback")
        if self.backend == "cupy":
            import cupy  # optional dependency: only for backend="cupy"

            bl = cupy.asarray(bl)
            xl = None if xl is None else cupy.asarray(xl)
        if callback is not None and self.global_input:
            def cb(xk):   # one Allgatherv of n doubles per iteration
                callback(A.gather_vector(_host(xk), root=None))
        else:
            cb = callback
        problem = Problem(comm, A, bl, xl, getattr(A, "grid", None), getattr(A, "stencil", None))
        if self._petsc is not None:
            res = self._petsc.solve(bl)
        else:
            res = self._solver(problem, self.opts, callback=cb)
        info = self._info(res, bl)
        x = res.x
        if self.global_input:
            x = A.gather_vector(_host(x), root=None)
        return x, info

    def _info(self, res, bl) -> SolveInfo:
        A, comm = self.A, self.comm
        xp = np
        if self.backend == "cupy":
            import cupy as xp  # noqa: F811
        r = bl - A.spmv(res.x)
        rr, bb = comm.allreduce(np.array([float(xp.dot(r, r)), float(xp.dot(bl, bl))]))
        true_rel = math.sqrt(rr) / math.sqrt(bb) if bb > 0 else math.sqrt(rr)
        o = self.opts
        converged = (bool(res.converged) and res.breakdown is None
                     and (true_rel <= o.rtol or math.sqrt(rr) <= o.atol))
        details = dict(getattr(res, "extra", None) or {})
        if self._petsc is not None:
            details["petsc"] = self._petsc.describe()
        hist = [float(v) for v in res.residuals]
        return SolveInfo(converged, int(res.iterations), hist[-1] if hist else float("nan"),
                         true_rel, res.breakdown, hist, self.method, self.pc,
                         int(getattr(res, "matvecs", 0)), int(getattr(res, "reductions", 0)),
                         int(getattr(res, "replacements", 0)), details)

    def free(self) -> None:
        """Release the communicators of a matrix this solver built (global or file input)."""
        if self.global_input:
            self.A.free()


def _host(x) -> np.ndarray:
    return np.asarray(x.get() if hasattr(x, "get") and not isinstance(x, np.ndarray) else x)


def solve(A, b, x0=None, *, method: str = "cg", pc: str | None = None, rtol: float = 1e-8,
          atol: float = 0.0, maxiter: int | None = None,
          callback: Callable[[np.ndarray], None] | None = None, comm=None,
          backend: str = "native") -> tuple[np.ndarray, SolveInfo]:
    """Solve the symmetric positive definite system A x = b with a conjugate-gradient method.

    SciPy's ``scipy.sparse.linalg.cg`` on every rank of ``comm``: the matrix is distributed by
    contiguous row blocks, every vector operation is local and the dot products are global
    all-reductions. Works in a plain ``python`` process (one rank) and unchanged under
    ``mpiexec -n N``. Collective: every rank of ``comm`` calls it with the same arguments
    (its own blocks of b and x0 for a distributed A).

    Parameters
    ----------
    A : scipy.sparse matrix or array, hpc.sparse.DistCSR, or str / os.PathLike
        The n x n SPD matrix. A SciPy matrix (global: the same on every rank; each rank keeps
        its rows) or a Matrix Market file path (read in parallel, each rank its rows) is a
        *global* input: b and x0 are global vectors of length n and x is returned whole on
        every rank. A ``DistCSR`` (or the matrix-free ``hpc.cg.stencil.StencilOperator``) is a
        *distributed* input: b, x0 and x are this rank's blocks of rows
        (``A.row_range``), as ``DistCSR.local_slice`` cuts them.
    b : array_like, shape (n,) or (n, 1)
        Right-hand side (global or this rank's block, as above). Real, finite.
    x0 : array_like, optional
        Initial guess, same layout as b (default: zero).
    method : {"cg", "pcg", "cg1", "pipecg", "dcdm"}
        The command line's ``--method``:

        - ``cg``: conjugate gradients (Hestenes & Stiefel, J. Res. NBS 49, 1952) without a
          preconditioner; 1 SpMV and 2 all-reductions per iteration (p.Ap; ||r||^2).
        - ``pcg``: preconditioned CG; 1 SpMV, 1 preconditioner application, 2 all-reductions.
        - ``cg1``: Chronopoulos & Gear's single-reduction PCG (J. Comput. Appl. Math. 25,
          1989): r.u, w.u and r.r fused into 1 all-reduction per iteration.
        - ``pipecg``: Ghysels & Vanroose's pipelined PCG (Parallel Computing 40, 2014): the one
          all-reduction is non-blocking and overlaps the preconditioner and the SpMV.
        - ``dcdm``: the Deep Conjugate Direction Method (Kaneda et al., ICML 2023): a trained
          network proposes each direction, A-orthogonalised against the last two; 2 SpMVs, 1
          network evaluation (~0.1 GFLOP per 32^3 cells) and 3 all-reductions per iteration.
          Needs a structured 3D Poisson problem (a DistCSR from ``hpc.sparse.generators``
          carries its grid); the shipped model, numpy kernels.

        Iterates, and so iteration counts, match SciPy's ``cg`` for cg and pcg with Jacobi (up
        to the summation order of the dot products).
    pc : {None, "none", "jacobi", "bjacobi", "chebyshev", "mg", "amg", "gamg"}
        The command line's ``--pc``. None: ``"none"`` for cg and dcdm, ``"jacobi"`` otherwise.
        ``bjacobi``: one symmetric Gauss-Seidel sweep on each rank's diagonal block;
        ``chebyshev``: a degree-3 Chebyshev polynomial in D^-1 A; ``mg``: HPCG's geometric
        multigrid V-cycle (structured problems only); ``amg``: smoothed-aggregation algebraic
        multigrid (:mod:`hpc.amg`); ``gamg``: PETSc's (``backend="petsc"``).
    rtol, atol : float
        Stop when ``||r_k|| < max(rtol * ||b||, atol)`` (SciPy's rule; ``r_k`` the
        recursive residual, confirmed with the true residual ``b - A x`` before stopping).
        Defaults 1e-8 and 0.0. Must be finite and >= 0.
    maxiter : int, optional
        Iteration limit (default: 10000, the command line's).
    callback : callable, optional
        ``callback(xk)`` after every iteration, on every rank, as SciPy calls it. For a global
        input ``xk`` is the whole current iterate (gathered for the call: one Allgatherv of n
        doubles per iteration, O(n) memory and traffic on every rank); for a distributed input
        it is this rank's block, at no extra cost. Not with ``backend="petsc"``.
    comm : mpi4py.MPI.Comm, optional
        The ranks that solve (default ``MPI.COMM_WORLD``). A distributed A brings its own.
    backend : {"native", "numba", "numpy", "scipy", "cupy", "petsc"}
        Sparse kernels of the SpMV (C++/OpenMP, Numba, NumPy, SciPy), CuPy (vectors on the
        GPU, cuSPARSE), or petsc4py's KSP on the same matrix (cg, pcg, pipecg; from x0 = 0).

    Returns
    -------
    x : numpy.ndarray
        The solution: length n on every rank for a global input, this rank's block for a
        distributed one (a CuPy array with ``backend="cupy"`` and a distributed input).
    info : SolveInfo
        ``converged``, ``iterations``, ``recursive_relres``, ``true_relres``, ``breakdown``,
        the ``residuals`` history and counters. A breakdown or the iteration limit is not an
        exception: ``info.converged`` is False and ``info.breakdown`` says why.

    Raises
    ------
    ValueError
        (``hpc.core.errors.UsageError``) a non-square A, b or x0 of the wrong length, an
        unknown method, pc or back end, a negative or non-finite rtol/atol, a negative
        maxiter, inf or nan in A, b or x0, a method or pc the input cannot take (mg and dcdm
        need a structured problem), a back end not available here.
    TypeError
        (``hpc.core.errors.InputTypeError``) an A, b, x0, comm or callback of the wrong type
        (a dense matrix, complex values, a non-numeric rtol).

    Notes
    -----
    Cost per iteration: one SpMV (one ghost exchange with the ranks that own the columns a
    rank's rows touch, O(nnz / p) flops), a few O(n / p) vector updates, one preconditioner
    application, and 1-2 all-reductions of a few doubles (their latency, log p, is what cg1
    and pipecg reduce or hide). Set-up: the preconditioner (bjacobi factors each rank's
    block; mg builds its hierarchy; chebyshev runs 15 power iterations).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> import hpc.cg
    >>> T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(50, 50))
    >>> A = sp.kronsum(T, T).tocsr()                  # 2D Poisson, 2500 rows
    >>> x, info = hpc.cg.solve(A, np.ones(2500), method="pcg", pc="jacobi")
    >>> info.converged, info.true_relres < 1e-8
    (True, True)
    """
    s = Solver(A, method=method, pc=pc, rtol=rtol, atol=atol, maxiter=maxiter, comm=comm,
               backend=backend)
    try:
        return s.solve(b, x0, callback=callback)
    finally:
        s.free()
