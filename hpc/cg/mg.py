"""HPCG's geometric multigrid V-cycle as a preconditioner for the structured problems.

Levels: the fine grid and grids coarsened by 2 in every dimension while all extents stay
even (at most ``levels``). Coarse operators are the same stencil rediscretised on the coarse
grid (HPCG's choice). Coarse point (x, y, z) sits on fine point (2x, 2y, 2z); the coarse row
is owned by the rank that owns that fine row, so restriction (injection of the fine residual)
and prolongation (adding the coarse correction back at those points) need no communication.
The smoother is HPCG's symmetric Gauss-Seidel step, coupled across ranks: the iterate's ghost
values are exchanged before the step (inside ``A.spmv``) and each rank sweeps its rows forward
then backward with its neighbours' values as exchanged. In correction form that step is
``x + SGS_loc(r - A x)``, SGS_loc the forward-backward sweep of the rank's diagonal block from
zero; from x = 0 (the pre-smoother, and the coarsest level) the halo is zero and it is
``SGS_loc(r)``. (``--pc bjacobi`` is that local sweep alone, one level, no coupling.)
``tests/mpi/test_cg_mg_coupled.py`` checks the V-cycle against a serial one whose smoother
sweeps every rank's block with the other blocks frozen. Pre- and post-smoother are the same
symmetric operator and prolongation is the transpose of restriction, so the V-cycle is a
symmetric linear operator, as PCG needs.
"""
from __future__ import annotations

import numpy as np

from hpc.core.errors import UsageError
from hpc.sparse.generators import structured

from .local import LocalSGS


class Level:
    def __init__(self, A, backend: str):
        self.A = A
        A.plan()
        self.sgs = LocalSGS(A.A_loc, backend)
        self.f2c: np.ndarray | None = None   # local fine indices of this rank's coarse points

    def smooth(self, r: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        """x + SGS(r - A x) (x None: SGS r)."""
        if x is None:
            return self.sgs.apply(r)
        x += self.sgs.apply(r - self.A.spmv(x))
        return x


class Multigrid:
    name = "mg"

    def __init__(self, problem, levels: int = 4, backend: str = "native"):
        A = problem.A
        grid, stencil = problem.grid, problem.stencil
        if grid is None or stencil is None:
            raise UsageError("--pc mg needs a structured problem (--problem poisson2d|poisson3d|hpcg:N)")
        if levels < 1:
            raise UsageError("--mg-levels must be at least 1")
        comm = A.comm
        self.levels = [Level(A, backend)]
        dims = tuple(int(d) for d in grid)
        active = [i for i, d in enumerate(dims) if d > 1]
        while len(self.levels) < levels and all(dims[i] % 2 == 0 and dims[i] >= 4 for i in active):
            fine = self.levels[-1]
            cdims = tuple(d // 2 if i in active else d for i, d in enumerate(dims))
            nx, ny, _ = dims
            cx, cy, cz = cdims
            c = np.arange(cx * cy * cz, dtype=np.int64)
            fx, fy, fz = 2 * (c % cx), 2 * ((c // cx) % cy), 2 * (c // (cx * cy))
            if dims[2] == 1:
                fz = np.zeros_like(fz)
            f_of_c = fx + nx * (fy + ny * fz)          # ascending in c
            coff = np.searchsorted(f_of_c, fine.A.row_offsets).astype(np.int64)
            coff[-1] = c.size
            Ac = structured(stencil, 0, comm, row_offsets=coff, dims=cdims, backend=A.backend)
            r = comm.Get_rank()
            fine.f2c = f_of_c[coff[r]:coff[r + 1]] - fine.A.row_offsets[r]
            self.levels.append(Level(Ac, backend))
            dims = cdims
        self.dims = [lv.A.grid or tuple(grid) for lv in self.levels]

    def _vcycle(self, k: int, r: np.ndarray) -> np.ndarray:
        lv = self.levels[k]
        if k == len(self.levels) - 1:
            return lv.smooth(r, None)
        x = lv.smooth(r, None)
        res = r - lv.A.spmv(x)
        xc = self._vcycle(k + 1, np.ascontiguousarray(res[lv.f2c]))
        x[lv.f2c] += xc
        return lv.smooth(r, x)

    def apply(self, r):
        return self._vcycle(0, np.ascontiguousarray(r, dtype=np.float64))

    def describe(self):
        return {"type": "mg", "levels": len(self.levels),
                "grids": [list(d) for d in self.dims], "smoother": "SYMGS coupled across ranks by a halo exchange (HPCG's; 1 pre, 1 post)",
                "coarse_operator": "rediscretised stencil (HPCG)"}
