"""hpc.scaling: strong and weak scaling studies of the suite's workloads, plots and models.

``python -m hpc.scaling run|collect|plot|model`` (see :mod:`hpc.scaling.cli`). Per-app
knowledge is in each workload's spec (``hpc/<app>/spec.py``, :mod:`hpc.core.spec`), built from
the generic helpers of :mod:`hpc.scaling.rules` and :mod:`hpc.scaling.argv`;
:mod:`hpc.scaling.apps` is the runner's view of the specs. The runner, plots and models are
generic over the result contract.
"""
