"""hpc: an MPI-parallel HPC application suite.

Each workload is a module run as ``mpiexec -n N python -m hpc.<app>``; ``hpc.core`` is the
shared SPMD runtime (command line, result record, timers, errors, partitions, back ends).
"""

__version__ = "0.1.0"

# Workloads in the order the suite runs them; a missing one is reported, not fatal.
WORKLOADS: dict[str, str] = {
    "stream": "BabelStream's six kernels across back ends (memory bandwidth)",
    "halo": "3D halo exchange with TEMPI-style canonical datatypes and packers",
    "pagerank": "distributed PageRank and PowerWalk personalized PageRank",
    "kmedoids": "PAM, FastPAM1/2, FasterPAM, CLARA, CLARANS, distributed",
    "spgemm": "SMASH-style hash SpGEMM, 1D and 2D distributed",
    "cg": "CG, PCG, single-reduction and pipelined CG, DCDM",
    "train": "Megatron-style tensor x pipeline x data parallel GPT training",
}
