"""hpc.cg.solve, the public API, under mpiexec (1-4 ranks): global SciPy input, DistCSR input and
Matrix Market paths against scipy.sparse.linalg (cg, spsolve); atol, callback, x0, maxiter;
wrong inputs raise ValueError / TypeError with a clear message."""
from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from mpi4py import MPI

import hpc.cg
from hpc.sparse import DistCSR
from hpc.sparse.generators import poisson3d

pytestmark = pytest.mark.mpi
comm = MPI.COMM_WORLD


def poisson2d(n: int) -> sp.csr_matrix:
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n, n))
    return sp.kronsum(T, T, format="csr")


def rhs(n: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).random(n) + 0.5


def scipy_iterations(A, b, rtol, atol=0.0, M=None) -> tuple[np.ndarray, int]:
    count = [0]
    x, info = sla.cg(A, b, rtol=rtol, atol=atol, maxiter=10000, M=M,
                     callback=lambda xk: count.__setitem__(0, count[0] + 1))
    assert info == 0
    return x, count[0]


def jacobi(A):
    d = A.diagonal()
    return sla.LinearOperator(A.shape, matvec=lambda v: v / d)


# -- global input: every rank gives the same SciPy matrix and gets the whole x -------------------
@pytest.mark.parametrize("method,pc", [("cg", None), ("pcg", "jacobi"), ("cg1", "jacobi"),
                                       ("pipecg", "jacobi"), ("pcg", "bjacobi"),
                                       ("pipecg", "chebyshev"), ("cg1", "none")])
def test_global_scipy_input_matches_spsolve(method, pc):
    A = poisson2d(17)
    b = rhs(A.shape[0])
    x, info = hpc.cg.solve(A, b, method=method, pc=pc, rtol=1e-10)
    ref = sla.spsolve(A.tocsc(), b)
    assert isinstance(info, hpc.cg.SolveInfo)
    assert info.converged and info.breakdown is None and info.method == method
    assert x.shape == (A.shape[0],)
    np.testing.assert_allclose(x, ref, rtol=1e-7, atol=0)
    assert info.true_relres <= 1e-10
    assert np.linalg.norm(b - A @ x) / np.linalg.norm(b) == pytest.approx(info.true_relres, rel=1e-6)
    assert len(info.residuals) >= info.iterations and info.residuals[0] == pytest.approx(1.0)
    # the same x on every rank
    assert np.array_equal(comm.bcast(x, root=0), x)


@pytest.mark.parametrize("method,pc", [("cg", None), ("pcg", "jacobi")])
def test_iterations_match_scipy_cg(method, pc):
    """cg and Jacobi-pcg take SciPy's cg iterations (same operations, same stopping rule)."""
    A = poisson2d(20)
    b = rhs(A.shape[0])
    x, info = hpc.cg.solve(A, b, method=method, pc=pc, rtol=1e-9)
    xs, its = scipy_iterations(A, b, 1e-9, M=jacobi(A) if pc == "jacobi" else None)
    assert abs(info.iterations - its) <= 1, (info.iterations, its)
    np.testing.assert_allclose(x, xs, rtol=1e-6)


def test_scipy_array_and_coo_inputs():
    A = sp.coo_array(poisson2d(9))
    b = rhs(A.shape[0]).reshape(-1, 1)        # (n, 1) as SciPy accepts it
    x, info = hpc.cg.solve(A, b)
    assert info.converged and x.shape == (81,)
    np.testing.assert_allclose(x, sla.spsolve(A.tocsc(), b.ravel()), rtol=1e-7)


def test_matrix_market_path_input():
    A = poisson2d(12)
    d = tempfile.mkdtemp() if comm.rank == 0 else None
    d = comm.bcast(d, root=0)
    path = os.path.join(d, "poisson.mtx")
    if comm.rank == 0:
        scipy.io.mmwrite(path, A, symmetry="symmetric")
    comm.Barrier()
    b = rhs(A.shape[0])
    x, info = hpc.cg.solve(path, b, method="pcg")
    assert info.converged and info.pc == "jacobi"      # pc=None: jacobi for pcg, as the CLI
    np.testing.assert_allclose(x, sla.spsolve(A.tocsc(), b), rtol=1e-6)
    comm.Barrier()
    if comm.rank == 0:
        os.remove(path)
        os.rmdir(d)


# -- distributed input: DistCSR in, this rank's blocks in and out -------------------------------
@pytest.mark.parametrize("method,pc", [("cg", None), ("pcg", "jacobi"), ("cg1", "bjacobi"),
                                       ("pipecg", "chebyshev")])
