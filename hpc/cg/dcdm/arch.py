"""The DCDM network's graph, written once for every back end (numpy, numba, CuPy, PyTorch).

The architecture is the paper's 3D network (Kaneda et al., ICML 2023, and its public Keras
code): 16 channels, 3x3x3 convolutions with ReLU, residual additions, one 2x average-pooling
level and a nearest-neighbour up-sampling back, and a final 1x1x1 linear layer to one channel::

    x  = conv_in(r)                                  linear, 1 -> C
    la = relu(c1(x));  lb = relu(c2(la))
    la = relu(c3(lb)) + la;  lb = relu(c4(la))
    h  = pool(lb)                                     full -> half resolution
    3x: g = relu(c(h)); h = relu(c'(g)) + h           c5..c10 at half resolution
    u  = up(h) + lb                                   half -> full resolution
    2x: g = relu(c(u)); u = relu(c'(g)) + u           c11..c14
    y  = head(u)                                      1x1x1, C -> 1

One deliberate difference from the paper's code: no biases. A bias-free ReLU network is
positively homogeneous, f(s r) = s f(r) for s > 0, so the direction does not depend on the
residual's scale -- and the scale of a unit-norm residual differs between the 32^3 training
grid and a 64^3 solve by 2^(3/2). DCDM only uses the direction up to a factor (the step
length is exact), so nothing is lost.

Every convolution pads its input with zeros ('same' padding): at the boundary of the domain
this is the homogeneous Dirichlet condition of the Poisson problems; inside a distributed
domain the halo exchange supplies the neighbours' cells instead.
"""
from __future__ import annotations

from typing import Any, Protocol

#: (name, in channels or None for C, out channels or None for C, kernel size)
CONV3 = ["c%d" % i for i in range(1, 15)]
HALF_RES = {"c5", "c6", "c7", "c8", "c9", "c10"}


def layer_shapes(channels: int) -> dict[str, tuple[int, int, int, int, int]]:
    """Weight shape of every layer, (kz, ky, kx, c_in, c_out) -- channel-last, as stored."""
    c = channels
    shapes = {"conv_in": (3, 3, 3, 1, c)}
    for name in CONV3:
        shapes[name] = (3, 3, 3, c, c)
    shapes["head"] = (1, 1, 1, c, 1)
    return shapes


class Ops(Protocol):
    """What a back end provides to run the graph (tensors are opaque to the graph)."""

    def conv(self, x: Any, name: str, relu: bool) -> Any: ...
    def pool(self, x: Any) -> Any: ...
    def up(self, x: Any) -> Any: ...
    def add(self, a: Any, b: Any) -> Any: ...
    def head(self, x: Any) -> Any: ...


def forward(ops: Ops, r: Any) -> Any:
    """Run the network on r with the back end's operations (the one definition of the graph)."""
    x = ops.conv(r, "conv_in", relu=False)
    la = ops.conv(x, "c1", relu=True)
    lb = ops.conv(la, "c2", relu=True)
    la = ops.add(ops.conv(lb, "c3", relu=True), la)
    lb = ops.conv(la, "c4", relu=True)
    h = ops.pool(lb)
    for a, b in (("c5", "c6"), ("c7", "c8"), ("c9", "c10")):
        g = ops.conv(h, a, relu=True)
        h = ops.add(ops.conv(g, b, relu=True), h)
    u = ops.add(ops.up(h), lb)
    for a, b in (("c11", "c12"), ("c13", "c14")):
        g = ops.conv(u, a, relu=True)
        u = ops.add(ops.conv(g, b, relu=True), u)
    return ops.head(u)


def flops(n_cells: int, channels: int) -> float:
    """Floating-point operations of one evaluation on n_cells fine cells (multiply-add = 2)."""
    c = channels
    full = 27 * 1 * c + 8 * 27 * c * c + c  # conv_in, c1-c4 and c11-c14, head
    half = 6 * 27 * c * c / 8.0
    return 2.0 * n_cells * (full + half)
