"""The DCDM network: architecture, model files, and numpy / numba / CuPy inference that runs
distributed over a Cartesian decomposition of the grid (PyTorch only for training)."""
