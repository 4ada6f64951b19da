"""Ghost layers of a 3D field with hpc.halo.HaloExchange, every ghost cell checked.

    python examples/halo.py                   # one process (every neighbour is itself)
    mpiexec -n 4 python examples/halo.py      # four ranks, each with its own block

A periodic 40 x 36 x 30 grid (z, y, x) is block-decomposed over a Cartesian communicator; each
rank's field holds its block plus R = 2 ghost cells on every side, Q = 3 values per cell. A
cell's value is a function of its global position, so after the exchange every ghost cell
must equal the value its owner holds.
"""
import sys

import numpy as np
from mpi4py import MPI

from hpc.halo import HaloExchange, decompose

GRID, R, Q = (40, 36, 30), 2, 3


def value(z, y, x, q):
    """The value of global cell (z, y, x), quantity q (periodic: indices wrap)."""
    z, y, x = z % GRID[0], y % GRID[1], x % GRID[2]
    return ((z * GRID[1] + y) * GRID[2] + x) * Q + q + 0.5


dec = decompose(MPI.COMM_WORLD, GRID, periodic=True)       # the Cartesian communicator
halo = HaloExchange(dec.cart, dec.local_shape, radius=R, quantities=Q, method="pack")
u = halo.allocate(np.nan)                                  # shape local + 2R, then Q

# this rank's cells, and what the whole padded field must hold after the exchange
idx = [np.arange(o - R, o + n + R) for o, n in zip(dec.offset, dec.local_shape)]
z, y, x, q = np.meshgrid(*idx, np.arange(Q), indexing="ij")
want = value(z, y, x, q)
halo.interior(u)[...] = halo.interior(want)

halo.exchange(u)                                           # every ghost cell filled
ok = np.array_equal(u, want)

u2 = halo.allocate(np.nan)                                 # the same, split around other work
halo.interior(u2)[...] = halo.interior(want)
halo.start(u2)
interior_sum = float(halo.interior(u2).sum())              # reading the interior is allowed
halo.wait()
ok = ok and np.array_equal(u2, want)

ok = MPI.COMM_WORLD.allreduce(ok, op=MPI.LAND)
ghosts = MPI.COMM_WORLD.allreduce(u.size - halo.interior(u).size)
halo.free()
dec.free()
if MPI.COMM_WORLD.rank == 0:
    print(f"grid {GRID} on {MPI.COMM_WORLD.size} rank(s) as {dec.dims}, radius {R}, {Q} values "
          f"per cell: {ghosts} ghost values over all ranks")
    print(f"{'VALID' if ok else 'INVALID'}: every ghost cell equals its owner's value "
          "(exchange and start/wait)")
sys.exit(0 if ok else 1)
