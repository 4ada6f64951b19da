"""Device pack of the 26 halo faces against a contiguous device copy of the same bytes.

For each (grid, radius, quantities) the field lives on the GPU; timed in alternating rounds:

- ``fused``:  ``DevicePlan.pack_all``, all 26 faces in ONE kernel launch;
- ``faces``:  one kernel launch per face (the baseline the fused launch replaces);
- ``copy``:   ``cudaMemcpy`` device-to-device of the same number of bytes, contiguous.

Reported: the median GB/s of each and fused/copy (target, issue 23: the device pack reaches
at least 80% of the contiguous copy), with the machine load. Needs a CUDA device (exits 0
with a message otherwise: nothing is timed).

    .venv/bin/python scaling/compare/halo_gpu_pack.py [--grids 64 128 256] [--rounds 9]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from mpi4py import MPI


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grids", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--radius", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--q", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    from hpc.halo import gpu

    why = gpu.why_unavailable("gpu-staged")
    if why:
        print(f"no GPU path here ({why}): nothing timed")
        return 0
    from hpc._cuda import pack as cp
    from hpc.core.decomp import decompose
    from hpc.halo import HaloExchange

    load0 = os.getloadavg()
    hits = rows = 0
    print(f"{'grid':>5} {'R':>2} {'Q':>2} {'MB':>8} {'fused GB/s':>11} {'faces GB/s':>11} "
          f"{'copy GB/s':>10} {'fused/copy':>10}")
    for g in args.grids:
        for r in args.radius:
            for q in args.q:
                dec = decompose(MPI.COMM_SELF, (g, g, g))
                with HaloExchange(dec.cart, dec.local_shape, r, quantities=q) as h:
                    ex = gpu.GpuHaloExchange(h, "gpu-staged")
                    dev = ex.upload(h.allocate(1.0))
                    total = ex._plan.total
                    a, b = cp.DeviceBuffer(total), cp.DeviceBuffer(total)

                    def copy() -> None:
                        cp.copy_device(b.ptr, a.ptr, total, True)

                    fns = {"fused": lambda: ex.pack_all(dev), "faces": lambda: ex.pack_faces(dev),
                           "copy": copy}
                    times: dict[str, list[float]] = {k: [] for k in fns}
                    for fn in fns.values():
                        fn()
                    for _ in range(args.rounds):
                        for k, fn in fns.items():
                            t0 = time.perf_counter()
                            for _ in range(args.iters):
                                fn()
                            times[k].append((time.perf_counter() - t0) / args.iters)
                    rate = {k: total / statistics.median(v) / 1e9 for k, v in times.items()}
                    ratio = rate["fused"] / rate["copy"]
                    rows += 1
                    hits += ratio >= 0.8
                    print(f"{g:5d} {r:2d} {q:2d} {total / 1e6:8.2f} {rate['fused']:11.1f} "
                          f"{rate['faces']:11.1f} {rate['copy']:10.1f} {ratio:10.2f}")
                    ex.free()
                dec.free()
    print(f"fused pack >= 80% of the contiguous copy in {hits}/{rows} cases; load "
          f"{load0[0]:.1f} -> {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
