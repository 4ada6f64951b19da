"""hpc.amg (smoothed aggregation on hpc.spgemm) at 1-4 ranks: aggregation equal to pyamg's
standard_aggregation, hierarchy properties (every coarse operator the Galerkin product PᵀAP,
symmetric positive definite), a symmetric positive preconditioner, and PCG convergence with
iteration counts near pyamg's smoothed-aggregation solver (the reference)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from mpi4py import MPI

from hpc.amg import SmoothedAggregation, aggregate
from hpc.sparse import DistCSR
from hpc.sparse.generators import poisson2d, poisson3d

pyamg = pytest.importorskip("pyamg")
comm = MPI.COMM_WORLD


@pytest.mark.mpi
@pytest.mark.parametrize("kind", ["poisson2d", "random"])
def test_aggregation_equals_pyamg(kind):
    if kind == "poisson2d":
        A = pyamg.gallery.poisson((23, 19), format="csr")
    else:
        rng = np.random.default_rng(2)
        M = sp.random(300, 300, 0.01, format="csr", random_state=rng)
        A = (M + M.T + sp.eye(300)).tocsr()  # a few isolated rows too
    S = pyamg.strength.symmetric_strength_of_connection(A, theta=0.0)
    AggOp, _ = pyamg.aggregation.standard_aggregation(S)
    agg, count = aggregate(S)
    assert count == AggOp.shape[1]
    ref = np.full(A.shape[0], -1)
    coo = AggOp.tocoo()
    ref[coo.row] = coo.col
    np.testing.assert_array_equal(agg, ref)


@pytest.mark.mpi
@pytest.mark.parametrize("kind", ["poisson2d", "1138_bus"])
def test_coupled_aggregation_equals_pyamg(kind):
    """Aggregates cross rank boundaries. The default global order runs the passes rank after
    rank: the serial algorithm, so the partition into aggregates is pyamg's at any rank count;
    the coloured order too at 1-3 ranks (rank colours in rank order, a chain), and at 4 ranks
    every node with a strong neighbour is still in exactly one aggregate."""
    from hpc.amg.sa import aggregate_coupled

    if kind == "poisson2d":
        Ag = pyamg.gallery.poisson((23, 19), format="csr")
    else:
        import scipy.io
        from conftest import data_file

        Ag = sp.csr_matrix(scipy.io.mmread(data_file("matrices", "1138_bus.mtx")))
    A = DistCSR.from_scipy(Ag, comm)
    S = pyamg.strength.symmetric_strength_of_connection(Ag, theta=0.0)
    AggOp, _ = pyamg.aggregation.standard_aggregation(S)
    ref = np.full(Ag.shape[0], -1)
    coo = AggOp.tocoo()
    ref[coo.row] = coo.col
    lo, hi = A.row_range
    for order in ("global", "coloured"):
        gid, coff = aggregate_coupled(A, 0.0, order)
        mine = np.full(Ag.shape[0], -2, dtype=np.int64)
        mine[lo:hi] = gid
        agg = np.empty_like(mine)
        comm.Allreduce(mine, agg, op=MPI.MAX)  # every row set by its owner
        assert np.array_equal(agg < 0, ref < 0)
        assert set(np.unique(agg[agg >= 0])) == set(range(int(coff[-1])))
        if order == "global" or comm.Get_size() <= 3:
            # the same partition, up to the numbering of the aggregates
            pairs = set(zip(agg[agg >= 0].tolist(), ref[ref >= 0].tolist()))
            assert len(pairs) == AggOp.shape[1] == coff[-1]


def _gather(M: DistCSR) -> sp.csr_matrix:
    return M.to_scipy(root=None)


@pytest.mark.mpi
@pytest.mark.parametrize("smoother", ["gauss_seidel", "chebyshev", "jacobi"])
def test_hierarchy_galerkin_spd(smoother):
    A = poisson2d(30, comm)
    ml = SmoothedAggregation(A, max_coarse=20, smoother=smoother)
    assert len(ml.levels) >= 3
    for k, lvl in enumerate(ml.levels):
        Ak = _gather(lvl.A).toarray()
        np.testing.assert_allclose(Ak, Ak.T, rtol=0, atol=1e-12 * np.abs(Ak).max())
        if Ak.shape[0] <= 400:
            assert np.linalg.eigvalsh(Ak).min() > 0
        if lvl.P is not None:
            P = _gather(lvl.P)
            nxt = _gather(ml.levels[k + 1].A).toarray()
            np.testing.assert_allclose(nxt, (P.T @ sp.csr_matrix(Ak) @ P).toarray(),
                                       rtol=1e-12, atol=1e-12 * np.abs(nxt).max())
            np.testing.assert_array_equal(_gather(lvl.R).toarray(), P.T.toarray())
    rows = [lv.A.shape[0] for lv in ml.levels]
    assert all(b < a for a, b in zip(rows, rows[1:]))
    d = ml.describe()
    assert d["levels"] == len(rows) and 1.0 < d["operator_complexity"] < 3.0


def _assert_symmetric_positive(ml: SmoothedAggregation, A: DistCSR, rng) -> tuple:
    """u M v = v M u (to 1e-10 of u M u) and u M u > 0 for random global u, v (the same on every
    rank: one seed); returns (u, this rank's rows of M u)."""
    lo, hi = A.row_range
    u, v = rng.standard_normal(A.shape[0]), rng.standard_normal(A.shape[0])
    Mu, Mv = ml.apply(u[lo:hi]), ml.apply(v[lo:hi])
    uMv = comm.allreduce(float(u[lo:hi] @ Mv))
    vMu = comm.allreduce(float(v[lo:hi] @ Mu))
    uMu = comm.allreduce(float(u[lo:hi] @ Mu))
    assert abs(uMv - vMu) <= 1e-10 * abs(uMu)
    assert uMu > 0
    return u, Mu


@pytest.mark.mpi
@pytest.mark.parametrize("matrix", ["poisson3d", "bcsstk13"])
def test_preconditioner_symmetric_positive(matrix):
    """Also on bcsstk13 (SPD, not an M-matrix), where a plain hybrid (rank-local) Gauss-Seidel
    gives an indefinite cycle: the coupled sweep is Gauss-Seidel in one global order, SPD at
    every rank count."""
    if matrix == "poisson3d":
        A = poisson3d(10, comm)
    else:
        import scipy.io
        from conftest import data_file

        A = DistCSR.from_scipy(sp.csr_matrix(scipy.io.mmread(data_file("matrices",
                                                                        "bcsstk13.mtx"))), comm)
    ml = SmoothedAggregation(A, max_coarse=30)
    rng = np.random.default_rng(11)  # the same vectors on every rank
    for _ in range(3):
        _assert_symmetric_positive(ml, A, rng)


def _pyamg_iterations(A: sp.csr_matrix, b: np.ndarray, rtol: float) -> int:
    ml = pyamg.smoothed_aggregation_solver(A, max_coarse=100)
    res: list = []
    ml.solve(b, tol=rtol, accel="cg", residuals=res, maxiter=500)
    return len(res) - 1


@pytest.mark.mpi
@pytest.mark.parametrize("problem", ["poisson2d:48", "poisson3d:14"])
def test_pcg_amg_converges_like_pyamg(problem):
    from hpc.cg import Solver

    kind, n = problem.split(":")
    A = (poisson2d if kind == "poisson2d" else poisson3d)(int(n), comm)
    Ag = _gather(A)
    b = np.random.default_rng(5).random(A.shape[0])
    rtol = 1e-8
    solver = Solver(A, method="pcg", pc="amg")
    lo, hi = A.row_range
    x, info = solver.solve(b[lo:hi])
    assert info.converged
    xg = A.gather_vector(x, root=None)
    assert np.linalg.norm(b - Ag @ xg) <= 1.01 * rtol * np.linalg.norm(b)
    ref = _pyamg_iterations(Ag, b, rtol)
    # within 1.2x pyamg's iterations at any rank count (aggregates stop at rank boundaries;
    # the Gauss-Seidel sweep is coupled across ranks)
    assert info.iterations <= max(1.2 * ref, ref + 2), (info.iterations, ref)


def _matrix(name: str, c) -> DistCSR:
    if name in ("bcsstk13", "1138_bus"):
        import scipy.io
        from conftest import data_file

        return DistCSR.from_scipy(sp.csr_matrix(scipy.io.mmread(
            data_file("matrices", f"{name}.mtx"))), c)
    return poisson3d(16, c)


@pytest.mark.mpi
@pytest.mark.parametrize("matrix", ["bcsstk13", "1138_bus", "poisson3d"])
def test_iterations_do_not_grow_with_ranks(matrix):
    """The PCG iteration count at this rank count is one rank's, up to rounding (every rank
    also solves alone on COMM_SELF for the reference): within 1% or 2 iterations, where the
    issue allows 10%. bcsstk13 (SPD, not an M-matrix) grew from 350 to 524 iterations at 2
    ranks with a rank-local (hybrid) Gauss-Seidel smoother, 1138_bus from 67 to 111 with
    aggregates cut at the rank boundary, and with a partition-dependent sweep order and
    Lanczos start bcsstk13 still took 347/343/350 at 2/3/4 ranks against 333."""
    from hpc.cg import Solver

    A = _matrix(matrix, comm)
    lo, hi = A.row_range
    b = np.random.default_rng(3).random(A.shape[0])
    _, info = Solver(A, method="pcg", pc="amg", rtol=1e-8, maxiter=3000).solve(b[lo:hi])
    print(f"{matrix}: {info.iterations} iterations at {comm.Get_size()} ranks")
    _, one = Solver(_matrix(matrix, MPI.COMM_SELF), method="pcg", pc="amg", rtol=1e-8,
                    maxiter=3000, comm=MPI.COMM_SELF).solve(b)
    assert info.converged and one.converged
    assert abs(info.iterations - one.iterations) <= max(2, 0.01 * one.iterations), \
        (info.iterations, one.iterations)


@pytest.mark.mpi
def test_bad_options():
    A = poisson2d(8, comm)
    with pytest.raises(ValueError, match="smoother"):
        SmoothedAggregation(A, smoother="sor")
    with pytest.raises(ValueError, match="theta"):
        SmoothedAggregation(A, theta=1.5)
    with pytest.raises(ValueError, match="order"):
        SmoothedAggregation(A, order="random")
    with pytest.raises(TypeError, match="DistCSR"):
        SmoothedAggregation(sp.eye(4, format="csr"))


@pytest.mark.mpi
@pytest.mark.parametrize("problem,smoother", [("hpcg:16", "gauss_seidel"),
                                              ("poisson3d:12", "gauss_seidel"),
                                              ("poisson3d:10", "chebyshev")])
def test_hierarchy_independent_of_partition(problem, smoother):
    """order='global' (the default): every level's spectral radius, prolongator and coarse
    operator at this rank count equal the one-rank ones to rounding (every rank also builds
    the hierarchy alone on COMM_SELF), and so do the PCG iteration counts (rtol 1e-10).
    max_coarse=5 makes coarse levels where, at 3 ranks, a rank owns no aggregate. Chebyshev:
    rho alone (the Lanczos start) made it depend on the partition."""
    from hpc.cg import Solver
    from hpc.sparse import generators

    kind, n = problem.split(":")
    make = getattr(generators, kind)
    A, A1 = make(int(n), comm), make(int(n), MPI.COMM_SELF)
    ml = SmoothedAggregation(A, max_coarse=5, smoother=smoother)
    ml1 = SmoothedAggregation(A1, max_coarse=5, smoother=smoother)
    assert len(ml.levels) == len(ml1.levels) >= 3
    for lvl, one in zip(ml.levels, ml1.levels):
        assert lvl.rho == pytest.approx(one.rho, rel=1e-12)
        Ak, Ak1 = _gather(lvl.A), _gather(one.A)
        assert Ak.shape == Ak1.shape
        assert abs(Ak - Ak1).max() <= 1e-12 * abs(Ak1).max()
        if one.P is not None:
            P, P1 = _gather(lvl.P), _gather(one.P)
            assert P.shape == P1.shape
            assert abs(P - P1).max() <= 1e-12 * abs(P1).max()
    lo, hi = A.row_range
    b = np.random.default_rng(4).random(A.shape[0])
    po = {"amg_smoother": smoother}
    _, info = Solver(A, method="pcg", pc="amg", rtol=1e-10, pc_options=po).solve(b[lo:hi])
    _, info1 = Solver(A1, method="pcg", pc="amg", rtol=1e-10, comm=MPI.COMM_SELF,
                      pc_options=po).solve(b)
    assert info.converged and info.iterations == info1.iterations, (info.iterations,
                                                                     info1.iterations)


@pytest.mark.mpi
def test_coloured_order_is_a_valid_preconditioner():
    """order='coloured' (ranks of a colour sweep at once; the order depends on the partition)
    still gives a symmetric positive preconditioner and PCG convergence near the global
    order's."""
    from hpc.cg import Solver

    A = poisson3d(12, comm)
    ml = SmoothedAggregation(A, order="coloured", max_coarse=30)
    lo, hi = A.row_range
    _assert_symmetric_positive(ml, A, np.random.default_rng(12))
    b = np.ones(A.shape[0])
    _, col = Solver(A, method="pcg", pc="amg", rtol=1e-8,
                    pc_options={"amg_order": "coloured"}).solve(b[lo:hi])
    _, glob = Solver(A, method="pcg", pc="amg", rtol=1e-8).solve(b[lo:hi])
    assert col.converged and col.iterations <= max(1.2 * glob.iterations, glob.iterations + 2)


# -- order="multicolour": hashed-priority colouring, colour-by-colour sweeps ---------------------

def _spd(name: str, c) -> DistCSR:
    """Small SPD test operators: a 27-point stencil, a 2-D Laplacian, bcsstk13 (dense rows)."""
    from hpc.sparse import generators

    if name == "bcsstk13":
        return _matrix(name, c)
    kind, n = name.split(":")
    return getattr(generators, kind)(int(n), c)


def _greedy_reference(S: sp.csr_matrix) -> np.ndarray:
    """The greedy colouring in decreasing (hash, index) order, written plainly in Python."""
    from hpc.amg.colour import hash64

    n = S.shape[0]
    key = hash64(np.arange(n, dtype=np.uint64))
    order = sorted(range(n), key=lambda i: (int(key[i]), i), reverse=True)
    col = np.full(n, -1)
    for i in order:
        nb = S.indices[S.indptr[i]:S.indptr[i + 1]]
        taken = {int(col[j]) for j in nb if j != i and col[j] >= 0}
        col[i] = next(k for k in range(len(nb) + 1) if k not in taken)
    return col


@pytest.mark.mpi
@pytest.mark.parametrize("name", ["hpcg:9", "poisson2d:17", "bcsstk13"])
def test_colouring_valid_and_partition_independent(name):
    """The distributed colouring (Jones-Plassmann rounds) is the greedy colouring in hashed
    priority order, whatever the partition: equal to a plain serial reference, valid (no
    stored off-diagonal entry joins two rows of one colour)."""
    from hpc.amg.colour import colour

    A = _spd(name, comm)
    c, nc = colour(A)
    got = A.gather_vector(c.astype(np.float64), root=None).astype(np.int64)
    S = _gather(A).tocsr()
    ref = _greedy_reference(S)
    np.testing.assert_array_equal(got, ref)
    assert nc == ref.max() + 1
    coo = S.tocoo()
    off = coo.row != coo.col
    assert not np.any(got[coo.row[off]] == got[coo.col[off]])
    if name == "hpcg:9":
        assert 8 <= nc <= 27  # a 27-point stencil needs 8; hashed priorities give some more


def _sgs_reference(S: sp.csr_matrix, col: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Symmetric Gauss-Seidel colour by colour (forward, then backward), SciPy products."""
    x = x.copy()
    d = S.diagonal()
    off = (S - sp.diags(d)).tocsr()
    nc = int(col.max()) + 1
    for c in list(range(nc)) + list(range(nc - 1, -1, -1)):
        r = np.flatnonzero(col == c)
        x[r] = (b[r] - off[r] @ x) / d[r]
    return x


@pytest.mark.mpi
@pytest.mark.parametrize("name", ["hpcg:9", "bcsstk13"])
@pytest.mark.parametrize("zero", [False, True])
def test_multicolour_sweep_identical_at_any_partition(name, zero):
    """The sweep at this rank count equals a one-rank sweep (COMM_SELF) to the bit (each row
    sums in the global column order, the ghosts are exchanged before they are read) and a SciPy
    reference of Gauss-Seidel in the colour order to rounding; zero=True: the pre-smoothing's
    first sweep from x = 0 without the initial exchange."""
    from hpc.amg.colour import MultiColourPlan

    A, A1 = _spd(name, comm), _spd(name, MPI.COMM_SELF)
    g, g1 = MultiColourPlan(A), MultiColourPlan(A1)
    assert g.coupled == (comm.Get_size() > 1) and g.ncolours == g1.ncolours
    rng = np.random.default_rng(8)
    n = A.shape[0]
    b = rng.standard_normal(n)
    x0 = np.zeros(n) if zero else rng.standard_normal(n)
    lo, hi = A.row_range
    x = x0[lo:hi].copy()
    g.sweep(b[lo:hi], x, 1, zero)
    x1 = x0.copy()
    g1.sweep(b, x1, 1, zero)
    got = A.gather_vector(x, root=None)
    np.testing.assert_array_equal(got, x1)
    col = A.gather_vector(g.colours.astype(np.float64), root=None).astype(np.int64)
    ref = _sgs_reference(_gather(A).tocsr(), col, b, x0)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


@pytest.mark.mpi
@pytest.mark.parametrize("name", ["hpcg:12", "bcsstk13"])
def test_multicolour_cycle_symmetric_and_partition_independent(name):
    """order='multicolour' with every level swept by colours (colour_min_nnz=1): the V-cycle is
    symmetric positive, equal to the one-rank cycle to rounding, and PCG takes the one-rank
    iteration count at this rank count."""
    from hpc.amg.colour import MultiColourPlan
    from hpc.cg import Solver

    A, A1 = _spd(name, comm), _spd(name, MPI.COMM_SELF)
    opts = dict(order="multicolour", colour_min_nnz=1, max_coarse=30)
    ml, ml1 = SmoothedAggregation(A, **opts), SmoothedAggregation(A1, **opts)
    assert all(isinstance(lv.gs, MultiColourPlan) for lv in ml.levels[:-1])
    assert ml.describe()["colours"] == ml1.describe()["colours"]
    lo, hi = A.row_range
    rng = np.random.default_rng(13)
    for _ in range(2):
        u, Mu = _assert_symmetric_positive(ml, A, rng)
        Mu1 = ml1.apply(u)
        np.testing.assert_allclose(A.gather_vector(Mu, root=None), Mu1, rtol=1e-9,
                                   atol=1e-11 * np.abs(Mu1).max())
    b = rng.random(A.shape[0])
    po = {"amg_order": "multicolour", "amg_colour_min_nnz": 1}
    _, info = Solver(A, method="pcg", pc="amg", rtol=1e-8, maxiter=3000,
                     pc_options=po).solve(b[lo:hi])
    _, one = Solver(A1, method="pcg", pc="amg", rtol=1e-8, maxiter=3000, comm=MPI.COMM_SELF,
                    pc_options=po).solve(b)
    assert info.converged and one.converged
    assert info.iterations == one.iterations, (info.iterations, one.iterations)
    if name == "hpcg:12":  # and near pyamg's count on the stencil
        assert info.iterations <= max(1.2 * _pyamg_iterations(_gather(A), b, 1e-8), 8)


@pytest.mark.mpi
def test_multicolour_levels_chosen_by_entries_per_colour():
    """order='multicolour' sweeps by colours exactly the levels whose colours hold at least
    colour_min_nnz stored entries each (a rule on the global operator: the same levels at any
    rank count); the default threshold leaves a small problem in the global order."""
    from hpc.amg.colour import MultiColourPlan, colour

    A = _spd("hpcg:12", comm)
    d = SmoothedAggregation(A, max_coarse=20).describe()
    assert d["order"] == "multicolour" and d["colours"] == [0] * d["levels"]
    k = 1000
    ml = SmoothedAggregation(A, max_coarse=20, colour_min_nnz=k)
    assert ml.describe()["colours"][0] > 0
    for lvl in ml.levels:
        nc = colour(lvl.A)[1] if lvl.A.nnz >= 2 * k else None
        by_colours = nc is not None and lvl.A.nnz >= k * nc
        assert isinstance(lvl.gs, MultiColourPlan) == by_colours
