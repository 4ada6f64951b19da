"""hpc.halo: 3D halo exchange with TEMPI-style canonical datatypes, fast packers and a model.

A global grid NX x NY x NZ is block-decomposed over a periodic 3D Cartesian communicator
(MPI_Dims_create; sizes need not divide). Each rank holds a C-ordered float64 field of shape
(nz+2R, ny+2R, nx+2R, Q), quantities innermost, and exchanges ghost layers of radius R with
all 26 neighbours, by Isend/Irecv (transport p2p) and by Neighbor_alltoallw on a
distributed-graph communicator (transport alltoallw).

Every face is an MPI subarray datatype, canonicalised into a strided block (start, counts,
strides) read through mpi4py's envelope/contents. --method datatype sends the datatype (the
library packs); pack packs with our packer (--backend) and sends bytes; auto chooses per face
from the model measured by `python -m hpc.halo measure` (cached per user; measured quickly on
the spot when absent). The GPU methods keep the field on a CUDA device and pack there:
gpu-oneshot (into mapped pinned host memory), gpu-staged (on the device, then copied to the
host), gpu-device (device buffers handed to a CUDA-aware MPI).

Validation: the field is filled from a function of the global cell index; after an exchange
every ghost cell must equal its owner's value (checked on every rank, for every transport).
Metrics: exchange_us (per exchange, slowest rank, best repetition), pack_GBps (bytes of all
26 send faces packed per second, slowest rank), pack_GBps_mpi (the library's MPI_Pack of
the same 26 datatypes) and the strategy chosen, with its reasons, in the record.

Subcommand: `python -m hpc.halo measure [--quick]` measures and caches the send model.
"""
from __future__ import annotations

import sys
import time
from typing import Sequence

import numpy as np

from hpc.core import App, UsageError, make_parser, positive_int, run
from hpc.core.cli import AppParser, Formatter, add_common
from hpc.core.memory import require_memory

from . import model as halo_model
from .engine import HaloExchange, decompose, expected_ghosts, fill_global

CPU_METHODS = ("datatype", "pack", "auto")
GPU_METHODS = ("gpu-oneshot", "gpu-staged", "gpu-device")
PACKERS = ["native", "numba", "numpy"]


def parser() -> AppParser:
    p = make_parser("halo", __doc__, backends=PACKERS, default_backend="native", repeat=3,
                    epilog="Back ends (--backend) are the CPU packers: native (C++/OpenMP), "
                           "numba, numpy (strided-view copy). GPU methods use the CUDA "
                           "packers in hpc._cuda.")
    p.add_argument("--grid", nargs=3, type=positive_int, metavar=("NX", "NY", "NZ"),
                   default=[32, 32, 32], help="global grid in cells (x fastest)")
    p.add_argument("--radius", "-r", type=positive_int, default=1,
                   help="ghost-layer width in cells (at most the smallest local block)")
    p.add_argument("--quantities", "-q", type=positive_int, default=1,
                   help="values per cell (the innermost axis of the field)")
    p.add_argument("--method", choices=CPU_METHODS + GPU_METHODS, default="pack",
                   help="how faces are sent: datatype (library), pack (ours, then bytes), "
                        "auto (per face, from the measured model), or a GPU path")
    p.add_argument("--transport", choices=("p2p", "alltoallw", "both"), default="both",
                   help="Isend/Irecv per neighbour, one Neighbor_alltoallw, or both (each "
                        "validated; exchange_us is p2p's when it ran)")
    p.add_argument("--iterations", "-n", type=positive_int, default=20,
                   help="exchanges per timed repetition")
    p.add_argument("--typebuild", choices=("subarray", "hvector", "struct"), default="subarray",
                   help="how face datatypes are built: subarray, nested hvectors (the same "
                        "bytes; same canonical form), or a two-member struct (not "
                        "canonicalisable: falls back to the library, and the record says so)")
    p.add_argument("--nonperiodic", action="store_true",
                   help="physical boundaries instead of periodic ones: ghosts outside the "
                        "domain are set to 0 and checked to be 0")
    return p


