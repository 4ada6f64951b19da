"""What ``python -m hpc.halo`` measures, on top of the public :class:`~hpc.halo.HaloExchange`.

- :func:`run_transport`: one exchange validated against the owners' values (every ghost
  cell), then timed repetitions of ``iterations`` exchanges, CPU or GPU field;
- :func:`pack_rates`: our packer against the library's ``MPI_Pack`` on the same 26 face
  datatypes (byte for byte equal), and :func:`gpu_pack_rate` on the device;
- :func:`halo_bytes`, :func:`summary`: the record's figures of a strategy.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from mpi4py import MPI

from hpc.core.decomp import Decomposition
from hpc.core.timers import PhaseTimer

from . import gpu, packers
from .engine import HaloExchange, expected_ghosts, fill_global


@dataclass
class TransportResult:
    """One transport's run: the validation counts, the strategy and the pack rates."""

    transport: str
    wrong_ghost_cells: int                 # summed over ranks
    interior_intact: bool                  # on every rank
    strategy: dict[str, Any]
    pack: tuple[int, float, int, float] | None  # (bytes, s, MPI_Pack bytes, s); GPU: s_mpi 0


def run_transport(dec: Decomposition, radius: int, quantities: int, *, transport: str,
                  method: str, packer: str, fill: float | None, typebuild: str,
                  iterations: int, repeat: int, timer: PhaseTimer, gpu_method: str | None = None,
                  measure_pack: bool = False) -> TransportResult:
    """Validate one exchange, then time ``repeat + 1`` phases of ``iterations`` exchanges
    (phase ``exchange_<transport>`` of ``timer``; the first is the dropped warm-up).
    Collective over ``dec.cart``."""
    comm = dec.cart
    expect, mask = expected_ghosts(dec.local_shape, dec.offset, dec.global_shape, radius,
                                   dec.periodic, quantities, fill)
    halo = HaloExchange(dec.cart, dec.local_shape, radius, quantities=quantities, method=method,
                        packer=packer, transport=transport, fill=fill, typebuild=typebuild)
    ex = None
    try:
        field = halo.allocate(np.nan)
        fill_global(halo.interior(field), dec.offset, dec.global_shape, quantities)
        if gpu_method is not None:
            ex = gpu.GpuHaloExchange(halo, gpu_method)
            dev = ex.upload(field)
            do = lambda: ex.exchange(dev)  # noqa: E731
            result = lambda: ex.download(dev)  # noqa: E731
            timer.sync = ex.sync
        else:
            do = lambda: halo.exchange(field)  # noqa: E731
            result = lambda: field  # noqa: E731
        do()  # the first exchange is the one validated (ghosts start as NaN)
        got = result()
        bad = int(np.count_nonzero(got[mask] != expect[mask]))
        intact = bool(np.array_equal(halo.interior(got), halo.interior(expect)))
        bad = comm.allreduce(bad, op=MPI.SUM)
        intact = comm.allreduce(intact, op=MPI.LAND)
        for _ in range(repeat + 1):  # the first repetition is dropped
            with timer.phase(f"exchange_{transport}"):
                for _ in range(iterations):
                    do()
        pack = None
        if measure_pack:
            if ex is not None:
                nbytes, t = gpu_pack_rate(ex, dev, iterations, repeat)
                pack = (nbytes, t, 0, 0.0)
            else:
                pack = pack_rates(halo, field, iterations, repeat)
        return TransportResult(transport, bad, intact, halo.strategy, pack)
    finally:
        if ex is not None:
            ex.free()
        halo.free()


def _best(fn, iterations: int, repeat: int) -> float:
    """Best of max(2, repeat) timings of ``iterations`` calls, per call (seconds)."""
    fn()
    t = []
    for _ in range(max(2, repeat)):
        t0 = time.perf_counter()
        for _ in range(iterations):
            fn()
        t.append((time.perf_counter() - t0) / iterations)
    return min(t)


def pack_rates(halo: HaloExchange, field: np.ndarray, iterations: int,
               repeat: int) -> tuple[int, float, int, float]:
    """Bytes and best time to pack all send faces: ours (canonical faces), then MPI_Pack.

    Raises RuntimeError when the two differ byte for byte (packing order is the type map's
    in both)."""
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

    t_ours = _best(ours, iterations, repeat)
    t_mpi = _best(lib, iterations, repeat)
    lib()
    ours()
    if len(faces) == len(halo.faces) and not np.array_equal(buf[:total], mpi_buf[:total]):
        raise RuntimeError("packer output differs from MPI_Pack for the face datatypes")
    return total, t_ours, sum(f.nbytes for f in halo.faces), t_mpi


def gpu_pack_rate(ex, dev, iterations: int, repeat: int) -> tuple[int, float]:
    """Bytes of all faces and the best time to pack them all on the device."""
    n = ex.pack_all(dev)
    return n, _best(lambda: ex.pack_all(dev), iterations, repeat)


def halo_bytes(strategy: dict | None) -> int:
    """Bytes of all faces a rank sends per exchange (the strategy's choices)."""
    if not strategy:
        return 0
    return int(sum(c["bytes"] for c in strategy["choices"]))


def summary(strategy: dict | None) -> str:
    """One line: the method and how many faces each way went."""
    if not strategy:
        return ""
    parts = [f"{k} x{v}" for k, v in strategy["faces"].items()]
    s = f"{strategy['method']} -> " + ", ".join(parts)
    if strategy.get("fallback"):
        s += f" ({strategy['fallback']})"
    return s


def transports_of(choice: str) -> Sequence[str]:
    """The transports ``--transport`` names (``both``: p2p then alltoallw)."""
    return ["p2p", "alltoallw"] if choice == "both" else [choice]
