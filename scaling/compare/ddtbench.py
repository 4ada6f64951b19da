"""ddtbench-style patterns: hpc.halo.datatype.fast against MPI_Pack and a hand-written pack.

Each pattern builds the MPI derived datatype an application builds (after Schneider, Gerstenberger
and Hoefler's ddtbench: WRF, MILC, NAS LU and MG, LAMMPS, SPECFEM3D, FFT), over one buffer of
random bytes. Timed, alternating in every round (so load drifts hit all three alike):

- ``fast``:   ``fast(dt).pack`` (the canonical block list, one native Plan call);
- ``mpi``:    the library's ``dt.Pack`` of the same element count;
- ``manual``: a hand-written pack, ``np.take`` of a precomputed byte index (what an
              application writes when it packs by hand: a gather of the same bytes);
- ``copy``:   (not a packer) a contiguous copy of the same number of bytes, the floor that
              shows which patterns are bound by memory rather than by the packer.

Every buffer starts on a 64-byte boundary (``--misalign B`` moves the packed buffers B bytes
off it: on AMD Zen 3, glibc's ``rep movsb`` memcpy is 10-17x slower when source and
destination differ mod 64, which moves whichever side copies with it).

Every method's bytes are checked equal to MPI_Pack's before timing. Per pattern: the median
seconds per pack of each method over --rounds rounds (a round: the mean of --iters calls), the
ratio of medians fast/mpi speed-up, and the machine load (``os.getloadavg()``) before and
after. Target (issue 23): fast >= 1.5x MPI_Pack on at least 80% of the patterns.

``--clock cpu`` (the default) times with the calling thread's CPU clock
(``time.thread_time``): all three methods are serial and run in this thread, and on a shared,
oversubscribed host the wall clock mostly measures how long the process waited for a core
(a 2 ms round preempted once reads 10x slower). ``--clock wall`` uses ``time.perf_counter``.

``--scales 1 2`` runs every pattern at each size multiplier (message sizes from 2.5 KiB to
2 MiB; ddtbench's own span KiB to MiB) and reports per size.

    OMP_NUM_THREADS=1 .venv/bin/python scaling/compare/ddtbench.py [--scales 1 2] [--rounds 7]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Callable

import numpy as np
from mpi4py import MPI

from hpc.halo.canonical import canonicalize_blocks
from hpc.halo.datatype import fast

D, F, I = MPI.DOUBLE, MPI.FLOAT, MPI.INT


def patterns(s: int) -> dict[str, tuple[MPI.Datatype, int]]:
    """name -> (committed datatype, count); s scales the problem sizes."""
    out: dict[str, tuple[MPI.Datatype, int]] = {}
    # WRF: a halo face of four 3-D fields, a struct of subarrays at the fields' offsets
    nz, ny, nx = 20 * s, 32 * s, 32 * s
    fb = nz * ny * nx * 4
    xf = F.Create_subarray([nz, ny, nx], [nz, ny, 3], [0, 0, 2])
    yf = F.Create_subarray([nz, ny, nx], [nz, 3, nx], [0, 2, 0])
    out["wrf_x_vec"] = (MPI.Datatype.Create_struct([1] * 4, [k * fb for k in range(4)],
                                                   [xf] * 4).Commit(), 1)
    out["wrf_y_vec"] = (MPI.Datatype.Create_struct([1] * 4, [k * fb for k in range(4)],
                                                   [yf] * 4).Commit(), 1)
    # MILC su3 zdown: 3x3 complex matrices (18 doubles) of a 4-D lattice's face
    l4 = 8 * s
    su3 = D.Create_contiguous(18)
    out["milc_su3_zd"] = (su3.Create_subarray([l4, l4, l4, l4], [l4, l4, 1, l4],
                                              [0, 0, 0, 0]).Commit(), 1)
    # NAS LU: x face of 5 doubles per cell (vector), y face (contiguous rows)
    n = 64 * s
    out["nas_lu_x"] = (D.Create_vector(n, 5, 5 * n).Commit(), 1)
    out["nas_lu_y"] = (D.Create_vector(n, 5 * n, 5 * n * n).Commit(), 1)
    # NAS MG: the three faces of a 3-D grid, one double per cell
    m = 64 * s
    out["nas_mg_x"] = (D.Create_subarray([m, m, m], [m, m, 1], [0, 0, 1]).Commit(), 1)
    out["nas_mg_y"] = (D.Create_subarray([m, m, m], [m, 1, m], [0, 1, 0]).Commit(), 1)
    out["nas_mg_z"] = (D.Create_subarray([m, m, m], [1, m, m], [1, 0, 0]).Commit(), 1)
    # LAMMPS: the atoms of a boundary (an irregular index list) of x (3 doubles), then
    # their type (an int) and charge (a double): a struct of hindexed arrays
    rng = np.random.default_rng(1)
    na = 20000 * s
    pick = np.sort(rng.choice(na, na // 7, replace=False)).tolist()
    xs = D.Create_indexed_block(3, [3 * p for p in pick])
    ts = I.Create_indexed_block(1, pick)
    qs = D.Create_indexed_block(1, pick)
    out["lammps_full"] = (MPI.Datatype.Create_struct(
        [1, 1, 1], [0, 24 * na, 28 * na], [xs, ts, qs]).Commit(), 1)
    out["lammps_atomic"] = (D.Create_indexed_block(3, [3 * p for p in pick]).Commit(), 1)
    # SPECFEM3D: an irregular list of mesh points, 3 floats each (indexed of varying runs)
    npt = 40000 * s
    pts = np.sort(rng.choice(npt, npt // 5, replace=False))
    runs, starts = [], []
    for p in pts.tolist():  # neighbouring points merge into longer runs, as in the mesh
        if starts and starts[-1] + runs[-1] == 3 * p:
            runs[-1] += 3
        else:
            starts.append(3 * p)
            runs.append(3)
    out["specfem3d_oc"] = (F.Create_indexed(runs, starts).Commit(), 1)
    # FFT transpose: columns of a complex n x n matrix as a vector of resized vectors
    nf = 256 * s
    col = MPI.C_DOUBLE_COMPLEX.Create_vector(nf, 1, nf)
    out["fft_2d"] = (col.Create_resized(0, 16).Commit(), nf // 2)
    for t in (xf, yf, su3, xs, ts, qs, col):
        t.Free()
    return out


def manual_index(dt: MPI.Datatype, count: int) -> np.ndarray:
    """The byte offsets MPI_Pack reads, in order (the hand-written pack's index)."""
    _, ext = dt.Get_extent()
    idx = []
    for k in range(count):
        for b in canonicalize_blocks(dt):
            view = np.lib.stride_tricks.as_strided(
                np.zeros(1, np.int64), shape=b.counts[::-1], strides=(0,) * b.ndim)
            grids = np.indices(view.shape, dtype=np.int64)
            off = sum(g * st for g, st in zip(grids, b.strides[::-1]))
            idx.append((b.start + k * ext + off).reshape(-1))
    return np.concatenate(idx) if idx else np.zeros(0, np.int64)


def aligned(nbytes: int, off: int = 0) -> np.ndarray:
    """nbytes of uint8 starting ``off`` bytes past a 64-byte boundary."""
    raw = np.empty(nbytes + 128, np.uint8)
    k = (-raw.ctypes.data) % 64 + off
    return raw[k:k + nbytes]


def bench(name: str, dt: MPI.Datatype, count: int, rounds: int, iters: int,
          clock: Callable[[], float] = time.thread_time, misalign: int = 0,
          scale: int = 1) -> dict:
    _, ext = dt.Get_extent()
    tlb, text = dt.Get_true_extent()
    nbytes = (count - 1) * ext + tlb + text
    src = aligned(nbytes)
    src[:] = np.random.default_rng(0).integers(0, 256, nbytes, dtype=np.uint8)
    rep = dt.Create_contiguous(count).Commit()
    whole = rep.Create_resized(0, nbytes).Commit()  # one element over the whole buffer
    ft = fast(dt)
    size = ft.pack_size(count)
    o_fast = aligned(size, misalign)
    o_mpi = aligned(whole.Pack_size(1, MPI.COMM_SELF), misalign)
    o_man = aligned(size, misalign)
    c_src, c_dst = aligned(size), aligned(size, misalign)
    idx = manual_index(dt, count)
    fns: dict[str, Callable[[], object]] = {
        "fast": lambda: ft.pack(src, o_fast, 0, count=count),
        "mpi": lambda: whole.Pack(src, o_mpi, 0, MPI.COMM_SELF),
        "manual": lambda: np.take(src, idx, out=o_man),
        "copy": lambda: np.copyto(c_dst, c_src),
    }
    for fn in fns.values():
        fn()
        fn()  # the first call builds fast's plan; the second is the native path timed
    ok = np.array_equal(o_fast, o_mpi[:size]) and np.array_equal(o_man, o_mpi[:size])
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():  # alternate: every round times every method in turn
            t0 = clock()
            for _ in range(iters):
                fn()
            times[k].append((clock() - t0) / iters)
    med = {k: statistics.median(v) for k, v in times.items()}
    for t in (rep, whole):
        t.Free()
    return {"pattern": name, "scale": scale, "bytes": size, "blocks": len(ft.blocks or []),
            "canonical": ft.canonical, "identical": bool(ok),
            **{f"{k}_us": v * 1e6 for k, v in med.items()},
            "speedup_vs_mpi": med["mpi"] / med["fast"], "speedup_vs_manual": med["manual"] / med["fast"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scales", type=int, nargs="+", default=[1],
                    help="problem size multipliers, one table each (default: 1)")
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds per pattern")
    ap.add_argument("--iters", type=int, default=20, help="packs per round and method")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="cpu: this thread's CPU time (default; robust to preemption); wall")
    ap.add_argument("--misalign", type=int, default=0,
                    help="packed buffers this many bytes past a 64-byte boundary (default 0)")
    ap.add_argument("--patterns", default=None, help="comma-separated names (default: all)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    load0 = os.getloadavg()
    rows = []
    for sc in args.scales:
        for n, (dt, c) in patterns(sc).items():
            if not args.patterns or n in args.patterns.split(","):
                rows.append(bench(n, dt, c, args.rounds, args.iters, clock, args.misalign, sc))
            dt.Free()
    load1 = os.getloadavg()
    print(f"{'pattern':15} {'scale':>5} {'bytes':>9} {'blocks':>6} {'fast us':>9} {'MPI us':>9} "
          f"{'manual us':>9} {'copy us':>8} {'x MPI':>6} {'x man':>6} same")
    for r in rows:
        print(f"{r['pattern']:15} {r['scale']:5d} {r['bytes']:9d} {r['blocks']:6d} "
              f"{r['fast_us']:9.1f} {r['mpi_us']:9.1f} {r['manual_us']:9.1f} {r['copy_us']:8.1f} "
              f"{r['speedup_vs_mpi']:6.2f} {r['speedup_vs_manual']:6.2f} {r['identical']}")
    for sc in args.scales:
        sub = [r for r in rows if r["scale"] == sc]
        hits = sum(r["speedup_vs_mpi"] >= 1.5 for r in sub)
        gm = float(np.exp(np.mean(np.log([r["speedup_vs_mpi"] for r in sub])))) if sub else 0.0
        below = ", ".join(r["pattern"] for r in sub if r["speedup_vs_mpi"] < 1.5) or "-"
        print(f"scale {sc}: fast >= 1.5x MPI_Pack on {hits}/{len(sub)} patterns "
              f"({hits / max(1, len(sub)):.0%}; target 80%); geometric mean {gm:.2f}x; "
              f"below 1.5x: {below}")
    print(f"all byte-identical: {all(r['identical'] for r in rows)}; "
          f"load {load0[0]:.1f} -> {load1[0]:.1f} on {os.cpu_count()} cpus; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; {args.clock} clock; "
          f"packed buffers {args.misalign} B past 64")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "load": [load0, load1], "clock": args.clock,
                       "misalign": args.misalign}, f, indent=1)
    return 0 if all(r["identical"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