def measure_parser() -> AppParser:
    p = AppParser(prog="python -m hpc.halo measure", formatter_class=Formatter,
                  description=halo_model.__doc__)
    add_common(p, PACKERS, "native")
    p.add_argument("--quick", action="store_true", help="fewer sizes and batches (seconds)")
    p.add_argument("--model", metavar="PATH", default=None,
                   help=f"where to cache the model [default: {halo_model.cache_path()}]")
    p.add_argument("--rtol", type=float, default=0.05,
                   help="stop sampling when successive trimeans agree within this fraction")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "measure":
        return measure_main(argv[1:])
    args = parser().parse_args(argv)
    from hpc.core import backends as registry

    registry.require(args.backend, PACKERS)
    gpu = args.method in GPU_METHODS
    if gpu:
        from . import gpu as gpu_mod

        gpu_mod.require(args.method)
    app = App("halo", args)
    nx, ny, nz = args.grid
    gshape = (nz, ny, nx)
    R, Q = args.radius, args.quantities
    dec = decompose(app.comm, gshape, periodic=not args.nonperiodic)
    lz, ly, lx = dec.local_shape
    field_bytes = (lz + 2 * R) * (ly + 2 * R) * (lx + 2 * R) * Q * 8
    require_memory(5 * field_bytes, f"--grid {nx} {ny} {nz} --radius {R} --quantities {Q}",
                   app.comm)
    fill = 0.0 if args.nonperiodic else None
    transports = ["p2p", "alltoallw"] if args.transport == "both" else [args.transport]
    if gpu:
        if args.transport == "alltoallw":
            raise UsageError("GPU methods use point-to-point transport (--transport p2p)")
        transports = ["p2p"]
    cpu_method = "pack" if gpu else args.method
    app.say(f"hpc.halo: grid {nx}x{ny}x{nz}, {app.size} rank(s) as {dec.dims[2]}x{dec.dims[1]}"
            f"x{dec.dims[0]} (x,y,z), radius {R}, {Q} quantit{'y' if Q == 1 else 'ies'}, "
            f"method {args.method}, packer {args.backend}, "
            f"{'non-periodic' if args.nonperiodic else 'periodic'}")

    expect, mask = expected_ghosts(dec.local_shape, dec.offset, gshape, R, dec.periodic, Q, fill)
    validation: dict = {}
    passed = True
    strategy = None
    pack_bytes = 0
    for tr in transports:
        halo = HaloExchange(dec.cart, dec.local_shape, R, quantities=Q, method=cpu_method,
                            packer=args.backend, transport=tr, fill=fill,
                            typebuild=args.typebuild)
        try:
            field = halo.allocate(np.nan)
            fill_global(halo.interior(field), dec.offset, gshape, Q)
            if gpu:
                from . import gpu as gpu_mod

                ex = gpu_mod.GpuHaloExchange(halo, args.method)
                dev = ex.upload(field)
                do = lambda: ex.exchange(dev)  # noqa: E731
                result = lambda: ex.download(dev)  # noqa: E731
                app.timer.sync = ex.sync
            else:
                do = lambda: halo.exchange(field)  # noqa: E731
                result = lambda: field  # noqa: E731
            do()  # the first exchange is the one validated (ghosts start as NaN)
            got = result()
            bad = int(np.count_nonzero(got[mask] != expect[mask]))
            interior_ok = bool(np.array_equal(halo.interior(got),
                                              halo.interior(expect)))
            from mpi4py import MPI

            bad = app.comm.allreduce(bad, op=MPI.SUM)
            interior_ok = app.comm.allreduce(interior_ok, op=MPI.LAND)
            validation[f"wrong_ghost_cells_{tr}"] = bad
            validation[f"interior_intact_{tr}"] = interior_ok
            passed = passed and bad == 0 and interior_ok
            for _ in range(args.repeat + 1):  # the first repetition is dropped
                with app.timer.phase(f"exchange_{tr}"):
                    for _ in range(args.iterations):
                        do()
            if strategy is None:
                strategy = halo.strategy
                if not gpu:
                    pack_bytes, t_pack, mpi_bytes, t_mpi = _pack_rates(
                        halo, field, args.iterations, args.repeat)
            else:
                strategy[f"faces_{tr}"] = halo.strategy["faces"]
            if gpu:
                if strategy is halo.strategy:
                    pack_bytes, t_pack = _gpu_pack_rate(ex, dev, args.iterations, args.repeat)
                    t_mpi = 0.0
                ex.free()
        finally:
            halo.free()
    timings = app.timer.summary()
    from mpi4py import MPI

    for tr in transports:
        us = timings[f"exchange_{tr}"]["min"] / args.iterations * 1e6
        app.metrics[f"exchange_us_{tr}"] = us
    app.metrics["exchange_us"] = app.metrics[f"exchange_us_{transports[0]}"]
    if gpu:
        app.metrics["pack_GBps"] = app.comm.allreduce(pack_bytes / t_pack / 1e9, op=MPI.MIN)
        app.metrics["pack_GBps_mpi"] = None  # MPI_Pack of device memory needs a CUDA-aware MPI
    else:
        # rank-local rates; the slowest rank's is the figure (MIN over ranks)
        app.metrics["pack_GBps"] = app.comm.allreduce(pack_bytes / t_pack / 1e9 if t_pack else 0.0,
                                                      op=MPI.MIN)
        app.metrics["pack_GBps_mpi"] = app.comm.allreduce(mpi_bytes / t_mpi / 1e9 if t_mpi else 0.0,
                                                          op=MPI.MIN)
        app.metrics["pack_speedup_vs_mpi"] = (app.metrics["pack_GBps"] /
                                              app.metrics["pack_GBps_mpi"]
                                              if app.metrics["pack_GBps_mpi"] else None)
    app.metrics["face_bytes_per_rank"] = app.comm.allreduce(halo_bytes(strategy), op=MPI.MAX)
    app.metrics["strategy"] = _summary(strategy)
    app.extra["strategy"] = strategy
    app.extra["decomposition"] = {"dims_xyz": [dec.dims[2], dec.dims[1], dec.dims[0]],
                                  "local_shape_zyx_rank0": list(dec.local_shape)}
    validation["checked"] = ("ghost == owner (26 neighbours; value = global index*Q+q+1)"
                             + ("; outside the domain == 0" if args.nonperiodic else ""))
    if app.rank == 0 and not app.quiet:
        for tr in transports:
            print(f"  exchange ({tr:9s}): {app.metrics[f'exchange_us_{tr}']:10.1f} us")
        if app.metrics.get("pack_GBps_mpi") is None:
            print(f"  pack 26 faces on the device: {app.metrics['pack_GBps']:.2f} GB/s")
        else:
            print(f"  pack 26 faces:  ours {app.metrics['pack_GBps']:.2f} GB/s, "
                  f"MPI_Pack {app.metrics['pack_GBps_mpi']:.2f} GB/s")
        print(f"  strategy: {app.metrics['strategy']}")
    if args.output:
        from hpc.core import h5io

        h5io.write(args.output, app.comm,
                   {f"/exchange_s/{tr}": app.timer.slowest(f"exchange_{tr}") / args.iterations
                    for tr in transports},
                   attrs={"/": {"method": args.method, "grid": list(args.grid), "radius": R,
                                "quantities": Q}})
    dec.cart.Free()
    return app.finish(passed, validation, timings)


