"""hpc.scaling: strong and weak scaling studies of the suite's workloads, plots and models.

``python -m hpc.scaling run|plot|model`` (see :mod:`hpc.scaling.cli`). Per-app knowledge is in
:mod:`hpc.scaling.apps`; the runner, plots and models are generic over the result contract.
"""
