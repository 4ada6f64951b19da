"""Memory bandwidth with hpc.stream.run (BabelStream's six kernels), validated.

    python examples/stream.py                 # one process
    mpiexec -n 2 python examples/stream.py    # every rank runs the kernels on its own arrays

The bandwidth is the aggregate over the ranks (bytes moved by all ranks / the slowest rank's
best time); the run checks every array element against BabelStream's gold values.
"""
import sys

from mpi4py import MPI

import hpc.stream

r = hpc.stream.run(1_000_000, backend="numpy", ntimes=10)   # 10^6 doubles per array per rank
if MPI.COMM_WORLD.rank == 0:
    for name, k in r["kernels"].items():
        print(f"{name:8s} {k['GBps']:8.2f} GB/s  best {k['best_s'] * 1e3:.3f} ms")
    print(f"triad bandwidth: {r['kernels']['triad']['GBps']:.2f} GB/s on {r['ranks']} rank(s)")
    print("VALID" if r["valid"] else f"INVALID: {r['errors']}")
sys.exit(0 if r["valid"] else 1)
