"""hpc.jobs: SLURM batch scripts for the suite's workloads (render, submit, whole studies).

See :mod:`hpc.jobs.cli` for the command line and :mod:`hpc.jobs.render` for the scripts.
"""
