"""Memory estimates checked before allocating, so an impossible size is a usage error."""
from __future__ import annotations

import os

import numpy as np
from mpi4py import MPI

from .errors import UsageError
from .exchange import node_comm


def _read_small(path: str) -> bytes | None:
    """A small /proc or /sys file's bytes (one read, no text layer), or None if unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 1 << 14)
    except OSError:
        return None
    finally:
        os.close(fd)


def available_bytes() -> int:
    """Memory this node can still give: MemAvailable, capped by a cgroup limit if any.

    Raw reads (``os.read``, no text decoding): a reader checks this on every call, and the
    text-mode version cost ~0.25 ms, as much as parsing 100 kB of a matrix."""
    avail = None
    info = _read_small("/proc/meminfo")
    k = info.find(b"MemAvailable:") if info else -1
    if k >= 0:
        try:
            avail = int(info[k + 13:info.index(b"\n", k)].split()[0]) * 1024
        except (ValueError, IndexError):
            avail = None
    if avail is None:
        avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        raw = _read_small(limit)
        if raw is None:
            continue
        raw = raw.strip()
        if raw.isdigit():
            try:
                used = int(_read_small(usage) or b"0")
            except ValueError:
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
