"""Preconditioners for PCG: z = M^{-1} r on row-distributed vectors. Each is SPD for an SPD A.

- ``none``: identity.
- ``jacobi``: z = r / diag(A).
- ``bjacobi``: block Jacobi, one block per rank (its rows x its columns), solved approximately
  by one symmetric Gauss-Seidel sweep (``--sub-pc sgs``, default) or by IC(0) (``icc``).
- ``chebyshev``: a fixed Chebyshev polynomial in D^{-1}A of degree ``--cheb-degree`` on
  [lambda_max/ratio, 1.1 lambda_max], lambda_max estimated by power iteration (as PETSc's
  PCCHEBYSHEV/KSPCHEBYSHEV with a Jacobi inner PC). A fixed polynomial is a linear SPD operator.
- ``mg``: geometric multigrid V-cycle (HPCG's), for the structured problems; see :mod:`.mg`.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from hpc.core.errors import UsageError

PCS = ("none", "jacobi", "bjacobi", "chebyshev", "mg")
SUB_PCS = ("sgs", "icc")


class Identity:
    name = "none"

    def apply(self, r):
        return r

    def describe(self) -> dict[str, Any]:
        return {"type": "none"}


class Jacobi:
    name = "jacobi"

    def __init__(self, A, xp=np):
        d = A.diagonal()
        bad = np.flatnonzero(~(d > 0))
        nbad = int(A.comm.allreduce(int(bad.size)))
        if nbad:
            raise UsageError(f"--pc jacobi: {nbad} diagonal entr{'y is' if nbad == 1 else 'ies are'} "
                             "not positive (the matrix is not SPD)")
        self.inv = xp.asarray(1.0 / d)

    def apply(self, r):
        return r * self.inv

    def describe(self):
        return {"type": "jacobi"}


def _local_block(A) -> sp.csr_matrix:
    """This rank's diagonal block (own rows x own columns), local column numbering."""
    A.plan()
    return A.A_loc


class LocalSGS:
    """One symmetric Gauss-Seidel sweep on a square local block: z = (D+U)^{-1} D (D+L)^{-1} r."""

    def __init__(self, B: sp.csr_matrix, backend: str = "native"):
        from hpc.core import backends

        B = sp.csr_matrix(B)
        B.sort_indices()
        self.n = B.shape[0]
        self.indptr = B.indptr.astype(np.int64)
        self.indices = B.indices.astype(np.int32 if self.n < 2**31 - 1 else np.int64)
        self.data = np.ascontiguousarray(B.data, dtype=np.float64)
        self.diag = np.ascontiguousarray(B.diagonal(), dtype=np.float64)
        if self.n and not np.all(self.diag > 0):
            raise UsageError("symmetric Gauss-Seidel: the diagonal has entries <= 0 (not SPD)")
        if backend == "native" and backends.is_available("native"):
            from hpc import _core

            self._sweep = _core.sparse.gs_sweep
        else:
            from hpc.sparse import _numba

            self.indices = self.indices.astype(np.int64)
            self._sweep = _numba.gs_sweep

    def sweep(self, b: np.ndarray, x: np.ndarray, forward: bool) -> None:
        self._sweep(self.indptr, self.indices, self.data, self.diag, b, x, forward)

    def apply(self, r: np.ndarray) -> np.ndarray:
        r = np.ascontiguousarray(r, dtype=np.float64)
        z = np.zeros_like(r)
        self.sweep(r, z, True)
        self.sweep(r, z, False)
        return z


class LocalIC0:
    """Incomplete Cholesky with zero fill (IC(0)) of a square local block: z = (L L^T)^{-1} r."""

    def __init__(self, B: sp.csr_matrix):
        from . import _ic0

        L = sp.tril(sp.csr_matrix(B), format="csr")
        L.sort_indices()
        self.indptr = L.indptr.astype(np.int64)
        self.indices = L.indices.astype(np.int64)
        self.data = np.ascontiguousarray(L.data, dtype=np.float64).copy()
        bad = _ic0.factor(self.indptr, self.indices, self.data)
        if bad >= 0:
            raise UsageError(f"--sub-pc icc: IC(0) breaks down at local row {bad} (pivot <= 0); "
                             "the block is not an M-matrix; use --sub-pc sgs")
        self._solve = _ic0.solve

    def apply(self, r):
        r = np.ascontiguousarray(r, dtype=np.float64)
        return self._solve(self.indptr, self.indices, self.data, r)


