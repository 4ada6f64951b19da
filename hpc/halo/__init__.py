"""hpc.halo: 3D halo exchange with TEMPI-style canonical datatypes, fast packers and a model.

- :mod:`.engine`: the reusable halo-exchange engine (``decompose``, ``HaloExchange``)
- :mod:`.canonical`: MPI derived datatype -> canonical strided block
- :mod:`.packers`: CPU packers (native C++/OpenMP, Numba, NumPy); :mod:`.gpu`: CUDA packers
- :mod:`.model`: the measured send model behind ``--method auto``
- :mod:`.app`: ``python -m hpc.halo`` (and ``python -m hpc.halo measure``)
"""
