"""hpc.halo: 3D halo exchange with TEMPI-style canonical datatypes, fast packers and a model.

A global grid NX x NY x NZ is block-decomposed over a periodic 3D Cartesian communicator
(MPI_Dims_create; sizes need not divide). Each rank holds a C-ordered float64 field of shape
(nz+2R, ny+2R, nx+2R, Q), quantities innermost, and exchanges ghost layers of radius R with
all 26 neighbours, by persistent point-to-point requests (transport p2p) and by a
neighbourhood all-to-all on a distributed-graph communicator (transport alltoallw); with
--method pack the faces to one neighbour rank travel as one message (hpc.core.exchange).

Every face is an MPI subarray datatype, canonicalised into a strided block (start, counts,
strides) read through mpi4py's envelope/contents. --method datatype sends the datatype (the
library packs); pack packs with our packer (--backend) and sends bytes; auto chooses per face
from the model measured by `python -m hpc.halo measure` (cached per user; measured quickly on
the spot when absent). The GPU methods keep the field on a CUDA device and pack there:
gpu-oneshot (into mapped pinned host memory), gpu-staged (on the device, then copied to the
host), gpu-device (device buffers handed to a CUDA-aware MPI), gpu-auto (the fastest of
those available, timed on the spot; the record's strategy says which and the times).

Validation: the field is filled from a function of the global cell index; after an exchange
every ghost cell must equal its owner's value (checked on every rank, for every transport).
Metrics: exchange_us (per exchange, slowest rank, best repetition), pack_GBps (bytes of all
26 send faces packed per second, slowest rank), pack_GBps_mpi (the library's MPI_Pack of
the same 26 datatypes) and the strategy chosen, with its reasons, in the record.

Subcommands: `exchange` (the default: the run above) and `measure [--quick]`, which measures
and caches the send model. The API is :class:`hpc.halo.HaloExchange`.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from mpi4py import MPI

from hpc.core import App, UsageError, make_parser, positive_int, run
from hpc.core import backends as registry
from hpc.core import checks
from hpc.core.cli import mark_outputs
from hpc.core.cli import AppParser, Formatter, Subcommand, add_common, dispatch, subcommand_epilog
from hpc.core.decomp import Decomposition, decompose
from hpc.core.memory import require_memory
from hpc.core.runtime import collective

from . import bench, gpu, stencil
from . import model as halo_model

CPU_METHODS = ("datatype", "pack", "auto")
GPU_METHODS = ("gpu-oneshot", "gpu-staged", "gpu-device", "gpu-auto")
PACKERS = ["native", "numba", "numpy"]

COMMANDS = (
    Subcommand("exchange", "hpc.halo.app:exchange_main",
               "exchange ghost layers, validate every ghost cell, time it (the default)"),
    Subcommand("measure", "hpc.halo.app:measure_main",
               "measure the send model behind --method auto and cache it"),
)


def parser() -> AppParser:
    p = make_parser("halo", __doc__, backends=PACKERS, default_backend="native", repeat=3,
                    epilog="Back ends (--backend) are the CPU packers: native (C++/OpenMP), "
                           "numba, numpy (strided-view copy). GPU methods use the CUDA "
                           "packers in hpc._cuda.\n\n" + subcommand_epilog(COMMANDS))
    p.add_argument("--grid", nargs=3, type=positive_int, metavar=("NX", "NY", "NZ"),
                   default=[32, 32, 32], help="global grid in cells (x fastest)")
    p.add_argument("--radius", "-r", type=checks.integer(1, 1 << 20), nargs="+", default=[1],
                   metavar="R",
                   help="ghost-layer width in cells: one for every axis, or three, RZ RY RX "
                        "(each at most the smallest local block along its axis)")
    p.add_argument("--quantities", "-q", type=positive_int, default=1,
                   help="values per cell (the innermost axis of the field)")
    p.add_argument("--method", choices=CPU_METHODS + GPU_METHODS, default="pack",
                   help="how faces are sent: datatype (library), pack (ours, then bytes), "
                        "auto (per face, from the measured model), or a GPU path")
    p.add_argument("--transport", choices=("p2p", "alltoallw", "both"), default="both",
                   help="persistent point-to-point requests per neighbour, one neighbourhood "
                        "all-to-all, or both (each validated; exchange_us is p2p's when it "
                        "ran)")
    p.add_argument("--iterations", "-n", type=positive_int, default=20,
                   help="exchanges per timed repetition")
    p.add_argument("--typebuild", choices=("subarray", "hvector", "struct"), default="subarray",
                   help="how face datatypes are built: subarray, nested hvectors (the same "
                        "bytes; same canonical form), or a two-member struct (not "
                        "canonicalisable: falls back to the library, and the record says so)")
    p.add_argument("--wait", choices=("all", "any"), default="all",
                   help="p2p: wait for every face, then unpack all in one call (all), or "
                        "unpack each face as it arrives (any)")
    p.add_argument("--compute", choices=("none",) + stencil.KINDS, default="none",
                   help="also time a stencil sweep per exchange (7 or 27 points, a mean), "
                        "plain (exchange, then update) against overlapped (interior updated "
                        "while the messages travel, the shell after): the record gives the "
                        "fraction of the exchange hidden; both are validated")
    p.add_argument("--reorder", action="store_true",
                   help="alltoallw: let the MPI library renumber the ranks of the graph "
                        "communicator (the record says whether it did)")
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
    p.add_argument("--rtol", type=checks.real(0, 1, lo_open=True), default=0.05,
                   help="stop sampling when successive trimeans agree within this fraction")
    mark_outputs(p, "--model")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hpc.halo [exchange] ...`` or ``python -m hpc.halo measure ...``."""
    return dispatch("python -m hpc.halo", COMMANDS, argv, default="exchange")