class BlockJacobi:
    name = "bjacobi"

    def __init__(self, A, sub: str = "sgs", backend: str = "native"):
        if sub not in SUB_PCS:
            raise UsageError(f"--sub-pc {sub}: expected one of {', '.join(SUB_PCS)}")
        B = _local_block(A)
        from hpc.core.runtime import collective

        with collective(A.comm):
            self.solver = LocalSGS(B, backend) if sub == "sgs" else LocalIC0(B)
        self.sub = sub

    def apply(self, r):
        return self.solver.apply(r)

    def describe(self):
        return {"type": "bjacobi", "sub_pc": self.sub}


class Chebyshev:
    """Chebyshev polynomial preconditioner (Saad, Iterative Methods, Alg. 12.1) in D^{-1}A."""

    name = "chebyshev"

    def __init__(self, A, degree: int = 3, ratio: float = 30.0, power_its: int = 15, seed: int = 0):
        if degree < 1:
            raise UsageError("--cheb-degree must be at least 1")
        self.A, self.degree = A, degree
        self.dinv = Jacobi(A).inv
        self.lmax_est = self._power(power_its, seed)
        self.lmax = 1.1 * self.lmax_est
        self.lmin = self.lmax / ratio
        self.theta = 0.5 * (self.lmax + self.lmin)
        self.delta = 0.5 * (self.lmax - self.lmin)

    def _power(self, its: int, seed: int) -> float:
        """Power iteration on D^{-1}A: ||D^{-1}A v|| / ||v|| tends to lambda_max from below."""
        comm = self.A.comm
        rng = np.random.default_rng(seed + 7919 * comm.Get_rank())
        v = rng.random(self.A.local_rows) + 0.5
        lam = 0.0
        for _ in range(its):
            w = self.dinv * self.A.spmv(v)
            nv, nw = (math.sqrt(t) for t in comm.allreduce(np.array([v @ v, w @ w])))
            lam = nw / nv
            v = w / nw
        return lam

    def apply(self, r):
        theta, delta = self.theta, self.delta
        sigma = theta / delta
        rho = 1.0 / sigma
        d = (self.dinv * r) / theta
        z = d.copy()
        for _ in range(self.degree - 1):
            res = r - self.A.spmv(z)
            rho_new = 1.0 / (2.0 * sigma - rho)
            d *= rho_new * rho
            d += (2.0 * rho_new / delta) * (self.dinv * res)
            z += d
            rho = rho_new
        return z

    def describe(self):
        return {"type": "chebyshev", "degree": self.degree, "lambda_max_estimate": self.lmax_est,
                "interval": [self.lmin, self.lmax]}


def make_preconditioner(name: str | None, problem, opts) -> Any:
    """Build the preconditioner named by --pc (collective)."""
    name = name or "none"
    po = opts.pc_options or {}
    A = problem.A
    host_only = name in ("bjacobi", "mg") and getattr(A, "backend", "") == "cupy"
    if host_only:
        raise UsageError(f"--pc {name} runs on the host; with --backend cupy use none, jacobi or chebyshev")
    if name == "none":
        return Identity()
    if name == "jacobi":
        xp = A._xp() if hasattr(A, "_xp") else np
        return Jacobi(A, xp)
    if name == "bjacobi":
        return BlockJacobi(A, po.get("sub_pc", "sgs"), opts.backend)
    if name == "chebyshev":
        return Chebyshev(A, po.get("cheb_degree", 3), po.get("cheb_ratio", 30.0), seed=po.get("seed", 0))
    if name == "mg":
        from .mg import Multigrid

        return Multigrid(problem, levels=po.get("mg_levels", 4), backend=opts.backend)
    raise UsageError(f"--pc {name}: unknown (known: {', '.join(PCS)})")