def halo_bytes(strategy: dict | None) -> int:
    if not strategy:
        return 0
    return int(sum(c["bytes"] for c in strategy["choices"]))


def _summary(strategy: dict | None) -> str:
    if not strategy:
        return ""
    parts = [f"{k} x{v}" for k, v in strategy["faces"].items()]
    s = f"{strategy['method']} -> " + ", ".join(parts)
    if strategy.get("fallback"):
        s += f" ({strategy['fallback']})"
    return s


def _pack_rates(halo: HaloExchange, field: np.ndarray, iterations: int,
                repeat: int) -> tuple[int, float, int, float]:
    """Bytes and best time to pack all send faces: ours (canonical faces), then MPI_Pack."""
    from . import packers

    faces = [f for f in halo.faces if f.send_block is not None]
    plan = packers.Plan(halo.packer_name, [f.send_block for f in faces], field.nbytes)
    buf = np.empty(max(1, plan.total), np.uint8)
    total = plan.total
    mpi_buf = np.empty(max(1, sum(f.send_type.Pack_size(1, halo.comm) for f in halo.faces)),
                       np.uint8)
    # MPI_Pack's input count is len(buffer) // extent: hand it one extent of the field
    fb = field.reshape(-1).view(np.uint8)

    def ours() -> None:
        plan.pack_all(field, buf)

    def lib() -> None:
        pos = 0
        for f in halo.faces:
            _, ext = f.send_type.Get_extent()
            pos = f.send_type.Pack(fb[:ext] if 0 < ext <= fb.size else fb, mpi_buf, pos,
                                   halo.comm)

    best = {}
    for name, fn in (("ours", ours), ("mpi", lib)):
        fn()
        t = []
        for _ in range(max(2, repeat)):
            t0 = time.perf_counter()
            for _ in range(iterations):
                fn()
            t.append((time.perf_counter() - t0) / iterations)
        best[name] = min(t)
    # the two must agree byte for byte (packing order is the type map's in both)
    lib()
    ours()
    if len(faces) == len(halo.faces) and not np.array_equal(buf[:total], mpi_buf[:total]):
        raise RuntimeError("packer output differs from MPI_Pack for the face datatypes")
    return total, best["ours"], sum(f.nbytes for f in halo.faces), best["mpi"]