def exchange_main(argv: Sequence[str] | None = None) -> int:
    """The exchange run: parse, set up, run every transport, validate and record."""
    args = parser().parse_args(argv)
    app, dec = _setup(args)
    results = _run(args, app, dec)
    sweep = _run_stencil(args, dec) if args.compute != "none" else None
    return _finish(args, app, dec, results, sweep)


# -- parse and set up -----------------------------------------------------------------------
def _setup(args: argparse.Namespace) -> tuple[App, Decomposition]:
    registry.require(args.backend, PACKERS)
    if args.method in GPU_METHODS:
        gpu.require(args.method)
        if args.transport == "alltoallw":
            raise UsageError("GPU methods use point-to-point transport (--transport p2p)")
    app = App("halo", args)
    nx, ny, nz = args.grid
    if len(args.radius) not in (1, 3):
        raise UsageError(f"--radius takes one width or three (RZ RY RX), got "
                         f"{len(args.radius)}")
    radii = tuple(args.radius) * 3 if len(args.radius) == 1 else tuple(args.radius)
    args.radii = radii
    Q = args.quantities
    if args.method in GPU_METHODS and (len(set(radii)) > 1 or args.compute != "none"):
        raise UsageError("GPU methods take one --radius and no --compute")
    dec = decompose(app.comm, (nz, ny, nx), periodic=not args.nonperiodic)
    lz, ly, lx = dec.local_shape
    rz, ry, rx = radii
    field_bytes = (lz + 2 * rz) * (ly + 2 * ry) * (lx + 2 * rx) * Q * 8
    rtext = " ".join(map(str, args.radius))
    # the field, its expected image and mask, and (--compute) two sweep outputs and a reference
    require_memory((8 if args.compute != "none" else 5) * field_bytes,
                   f"--grid {nx} {ny} {nz} --radius {rtext} --quantities {Q}", app.comm)
    app.say(f"hpc.halo: grid {nx}x{ny}x{nz}, {app.size} rank(s) as {dec.dims[2]}x{dec.dims[1]}"
            f"x{dec.dims[0]} (x,y,z), radius {rtext}, {Q} quantit{'y' if Q == 1 else 'ies'}, "
            f"method {args.method}, packer {args.backend}, "
            f"{'non-periodic' if args.nonperiodic else 'periodic'}")
    return app, dec


