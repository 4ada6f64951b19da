"""Pack GB/s of the 26 halo face types: our packers against the library's MPI_Pack.

For each (grid, radius, quantities) the 26 send faces of a periodic single-rank halo are built
as MPI subarray datatypes over one field (allocated once, shared by every packer). Timed:

- mpi:       MPI_Pack of each face type in turn (one call per face, as an application does;
             from Python each call also costs ~0.3 us of call overhead);
- mpi1:      ONE MPI_Pack of a struct type holding the 26 faces (same bytes, no per-call
             overhead: the fairest "library" figure for small faces);
- native:    hpc._core.pack.Plan.pack_all: all faces in one C++ call, one sweep over the
             source in address order (per-plane pieces of every face);
- native-faces: the same plan block after block (no sweep), to show what the sweep adds;
- native1:   the native packer one face per call from Python (MPI's per-call count);
- numba:     the Numba plan (all faces in one JIT call);
- numpy:     a strided view copied by np.copyto, one face per call.

Every packer's bytes are checked equal to MPI_Pack's before timing. Rounds are interleaved
(round k times every packer in turn), so a change in machine load hits all packers alike;
each figure is the best round, a round being the mean of --iters back-to-back calls (the same
warm cache state for every packer). The headline ratio is native against the FASTER of mpi
and mpi1. Target: >= 1.5x. Threads: OMP_NUM_THREADS (1 unless set; MPI_Pack is serial).

    OMP_NUM_THREADS=1 .venv/bin/python scaling/compare/halo_pack.py [--grids 16 32 64 96] [--q 1 4]
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Callable

import numpy as np
from mpi4py import MPI

from hpc.core.decomp import decompose
from hpc.halo import HaloExchange, packers

ALL = ["native", "native-faces", "native1", "numba", "numpy"]


def interleaved_best(fns: dict[str, Callable[[], None]], iters: int,
                     rounds: int) -> dict[str, float]:
    """Seconds per call of each fn: best of `rounds` means of `iters` calls, rounds interleaved."""
    best = {k: float("inf") for k in fns}
    for fn in fns.values():
        fn()
    for _ in range(rounds):
        for k, fn in fns.items():
            fn()  # this packer's own warm-up: same cache state for everyone
            t0 = time.perf_counter()
            for _ in range(iters):
                fn()
            best[k] = min(best[k], (time.perf_counter() - t0) / iters)
    return best


def one_case(g: int, radius: int, q: int, iters: int, rounds: int, which: list[str]) -> dict:
    dec = decompose(MPI.COMM_SELF, (g, g, g))
    h = HaloExchange(dec.cart, dec.local_shape, radius, quantities=q, method="datatype")
    field = h.allocate()
    field[...] = np.random.default_rng(0).random(field.shape)
    fb = field.reshape(-1).view(np.uint8)
    faces = h.faces
    total = sum(f.nbytes for f in faces)
    mpi_buf = np.empty(total + 1024, np.uint8)
    every = MPI.Datatype.Create_struct([1] * len(faces), [0] * len(faces),
                                       [f.send_type for f in faces])
    every1 = every.Create_resized(0, field.nbytes).Commit()
    every.Free()

    def mpi_pack() -> None:
        pos = 0
        for f in faces:
            pos = f.send_type.Pack(fb, mpi_buf, pos, h.comm)

    mpi_pack()
    want = mpi_buf[:total].copy()
    mpi1_buf = np.empty(every1.Pack_size(1, h.comm), np.uint8)

    def mpi1_pack() -> None:
        every1.Pack(fb, mpi1_buf, 0, h.comm)

    mpi1_pack()
    if not np.array_equal(mpi1_buf[:total], want):
        raise SystemExit("MPI_Pack of the struct differs from MPI_Pack face by face")
    fns: dict[str, Callable[[], None]] = {"mpi": mpi_pack, "mpi1": mpi1_pack}
    blocks = [f.send_block for f in faces]
    bufs = {}
    for name in which:
        buf = bufs[name] = np.empty(total, np.uint8)
        if name in ("native", "native-faces", "numba"):  # a plan: all faces in one call
            plan = packers.Plan("numba" if name == "numba" else "native", blocks, field.nbytes,
                                sweep=name == "native")
            fn = lambda plan=plan, buf=buf: plan.pack_all(field, buf)  # noqa: E731
        else:
            pk, _ = packers.get("native" if name == "native1" else name)
            offs = np.cumsum([0] + [b.size for b in blocks[:-1]])
            views = [buf[o:o + b.size] for o, b in zip(offs, blocks)]

            def fn(pk=pk, views=views) -> None:
                for b, v in zip(blocks, views):
                    pk(field, b, v)
        buf[:] = 0
        fn()
        if not np.array_equal(buf, want):
            raise SystemExit(f"{name}: packed bytes differ from MPI_Pack (grid {g}, q {q})")
        fns[name] = fn
    out = {"grid": g, "radius": radius, "q": q, "bytes": total}
    out.update(interleaved_best(fns, iters, rounds))
    every1.Free()
    h.free()
    dec.free()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grids", type=int, nargs="+", default=[16, 32, 64, 96],
                    help="cube edge of the local block (cells)")
    ap.add_argument("--q", type=int, nargs="+", default=[1, 4], help="quantities per cell")
    ap.add_argument("--radius", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--iters", type=int, default=30, help="calls per round (default 30)")
    ap.add_argument("--rounds", type=int, default=9, help="interleaved rounds (default 9)")
    ap.add_argument("--packers", nargs="+", default=ALL, help=f"of {' '.join(ALL)}")
    args = ap.parse_args()
    which = [p for p in args.packers if p in ALL and
             (p.startswith("native") or p in packers.PACKERS)]
    cols = ["mpi", "mpi1"] + which
    print(f"# OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}; GB/s = face bytes "
          f"/ best of {args.rounds} interleaved rounds of {args.iters} calls")
    print(f"{'grid':>5} {'R':>2} {'Q':>2} {'face KiB':>9} | " +
          " ".join(f"{c + ' GB/s':>12}" for c in cols) + " | native/mpi | native/best-mpi")
    ratios = []
    for g in args.grids:
        for r in args.radius:
            for q in args.q:
                o = one_case(g, r, q, args.iters, args.rounds, which)
                rates = [o["bytes"] / o[c] / 1e9 for c in cols]
                lib = min(o["mpi"], o["mpi1"])
                ratio = lib / o["native"] if "native" in o else float("nan")
                ratios.append(ratio)
                per_face = o["mpi"] / o["native"] if "native" in o else float("nan")
                print(f"{g:>5} {r:>2} {q:>2} {o['bytes'] / 1024:>9.1f} | " +
                      " ".join(f"{x:>12.2f}" for x in rates) +
                      f" | {per_face:9.2f}x | {ratio:14.2f}x", flush=True)
    if ratios:
        gm = float(np.exp(np.mean(np.log(ratios))))
        met = sum(x >= 1.5 for x in ratios)
        print(f"native / faster MPI_Pack: geometric mean {gm:.2f}x, min {min(ratios):.2f}x, "
              f"max {max(ratios):.2f}x; >= 1.5x in {met} of {len(ratios)}")


if __name__ == "__main__":
    main()
