"""The DCDM network in PyTorch, for training only (solving never imports torch).

Weights are exchanged with the numpy back ends through :mod:`hpc.cg.dcdm.weights` in the stored
channel-last layout (kz, ky, kx, c_in, c_out); torch's Conv3d keeps (c_out, c_in, kz, ky, kx)
on (N, C, Z, Y, X) tensors.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .arch import forward, layer_shapes


class DCDMNet(torch.nn.Module):
    """The paper's network (see :mod:`hpc.cg.dcdm.arch`), bias-free, float32."""

    def __init__(self, channels: int = 16, seed: int = 0):
        super().__init__()
        self.channels = channels
        gen = torch.Generator().manual_seed(seed)
        self.w = torch.nn.ParameterDict()
        for name, (kz, ky, kx, ci, co) in layer_shapes(channels).items():
            fan_in = kz * ky * kx * ci
            # He initialisation for the ReLU layers; the residual sums stay bounded because
            # every block's second layer starts smaller.
            std = (2.0 / fan_in) ** 0.5 * (0.5 if name in ("c3", "c6", "c8", "c10", "c12", "c14") else 1.0)
            w = torch.randn(co, ci, kz, ky, kx, generator=gen) * std
            self.w[name] = torch.nn.Parameter(w)

    # -- the graph's operations on (N, C, Z, Y, X) tensors ------------------------------
    def conv(self, x, name, relu):
        y = F.conv3d(x, self.w[name], padding=1)
        return F.relu(y) if relu else y

    def pool(self, x):
        return F.avg_pool3d(x, 2)

    def up(self, x):
        return F.interpolate(x, scale_factor=2, mode="nearest")

    def add(self, a, b):
        return a + b

    def head(self, x):
        return F.conv3d(x, self.w["head"])

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """r: (N, 1, Z, Y, X) -> direction of the same shape."""
        return forward(self, r)

    # -- exchange with the stored layout --------------------------------------------------
    def export(self) -> dict[str, np.ndarray]:
        """Weights in the stored layout (kz, ky, kx, c_in, c_out), float32."""
        return {k: v.detach().permute(2, 3, 4, 1, 0).contiguous().numpy().astype(np.float32)
                for k, v in self.w.items()}

    def load(self, weights: dict[str, np.ndarray]) -> None:
        with torch.no_grad():
            for k, v in weights.items():
                self.w[k].copy_(torch.from_numpy(np.ascontiguousarray(v)).permute(4, 3, 0, 1, 2))


def poisson_apply(y: torch.Tensor) -> torch.Tensor:
    """The 7-point Dirichlet Poisson operator (diagonal 6, neighbours -1) on (N,1,Z,Y,X)."""
    k = torch.zeros(1, 1, 3, 3, 3, dtype=y.dtype)
    k[0, 0, 1, 1, 1] = 6.0
    for idx in ((0, 1, 1), (2, 1, 1), (1, 0, 1), (1, 2, 1), (1, 1, 0), (1, 1, 2)):
        k[(0, 0) + idx] = -1.0
    return F.conv3d(y, k, padding=1)


def dcdm_loss(b: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The paper's loss, mean over the batch of ||b - alpha A y||^2, alpha = y.b / y.Ay."""
    ay = poisson_apply(y)
    dims = tuple(range(1, b.dim()))
    alpha = (y * b).sum(dims, keepdim=True) / (y * ay).sum(dims, keepdim=True).clamp_min(1e-30)
    return ((b - alpha * ay) ** 2).sum(dims).mean()
