"""Overlapped stencil sweeps: how much of the exchange the interior update hides.

Run under mpiexec. Per sweep (one exchange + one 7- or 27-point update), timed in alternating
rounds: ``plain`` (exchange, then update), ``overlap-0`` (interior updated between start and
wait with no MPI call in it) and ``overlap-N`` (the interior in N slabs with a progress poke,
``HaloExchange.progress``, between them). Reported: the median of the slowest rank's time per
sweep, the exchange alone (from the plain sweeps) and the hidden fraction
(plain - overlapped) / exchange, with the machine load.

    mpiexec -n 2 .venv/bin/python scaling/compare/halo_overlap.py --grid 96 --radius 2 -q 2
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
from mpi4py import MPI

from hpc.core.decomp import decompose
from hpc.halo import HaloExchange
from hpc.halo.stencil import KINDS, Stencil, hidden_fraction


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", type=int, default=96)
    ap.add_argument("--radius", type=int, default=2)
    ap.add_argument("-q", "--quantities", type=int, default=2)
    ap.add_argument("--compute", choices=KINDS, default="stencil7")
    ap.add_argument("--pokes", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=3)
    args = ap.parse_args()
    comm = MPI.COMM_WORLD
    load0 = os.getloadavg()
    dec = decompose(comm, (args.grid,) * 3)
    h = HaloExchange(dec.cart, dec.local_shape, args.radius, quantities=args.quantities)
    st = Stencil(h, args.compute)
    u, out = h.allocate(1.0), h.allocate(0.0)
    modes = {"plain": (False, 1), "overlap-0": (True, 1), f"overlap-{args.pokes}":
             (True, args.pokes)}
    times: dict[str, list[float]] = {m: [] for m in modes}
    exch: list[float] = []
    st.sweep(u, out)
    for _ in range(args.rounds):
        for m, (ov, pk) in modes.items():
            comm.Barrier()
            t0 = time.perf_counter()
            ex = 0.0
            for _ in range(args.iters):
                ex += st.sweep(u, out, overlap=ov, pokes=pk)["exchange"]
            times[m].append(comm.allreduce((time.perf_counter() - t0) / args.iters, op=MPI.MAX))
            if m == "plain":
                exch.append(comm.allreduce(ex / args.iters, op=MPI.MAX))
    h.free()
    dec.free()
    med = {m: float(np.median(v)) for m, v in times.items()}
    ex = float(np.median(exch))
    if comm.rank == 0:
        print(f"{comm.size} ranks, {args.grid}^3, R={args.radius}, Q={args.quantities}, "
              f"{args.compute}: exchange alone {ex * 1e3:.2f} ms per sweep")
        for m, t in med.items():
            hid = "" if m == "plain" else \
                f", hidden {hidden_fraction(med['plain'], t, ex):.0%} of the exchange"
            print(f"  {m:12s} {t * 1e3:9.2f} ms per sweep{hid}")
        print(f"load {load0[0]:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus; "
              f"medians of {args.rounds} alternating rounds of {args.iters} sweeps, slowest rank")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