def _gpu_pack_rate(ex, dev, iterations: int, repeat: int) -> tuple[int, float]:
    """Bytes of all faces and the best time to pack them all on the device."""
    n = ex.pack_all(dev)
    best = float("inf")
    for _ in range(max(2, repeat)):
        t0 = time.perf_counter()
        for _ in range(iterations):
            ex.pack_all(dev)
        best = min(best, (time.perf_counter() - t0) / iterations)
    return n, best


def measure_main(argv: Sequence[str]) -> int:
    args = measure_parser().parse_args(list(argv))
    from hpc.core import backends as registry

    registry.require(args.backend, PACKERS)
    app = App("halo", args)
    app.say(f"hpc.halo measure: ping-pong on {app.size} rank(s) and {args.backend} "
            f"pack/unpack, sizes {halo_model.QUICK_SIZES[0] if args.quick else halo_model.SIZES[0]}"
            f" B.., blocks {halo_model.BLOCKS} B")
    t0 = time.perf_counter()
    m = halo_model.measure(app.comm, quick=args.quick, packer=args.backend,
                           progress=app.progress if not args.quiet else None, rtol=args.rtol)
    app.timer.add("measure", time.perf_counter() - t0)
    path = None
    ok_roundtrip = True
    if app.rank == 0:
        path = m.save(args.model)
        back = halo_model.load(path)
        ok_roundtrip = back is not None and back.to_json() == m.to_json()
    ok_roundtrip = app.comm.bcast(ok_roundtrip, root=0)
    figures = [v for s in m.contig.values() for v in s]
    figures += [v for d in m.datatype.values() for s in d.values() for v in s]
    figures += [v for d in (m.pack, m.unpack) for s in d.values() for v in s]
    finite = all(np.isfinite(v) and v > 0 for v in figures)
    if app.rank == 0 and not app.quiet:
        print(f"model cached in {path}")
        head = f"{'bytes':>9} {'contig us':>10}" + "".join(
            f" {'dt' + str(b):>8} {'pk' + str(b):>8}" for b in m.blocks)
        for place in m.contig:
            print(f"[{place.replace('_', ' ')}] times in us; dtB: datatype send, pkB: "
                  "pack+send+unpack, blocks of B bytes")
            print(head)
            for i, n in enumerate(m.sizes):
                row = f"{n:>9} {m.contig[place][i] * 1e6:>10.1f}"
                for b in m.blocks:
                    pk = (m.pack[str(b)][i] + m.contig[place][i] + m.unpack[str(b)][i]) * 1e6
                    row += f" {m.datatype[place][str(b)][i] * 1e6:>8.1f} {pk:>8.1f}"
                print(row)
    app.metrics["model_path"] = str(app.comm.bcast(str(path) if path else None, root=0))
    app.metrics["model"] = m.to_json()
    return app.finish(finite and ok_roundtrip,
                      {"all_figures_positive_finite": finite, "cache_roundtrip": ok_roundtrip})


if __name__ == "__main__":
    run(main)
