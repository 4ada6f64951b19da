"""Ghost layers of a 3D field with hpc.halo.HaloExchange, every ghost cell checked.

    python examples/halo.py                   # one process (every neighbour is itself)
    mpiexec -n 4 python examples/halo.py      # four ranks, each with its own block

A periodic 40 x 36 x 30 grid (z, y, x) is block-decomposed over a Cartesian communicator; each
rank's field holds its block plus R = 2 ghost cells on every side, Q = 3 values per cell. A
cell's value is a function of its global position, so after the exchange every ghost cell
must equal the value its owner holds. Then a 7-point stencil sweep with the exchange
overlapped by the interior update (hpc.halo.stencil), checked against the plain sweep, with
the exchange's phase breakdown; and hpc.halo.datatype.fast packing an application's struct
datatype exactly as MPI_Pack does.
"""
import sys

import numpy as np
from mpi4py import MPI

from hpc.halo import HaloExchange, decompose
from hpc.halo.datatype import fast
from hpc.halo.stencil import Stencil

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

# a 7-point mean, the interior updated while the messages travel: the same bits as plain
sweep = Stencil(halo, "stencil7")
halo.phase_times(reset=True)
plain, overlapped = halo.allocate(0.0), halo.allocate(0.0)
sweep.sweep(u, plain, overlap=False)
sweep.sweep(u, overlapped, overlap=True)
ok = ok and np.array_equal(halo.interior(plain), halo.interior(overlapped))
phases = halo.phase_times()                                # seconds per phase, 2 exchanges

# any mpi4py datatype, packed by the suite: a struct of a vector and an int, 4 of them
t = MPI.Datatype.Create_struct([1, 1], [0, 48], [MPI.DOUBLE.Create_vector(3, 1, 2),
                                                 MPI.INT]).Commit()
src = np.random.default_rng(MPI.COMM_WORLD.rank).integers(0, 256, 4 * 56, dtype=np.uint8)
mine, theirs = np.zeros(fast(t).pack_size(4), np.uint8), np.zeros(t.Pack_size(4, MPI.COMM_SELF),
                                                                  np.uint8)
n = fast(t).pack(src, mine, 0)                             # mpi4py's count: len // extent
ok = ok and n == t.Pack(src, theirs, 0, MPI.COMM_SELF) and np.array_equal(mine, theirs[:n])
t.Free()

ok = MPI.COMM_WORLD.allreduce(ok, op=MPI.LAND)
ghosts = MPI.COMM_WORLD.allreduce(u.size - halo.interior(u).size)
halo.free()
dec.free()
if MPI.COMM_WORLD.rank == 0:
    print(f"grid {GRID} on {MPI.COMM_WORLD.size} rank(s) as {dec.dims}, radius {R}, {Q} values "
          f"per cell: {ghosts} ghost values over all ranks")
    print("phases of the stencil's exchanges (us): "
          + ", ".join(f"{k} {v * 1e6:.0f}" for k, v in phases.items() if k != "exchanges"))
    print(f"{'VALID' if ok else 'INVALID'}: every ghost cell equals its owner's value "
          "(exchange and start/wait); overlapped stencil == plain; fast(dt) == MPI_Pack")
sys.exit(0 if ok else 1)
