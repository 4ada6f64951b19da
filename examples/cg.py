"""Solve a sparse SPD system with hpc.cg, checked against SciPy's direct solver.

    python examples/cg.py                     # one process
    mpiexec -n 4 python examples/cg.py        # the same call, four ranks share the work

A is a SciPy sparse matrix (the 2D Poisson matrix) and b a NumPy vector, given identically on
every rank; x comes back whole on every rank. (With an hpc.sparse.DistCSR the vectors are each
rank's block of rows instead.)
"""
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from mpi4py import MPI

import hpc.cg

# The 5-point Laplacian on a 60 x 60 grid (3600 unknowns, Dirichlet boundary), b all ones.
n = 60
T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n, n))
A = sp.kronsum(T, T, format="csr")
b = np.ones(n * n)

# Preconditioned CG (Jacobi), the same stopping rule as scipy.sparse.linalg.cg
x, info = hpc.cg.solve(A, b, method="pcg", pc="jacobi", rtol=1e-10)

say = print if MPI.COMM_WORLD.rank == 0 else (lambda *a, **k: None)
say(f"pcg + jacobi on {MPI.COMM_WORLD.size} rank(s): {info.iterations} iterations, "
    f"relative residual {info.true_relres:.2e}, converged {info.converged}")

ref = spla.spsolve(A.tocsc(), b)
err = np.abs(x - ref).max() / np.abs(ref).max()
ok = info.converged and err < 1e-6   # ||error|| <= cond(A) * residual, cond(A) ~ 1.5e3
say(f"{'VALID' if ok else 'INVALID'}: against scipy.sparse.linalg.spsolve, "
    f"max relative difference {err:.1e}")
