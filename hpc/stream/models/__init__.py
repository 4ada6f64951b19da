"""STREAM back ends: one module each, registered here by name.

Adding a model is one file with a StreamModel subclass plus one line below.
"""
from __future__ import annotations

import importlib

from .base import StreamModel

# name -> (module, class, core back end whose availability it needs)
MODELS: dict[str, tuple[str, str, str]] = {
    "numpy": ("numpy_", "NumpyStream", "numpy"),
    "numpy-naive": ("numpy_", "NumpyNaiveStream", "numpy"),
    "numba": ("numba_", "NumbaStream", "numba"),
    "native": ("native", "NativeStream", "native"),
    "stdpar": ("native", "StdparStream", "stdpar"),
    "kokkos": ("device", "KokkosStream", "kokkos"),
    "cupy": ("cupy_", "CupyStream", "cupy"),
    "cuda": ("device", "CudaStream", "cuda"),
}


def load(name: str) -> type[StreamModel]:
    mod, cls, _ = MODELS[name]
    return getattr(importlib.import_module(f"{__name__}.{mod}"), cls)


__all__ = ["MODELS", "load", "StreamModel"]
