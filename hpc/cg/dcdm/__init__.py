"""DCDM, the Deep Conjugate Direction Method (Kaneda et al., ICML 2023), in one place.

- :mod:`.solver`: the distributed solver (Algorithm 1) and ``--method dcdm`` for hpc.cg
- :mod:`.train`: ``python -m hpc.cg train-dcdm``, training the network with PyTorch
- :mod:`.arch`, :mod:`.weights`, :mod:`.kernels`, :mod:`.infer`: the network's architecture,
  model files, and numpy / numba / CuPy inference distributed over a Cartesian decomposition
  of the grid (:mod:`.decomp`); :mod:`.torch_net`: the same network in PyTorch (training only)
- ``models/``: the shipped model, ``dcdm_poisson3d_n32.h5``
"""
