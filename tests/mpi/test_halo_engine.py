"""The halo engine in-process at any rank count (tools/run_tests.sh runs this at 1-4 ranks).

Every ghost cell must equal its owner's value after one exchange, for every method,
transport, radius and boundary kind, on non-divisible grids; interior cells stay untouched.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from mpi4py import MPI

from hpc.core import UsageError
from hpc.halo.canonical import StridedBlock
from hpc.core.decomp import decompose
from hpc.halo.engine import HaloExchange, expected_ghosts, fill_global
from hpc.halo.model import Model

comm = MPI.COMM_WORLD


def _check(dec, halo, R, Q, fill):
    u = halo.allocate(np.nan)
    fill_global(halo.interior(u), dec.offset, dec.global_shape, Q)
    before = halo.interior(u).copy()
    halo.exchange(u)
    want, mask = expected_ghosts(dec.local_shape, dec.offset, dec.global_shape, R,
                                 dec.periodic, Q, fill)
    ok = np.array_equal(u[mask], want[mask]) and np.array_equal(halo.interior(u), before)
    if fill is None:  # cells outside a non-periodic boundary are left as they were
        ok = ok and bool(np.isnan(u[~mask]).all())
    return comm.allreduce(bool(ok), op=MPI.LAND)


@pytest.mark.mpi
@pytest.mark.parametrize("method, transport", [("pack", "p2p"), ("datatype", "p2p"),
                                               ("pack", "alltoallw"), ("datatype", "alltoallw")])
@pytest.mark.parametrize("periodic", [True, False])
def test_every_ghost_equals_its_owner(method, transport, periodic):
    G = (7, 5, 6)  # divisible by none of 2, 3, 4
    dec = decompose(comm, G, periodic=periodic)
    for R, Q in [(1, None), (1, 2)] + ([(2, 1)] if min(dec.local_shape) >= 2 else []):
        for fill in ([None] if periodic else [None, -1.0]):
            with HaloExchange(dec.cart, dec.local_shape, R, quantities=Q, method=method,
                              transport=transport, fill=fill) as h:
                assert _check(dec, h, R, Q, fill), (R, Q, fill)
    dec.cart.Free()


@pytest.mark.mpi
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_any_dimension_and_face_only_exchange(nd):
    G = (9, 7, 5)[:nd]
    dec = decompose(comm, G, periodic=[True, False, True][:nd])
    with HaloExchange(dec.cart, dec.local_shape, 1, neighbors="faces", fill=0.0) as h:
        assert len(h.faces) == 2 * nd
        u = h.allocate(np.nan)
        fill_global(h.interior(u), dec.offset, G)
        h.exchange(u)
        want, mask = expected_ghosts(dec.local_shape, dec.offset, G, 1, dec.periodic, None, 0.0)
        # face-only: check the cells that differ from the interior in one coordinate only
        face = np.zeros(u.shape, bool)
        for k in range(nd):
            sl = [slice(1, 1 + n) for n in dec.local_shape]
            for side in (slice(0, 1), slice(-1, None)):
                sl[k] = side
                face[tuple(sl)] = True
        ok = np.array_equal(u[face & mask], want[face & mask])
    assert comm.allreduce(bool(ok), op=MPI.LAND)
    dec.cart.Free()


@pytest.mark.mpi
def test_auto_uses_the_given_model_and_records_why():
    dec = decompose(comm, (6, 6, 6))
    sizes, blocks = [64, 1 << 20], [8, 64, 512, 4096]
    slow_dt = Model(sizes, blocks, {"same_host": [1e-6, 1e-3]},
                    {"same_host": {str(b): [1.0, 1.0] for b in blocks}},
                    {str(b): [1e-7, 1e-4] for b in blocks}, {str(b): [1e-7, 1e-4] for b in blocks},
                    source="test model")
    with HaloExchange(dec.cart, dec.local_shape, 1, method="auto", model=slow_dt,
                      autotune=False) as h:
        assert h.strategy["model"] == "test model" and h.strategy["autotune_us"] is None
        for c in h.strategy["choices"]:
            if c["canonical"].count("@") > 1:  # strided: the model says pack
                assert c["method"] == "pack" and c["reason"].startswith("model:")
            else:
                assert c["method"] == "datatype" and "contiguous" in c["reason"]
        assert _check(dec, h, 1, None, None)
    dec.cart.Free()
    m = slow_dt
    assert m.choose(StridedBlock(0, (8, 4), (1, 64)), 32, True)[0] == "pack"


@pytest.mark.mpi
@pytest.mark.parametrize("transport", ["p2p", "alltoallw"])
def test_auto_keeps_the_candidate_it_measured_fastest(transport):
    dec = decompose(comm, (8, 7, 6))
    sizes, blocks = [64, 1 << 20], [8, 64, 512, 4096]
    mixed = Model(sizes, blocks, {"same_host": [1e-6, 1e-3]},
                  {"same_host": {str(b): [1e-5, 1e-2] for b in blocks}},
                  {str(b): [1e-7, 1e-4] for b in blocks}, {str(b): [1e-7, 1e-4] for b in blocks},
                  source="test model")  # strided faces packed, contiguous ones the library's
    with HaloExchange(dec.cart, dec.local_shape, 1, quantities=2, method="auto", model=mixed,
                      transport=transport) as h:
        t = h.strategy["autotune_us"]
        assert set(t) == ({"pack", "datatype", "model"} if transport == "p2p"
                          else {"pack", "datatype"})
        assert all(v > 0 for v in t.values())
        best = min(t, key=t.get)
        assert comm.allgather(best) == [best] * comm.size  # one decision everywhere
        methods = {c["method"] for c in h.strategy["choices"]}
        if best != "model":
            assert methods == {best}
        else:
            assert methods == {"pack", "datatype"}
        assert all(c["reason"].startswith("auto, measured per exchange") and
                   "the model alone" in c["reason"] for c in h.strategy["choices"])
        assert _check(dec, h, 1, 2, None)
    dec.free()


@pytest.mark.mpi
def test_struct_faces_fall_back_to_the_library():
    dec = decompose(comm, (5, 6, 4))
    with HaloExchange(dec.cart, dec.local_shape, 1, method="pack", typebuild="struct") as h:
        assert h.strategy["faces"] == {"datatype": len(h.faces)}
        assert "struct" in h.strategy["fallback"]
        assert _check(dec, h, 1, None, None)
    with HaloExchange(dec.cart, dec.local_shape, 1, method="pack", typebuild="hvector") as h:
        assert h.strategy["faces"] == {"pack": len(h.faces)}
        assert _check(dec, h, 1, None, None)
    dec.cart.Free()


@pytest.mark.mpi
def test_radius_beyond_the_smallest_block_is_a_usage_error():
    dec = decompose(comm, (comm.size * 2, 4, 4), dims=[comm.size, 1, 1])
    with pytest.raises(UsageError, match="radius 3 is larger"):
        HaloExchange(dec.cart, dec.local_shape, 3)
    with pytest.raises(UsageError, match="empty"):
        decompose(comm, (0, 4, 4))
    dec.cart.Free()


@pytest.mark.mpi
def test_decomposition_covers_the_grid_once():
    G = (11, 3, 7)
    dec = decompose(comm, G)
    cover = np.zeros(G, np.int64)
    cover[dec.global_slices()] += 1
    total = np.empty_like(cover)
    comm.Allreduce(cover, total)
    assert (total == 1).all()
    assert np.prod(dec.dims) == comm.size
    dec.cart.Free()


def test_directions_are_the_26_neighbours():
    dirs = [d for d in itertools.product((-1, 0, 1), repeat=3) if any(d)]
    assert len(dirs) == 26


@pytest.mark.mpi
@pytest.mark.parametrize("periodic", [True, False])
def test_unpack_as_faces_arrive(periodic):
    dec = decompose(comm, (6, 5, 7), periodic=periodic)
    with HaloExchange(dec.cart, dec.local_shape, 1, quantities=2, wait="any") as h:
        assert _check(dec, h, 1, 2, None)
    dec.cart.Free()


@pytest.mark.mpi
@pytest.mark.parametrize("method", ["pack", "datatype"])
def test_float32_channels_zero_outside(method):
    # the DCDM layout: float32, channels innermost, zeros beyond a non-periodic domain
    dec = decompose(comm, (6, 7, 5), periodic=False)
    with HaloExchange(dec.cart, dec.local_shape, 1, quantities=3, dtype=np.float32,
                      method=method, fill=0.0) as h:
        u = h.allocate(np.nan)
        assert u.dtype == np.float32
        fill_global(h.interior(u), dec.offset, dec.global_shape, 3)
        h.exchange(u)
        want, mask = expected_ghosts(dec.local_shape, dec.offset, dec.global_shape, 1,
                                     dec.periodic, 3, 0.0)
        ok = bool(mask.all()) and np.array_equal(u, want.astype(np.float32))
    assert comm.allreduce(ok, op=MPI.LAND)
    dec.cart.Free()
