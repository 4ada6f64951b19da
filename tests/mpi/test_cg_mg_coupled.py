"""hpc.cg's --pc mg under mpiexec (1-4 ranks): its smoother is HPCG's rank-coupled SYMGS (the
iterate's halo exchanged before each smoothing step, each rank sweeping its rows with its
neighbours' values as exchanged), so its V-cycle equals a serial SciPy V-cycle whose smoother
sweeps every rank's row block with the other blocks frozen; --pc bjacobi is the rank-local
block Jacobi SGS, with no coupling."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from mpi4py import MPI
from scipy.sparse.linalg import spsolve_triangular

from hpc.cg.methods import Problem
from hpc.cg.mg import Multigrid
from hpc.cg.precond import BlockJacobi
from hpc.sparse.generators import make_problem

pytestmark = pytest.mark.mpi
comm = MPI.COMM_WORLD
N = 16


def hpcg_matrix(n: int) -> sp.csr_matrix:
    """27 I minus the 3x3x3 box sum on an n^3 grid (x fastest)."""
    t = sp.diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(n, n))
    return (27.0 * sp.identity(n ** 3) - sp.kron(t, sp.kron(t, t))).tocsr()


def block_symgs(A, blocks, r, x0):
    """Forward then backward Gauss-Seidel on each row block, the other blocks frozen at x0."""
    x = x0.copy()
    for lo, hi in blocks:
        Ar = A[lo:hi]
        Aqq = Ar[:, lo:hi].tocsr()
        rhs = r[lo:hi] - (Ar @ x0 - Aqq @ x0[lo:hi])
        L, U = sp.tril(Aqq, -1, format="csr"), sp.triu(Aqq, 1, format="csr")
        D = sp.diags(Aqq.diagonal())
        y = spsolve_triangular((D + L).tocsr(), rhs - U @ x0[lo:hi], lower=True)
        x[lo:hi] = spsolve_triangular((D + U).tocsr(), rhs - L @ y, lower=False)
    return x


def serial_vcycle(mg: Multigrid, offsets_per_level, r, k=0):
    n = mg.dims[k][0]
    A = hpcg_matrix(n)
    blocks = list(zip(offsets_per_level[k][:-1], offsets_per_level[k][1:]))
    x = block_symgs(A, blocks, r, np.zeros_like(r))
    if k == len(mg.levels) - 1:
        return x
    c = np.arange((n // 2) ** 3)
    m = n // 2
    f2c = 2 * (c % m) + n * (2 * ((c // m) % m) + n * 2 * (c // (m * m)))
    xc = serial_vcycle(mg, offsets_per_level, (r - A @ x)[f2c], k + 1)
    x[f2c] += xc
    return block_symgs(A, blocks, r, x)


def test_mg_vcycle_is_the_coupled_symgs_vcycle():
    A = make_problem(f"hpcg:{N}", comm)
    mg = Multigrid(Problem(comm, A, np.zeros(A.local_rows), grid=(N, N, N), stencil="hpcg"))
    offs = [np.asarray(lv.A.row_offsets) for lv in mg.levels]
    r = np.random.default_rng(4).random(N ** 3)
    lo, hi = int(offs[0][comm.Get_rank()]), int(offs[0][comm.Get_rank() + 1])
    z = mg.apply(r[lo:hi].copy())
    got = np.concatenate(comm.allgather(z))
    want = serial_vcycle(mg, offs, r)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)
    assert "coupled" in mg.describe()["smoother"]


def test_bjacobi_is_rank_local():
    A = make_problem(f"hpcg:{N}", comm)
    offs = np.asarray(A.row_offsets)
    r = np.random.default_rng(5).random(N ** 3)
    lo, hi = int(offs[comm.Get_rank()]), int(offs[comm.Get_rank() + 1])
    z = np.concatenate(comm.allgather(BlockJacobi(A).apply(r[lo:hi].copy())))
    # each block from zero, its neighbours' values zero: block_symgs with x0 = 0 everywhere
    want = block_symgs(hpcg_matrix(N), list(zip(offs[:-1], offs[1:])), r, np.zeros_like(r))
    np.testing.assert_allclose(z, want, rtol=1e-11, atol=1e-13)