# -- run -----------------------------------------------------------------------------------
def _run(args: argparse.Namespace, app: App, dec: Decomposition) -> list[bench.TransportResult]:
    on_gpu = args.method in GPU_METHODS
    transports = ["p2p"] if on_gpu else bench.transports_of(args.transport)
    return [bench.run_transport(dec, args.radii, args.quantities, transport=tr,
                                method="pack" if on_gpu else args.method, packer=args.backend,
                                fill=0.0 if args.nonperiodic else None,
                                typebuild=args.typebuild, iterations=args.iterations,
                                repeat=args.repeat, timer=app.timer,
                                gpu_method=args.method if on_gpu else None, measure_pack=(k == 0),
                                wait=args.wait, reorder=args.reorder)
            for k, tr in enumerate(transports)]


def _run_stencil(args: argparse.Namespace, dec: Decomposition) -> bench.StencilResult:
    return bench.run_stencil(dec, args.radii, args.quantities, kind=args.compute,
                             transport=bench.transports_of(args.transport)[0],
                             method=args.method, packer=args.backend,
                             fill=0.0 if args.nonperiodic else None,
                             iterations=args.iterations, repeat=args.repeat, wait=args.wait,
                             reorder=args.reorder)


# -- validate and record -------------------------------------------------------------------
def _finish(args: argparse.Namespace, app: App, dec: Decomposition,
            results: list[bench.TransportResult], sweep: bench.StencilResult | None) -> int:
    validation: dict = {}
    for r in results:
        validation[f"wrong_ghost_cells_{r.transport}"] = r.wrong_ghost_cells
        validation[f"interior_intact_{r.transport}"] = r.interior_intact
    passed = all(r.wrong_ghost_cells == 0 and r.interior_intact for r in results)
    if sweep is not None:
        validation[f"{sweep.kind}_wrong_cells"] = sweep.wrong_cells
        validation[f"{sweep.kind}_overlap_equals_plain"] = sweep.overlap_equals_plain
        passed = passed and sweep.wrong_cells == 0 and sweep.overlap_equals_plain
        app.metrics["overlap"] = {
            "compute": sweep.kind, "plain_us": sweep.plain * 1e6,
            "overlapped_us": sweep.overlapped * 1e6, "exchange_us": sweep.exchange * 1e6,
            "compute_us": sweep.compute * 1e6, "hidden_fraction": sweep.hidden_fraction,
            "definition": "hidden_fraction = (plain - overlapped) / exchange, in [0, 1]; "
                          "per sweep, best of --repeat alternating rounds, slowest rank"}
    validation["checked"] = ("ghost == owner (26 neighbours; value = global index*Q+q+1)"
                             + ("; outside the domain == 0" if args.nonperiodic else ""))
    strategy = results[0].strategy
    for r in results[1:]:
        strategy[f"faces_{r.transport}"] = r.strategy["faces"]
    timings = app.timer.summary()
    _metrics(args, app, results, timings)
    app.metrics["face_bytes_per_rank"] = app.comm.allreduce(bench.halo_bytes(strategy),
                                                            op=MPI.MAX)
    app.metrics["strategy"] = bench.summary(strategy)
    app.extra["strategy"] = strategy
    app.extra["decomposition"] = {"dims_xyz": [dec.dims[2], dec.dims[1], dec.dims[0]],
                                  "local_shape_zyx_rank0": list(dec.local_shape)}
    _print(app, [r.transport for r in results])
    if args.output:
        from hpc.core import h5io

        h5io.write(args.output, app.comm,
                   {f"/exchange_s/{r.transport}":
                    app.timer.slowest(f"exchange_{r.transport}") / args.iterations
                    for r in results},
                   attrs={"/": {"method": args.method, "grid": list(args.grid),
                                "radius": list(args.radii), "quantities": args.quantities}})
    dec.free()
    return app.finish(passed, validation, timings)


