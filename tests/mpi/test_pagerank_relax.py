"""Relaxed PageRank steps (``relax=True``, native/include/hpc/pagerank_relax.hpp) at 1-4 ranks:
fewer steps where a periodic component leaves a tail at the rate d, an answer within the bound
the stopping rule gives (||x - x*||_1 <= tol / (1 - d), against a tight serial solve), the same
decisions and bits in every native mode, the same steps in the generic loops, and at most one
step lost where the tail is a z = +d mode the relaxation cannot remove."""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import pytest
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core import backends as registry
from hpc.pagerank import graphio
from hpc.pagerank.solver import make_solver

comm = MPI.COMM_WORLD
D = 0.85
TOL = 1e-12

pytestmark = pytest.mark.skipif(not registry.is_available("native"),
                                reason="hpc._core not built")


def _edges(kind: str) -> np.ndarray:
    """A random directed graph of 300 vertices plus, for 'star', a path of 3 vertices with its
    edges both ways (bipartite: an error mode at -d; kron:19 has one such component) and, for
    'sinks', two directed cycles as closed classes, only one of them fed from the rest (a
    mode at +d)."""
    rng = np.random.default_rng(7)
    n = 300
    e = rng.integers(0, n, size=(1500, 2))
    e = e[e[:, 0] != e[:, 1]]
    if kind == "star":
        c = n
        extra = [(c, c + k) for k in (1, 2)] + [(c + k, c) for k in (1, 2)]
    else:
        ring = [(n + k, n + (k + 1) % 4) for k in range(4)]
        ring2 = [(n + 4 + k, n + 4 + (k + 1) % 7) for k in range(7)]
        extra = ring + ring2 + [(u, n) for u in range(0, n, 37)]
    return np.unique(np.vstack([e, np.array(extra)]), axis=0)


def _reference(e: np.ndarray) -> np.ndarray:
    """The fixed point by a serial power iteration to an L1 change of 1e-15."""
    n = int(e.max()) + 1
    A = sp.csr_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    deg = np.asarray(A.sum(axis=1)).ravel()
    inv = np.zeros(n)
    np.divide(1.0, deg, out=inv, where=deg > 0)
    PT = sp.csr_matrix(A.multiply(inv[:, None])).T.tocsr()
    x = np.full(n, 1.0 / n)
    for _ in range(2000):
        xn = D * (PT @ x) + (D * x[deg == 0].sum() + 1.0 - D) / n
        if np.abs(xn - x).sum() < 1e-15:
            return xn
        x = xn
    return x


def _solve(g, relax: bool, backend: str = "native", layout: str = "1d", **kw):
    s = make_solver(g, backend, layout, **kw)
    try:
        s.relax = relax
        res = s.solve(D, TOL, 2000)
        mode = getattr(s, "mode", layout)
    finally:
        s.free()
    ids, x = _gather(g, res.x)
    return res, x, mode


def _gather(g, x):
    ids = np.concatenate(comm.allgather(np.asarray(g.ids)))
    full = np.concatenate(comm.allgather(np.asarray(x)))
    out = np.empty_like(full)
    out[ids] = full
    return ids, out


@pytest.mark.mpi
def test_relaxed_steps_remove_the_periodic_tail():
    e = _edges("star")
    ref = _reference(e)
    g = graphio.from_edge_array(e, comm)
    plain, xp, _ = _solve(g, False)
    relaxed, xr, _ = _solve(g, True)
    assert plain.converged and relaxed.converged
    assert plain.relaxed == 0 and relaxed.relaxed >= 1
    # 140 -> 106 steps at tol 1e-12 (what is left is the path's mass settling, a +d mode)
    assert relaxed.iterations <= 0.8 * plain.iterations, (relaxed.iterations, plain.iterations)
    # the stopping rule's bound (G is a d-contraction in L1) holds for both answers (the
    # plain one, 25+ steps longer, is closer on the rest of the graph)
    assert np.abs(xr - ref).sum() <= TOL / (1 - D)
    assert np.abs(xp - ref).sum() <= TOL / (1 - D)
    assert abs(xr.sum() - 1.0) < 1e-13


@pytest.mark.mpi
def test_relaxed_steps_same_decisions_and_bits_in_every_mode():
    """The policy is fed global changes only: the local / replicated / piggy-backed /
    all-reduced native loops relax the same steps and give the same bits; the generic loop
    (NumPy, and the 2D layout) relaxes the same steps, with its own rounding."""
    e = _edges("star")
    g = graphio.from_edge_array(e, comm)
    runs = {"replicated": _solve(g, True, replicate=True)}
    if comm.size > 1:
        runs["piggyback"] = _solve(g, True, reduce="piggyback")
        runs["allreduce"] = _solve(g, True, reduce="allreduce")
    base, xb, _ = runs["replicated"]
    for name, (res, x, mode) in runs.items():
        assert res.iterations == base.iterations and res.relaxed == base.relaxed, name
        assert np.array_equal(x, xb), (name, mode)
    for backend, layout in (("numpy", "1d"), ("numpy", "2d"), ("native", "2d")):
        res, x, _ = _solve(g, True, backend, layout)
        assert (res.iterations, res.relaxed) == (base.iterations, base.relaxed), (backend, layout)
        assert np.abs(x - xb).max() <= 1e-14, (backend, layout)


@pytest.mark.mpi
def test_relaxed_step_that_does_not_pay_is_tried_once():
    """Two closed classes (a mode at +d): one relaxed step, judged, then none; at most one
    step more than the plain iteration, the same bound on the answer."""
    e = _edges("sinks")
    ref = _reference(e)
    g = graphio.from_edge_array(e, comm)
    plain, _, _ = _solve(g, False)
    relaxed, xr, _ = _solve(g, True)
    assert relaxed.converged and relaxed.relaxed == 1
    assert relaxed.iterations <= plain.iterations + 1
    assert np.abs(xr - ref).sum() <= TOL / (1 - D)


@pytest.mark.mpi
def test_app_relax_option_and_record():
    from hpc.pagerank.app import main

    e = _edges("star")
    path = comm.bcast(tempfile.mkdtemp() if comm.rank == 0 else None)
    graph, out = os.path.join(path, "star.txt"), os.path.join(path, "rec.json")
    if comm.rank == 0:
        np.savetxt(graph, e, fmt="%d")
    comm.Barrier()
    steps = {}
    for relax in ("off", "on"):
        assert main(["--graph", graph, "--tol", str(TOL), "--relax", relax, "--quiet",
                     "--json", out]) == 0
        if comm.rank == 0:
            rec = json.load(open(out))
            assert rec["validation"]["passed"]
            steps[relax] = (rec["metrics"]["iterations"], rec["metrics"]["relaxed_steps"])
        comm.Barrier()
    if comm.rank == 0:
        assert steps["off"][1] == 0 and steps["on"][1] >= 1
        assert steps["on"][0] < steps["off"][0]
