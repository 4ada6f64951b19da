"""DCDM model files: the network's weights in HDF5, readable without PyTorch.

Layout of a model file::

    /weights/<layer>   float32 (kz, ky, kx, c_in, c_out), channel-last (see arch.layer_shapes)
    attrs on /:        format = "hpc-dcdm-1", arch = "dcdm-unet1", channels, problem,
                       trained_grid (the n of the n^3 training grid), plus training metadata
    /training/loss     the loss per training step (when the trainer wrote it)

The network is fully convolutional, so a model trained on one grid runs on any grid whose
sizes are even (one 2x down-sampling level); see :func:`check_grid`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hpc.core.errors import UsageError

from .arch import layer_shapes

FORMAT = "hpc-dcdm-1"
ARCH = "dcdm-unet1"
MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = MODELS_DIR / "dcdm_poisson3d_n32.h5"


@dataclass
class Model:
    """A loaded network: weights by layer name plus the file's metadata."""

    weights: dict[str, np.ndarray]
    channels: int
    problem: str = "poisson3d"
    trained_grid: int = 0
    attrs: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    def nbytes(self) -> int:
        return int(sum(w.nbytes for w in self.weights.values()))


def save(path: str | os.PathLike, weights: dict[str, np.ndarray], channels: int,
         problem: str, trained_grid: int, attrs: dict[str, Any] | None = None,
         loss: np.ndarray | None = None) -> None:
    """Write a model file atomically (temporary name, then rename)."""
    import h5py

    from hpc.core.atomic import atomic_path

    expect = layer_shapes(channels)
    for name, shape in expect.items():
        if name not in weights or tuple(weights[name].shape) != shape:
            raise ValueError(f"layer {name}: expected shape {shape}, got "
                             f"{None if name not in weights else weights[name].shape}")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for name in expect:
                f.create_dataset(f"/weights/{name}", data=np.asarray(weights[name], np.float32))
            if loss is not None:
                f.create_dataset("/training/loss", data=np.asarray(loss, np.float64))
            f.attrs.update({"format": FORMAT, "arch": ARCH, "channels": int(channels),
                            "problem": problem, "trained_grid": int(trained_grid)})
            for k, v in (attrs or {}).items():
                f.attrs[k] = str(v) if isinstance(v, str) else v


def load(path: str | os.PathLike | None = None) -> Model:
    """Read a model file; any problem with it is a UsageError naming the file."""
    import h5py

    path = Path(path) if path is not None else DEFAULT_MODEL
    if not path.exists():
        raise UsageError(f"DCDM model file not found: {path}")
    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format")
            if fmt != FORMAT or f.attrs.get("arch") != ARCH:
                raise UsageError(f"{path}: not a DCDM model (format={fmt!r}, arch="
                                 f"{f.attrs.get('arch')!r}; expected {FORMAT}/{ARCH})")
            channels = int(f.attrs["channels"])
            weights = {}
            for name, shape in layer_shapes(channels).items():
                if f"weights/{name}" not in f:
                    raise UsageError(f"{path}: layer /weights/{name} is missing")
                w = np.asarray(f[f"weights/{name}"], dtype=np.float32)
                if tuple(w.shape) != shape:
                    raise UsageError(f"{path}: /weights/{name} has shape {w.shape}, "
                                     f"expected {shape} for {channels} channels")
                if not np.all(np.isfinite(w)):
                    raise UsageError(f"{path}: /weights/{name} holds non-finite values")
                weights[name] = w
            attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the DCDM model ({exc})") from None
    return Model(weights, channels, str(attrs.get("problem", "")), int(attrs.get("trained_grid", 0)),
                 attrs, str(path))


def check_grid(shape: tuple[int, int, int]) -> None:
    """The network pools 2x2x2 once: every grid size must be even and at least 2."""
    bad = [s for s in shape if s < 2 or s % 2]
    if bad:
        raise UsageError(f"DCDM's network down-samples by 2, so the grid sizes must be even "
                         f"(got {'x'.join(map(str, shape))})")


def random_model(channels: int = 16, seed: int = 0) -> Model:
    """An untrained network with He-scaled random weights (tests and benchmarks of the
    inference, where the weights' values do not matter)."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in layer_shapes(channels).items():
        fan_in = int(np.prod(shape[:4]))
        weights[name] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    return Model(weights, channels, "poisson3d", 0, {"random": True, "seed": seed}, "<random>")
