"""Sparse matrix times sparse matrix with hpc.spgemm, checked against SciPy.

    python examples/spgemm.py                 # one process
    mpiexec -n 4 python examples/spgemm.py    # the same call, four ranks share the work

A and B are SciPy sparse matrices given identically on every rank; C = A B comes back on
every rank as SciPy CSR with sorted column indices. (With hpc.sparse.DistCSR operands the
product stays distributed.)
"""
import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from hpc.spgemm import multiply

# Two random sparse matrices, 2000 x 1500 and 1500 x 1000 (a fixed seed: the same on every rank).
A = sp.random(2000, 1500, density=0.005, format="csr", random_state=1)
B = sp.random(1500, 1000, density=0.005, format="csr", random_state=2)

C = multiply(A, B)                    # the SMASH-style hash kernel, 1D rows over the ranks
say = print if MPI.COMM_WORLD.rank == 0 else (lambda *a, **k: None)
say(f"C = A B: {C.shape[0]} x {C.shape[1]}, {C.nnz} nonzeros")

R = (A @ B).tocsr()
R.sort_indices()
same = (np.array_equal(C.indptr, R.indptr) and np.array_equal(C.indices, R.indices)
        and np.allclose(C.data, R.data, rtol=1e-12, atol=0))
err = abs(C - R).max() if R.nnz else 0.0
say(f"{'VALID' if same else 'INVALID'}: against SciPy's A @ B, max |difference| = {err:.1e}")

# A masked semiring product: triangles of the graph of A + Aᵀ, counted as sum(C<L> = L Lᵀ).
from hpc.spgemm import count_triangles  # noqa: E402

G = sp.csr_matrix(((A[:1000, :1000] + A[:1000, :1000].T) != 0).astype(np.int64))
G.setdiag(0)  # a simple graph: no self loops
G.eliminate_zeros()
L = sp.tril(G, k=-1).tocsr()
masked = multiply(L, L.T.tocsr(), semiring="plus_pair", mask=L)
tri = int(masked.sum())
ref = int(round(np.trace((G @ G @ G).toarray()) / 6))  # dense trace(G^3)/6
say(f"{'VALID' if tri == ref == count_triangles(G) else 'INVALID'}: {tri} triangles "
    f"(trace(G^3)/6 = {ref})")
