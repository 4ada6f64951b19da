"""A SciPy sparse matrix distributed with hpc.sparse, multiplied by a vector, checked by SciPy.

    python examples/sparse.py                 # one process
    mpiexec -n 4 python examples/sparse.py    # the same calls, rows shared by four ranks

Every rank holds the same global SciPy matrix and keeps its own block of rows; vectors are
plain NumPy arrays, one block per rank (local_slice cuts one out of a global vector,
gather_vector joins them again). hpc.sparse.read_matrix reads a Matrix Market file the same
way, each rank parsing its own part of the file.
"""
import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from hpc.sparse import DistCSR

# The 2-D Poisson matrix on a 60 x 60 grid (3600 rows, 5 entries a row), built with SciPy.
T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(60, 60))
S = (sp.kron(sp.eye(60), T) + sp.kron(T, sp.eye(60))).tocsr()

A = DistCSR.from_scipy(S)                     # comm=None: MPI.COMM_WORLD
x = np.sin(np.arange(S.shape[1]))             # the same global vector on every rank
y_local = A.matvec(A.local_slice(x, rows=False))   # this rank's rows of A @ x
y = A.gather_vector(y_local, root=None)       # the whole product, on every rank

say = print if MPI.COMM_WORLD.rank == 0 else (lambda *a, **k: None)
lo, hi = A.row_range
say(f"A: {A.shape[0]} x {A.shape[1]}, {A.nnz} nonzeros over {A.comm.size} rank(s); "
    f"rank 0 holds rows {lo}..{hi - 1}")
err = float(np.abs(y - S @ x).max())
exact = (A.to_scipy() != S).nnz == 0         # the global matrix back, on every rank
say(f"{'VALID' if err <= 1e-12 and exact else 'INVALID'}: max |A @ x - SciPy| = {err:.1e}, "
    f"to_scipy() round trip {'exact' if exact else 'differs'}")
