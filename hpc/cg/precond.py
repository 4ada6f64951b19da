"""Preconditioners for PCG: z = M^{-1} r on row-distributed vectors. Each is SPD for an SPD A.

- ``none``: identity.
- ``jacobi``: z = r / diag(A).
- ``bjacobi``: block Jacobi, one block per rank (its rows x its columns), solved approximately
  by one symmetric Gauss-Seidel sweep (``--sub-pc sgs``, default) or by IC(0) (``icc``).
- ``chebyshev``: a fixed Chebyshev polynomial in D^{-1}A of degree ``--cheb-degree`` on
  [lambda_max/ratio, 1.1 lambda_max], lambda_max estimated by power iteration (as PETSc's
  PCCHEBYSHEV/KSPCHEBYSHEV with a Jacobi inner PC). A fixed polynomial is a linear SPD operator.
- ``mg``: geometric multigrid V-cycle (HPCG's), for the structured problems; see :mod:`.mg`.
- ``amg``: smoothed-aggregation algebraic multigrid V-cycle (:mod:`hpc.amg`), any assembled SPD
  matrix; its coarse operators are Galerkin products on hpc.spgemm.

The local solvers of block Jacobi and of multigrid's smoother live in :mod:`.local`.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from hpc.core.errors import UsageError
from hpc.core.runtime import collective

from .local import SUB_PCS, LocalIC0, LocalSGS
from .mg import Multigrid

PCS = ("none", "jacobi", "bjacobi", "chebyshev", "mg", "amg")


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


class BlockJacobi:
    name = "bjacobi"

    def __init__(self, A, sub: str = "sgs", backend: str = "native"):
        if sub not in SUB_PCS:
            raise UsageError(f"--sub-pc {sub}: expected one of {', '.join(SUB_PCS)}")
        B = _local_block(A)
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
    host_only = name in ("bjacobi", "mg", "amg") and getattr(A, "backend", "") == "cupy"
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
        return Multigrid(problem, levels=po.get("mg_levels", 4), backend=opts.backend)
    if name == "amg":
        from hpc.amg import SmoothedAggregation
        from hpc.sparse import DistCSR

        if not isinstance(A, DistCSR):
            raise UsageError("--pc amg needs the assembled matrix (not --operator stencil)")
        return SmoothedAggregation(A, **{k[4:]: v for k, v in po.items() if k.startswith("amg_")})
    raise UsageError(f"--pc {name}: unknown (known: {', '.join(PCS)})")
