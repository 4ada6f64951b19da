"""DCDM's distributed network under pytest-mpi (tools/run_tests.sh runs it on 1-4 ranks):
the output on any rank count equals the single-process network on the whole grid."""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from hpc.core.errors import UsageError
from hpc.core.partition import block_offsets

pytestmark = pytest.mark.mpi


def _setup(shape, seed=0):
    from hpc.cg.dcdm.weights import random_model

    model = random_model(16, seed=seed)
    rng = np.random.default_rng(seed + 1)
    r = rng.standard_normal(shape)
    return model, r


@pytest.mark.parametrize("shape", [(8, 12, 10), (6, 6, 16), (10, 8, 8)])
def test_distributed_network_equals_serial(shape):
    from hpc.cg.dcdm.solver import DCDMPreconditioner
    from hpc.cg.dcdm.infer import serial_forward

    comm = MPI.COMM_WORLD
    model, r = _setup(shape)
    ref = serial_forward(model, r.astype(np.float32)).ravel()  # every rank, whole grid
    n = r.size
    off = block_offsets(n, comm.size)
    lo, hi = off[comm.rank], off[comm.rank + 1]
    pre = DCDMPreconditioner(comm, shape, off, model, "numpy")
    d = pre(r.ravel()[lo:hi].copy())
    pre.free()
    scale = np.abs(ref).max()
    assert scale > 0
    # Same cells, same kernels: equal to float32 rounding (in practice bit for bit).
    np.testing.assert_allclose(d, ref[lo:hi], rtol=0, atol=1e-5 * scale)


def test_uneven_row_offsets_roundtrip():
    """Any row-block layout maps to the blocks and back exactly."""
    from hpc.cg.dcdm.decomp import Redistributor, decompose

    comm = MPI.COMM_WORLD
    shape = (6, 8, 10)
    n = int(np.prod(shape))
    cuts = np.sort(np.random.default_rng(7).integers(0, n, comm.size - 1))
    off = np.concatenate(([0], cuts, [n])).astype(np.int64)
    g = np.arange(n, dtype=np.float64)
    dec = decompose(comm, shape)
    red = Redistributor(dec, off)
    blk = red.to_blocks(g[off[comm.rank]:off[comm.rank + 1]], dtype=np.float64)
    (z0, y0, x0), (z1, y1, x1) = dec.lo, dec.hi
    want = g.reshape(shape)[z0:z1, y0:y1, x0:x1]
    np.testing.assert_array_equal(blk, want)
    back = red.to_rows(blk)
    np.testing.assert_array_equal(back, g[off[comm.rank]:off[comm.rank + 1]])
    dec.free()


def test_numba_backend_equals_numpy():
    from hpc.cg.dcdm.solver import DCDMPreconditioner

    comm = MPI.COMM_WORLD
    shape = (8, 8, 8)
    model, r = _setup(shape, seed=3)
    off = block_offsets(r.size, comm.size)
    lo, hi = off[comm.rank], off[comm.rank + 1]
    out = {}
    for be in ("numpy", "numba"):
        pre = DCDMPreconditioner(comm, shape, off, model, be)
        out[be] = pre(r.ravel()[lo:hi].copy())
        pre.free()
    scale = comm.allreduce(float(np.abs(out["numpy"]).max()) if hi > lo else 0.0, op=MPI.MAX)
    np.testing.assert_allclose(out["numba"], out["numpy"], rtol=0, atol=1e-5 * scale)


def test_too_small_grid_is_a_clear_error_on_every_rank():
    from hpc.cg.dcdm.decomp import decompose

    comm = MPI.COMM_WORLD
    if comm.size == 1:
        with pytest.raises(UsageError, match="even"):
            decompose(comm, (4, 4, 5))
        return
    # 2x2x2 coarse cells cannot host more than 8 ranks; odd sizes are refused everywhere.
    with pytest.raises(UsageError, match="even"):
        decompose(comm, (4, 6, 3))
