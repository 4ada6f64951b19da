"""The public hpc.halo API in-process at any rank count (tools/run_tests.sh: 1-4 ranks).

Every ghost cell is checked against an independent reference: the global field, built on
every rank with NumPy and padded with ``np.pad(mode="wrap")`` (periodic) or the fill value
(non-periodic). Also: start/wait equals exchange over repeated iterations and alternating
fields (the persistent requests are reused), the one Decomposition's properties, and wrong
inputs raising ValueError / TypeError.
"""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from hpc.core.decomp import Decomposition
from hpc.halo import HaloExchange, decompose

comm = MPI.COMM_WORLD


def _global(shape, q, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    g = rng.random(tuple(shape) + ((q,) if q else ()))
    return g.astype(dtype)


def _want(g, dec, r, periodic, fill):
    """The padded local field every rank must hold: the reference, from the global array."""
    nd = dec.ndim
    pad = [(r, r)] * nd + [(0, 0)] * (g.ndim - nd)
    if periodic:
        big = np.pad(g, pad, mode="wrap")
    else:
        big = np.pad(g, pad, mode="constant", constant_values=np.nan if fill is None else fill)
    return big[tuple(slice(o, o + n + 2 * r) for o, n in zip(dec.offset, dec.local_shape))]


def _load(halo, dec, g):
    u = halo.allocate(np.nan)
    halo.interior(u)[...] = g[dec.global_slices()]
    return u


def _same(a, b):
    return bool(np.array_equal(a, b, equal_nan=True))


def _all(ok):
    return comm.allreduce(bool(ok), op=MPI.LAND)


@pytest.mark.mpi
@pytest.mark.parametrize("method", ["pack", "datatype"])
@pytest.mark.parametrize("transport", ["p2p", "alltoallw"])
@pytest.mark.parametrize("periodic, fill", [(True, None), (False, 0.0), (False, None)])
def test_every_ghost_equals_the_global_reference(method, transport, periodic, fill):
    G = (9, 7, 8)
    dec = decompose(None, G, periodic=periodic)
    for r, q in [(1, None), (2, 3)]:
        if r > min(dec.local_shape):
            continue
        g = _global(G, q, seed=r)
        want = _want(g, dec, r, periodic, fill)
        with HaloExchange(dec.cart, dec.local_shape, r, quantities=q, method=method,
                          transport=transport, fill=fill) as h:
            u = _load(h, dec, g)
            h.exchange(u)
            assert _all(_same(u, want)), (r, q)
    dec.free()


@pytest.mark.mpi
@pytest.mark.parametrize("method, transport, wait", [("pack", "p2p", "all"),
                                                     ("pack", "p2p", "any"),
                                                     ("datatype", "p2p", "all"),
                                                     ("pack", "alltoallw", "all"),
                                                     ("datatype", "alltoallw", "all")])
def test_start_wait_equals_exchange_over_iterations_and_fields(method, transport, wait):
    G = (6, 8, 7)
    dec = decompose(comm, G, periodic=[True, False, True])
    h = HaloExchange(dec.cart, dec.local_shape, 1, quantities=2, method=method,
                     transport=transport, wait=wait, fill=-1.0, dtype=np.float32)
    try:
        fields = []
        for seed in range(3):   # three fields in turn, twice: requests are reused per field
            g = _global(G, 2, seed=seed, dtype=np.float32)
            fields.append((g, _load(h, dec, g), _load(h, dec, g)))
        for _ in range(2):
            for g, a, b in fields:
                h.exchange(a)
                h.start(b)
                inner = h.interior(b).copy()      # the interior may be read meanwhile
                h.wait()
                assert _same(h.interior(b), inner)
                assert _same(a, b)
                # the periodic axes wrap, the middle one is filled with -1
                want = np.pad(g, [(1, 1), (0, 0), (1, 1), (0, 0)], mode="wrap")
                want = np.pad(want, [(0, 0), (1, 1), (0, 0), (0, 0)], constant_values=-1.0)
                sl = tuple(slice(o, o + n + 2) for o, n in zip(dec.offset, dec.local_shape))
                assert _all(_same(a, want[sl]))
    finally:
        h.free()
        dec.free()


@pytest.mark.mpi
def test_a_cartesian_communicator_made_by_hand():
    """Any Cartesian communicator works: here a 2-D one from MPI_Dims_create, 5 x 4 cells
    per rank (every rank the same block), periodic."""
    dims = MPI.Compute_dims(comm.size, 2)
    cart = comm.Create_cart(dims, periods=[True, True])
    n = (5, 4)
    G = (n[0] * dims[0], n[1] * dims[1])
    g = _global(G, None, seed=7)
    c = cart.Get_coords(cart.rank)
    off = (c[0] * n[0], c[1] * n[1])
    with HaloExchange(cart, n, radius=2) as h:
        u = h.allocate(np.nan)
        h.interior(u)[...] = g[off[0]:off[0] + n[0], off[1]:off[1] + n[1]]
        h.exchange(u)
        big = np.pad(g, 2, mode="wrap")
        assert _all(_same(u, big[off[0]:off[0] + n[0] + 4, off[1]:off[1] + n[1] + 4]))
    cart.Free()


@pytest.mark.mpi
@pytest.mark.parametrize("G, align", [((11, 3, 7), 1), ((12, 6, 8), 2), ((5,), 1)])
def test_the_decomposition_covers_the_grid_once(G, align):
    dec = decompose(comm, G, align=align)
    assert isinstance(dec, Decomposition) and dec.ndim == len(G)
    assert int(np.prod(dec.dims)) == comm.size
    assert dec.lo == dec.offset
    assert dec.hi == tuple(o + n for o, n in zip(dec.offset, dec.local_shape))
    cover = np.zeros(G, np.int64)
    cover[dec.global_slices()] += 1
    total = np.empty_like(cover)
    comm.Allreduce(cover, total)
    assert (total == 1).all()
    for k in range(len(G)):
        assert dec.bounds(k, dec.coords[k]) == (dec.lo[k], dec.hi[k])
        assert dec.lo[k] % align == 0 and dec.hi[k] % align == 0
        starts = [dec.bounds(k, c)[0] for c in range(dec.dims[k])]
        assert starts == sorted(starts) and dec.bounds(k, dec.dims[k] - 1)[1] == G[k]
        # the owner of every cell along the axis is the block whose bounds hold it
        owner = dec.owner(k, np.arange(G[k]))
        for c in range(dec.dims[k]):
            a, b = dec.bounds(k, c)
            assert (owner[a:b] == c).all()
    # the Cartesian communicator's coordinates are this rank's
    assert tuple(dec.cart.Get_coords(dec.cart.rank)) == dec.coords
    dec.free()


@pytest.mark.mpi
def test_a_thin_grid_gets_a_layout_that_fits():
    # MPI_Dims_create's balanced grid would put ranks along the 1-cell axes; the layout
    # search puts them all along the long one
    dec = decompose(comm, (1, 1, 4 * comm.size), periodic=False)
    assert dec.dims == (1, 1, comm.size)
    assert min(dec.local_shape) >= 1
    dec.free()


@pytest.mark.mpi
def test_decompose_rejects_wrong_input():
    with pytest.raises(ValueError, match="empty"):
        decompose(comm, (0, 4, 4))
    with pytest.raises(ValueError, match="multiple of 2"):
        decompose(comm, (5, 4, 4), align=2)
    with pytest.raises(ValueError, match="periodic has 2 entries"):
        decompose(comm, (4, 4, 4), periodic=[True, False])
    with pytest.raises(TypeError, match="intracommunicator"):
        decompose("world", (4, 4, 4))
    if comm.size > 1:
        with pytest.raises(ValueError, match="smaller than the"):
            decompose(comm, (1, 1, 1))


@pytest.mark.mpi
def test_wrong_inputs_raise_value_or_type_errors():
    dec = decompose(comm, (4 * comm.size, 4, 4), dims=[comm.size, 1, 1])
    with pytest.raises(TypeError, match="Cartesian communicator"):
        HaloExchange(comm, dec.local_shape, 1)
    with pytest.raises(ValueError, match="radius 5 is larger"):
        HaloExchange(dec.cart, dec.local_shape, 5)
    with pytest.raises(ValueError, match="radius must be at least 1"):
        HaloExchange(dec.cart, dec.local_shape, 0)
    with pytest.raises(TypeError, match="radius must be an integer"):
        HaloExchange(dec.cart, dec.local_shape, 1.5)
    with pytest.raises(ValueError, match="has 2 dimensions"):
        HaloExchange(dec.cart, dec.local_shape[:2], 1)
    with pytest.raises(ValueError, match="quantities must be at least 1"):
        HaloExchange(dec.cart, dec.local_shape, 1, quantities=0)
    with pytest.raises(ValueError, match="halo method"):
        HaloExchange(dec.cart, dec.local_shape, 1, method="magic")
    with HaloExchange(dec.cart, dec.local_shape, 1, quantities=2) as h:
        u = h.allocate()
        with pytest.raises(ValueError, match="shape"):
            h.exchange(np.zeros(u.shape[:-1]))
        with pytest.raises(TypeError, match="dtype float64"):
            h.exchange(u.astype(np.float32))
        with pytest.raises(TypeError, match="numpy array"):
            h.exchange(u.tolist())
        with pytest.raises(ValueError, match="C-contiguous"):
            h.exchange(np.asfortranarray(u))
        with pytest.raises(ValueError, match="without start"):
            h.wait()
        h.start(u)
        with pytest.raises(ValueError, match="before wait"):
            h.start(u)
        h.wait()
    dec.free()


@pytest.mark.mpi
def test_auto_transport_is_the_suites_one_choice():
    from hpc.core.exchange import resolve_method

    dec = decompose(comm, (6, 5, 4))
    want = {"neighbor": "alltoallw"}.get(resolve_method("auto", comm.size), "p2p")
    with HaloExchange(dec.cart, dec.local_shape, 1, transport="auto") as h:
        assert h.transport == want and h.strategy["transport"] == want
        g = _global((6, 5, 4), None, seed=3)
        u = _load(h, dec, g)
        h.exchange(u)
        assert _all(_same(u, _want(g, dec, 1, True, None)))
    dec.free()
