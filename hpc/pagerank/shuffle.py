"""All-to-all shuffles of row-aligned arrays: the one communication pattern the graph
builder and the walkers need (send each item to the rank that owns it)."""
from __future__ import annotations

import numpy as np

from hpc.core.partition import exchange_by_owner


# The exchange itself has one home in the core runtime.
exchange = exchange_by_owner


def exscan_sum(comm, value: int) -> int:
    """Sum of value over lower ranks (0 on rank 0)."""
    from mpi4py import MPI

    r = comm.exscan(int(value), op=MPI.SUM)
    return 0 if r is None or comm.Get_rank() == 0 else int(r)