def _metrics(args: argparse.Namespace, app: App, results: list[bench.TransportResult],
             timings: dict) -> None:
    for r in results:
        app.metrics[f"exchange_us_{r.transport}"] = (
            timings[f"exchange_{r.transport}"]["min"] / args.iterations * 1e6)
        if r.phases is not None:  # Comb's breakdown; sums to the time in start + wait
            app.metrics[f"phases_us_{r.transport}"] = {k: v * 1e6 for k, v in r.phases.items()}
            app.metrics[f"phases_sum_us_{r.transport}"] = sum(r.phases.values()) * 1e6
        if r.transport == "alltoallw":
            app.metrics["reordered"] = r.reordered
    app.metrics["exchange_us"] = app.metrics[f"exchange_us_{results[0].transport}"]
    pack_bytes, t_pack, mpi_bytes, t_mpi = results[0].pack
    # rank-local rates; the slowest rank's is the figure (MIN over ranks)
    app.metrics["pack_GBps"] = app.comm.allreduce(pack_bytes / t_pack / 1e9 if t_pack else 0.0,
                                                  op=MPI.MIN)
    if args.method in GPU_METHODS:
        app.metrics["pack_GBps_mpi"] = None  # MPI_Pack of device memory needs a CUDA-aware MPI
        return
    app.metrics["pack_GBps_mpi"] = app.comm.allreduce(mpi_bytes / t_mpi / 1e9 if t_mpi else 0.0,
                                                      op=MPI.MIN)
    app.metrics["pack_speedup_vs_mpi"] = (app.metrics["pack_GBps"] / app.metrics["pack_GBps_mpi"]
                                          if app.metrics["pack_GBps_mpi"] else None)


def _print(app: App, transports: list[str]) -> None:
    if app.rank != 0 or app.quiet:
        return
    for tr in transports:
        print(f"  exchange ({tr:9s}): {app.metrics[f'exchange_us_{tr}']:10.1f} us")
    if app.metrics.get("pack_GBps_mpi") is None:
        print(f"  pack 26 faces on the device: {app.metrics['pack_GBps']:.2f} GB/s")
    else:
        print(f"  pack 26 faces:  ours {app.metrics['pack_GBps']:.2f} GB/s, "
              f"MPI_Pack {app.metrics['pack_GBps_mpi']:.2f} GB/s")
    ph = app.metrics.get(f"phases_us_{transports[0]}")
    if ph:
        print(f"  phases ({transports[0]}, us per exchange): "
              + ", ".join(f"{k} {v:.1f}" for k, v in ph.items())
              + f"; sum {sum(ph.values()):.1f}")
    ov = app.metrics.get("overlap")
    if ov:
        print(f"  {ov['compute']}: plain {ov['plain_us']:.1f} us, overlapped "
              f"{ov['overlapped_us']:.1f} us (exchange {ov['exchange_us']:.1f}, compute "
              f"{ov['compute_us']:.1f}): {ov['hidden_fraction']:.0%} of the exchange hidden")
    print(f"  strategy: {app.metrics['strategy']}")


# -- the measure subcommand ------------------------------------------------------------------
def measure_main(argv: Sequence[str]) -> int:
    """``python -m hpc.halo measure``: measure the send model and cache it."""
    args = measure_parser().parse_args(list(argv))
    registry.require(args.backend, PACKERS)
    app = App("halo", args)
    target = Path(args.model) if args.model else halo_model.cache_path()
    with collective(app.comm):  # an untrusted cache directory: exit 2 before measuring
        if app.rank == 0:
            halo_model.check_dir(target.parent, create=True,
                                 dedicated=args.model is None and halo_model._default_dir())
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
        path = m.save(target)
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