def test_distcsr_input_gives_local_blocks(method, pc):
    G = poisson2d(15)
    A = DistCSR.from_scipy(G, comm)
    b = rhs(G.shape[0])
    lo, hi = A.row_range
    x, info = hpc.cg.solve(A, A.local_slice(b), method=method, pc=pc, rtol=1e-10)
    assert x.shape == (hi - lo,)
    full = A.gather_vector(x, root=None)
    np.testing.assert_allclose(full, sla.spsolve(G.tocsc(), b), rtol=1e-7)
    assert info.converged and info.true_relres <= 1e-10
    # a distributed solve reports the same as the global one
    xg, ig = hpc.cg.solve(G, b, method=method, pc=pc, rtol=1e-10)
    assert ig.iterations == info.iterations
    np.testing.assert_allclose(xg[lo:hi], x, rtol=1e-12, atol=1e-14)


def test_structured_problem_multigrid_and_dcdm():
    """mg and dcdm need the grid: a DistCSR from hpc.sparse.generators carries it."""
    A = poisson3d(8, comm)
    G = A.to_scipy()
    b = rhs(G.shape[0])
    ref = sla.spsolve(G.tocsc(), b)
    for method, pc in (("pcg", "mg"), ("dcdm", None)):
        x, info = hpc.cg.solve(A, A.local_slice(b), method=method, pc=pc, rtol=1e-9,
                               backend="numpy" if method == "dcdm" else "native")
        assert info.converged, (method, info)
        np.testing.assert_allclose(A.gather_vector(x, root=None), ref, rtol=1e-6)
    assert info.details["network_evals"] == info.iterations


# -- stopping rule, callback, x0, maxiter -------------------------------------------------------
def test_atol_stops_as_scipy_does():
    A = poisson2d(20)
    b = rhs(A.shape[0])
    atol = 1e-3 * np.linalg.norm(b)
    x, info = hpc.cg.solve(A, b, rtol=0.0, atol=atol)
    _, its = scipy_iterations(A, b, rtol=0.0, atol=atol)
    assert info.converged and abs(info.iterations - its) <= 1
    assert np.linalg.norm(b - A @ x) <= atol
    # the larger of rtol ||b|| and atol wins
    _, loose = hpc.cg.solve(A, b, rtol=1e-12, atol=atol)
    _, tight = hpc.cg.solve(A, b, rtol=1e-12)
    assert loose.iterations == info.iterations < tight.iterations


def test_callback_once_per_iteration_with_global_iterate():
    A = poisson2d(14)
    b = rhs(A.shape[0])
    seen = []
    x, info = hpc.cg.solve(A, b, method="pcg", pc="jacobi", callback=lambda xk: seen.append(xk.copy()))
    assert len(seen) == info.iterations > 0
    assert all(s.shape == (A.shape[0],) for s in seen)
    np.testing.assert_array_equal(seen[-1], x)


@pytest.mark.parametrize("method", ["cg", "cg1", "pipecg", "dcdm"])
def test_callback_distributed_gets_local_block(method):
    A = poisson3d(8, comm) if method == "dcdm" else DistCSR.from_scipy(poisson2d(12), comm)
    n = A.shape[0]
    lo, hi = A.row_range
    seen = []
    x, info = hpc.cg.solve(A, A.local_slice(rhs(n)), method=method, rtol=1e-8,
                           backend="numpy" if method == "dcdm" else "native",
                           callback=lambda xk: seen.append(len(xk)))
    assert info.converged and len(seen) == info.iterations and set(seen) == {hi - lo}


def test_x0_and_maxiter():
    A = poisson2d(16)
    b = rhs(A.shape[0])
    ref = sla.spsolve(A.tocsc(), b)
    x, info = hpc.cg.solve(A, b, ref, rtol=1e-8)             # already solved: no iteration
    assert info.converged and info.iterations == 0
    x, info = hpc.cg.solve(A, b, maxiter=3)
    assert not info.converged and info.iterations == 3 and info.breakdown is None
    x, info = hpc.cg.solve(A, np.zeros(A.shape[0]))            # b = 0: x = 0, as SciPy
    assert info.converged and not x.any()


def test_breakdown_is_reported_not_raised():
    A = sp.diags(np.r_[np.arange(1.0, 6.0), -np.arange(1.0, 6.0)], format="csr")
    x, info = hpc.cg.solve(A, np.ones(10))
    assert not info.converged and "not symmetric positive definite" in info.breakdown


