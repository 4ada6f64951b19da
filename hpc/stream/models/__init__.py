"""STREAM back ends: one module each, registered here by name.

Adding a model is one file with a StreamModel subclass plus one line below.
"""
from __future__ import annotations

import importlib

from .base import StreamModel

# back end name -> ("module:StreamModel subclass", hpc.core.backends entry it needs)
BACKENDS: dict[str, tuple[str, str]] = {
    "numpy": ("numpy_:NumpyStream", "numpy"),
    "numpy-naive": ("numpy_:NumpyNaiveStream", "numpy"),
    "numba": ("numba_:NumbaStream", "numba"),
    "native": ("native:NativeStream", "native"),
    "stdpar": ("native:StdparStream", "stdpar"),
    "kokkos": ("device:KokkosStream", "kokkos"),
    "cupy": ("cupy_:CupyStream", "cupy"),
    "cuda": ("device:CudaStream", "cuda"),
}


def load(name: str) -> type[StreamModel]:
    """The model class of back end ``name`` (its module is imported now)."""
    mod, _, cls = BACKENDS[name][0].partition(":")
    return getattr(importlib.import_module(f"{__name__}.{mod}"), cls)


__all__ = ["BACKENDS", "load", "StreamModel"]
