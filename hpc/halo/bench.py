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
from . import stencil
from .engine import PHASES, HaloExchange, expected_ghosts, fill_global


@dataclass
class TransportResult:
    """One transport's run: the validation counts, the strategy and the pack rates."""

    transport: str
    wrong_ghost_cells: int                 # summed over ranks
    interior_intact: bool                  # on every rank
    strategy: dict[str, Any]
    pack: tuple[int, float, int, float] | None  # (bytes, s, MPI_Pack bytes, s); GPU: s_mpi 0
    phases: dict[str, float] | None = None  # seconds per exchange per phase, slowest rank
    reordered: bool = False


def run_transport(dec: Decomposition, radius: int, quantities: int, *, transport: str,
                  method: str, packer: str, fill: float | None, typebuild: str,
                  iterations: int, repeat: int, timer: PhaseTimer, gpu_method: str | None = None,
                  measure_pack: bool = False, wait: str = "all",
                  reorder: bool = False) -> TransportResult:
    """Validate one exchange, then time ``repeat + 1`` phases of ``iterations`` exchanges
    (phase ``exchange_<transport>`` of ``timer``; the first is the dropped warm-up).
    Collective over ``dec.cart``."""
    comm = dec.cart
    expect, mask = expected_ghosts(dec.local_shape, dec.offset, dec.global_shape, radius,
                                   dec.periodic, quantities, fill)
    halo = HaloExchange(dec.cart, dec.local_shape, radius, quantities=quantities, method=method,
                        packer=packer, transport=transport, fill=fill, typebuild=typebuild,
                        wait=wait, reorder=reorder)
    ex = None
    try:
        field = halo.allocate(np.nan)
        fill_global(halo.interior(field), dec.offset, dec.global_shape, quantities)
        if gpu_method is not None:
            if gpu_method == gpu.AUTO:  # measured here: the fastest of the available paths
                gpu_method, tried = gpu.choose(halo, field)
                halo.strategy["gpu_auto_us"] = tried
                halo.strategy["gpu_method"] = gpu_method
            ex = gpu.GpuHaloExchange(halo, gpu_method)
            dev = ex.upload(field)
            do = lambda: ex.exchange(dev)  # noqa: E731
            result = lambda: ex.download(dev)  # noqa: E731
            timer.sync = ex.sync
        else:
            do = lambda: halo.exchange(field)  # noqa: E731
            result = lambda: field  # noqa: E731
        phases: dict[str, float] | None = None
        best = 0.0
        do()  # the first exchange is the one validated (ghosts start as NaN)
        got = result()
        bad = int(np.count_nonzero(got[mask] != expect[mask]))
        intact = bool(np.array_equal(halo.interior(got), halo.interior(expect)))
        bad = comm.allreduce(bad, op=MPI.SUM)
        intact = comm.allreduce(intact, op=MPI.LAND)
        for k in range(repeat + 1):  # the first repetition is dropped
            halo.phase_times(reset=True)
            with timer.phase(f"exchange_{transport}"):
                for _ in range(iterations):
                    do()
            if k == 0:
                continue
            ph = halo.phase_times()  # this repetition's; the best repetition's phases kept
            total = sum(ph[p] for p in PHASES)
            if phases is None or total < best:
                best, phases = total, {p: ph[p] / iterations for p in PHASES}
        # the slowest rank's breakdown (the one whose sum is largest): phases add up per rank
        sums = comm.allgather(sum(phases.values()) if phases else 0.0)
        phases = comm.bcast(phases, root=int(np.argmax(sums)))
        pack = None
        if measure_pack:
            if ex is not None:
                nbytes, t = gpu_pack_rate(ex, dev, iterations, repeat)
                pack = (nbytes, t, 0, 0.0)
            else:
                pack = pack_rates(halo, field, iterations, repeat)
        return TransportResult(transport, bad, intact, halo.strategy, pack,
                               phases if gpu_method is None else None, halo.reordered)
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
    plan = packers.Plan(halo.packer_name, [f.send_block for f in faces], field.nbytes,
                        threads=halo.threads)
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


@dataclass
class StencilResult:
    """The overlapped stencil against the plain one: validation and times (seconds)."""

    kind: str
    wrong_cells: int          # overlapped result != the np.roll reference, summed over ranks
    overlap_equals_plain: bool  # bit for bit, on every rank
    plain: float              # one exchange + sweep, exchange first (best repetition)
    overlapped: float         # the same with the interior updated during the exchange
    exchange: float           # the exchange alone within the plain sweep
    compute: float            # inner + shell update within the plain sweep
    hidden_fraction: float


def run_stencil(dec: Decomposition, radius, quantities: int, *, kind: str, transport: str,
                method: str, packer: str, fill: float | None, iterations: int, repeat: int,
                wait: str = "all", reorder: bool = False) -> StencilResult:
    """Sweeps of ``kind`` with and without overlap, validated against the stencil of the
    field as it must look after an exchange, then timed alternately (``repeat`` rounds of
    ``iterations`` sweeps each way; per sweep, the best round, slowest rank). Collective."""
    comm = dec.cart
    halo = HaloExchange(dec.cart, dec.local_shape, radius, quantities=quantities, method=method,
                        packer=packer, transport=transport, fill=fill, wait=wait,
                        reorder=reorder)
    try:
        st = stencil.Stencil(halo, kind)
        u = halo.allocate(np.nan)
        fill_global(halo.interior(u), dec.offset, dec.global_shape, quantities)
        expect, _ = expected_ghosts(dec.local_shape, dec.offset, dec.global_shape, radius,
                                    dec.periodic, quantities, 0.0 if fill is None else fill)
        ref = halo.interior(stencil.rolled_mean(expect, kind, halo.ndim))
        a, b = halo.allocate(0.0), halo.allocate(0.0)
        st.sweep(u, a, overlap=True)
        st.sweep(u, b, overlap=False)
        # periodic: every neighbourhood cell is a real cell; non-periodic: zeros outside
        wrong = int(np.count_nonzero(~np.isclose(halo.interior(a), ref, rtol=1e-13, atol=0)))
        same = bool(np.array_equal(halo.interior(a), halo.interior(b)))
        wrong = comm.allreduce(wrong, op=MPI.SUM)
        same = comm.allreduce(same, op=MPI.LAND)
        best: dict[str, list[float]] = {"plain": [], "overlapped": [], "exchange": [],
                                        "compute": []}
        for _ in range(max(1, repeat)):  # alternate, so load drifts hit both alike
            for mode in ("plain", "overlapped"):
                comm.Barrier()
                tot = ex = comp = 0.0
                for _ in range(iterations):
                    t = st.sweep(u, a, overlap=(mode == "overlapped"))
                    tot += t["total"]
                    ex += t["exchange"]
                    comp += t["inner"] + t["shell"]
                best[mode].append(tot / iterations)
                if mode == "plain":
                    best["exchange"].append(ex / iterations)
                    best["compute"].append(comp / iterations)
        k = int(np.argmin(best["plain"]))
        plain = comm.allreduce(best["plain"][k], op=MPI.MAX)
        ex = comm.allreduce(best["exchange"][k], op=MPI.MAX)
        comp = comm.allreduce(best["compute"][k], op=MPI.MAX)
        over = comm.allreduce(min(best["overlapped"]), op=MPI.MAX)
        return StencilResult(kind, wrong, same, plain, over, ex, comp,
                             stencil.hidden_fraction(plain, over, ex))
    finally:
        halo.free()
