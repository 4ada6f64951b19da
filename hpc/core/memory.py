"""Memory estimates checked before allocating, so an impossible size is a usage error."""
from __future__ import annotations

import os

import numpy as np
from mpi4py import MPI

from .errors import UsageError
from .exchange import node_comm


def available_bytes() -> int:
    """Memory this node can still give: MemAvailable, capped by a cgroup limit if any."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = open(path).read().strip()
        except OSError:
            continue
        if raw.isdigit():
            try:
                used = int(open(path.replace("max", "current").replace("limit_in_bytes", "usage_in_bytes")).read())
            except (OSError, ValueError):
                used = 0
            avail = min(avail, int(raw) - used)
    return max(avail, 0)


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def require_memory(bytes_per_rank: float, what: str, comm=None, fraction: float = 0.85) -> None:
    """Raise UsageError on every rank unless the ranks on each host fit in its free memory."""
    ranks_here = 1
    if comm is not None and comm.Get_size() > 1:
        ranks_here = node_comm(comm).Get_size()
    need = float(bytes_per_rank) * ranks_here
    have = available_bytes()
    ok = need <= fraction * have
    if comm is not None and comm.Get_size() > 1:
        ok = comm.allreduce(ok, op=MPI.LAND)
        # One message on every rank: the tightest host's figures (ranks read /proc/meminfo
        # at slightly different moments).
        both = np.array([-need, have], dtype=np.float64)
        comm.Allreduce(MPI.IN_PLACE, both, op=MPI.MIN)
        need, have = -float(both[0]), float(both[1])
    if not ok:
        raise UsageError(
            f"{what} needs {gib(bytes_per_rank)} per rank ({gib(need)} on this host), "
            f"more than the {gib(fraction * have)} available; use a smaller size or more nodes")
