"""Pack GB/s of the 26 halo face types: our packers against the library's MPI_Pack.

For each (grid, radius, quantities) the 26 send faces of a periodic single-rank halo are built
as MPI subarray datatypes; we time, best of --rounds (each the mean of --iters calls):

- mpi:       MPI_Pack of each face type (one call per face, as an application must);
- native:    hpc._core.pack.Plan.pack_all (all canonical faces in one C++ call);
- native1:   the native packer one face per call (same per-call count as MPI_Pack);
- numba:     the Numba packer's plan (all faces in one JIT call);
- numpy:     a strided view copied by np.copyto, one face per call.

Every packer's bytes are checked against MPI_Pack's before timing. Target: native >= 1.5x
MPI_Pack. Single process, OMP_NUM_THREADS threads (1 unless set).

    OMP_NUM_THREADS=1 .venv/bin/python scaling/halo_pack.py [--grids 16 32 64 96] [--q 1 4]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from mpi4py import MPI

from hpc.halo import packers
from hpc.halo.engine import HaloExchange, decompose


def best(fn, iters: int, rounds: int) -> float:
    fn()
    t = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        t.append((time.perf_counter() - t0) / iters)
    return min(t)


def one_case(g: int, radius: int, q: int, iters: int, rounds: int, which: list[str]) -> dict:
    dec = decompose(MPI.COMM_SELF, (g, g, g))
    h = HaloExchange(dec.cart, dec.local_shape, radius, quantities=q, method="datatype")
    field = h.allocate()
    field[...] = np.random.default_rng(0).random(field.shape)
    fb = field.reshape(-1).view(np.uint8)
    faces = h.faces
    total = sum(f.nbytes for f in faces)
    mpi_buf = np.empty(total + 1024, np.uint8)

    def mpi_pack() -> None:
        pos = 0
        for f in faces:
            pos = f.send_type.Pack(fb, mpi_buf, pos, h.comm)

    mpi_pack()
    want = mpi_buf[:total].copy()
    out = {"grid": g, "radius": radius, "q": q, "bytes": total}
    out["mpi"] = best(mpi_pack, iters, rounds)
    blocks = [f.send_block for f in faces]
    buf = np.empty(total, np.uint8)
    for name in which:
        if name in ("native", "numba"):  # a plan: all faces in one call
            plan = packers.Plan(name, blocks, field.nbytes)
            fn = lambda plan=plan: plan.pack_all(field, buf)  # noqa: E731
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
        out[name] = best(fn, iters, rounds)
    h.free()
    dec.cart.Free()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grids", type=int, nargs="+", default=[16, 32, 64, 96],
                    help="cube edge of the local block (cells)")
    ap.add_argument("--q", type=int, nargs="+", default=[1, 4], help="quantities per cell")
    ap.add_argument("--radius", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--packers", nargs="+", default=["native", "native1", "numba", "numpy"])
    args = ap.parse_args()
    which = [p for p in args.packers if p in ("native", "native1") or p in packers.PACKERS]
    cols = ["mpi"] + which
    print(f"{'grid':>5} {'R':>2} {'Q':>2} {'face KiB':>9} | " +
          " ".join(f"{c + ' GB/s':>12}" for c in cols) + " | native/mpi")
    ratios = []
    for g in args.grids:
        for r in args.radius:
            for q in args.q:
                o = one_case(g, r, q, args.iters, args.rounds, which)
                rates = [o["bytes"] / o[c] / 1e9 for c in cols]
                ratio = o["mpi"] / o["native"] if "native" in o else float("nan")
                ratios.append(ratio)
                print(f"{g:>5} {r:>2} {q:>2} {o['bytes'] / 1024:>9.1f} | " +
                      " ".join(f"{x:>12.2f}" for x in rates) + f" | {ratio:9.2f}x", flush=True)
    if ratios:
        gm = float(np.exp(np.mean(np.log(ratios))))
        print(f"geometric mean native/MPI_Pack: {gm:.2f}x (target >= 1.5x); "
              f"min {min(ratios):.2f}x, max {max(ratios):.2f}x")


if __name__ == "__main__":
    main()
