"""DCDM, the Deep Conjugate Direction Method (Kaneda et al., ICML 2023), distributed.

Algorithm 1 of the paper, on vectors kept in the solver's row-block layout::

    r = b - A x
    repeat until ||r|| < max(rtol ||b||, atol):
        d = f(r / ||r||)                           the network (one evaluation)
        d -= sum_{i in last two} (d.A d_i / d_i.A d_i) d_i   A-orthogonalise
        alpha = r.d / d.A d
        x += alpha d
        r = b - A x                                 the true residual, every iteration

Two matrix-vector products per iteration (A d and the true residual), one network
evaluation, three all-reductions (the two previous directions are A-orthogonal to each
other, so both projections fuse into one reduction; d.Ad with r.d in a second; ||r||).
The network runs on 3D blocks of the grid (:mod:`hpc.cg.dcdm`); residual and direction move
between the two layouts with one Alltoallv each way.

A direction with d.Ad <= 0 (a non-SPD matrix, or a network direction that vanished after
the projections) is a breakdown: the solve stops, unconverged, and says so.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from mpi4py import MPI

from hpc.core import backends as registry
from hpc.core.errors import UsageError

from ..methods import SolveResult
from . import weights as W
from .arch import flops
from .decomp import Redistributor, decompose
from .infer import DistNet

#: the network's back ends: name -> (module of its kernels, hpc.core.backends requirement)
BACKENDS: dict[str, tuple[str, str]] = {
    "numpy": ("hpc.cg.dcdm.kernels", "numpy"),
    "numba": ("hpc.cg.dcdm.kernels", "numba"),
    "cupy": ("hpc.cg.dcdm.kernels", "cupy"),
}


@dataclass
class DCDMOptions:
    """The options of ``--method dcdm`` (the command line's ``--dcdm-*``).

    Attributes
    ----------
    model : str or os.PathLike or None
        The trained network, an HDF5 file from ``train-dcdm`` (None: the shipped
        ``hpc/cg/dcdm/models/dcdm_poisson3d_n32.h5``).
    keep : int
        A-orthogonalise each direction against this many previous ones (the paper: 2).
    backend : str or None
        The network's kernels, numpy, numba or cupy (None: follow the solve's back end;
        native and scipy have none of their own and use numpy's BLAS).
    threads : int
        Threads of the network's kernels per rank.
    """

    model: str | os.PathLike | None = None
    keep: int = 2
    backend: str | None = None
    threads: int = 1


@dataclass
class DCDMResult:
    x: np.ndarray
    converged: bool
    iterations: int
    matvecs: int
    network_evals: int
    residuals: list[float]  # relative residual norm, starting with the initial one
    breakdown: str | None = None
    times: dict[str, float] = field(default_factory=dict)
    reductions: int = 0


class DCDMPreconditioner:
    """The network as a direction generator on the solver's row-block vectors (collective)."""

    def __init__(self, comm, grid: tuple[int, int, int], row_offsets: np.ndarray,
                 model: W.Model | None = None, backend: str = "numpy",
                 halo_method: str = "datatype", threads: int = 1):
        if backend not in BACKENDS:
            raise UsageError(f"DCDM's network runs on {', '.join(BACKENDS)}, not {backend!r}")
        registry.require(BACKENDS[backend][1])  # e.g. cupy without a GPU: a clear usage error
        self.model = model if model is not None else W.load()
        self.dec = decompose(comm, tuple(grid))
        self.redist = Redistributor(self.dec, row_offsets)
        self.net = DistNet(self.model, self.dec, backend, halo_method, threads)
        self.time_redistribute = 0.0

    def __call__(self, r_rows):
        """The direction for a residual, both in the solver's row layout (host or device)."""
        device = not isinstance(r_rows, np.ndarray)
        t0 = time.perf_counter()
        blk = self.redist.to_blocks(r_rows.get() if device else r_rows)
        t1 = time.perf_counter()
        d = self.net(blk)
        t2 = time.perf_counter()
        out = self.redist.to_rows(d)
        self.time_redistribute += (t1 - t0) + (time.perf_counter() - t2)
        if device:
            import cupy

            out = cupy.asarray(out)
        return out

    @property
    def evaluations(self) -> int:
        return self.net.evaluations

    def free(self) -> None:
        self.net.free()
        self.dec.free()


def dcdm_solve(comm, matvec: Callable[[np.ndarray], np.ndarray], b: np.ndarray,
               direction: Callable[[np.ndarray], np.ndarray], rtol: float, maxiter: int,
               x0: np.ndarray | None = None, keep: int = 2,
               callback: Callable[[np.ndarray], None] | None = None,
               atol: float = 0.0) -> DCDMResult:
    """Solve A x = b with DCDM. Vectors are this rank's rows; reductions go over comm.

    Stops when ||r|| < max(rtol ||b||, atol) or after maxiter iterations; ``callback(x)``
    after every iteration with this rank's rows of the iterate (SciPy's convention).
    """
    xp = _array_module(b)
    reductions = 0

    def allsum(*vals: float) -> np.ndarray:
        nonlocal reductions
        reductions += 1
        loc = np.array([float(v) for v in vals])
        out = np.empty_like(loc)
        comm.Allreduce(loc, out, op=MPI.SUM)
        return out

    t_net = t_mv = 0.0
    matvecs = 0
    if x0 is None:
        x = xp.zeros_like(b)
        r = b.copy()
    else:
        x = xp.array(x0, dtype=np.float64)
        r = b - matvec(x)
        matvecs += 1
    bb, rr = allsum(b @ b, r @ r)
    nb = float(np.sqrt(bb))
    if nb == 0.0:
        return DCDMResult(xp.zeros_like(b), True, 0, matvecs, 0, [0.0], reductions=reductions)
    rel = float(np.sqrt(rr)) / nb
    residuals = [rel]
    prev: list[tuple[np.ndarray, np.ndarray, float]] = []  # (d, A d, d.A d), newest last
    breakdown = None
    it = 0
    evals = 0
    # the CG solvers' test: ||r|| < max(rtol ||b||, atol)
    while not (rel < rtol or rel * nb < atol) and it < maxiter:
        t0 = time.perf_counter()
        d = direction(r / (rel * nb))
        t_net += time.perf_counter() - t0
        evals += 1
        if prev:
            coef = allsum(*[d @ ad for _, ad, _ in prev])
            for (p, _, pap), c in zip(prev, coef):
                d -= (c / pap) * p
        t0 = time.perf_counter()
        ad = matvec(d)
        t_mv += time.perf_counter() - t0
        matvecs += 1
        dad, rd = allsum(d @ ad, r @ d)
        if not dad > 0.0 or not np.isfinite(dad):
            breakdown = (f"d.Ad = {dad:.3g} at iteration {it + 1}: the matrix is not SPD or the "
                         "network direction vanished after A-orthogonalisation")
            break
        alpha = rd / dad
        x += alpha * d
        t0 = time.perf_counter()
        r = b - matvec(x)
        t_mv += time.perf_counter() - t0
        matvecs += 1
        it += 1
        rel = float(np.sqrt(allsum(r @ r)[0])) / nb
        residuals.append(rel)
        if callback is not None:
            callback(x)
        prev.append((d, ad, float(dad)))
        if len(prev) > keep:
            prev.pop(0)
    return DCDMResult(x, rel < rtol or rel * nb < atol, it, matvecs, evals, residuals, breakdown,
                      {"network_s": t_net, "matvec_s": t_mv}, reductions)


def _array_module(a):
    """numpy, or cupy for device vectors (the CG app's cupy back end)."""
    if isinstance(a, np.ndarray):
        return np
    import cupy

    return cupy.get_array_module(a)


# -- the hpc.cg method registry's entry point ---------------------------------------------
#: The CG app's --backend (sparse kernels) -> the network's kernels. native and scipy have no
#: network kernels of their own: the network then runs on numpy (BLAS GEMM), and the record
#: says so (network_backend).
NETWORK_BACKEND = {"numpy": "numpy", "numba": "numba", "cupy": "cupy", "native": "numpy",
                   "scipy": "numpy"}


def network_backend(opts_backend: str | None, explicit: str | None = None) -> str:
    """The network's kernels: ``explicit`` if given, else those that follow the solve's."""
    if explicit:
        return explicit
    be = NETWORK_BACKEND.get(opts_backend or "numpy")
    if be is None:
        raise UsageError(f"--method dcdm cannot run with --backend {opts_backend} "
                         f"(network kernels: {', '.join(BACKENDS)})")
    return be


def solve_method(problem, opts, callback: Callable[[np.ndarray], None] | None = None):
    """``--method dcdm`` for hpc.cg: ``solve(problem, opts) -> SolveResult``.

    Needs a structured 3D problem (the network works on the grid). ``opts.dcdm``
    (:class:`DCDMOptions`, None: the defaults) names the model file, how many directions to
    orthogonalise against and the network's kernels, which by default follow
    ``opts.backend`` (numpy, numba, cupy; native and scipy use numpy's BLAS). No --pc.
    """
    if opts.pc not in (None, "none"):
        raise UsageError(f"--method dcdm takes no --pc (the network supplies the directions; "
                         f"got --pc {opts.pc})")
    grid = getattr(problem, "grid", None)
    stencil = getattr(problem, "stencil", None)
    if grid is None or len(grid) != 3 or stencil is None or min(grid) < 2:
        raise UsageError("--method dcdm needs a structured 3D grid problem (--problem poisson3d:N): "
                         "its network works on the grid, not on a matrix file")
    dopts = opts.dcdm if opts.dcdm is not None else DCDMOptions()
    model = W.load(dopts.model)
    if model.problem and stencil != model.problem:
        raise UsageError(f"DCDM model {model.path} was trained for {model.problem}, not {stencil}")
    nx, ny, nz = grid
    backend = network_backend(opts.backend, dopts.backend)
    comm = problem.comm
    t0 = time.perf_counter()
    pre = DCDMPreconditioner(comm, (nz, ny, nx), problem.row_offsets, model, backend,
                             threads=dopts.threads)
    t_setup = time.perf_counter() - t0

    def matvec(v):
        return problem.matvec(v)

    def direction(r):
        return pre(r)

    keep = dopts.keep
    res = dcdm_solve(comm, matvec, problem.b, direction, opts.rtol, opts.maxiter, x0=problem.x0,
                     keep=keep, callback=callback, atol=opts.atol)
    extra = {
        "network_evals": res.network_evals,
        "pc": "none (the network supplies the directions)",
        "orthogonalised_against": keep,
        "network_backend": backend,
        "model": model.path,
        "model_trained_grid": model.trained_grid,
        "model_channels": model.channels,
        "process_grid": list(pre.dec.dims),
        "network_s": res.times.get("network_s", 0.0),
        "network_conv_s": pre.net.time_conv,
        "network_halo_s": pre.net.time_halo,
        "redistribute_s": pre.time_redistribute,
        "setup_s": t_setup,
        "network_gflop_per_eval": _net_gflop(model, nx * ny * nz),
    }
    pre.free()
    return SolveResult(res.x, res.converged, res.iterations, res.residuals, res.breakdown,
                       matvecs=res.matvecs, reductions=res.reductions, extra=extra)


def _net_gflop(model: W.Model, cells: int) -> float:
    return flops(cells, model.channels) / 1e9