def test_any_communicator():
    """A sub-communicator (and COMM_SELF) solves on its own ranks."""
    A = poisson2d(10)
    b = rhs(A.shape[0])
    ref = sla.spsolve(A.tocsc(), b)
    sub = comm.Split(comm.rank % 2, comm.rank)
    for c in (MPI.COMM_SELF, sub):
        x, info = hpc.cg.solve(A, b, comm=c, rtol=1e-10)
        assert info.converged
        np.testing.assert_allclose(x, ref, rtol=1e-7)
    sub.Free()


def test_solver_reuses_setup_for_several_right_hand_sides():
    A = poisson2d(12)
    s = hpc.cg.Solver(A, method="pcg", pc="bjacobi", rtol=1e-10)
    for seed in (1, 2):
        b = rhs(A.shape[0], seed)
        x, info = s.solve(b)
        assert info.converged
        np.testing.assert_allclose(x, sla.spsolve(A.tocsc(), b), rtol=1e-7)
    s.free()


# -- wrong inputs -------------------------------------------------------------------------------
A_OK = poisson2d(6)
B_OK = np.ones(36)
BAD_A = A_OK.copy()
BAD_A.data[3] = np.nan


@pytest.mark.parametrize("args,kwargs,exc,fragment", [
    ((sp.random(5, 4, density=0.5, format="csr", random_state=0), np.ones(5)), {}, ValueError,
     "square"),
    ((A_OK, np.ones(35)), {}, ValueError, "b has shape (35,), expected (36,)"),
    ((A_OK, B_OK, np.ones(7)), {}, ValueError, "x0 has shape"),
    ((A_OK, B_OK), {"method": "gmres"}, ValueError, "method='gmres': unknown"),
    ((A_OK, B_OK), {"method": "pcg", "pc": "ilu"}, ValueError, "pc='ilu': unknown"),
    ((A_OK, B_OK), {"backend": "fortran"}, ValueError, "backend='fortran': unknown"),
    ((A_OK, B_OK), {"rtol": -1e-8}, ValueError, "rtol must be a finite number >= 0, got -1e-08"),
    ((A_OK, B_OK), {"atol": float("inf")}, ValueError, "atol must be a finite number >= 0, got inf"),
    ((A_OK, B_OK), {"maxiter": -2}, ValueError, "maxiter must be an integer >= 0, got -2"),
    ((A_OK, np.r_[np.nan, np.ones(35)]), {}, ValueError, "b has 1 non-finite"),
    ((BAD_A, B_OK), {}, ValueError, "A has 1 non-finite"),
    ((A_OK, B_OK), {"pc": "jacobi"}, ValueError, "takes no preconditioner"),
    ((A_OK, B_OK), {"method": "pcg", "pc": "mg"}, ValueError, "structured problem"),
    ((A_OK, B_OK), {"method": "dcdm"}, ValueError, "structured 3D grid"),
    (("/nonexistent/m.mtx", B_OK), {}, ValueError, "no such Matrix Market file"),
    ((A_OK.toarray(), B_OK), {}, TypeError, "dense numpy array"),
    (([[1.0]], [1.0]), {}, TypeError, "got list"),
    ((A_OK, B_OK + 1j), {}, TypeError, "complex"),
    ((A_OK, B_OK), {"rtol": "1e-8"}, TypeError, "rtol must be a real number"),
    ((A_OK, B_OK), {"maxiter": 2.5}, TypeError, "maxiter must be an integer"),
    ((A_OK, B_OK), {"comm": 0}, TypeError, "comm must be an mpi4py intracommunicator"),
    ((A_OK, B_OK), {"callback": 5}, TypeError, "callback: expected a callable"),
])
def test_wrong_input_raises(args, kwargs, exc, fragment):
    with pytest.raises(exc) as err:
        hpc.cg.solve(*args, **kwargs)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)        # one clear line


def test_wrong_local_block_length_raises_on_every_rank():
    A = DistCSR.from_scipy(poisson2d(9), comm)
    b = np.ones(A.local_rows + (1 if comm.rank == comm.size - 1 else 0))   # one rank is wrong
    with pytest.raises(ValueError, match="b has shape"):
        hpc.cg.solve(A, b)


def test_docstring_example_runs():
    import doctest

    import hpc.cg.api

    res = doctest.testmod(hpc.cg.api)
    assert res.attempted > 0 and res.failed == 0
