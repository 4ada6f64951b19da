"""Split-phase exchange, the overlapped stencil, per-axis radii, the phase breakdown, reorder.

Run in-process at 1-4 ranks (tools/run_tests.sh): every ghost after ``wait`` equals its owner
(checked against the global-index function), the overlapped stencil equals the plain one bit
for bit and the ``np.roll`` stencil of the whole global grid, the phases add up to the time
spent in ``start`` + ``wait`` and leave out what runs between them.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from mpi4py import MPI

from hpc.core import UsageError
from hpc.core.decomp import decompose
from hpc.halo.engine import PHASES, HaloExchange, expected_ghosts, fill_global
from hpc.halo.stencil import Stencil, rolled_mean

comm = MPI.COMM_WORLD
G = (7, 8, 6)  # divisible by none of 3, 4 along every axis


def _all(ok: bool) -> bool:
    return comm.allreduce(bool(ok), op=MPI.LAND)


@pytest.mark.mpi
@pytest.mark.parametrize("transport, wait, reorder", [
    ("p2p", "all", False), ("p2p", "any", False), ("alltoallw", "all", True)])
@pytest.mark.parametrize("method", ["pack", "datatype"])
def test_split_phase_with_per_axis_radius_fills_every_ghost(transport, wait, reorder, method):
    dec = decompose(comm, G, periodic=[True, False, True])
    radii = tuple(min(r, n) for r, n in zip((2, 1, 3), comm.allreduce(dec.local_shape,
                                                                      op=MPI.MIN)))
    with HaloExchange(dec.cart, dec.local_shape, radii, quantities=2, method=method,
                      transport=transport, wait=wait, reorder=reorder, fill=-1.0) as h:
        assert h.radii == radii and h.shape == tuple(
            n + 2 * r for n, r in zip(dec.local_shape, radii)) + (2,)
        want, mask = expected_ghosts(dec.local_shape, dec.offset, G, radii, dec.periodic, 2,
                                     -1.0)
        u = h.allocate(np.nan)
        for it in range(3):  # persistent requests reused: every iteration right
            u[...] = np.nan
            fill_global(h.interior(u), dec.offset, G, 2)
            h.start(u)
            interior = h.interior(u).copy()  # reading the interior between start and wait
            h.wait()
            assert _all(np.array_equal(u[mask], want[mask])
                        and np.array_equal(h.interior(u), interior)), (it, radii)
        assert isinstance(h.reordered, bool)
    dec.free()


@pytest.mark.mpi
def test_radius_per_axis_is_checked_on_every_rank():
    dec = decompose(comm, G, periodic=True)
    small = comm.allreduce(dec.local_shape, op=MPI.MIN)
    with pytest.raises(UsageError, match="one width, or one per dimension"):
        HaloExchange(dec.cart, dec.local_shape, (1, 1))
    with pytest.raises(UsageError, match="along dimension 2"):
        HaloExchange(dec.cart, dec.local_shape, (1, 1, small[2] + 1))
    dec.free()


@pytest.mark.mpi
@pytest.mark.parametrize("kind", ["stencil7", "stencil27"])
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("q", [None, 3])
def test_overlapped_stencil_equals_plain_and_the_global_reference(kind, periodic, q):
    dec = decompose(comm, G, periodic=periodic)
    with HaloExchange(dec.cart, dec.local_shape, 1, quantities=q,
                      fill=None if periodic else 0.0) as h:
        st = Stencil(h, kind)
        u = h.allocate(np.nan)
        fill_global(h.interior(u), dec.offset, G, q)
        over, plain = h.allocate(np.nan), h.allocate(np.nan)
        st.sweep(u, over, overlap=True)
        st.sweep(u, plain, overlap=False)
        # the whole grid, stencilled independently (np.roll; zero-padded when not periodic)
        g = np.zeros(G + ((q,) if q else ()))
        fill_global(g, (0, 0, 0), G, q)
        if not periodic:
            g = np.pad(g, [(1, 1)] * 3 + ([(0, 0)] if q else []))
        ref = rolled_mean(g, kind, 3)
        if not periodic:
            ref = ref[1:-1, 1:-1, 1:-1]
        mine = ref[tuple(slice(o, o + n) for o, n in zip(dec.offset, dec.local_shape))]
        assert _all(np.array_equal(h.interior(over), h.interior(plain)))
        one = h.allocate(np.nan)  # one slab, no progress poke: the same bits
        st.sweep(u, one, overlap=True, pokes=1)
        assert _all(np.array_equal(h.interior(one), h.interior(plain)))
        assert _all(np.allclose(h.interior(over), mine, rtol=1e-13, atol=0))
        # every owned cell is written exactly once: inner box + shell boxes tile the block
        cover = np.zeros(h.shape[:3], int)
        for box in [st.inner] + st.shell:
            cover[box] += 1
        assert (h.interior(cover) == 1).all() and cover.sum() == np.prod(dec.local_shape)
    dec.free()


@pytest.mark.mpi
@pytest.mark.parametrize("method, wait", [("pack", "all"), ("datatype", "all"), ("pack", "any")])
def test_phases_add_up_to_the_exchange_and_exclude_the_overlap(method, wait):
    dec = decompose(comm, (24, 20, 16), periodic=True)
    with HaloExchange(dec.cart, dec.local_shape, 2, quantities=2, method=method,
                      wait=wait) as h:
        u = h.allocate(1.0)
        h.exchange(u)
        h.phase_times(reset=True)
        n = 30
        comm.Barrier()
        t0 = time.perf_counter()
        for _ in range(n):
            h.exchange(u)
        wall = time.perf_counter() - t0
        ph = h.phase_times(reset=True)
        assert ph["exchanges"] == n and set(PHASES) <= set(ph)
        assert all(ph[p] >= 0 for p in PHASES)
        total = sum(ph[p] for p in PHASES)
        # every moment inside start and wait is one phase; the rest is a few calls' overhead
        assert total <= wall and total >= 0.5 * wall, (total, wall, ph)
        if method == "pack":
            assert ph["pack"] > 0 and ph["unpack"] > 0
        # what runs between start and wait is not the exchange's time
        t0 = time.perf_counter()
        h.start(u)
        time.sleep(0.05)
        h.wait()
        wall = time.perf_counter() - t0
        ph = h.phase_times()
        assert ph["exchanges"] == 1 and 0 < sum(ph[p] for p in PHASES) <= wall - 0.05
    dec.free()
