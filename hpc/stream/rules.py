"""STREAM's run rules, checked on the machine the run is on (McCalpin; BabelStream 5).

- Array size: each array of every rank must be at least 4x that rank's share of the last-level
  cache (the LLC instances its cores use, divided among the ranks on this host that use them),
  read from ``/sys/devices/system/cpu/*/cache``. Smaller runs measure cache, not memory: they
  are flagged (``cache_resident``), never refused.
- Timer: the granularity of the clock the kernels are timed with (``time.perf_counter``) is
  measured (the smallest non-zero step seen); a kernel whose best time is under 20 ticks is
  flagged, as McCalpin's ``checktick`` does.
- Placement: every rank's host, cores (its affinity mask) and NUMA node(s); ranks of one host
  whose masks overlap share cores, and the run says so (their bandwidths are not independent).
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from mpi4py import MPI

from hpc.core.exchange import node_comm

#: McCalpin: each array at least 4x the (share of the) last-level cache
CACHE_FACTOR = 4
#: McCalpin: a timed kernel should last at least 20 clock ticks
MIN_TICKS = 20

_CPU = Path("/sys/devices/system/cpu")
_NODE = Path("/sys/devices/system/node")


def _size(text: str) -> int:
    """'32768K' / '1M' / '512' -> bytes."""
    text = text.strip().upper()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(text.rstrip("KMG") or 0) * mult


def _cpulist(text: str) -> set[int]:
    """'0-3,8,10-11' -> {0, 1, 2, 3, 8, 10, 11}."""
    out: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def affinity() -> set[int]:
    """The cores this process may run on."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def llc_instances(cpus: set[int], root: Path = _CPU) -> dict[str, int]:
    """The last-level cache instances the given cores use: {shared cpu list: bytes}.

    The LLC is the highest-level data or unified cache sysfs lists; empty when sysfs does
    not say (containers without it, other systems)."""
    found: dict[str, int] = {}
    best_level = 0
    for c in sorted(cpus):
        cache = root / f"cpu{c}" / "cache"
        if not cache.is_dir():
            continue
        for idx in cache.glob("index*"):
            try:
                kind = (idx / "type").read_text().strip()
                level = int((idx / "level").read_text())
                size = _size((idx / "size").read_text())
                shared = (idx / "shared_cpu_list").read_text().strip()
            except (OSError, ValueError):
                continue
            if kind == "Instruction" or size <= 0:
                continue
            if level > best_level:
                best_level, found = level, {}
            if level == best_level:
                found[shared] = size
    return found


def llc_share(comm: MPI.Comm) -> dict[str, Any]:
    """This rank's share of the last-level cache (collective over comm).

    Returns {"llc_bytes": the LLC instances this rank's cores use, "ranks_sharing": ranks
    of this host using them, "share_bytes": llc_bytes / ranks_sharing summed per instance}
    (share None when the machine does not say)."""
    mine = llc_instances(affinity())
    everyone = node_comm(comm).allgather(sorted(mine))
    share = 0.0
    for inst, size in mine.items():
        users = sum(inst in other for other in everyone)
        share += size / max(1, users)
    return {"llc_bytes": sum(mine.values()) or None,
            "llc_instances": len(mine),
            "ranks_sharing": max((sum(i in o for o in everyone) for i in mine), default=0),
            "share_bytes": int(share) if mine else None}


def timer_granularity(samples: int = 2000) -> float:
    """The smallest non-zero step of ``time.perf_counter`` seen (seconds)."""
    best = float("inf")
    clock = time.perf_counter
    for _ in range(samples):
        t0 = clock()
        t1 = clock()
        while t1 == t0:
            t1 = clock()
        best = min(best, t1 - t0)
    res = time.get_clock_info("perf_counter").resolution
    return max(best, res) if best != float("inf") else res


def numa_nodes(cpus: set[int], root: Path = _NODE) -> list[int]:
    """The NUMA nodes whose cores include any of the given cores (empty when unknown)."""
    out = []
    for node in sorted(root.glob("node[0-9]*")):
        try:
            if _cpulist((node / "cpulist").read_text()) & cpus:
                out.append(int(node.name[4:]))
        except (OSError, ValueError):
            continue
    return out


def _ranges(cpus: set[int]) -> str:
    """{0, 1, 2, 5} -> '0-2,5'."""
    out, run = [], []
    for c in sorted(cpus):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [c]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def placement(comm: MPI.Comm) -> dict[str, Any]:
    """Every rank's host, cores and NUMA nodes, and which ranks share cores (collective).

    Returns {"ranks": [{rank, host, cpus, numa}], "shared_cores": [[r, s, "cores"], ...]}
    on every rank; shared_cores lists the pairs of ranks of one host whose affinity masks
    overlap (empty when every rank has cores of its own)."""
    cpus = affinity()
    me = {"rank": comm.Get_rank(), "host": socket.gethostname(), "cpus": _ranges(cpus),
          "numa": numa_nodes(cpus)}
    rows = comm.allgather((me, sorted(cpus)))
    shared = []
    for i, (a, ca) in enumerate(rows):
        for b, cb in rows[i + 1:]:
            common = set(ca) & set(cb)
            if a["host"] == b["host"] and common:
                shared.append([a["rank"], b["rank"], _ranges(common)])
    return {"ranks": [r for r, _ in rows], "shared_cores": shared}


def check(comm: MPI.Comm, array_bytes: int, best_times: dict[str, float]) -> dict[str, Any]:
    """The run rules for one run (collective): cache residency, short kernels, placement.

    ``array_bytes``: one array of one rank; ``best_times``: each kernel's best time (s)."""
    llc = llc_share(comm)
    share = llc["share_bytes"]
    # the rank with the largest share sets the size every rank's arrays must reach
    need = comm.allreduce(CACHE_FACTOR * share if share else 0, op=MPI.MAX)
    tick = comm.allreduce(timer_granularity(), op=MPI.MAX)
    short = sorted(k for k, t in best_times.items() if t < MIN_TICKS * tick)
    where = placement(comm)
    return {
        "cache_resident": bool(need and array_bytes < need),
        "cache_rule": (f"each array >= {CACHE_FACTOR} x the rank's share of the last-level "
                       f"cache: {need} bytes" if need else "last-level cache size unknown"),
        "array_bytes": int(array_bytes),
        "llc": llc,
        "timer_granularity_s": tick,
        "short_kernels": short,
        "short_rule": f"a kernel's best time >= {MIN_TICKS} timer ticks "
                      f"({MIN_TICKS * tick:.3g} s)",
        "placement": where,
        "ranks_share_cores": bool(where["shared_cores"]),
    }
