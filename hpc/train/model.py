"""The GPT, its parameters (full tensors from (seed, name), then sliced) and its tensor-parallel
forward and backward for one model chunk (a virtual pipeline stage).

Tensor parallelism follows Megatron-LM (Shoeybi et al. 2019): QKV and MLP fc1 are
column-parallel, the attention projection and MLP fc2 row-parallel, joined by the conjugate
operators f (forward identity, backward all-reduce) and g (forward all-reduce, backward
identity). With sequence parallelism (Korthikanti et al. 2022) the layer norms and residuals
work on S/tp tokens per rank, f becomes all-gather / reduce-scatter along the sequence and g
reduce-scatter / all-gather. The embedding is vocab-parallel (rows of the padded vocabulary
per tp rank) and tied to the output layer; the cross-entropy is vocab-parallel (max, target
logit and sum of exponentials all-reduced). The vocabulary is padded once, to a multiple of
VOCAB_PAD whatever the tp degree, and the padded logits are masked, so every layout computes
the same function.
"""
from __future__ import annotations

import math
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
from mpi4py import MPI

from hpc.core.errors import UsageError

from . import comm as C
from . import layers as L
from . import validate as V

VOCAB_PAD = 64


@dataclass(frozen=True)
class GPTConfig:
    """The model: a GPT-2-shaped decoder (Radford et al. 2019) as Megatron-LM trains it.

    Token and position embeddings, ``layers`` pre-LayerNorm blocks (causal self-attention with
    ``heads`` heads, a GeLU MLP of 4 x ``hidden``), a final LayerNorm and an output layer tied
    to the token embedding. Parameters are drawn from (seed, name) alone, so every parallel
    layout starts from the same model.

    Parameters
    ----------
    vocab : int, default 256
        Vocabulary size (byte-level text: 256). Padded once to a multiple of 64
        (:attr:`vocab_padded`); the padded logits are masked.
    hidden : int, default 64
        Hidden size h; a multiple of ``heads``.
    heads : int, default 4
        Attention heads.
    layers : int, default 2
        Transformer blocks.
    seq_len : int, default 32
        Tokens per sequence (the context length).

    Raises
    ------
    TypeError
        A size that is not an integer.
    ValueError
        A size below 1, or ``hidden`` not divisible by ``heads``.
    """

    vocab: int = 256
    hidden: int = 64
    heads: int = 4
    layers: int = 2
    seq_len: int = 32

    def __post_init__(self) -> None:
        for name in ("vocab", "hidden", "heads", "layers", "seq_len"):
            object.__setattr__(self, name, V.integer(getattr(self, name), name))
        if self.hidden % self.heads:
            raise UsageError(f"{V.arg('hidden')} {self.hidden} is not divisible by "
                             f"{V.arg('heads')} {self.heads}")

    @property
    def vocab_padded(self) -> int:
        """The vocabulary padded to a multiple of 64 (the same whatever the tp degree)."""
        return -(-self.vocab // VOCAB_PAD) * VOCAB_PAD

    @property
    def ffn(self) -> int:
        """The MLP's inner size, 4 x hidden."""
        return 4 * self.hidden

    @property
    def n_params(self) -> int:
        """Parameters of the model (padded vocabulary included)."""
        return sum(int(np.prod(s.shape)) for s in param_specs(self))


def model_flops_per_step(cfg: GPTConfig, batch: int, recompute: bool = False) -> float:
    """Model FLOPs of one training step (forward and backward) on ``batch`` sequences.

    Megatron's count (Narayanan et al. 2021, eq. 3): 72 B s l h^2 (1 + s/6h + V/12lh) without
    recomputation, 96 B s l h^2 (1 + s/6h + V/16lh) with full activation recomputation (the
    hardware FLOPs then). Divided by the step time and the peak it gives MFU (HFU).
    """
    B, s, l, h, V = batch, cfg.seq_len, cfg.layers, cfg.hidden, cfg.vocab_padded
    if recompute:
        return 96.0 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h))
    return 72.0 * B * s * l * h * h * (1 + s / (6 * h) + V / (12 * l * h))


@dataclass(frozen=True)
class ParamSpec:
    name: str
    shape: tuple[int, ...]
    init: str          # "normal:<std>", "zeros", "ones"
    split: str         # "rep" (replicated), "row" (axis 0), "col" (last axis), "qkv"
    group: str         # "embed", "layers.<i>", "head": what a chunk holds, what offload moves


def param_specs(cfg: GPTConfig) -> list[ParamSpec]:
    """Every parameter of the single-rank model, in a fixed order."""
    h, f = cfg.hidden, cfg.ffn
    out_std = 0.02 / math.sqrt(2 * cfg.layers)  # GPT-2 / Megatron scaled init of output layers
    specs = [ParamSpec("embed.wte", (cfg.vocab_padded, h), "normal:0.02", "row", "embed"),
             ParamSpec("embed.wpe", (cfg.seq_len, h), "normal:0.01", "rep", "embed")]
    for i in range(cfg.layers):
        p, g = f"layers.{i}.", f"layers.{i}"
        specs += [
            ParamSpec(p + "ln1.g", (h,), "ones", "rep", g),
            ParamSpec(p + "ln1.b", (h,), "zeros", "rep", g),
            ParamSpec(p + "attn.qkv.w", (h, 3 * h), "normal:0.02", "qkv", g),
            ParamSpec(p + "attn.qkv.b", (3 * h,), "zeros", "qkv", g),
            ParamSpec(p + "attn.proj.w", (h, h), f"normal:{out_std}", "row", g),
            ParamSpec(p + "attn.proj.b", (h,), "zeros", "rep", g),
            ParamSpec(p + "ln2.g", (h,), "ones", "rep", g),
            ParamSpec(p + "ln2.b", (h,), "zeros", "rep", g),
            ParamSpec(p + "mlp.fc1.w", (h, f), "normal:0.02", "col", g),
            ParamSpec(p + "mlp.fc1.b", (f,), "zeros", "col", g),
            ParamSpec(p + "mlp.fc2.w", (f, h), f"normal:{out_std}", "row", g),
            ParamSpec(p + "mlp.fc2.b", (h,), "zeros", "rep", g),
        ]
    specs += [ParamSpec("head.lnf.g", (h,), "ones", "rep", "head"),
              ParamSpec("head.lnf.b", (h,), "zeros", "rep", "head")]
    return specs


def full_tensor(spec: ParamSpec, cfg: GPTConfig, seed: int) -> np.ndarray:
    """The parameter's full float64 tensor, a function of (seed, name) only."""
    if spec.init == "zeros":
        return np.zeros(spec.shape)
    if spec.init == "ones":
        return np.ones(spec.shape)
    std = float(spec.init.split(":")[1])
    rng = np.random.default_rng([seed, zlib.crc32(spec.name.encode())])
    w = rng.standard_normal(spec.shape) * std
    if spec.name == "embed.wte":
        w[cfg.vocab:] = 0.0  # padded rows: never looked up, their logits are masked
    return w


def shard(full: np.ndarray, split: str, tp: int, r: int) -> np.ndarray:
    """This tp rank's slice of a full tensor."""
    if split == "rep" or tp == 1:
        return full
    if split == "row":
        n = full.shape[0] // tp
        return full[r * n:(r + 1) * n]
    if split == "col":
        n = full.shape[-1] // tp
        return full[..., r * n:(r + 1) * n]
    if split == "qkv":  # [q | k | v], each head-major: split every third by heads
        h = full.shape[-1] // 3
        n = h // tp
        f = full.reshape(*full.shape[:-1], 3, h)[..., r * n:(r + 1) * n]
        return f.reshape(*full.shape[:-1], 3 * n)
    raise ValueError(split)


def unshard(pieces: list[np.ndarray], split: str) -> np.ndarray:
    """Inverse of shard: the full tensor from every tp rank's slice, in rank order."""
    if split == "rep" or len(pieces) == 1:
        return pieces[0]
    if split == "row":
        return np.concatenate(pieces, axis=0)
    if split == "col":
        return np.concatenate(pieces, axis=-1)
    if split == "qkv":
        n = pieces[0].shape[-1] // 3
        parts = [p.reshape(*p.shape[:-1], 3, n) for p in pieces]
        f = np.concatenate(parts, axis=-1)
        return f.reshape(*f.shape[:-2], 3 * n * len(pieces))
    raise ValueError(split)


def local_shape(spec: ParamSpec, tp: int) -> tuple[int, ...]:
    return shard(np.empty(spec.shape, dtype=np.uint8), spec.split, tp, 0).shape


class ParamStore:
    """This rank's parameters and gradients as views into one flat buffer each.

    The flat buffers are what the optimizer, the data-parallel all-reduce and ZeRO-1 work on.
    With ``offload`` (Superpipeline-style) they stay in host memory and each transformer layer
    is copied to the device only while it computes (``resident``); its gradient is copied back
    and accumulated on the host. Without offload the buffers live in the compute namespace.
    """

    def __init__(self, specs: list[ParamSpec], tp: int, xp, dtype, offload: bool = False):
        self.specs = {s.name: s for s in specs}
        self.order = [s.name for s in specs]
        self.xp = xp
        self.dtype = np.dtype(dtype)
        self.offload = offload
        self.host_ns = np if offload else xp
        self.offsets: dict[str, tuple[int, int, tuple[int, ...]]] = {}
        off = 0
        for s in specs:
            shp = local_shape(s, tp)
            n = int(np.prod(shp, dtype=np.int64))
            self.offsets[s.name] = (off, n, shp)
            off += n
        self.numel = off
        self.flat_p = self.host_ns.zeros(off, dtype=self.dtype)
        self.flat_g = self.host_ns.zeros(off, dtype=self.dtype)
        self._dev: dict[str, tuple[Any, Any]] = {}
        self._resident_other: dict[str, tuple[Any, Any]] = {}
        self.bytes_h2d = 0
        self.bytes_d2h = 0
        # ZeRO-2 (shard_grads): a gradient buffer per group, allocated at first use and
        # released by the optimizer once reduce-scattered; flat_g is then empty
        self.grad_spans: dict[str, tuple[int, int]] | None = None
        self._gbufs: dict[str, Any] = {}
        self.grad_bytes = 0       # bytes of the per-group buffers alive now
        self.grad_bytes_peak = 0  # the most alive at once
        # ZeRO-3 (the optimizer, when it shards the parameters): each layer's parameters are
        # gathered by sharder.gather_group for the span of :meth:`gathered` only
        self.sharder: Any = None
        self._pbufs: dict[str, Any] = {}
        self.param_bytes = 0       # bytes of gathered (or kept) group parameter buffers
        self.param_bytes_peak = 0
        # ZeRO-3 prefetch: group -> (buffer, request) of the one all-gather started ahead
        self._prefetched: dict[str, tuple[Any, Any]] = {}
        self.prefetch_hits = 0     # groups whose parameters a prefetch had already gathered
        # weight gradients still zero this step: the first product is written into the
        # buffer (matmul out=) instead of into a temporary added to zeros (same bits)
        self._fresh: set[str] = set()

    def shard_grads(self) -> None:
        """Replace the flat gradient buffer by one buffer per parameter group (ZeRO-2)."""
        if self.offload:
            raise RuntimeError("per-group gradient buffers are not for offloaded stores")
        spans: dict[str, tuple[int, int]] = {}
        for name in self.order:
            off, n, _ = self.offsets[name]
            lo, hi = spans.get(self.specs[name].group, (off, off + n))
            spans[self.specs[name].group] = (min(lo, off), max(hi, off + n))
        if sum(hi - lo for lo, hi in spans.values()) != self.numel:
            raise RuntimeError("parameter groups are not contiguous in the flat buffer")
        self.grad_spans = spans
        self.flat_g = self.host_ns.zeros(0, dtype=self.dtype)
        self._gbufs = {}

    def grad_buffer(self, group: str):
        """The group's gradient buffer (ZeRO-2), allocated (zero) if not alive."""
        buf = self._gbufs.get(group)
        if buf is None:
            lo, hi = self.grad_spans[group]
            buf = self._gbufs[group] = self.host_ns.zeros(hi - lo, dtype=self.dtype)
            self.grad_bytes += buf.nbytes
            self.grad_bytes_peak = max(self.grad_bytes_peak, self.grad_bytes)
        return buf

    def take_grad(self, group: str):
        """Detach the group's buffer (ZeRO-2); the caller calls :meth:`freed` when done."""
        return self._gbufs.pop(group, None)

    def freed(self, nbytes: int) -> None:
        self.grad_bytes -= nbytes

    def _view(self, flat, name: str):
        off, n, shp = self.offsets[name]
        return flat[off:off + n].reshape(shp)

    def host_param(self, name: str):
        if self.sharder is None:
            return self._view(self.flat_p, name)
        group = self.specs[name].group
        buf = self._pbufs.get(group)
        if buf is None:
            raise RuntimeError(f"{name}: ZeRO-3 parameters used outside their gather")
        off, n, shp = self.offsets[name]
        lo = off - self.grad_spans[group][0]
        return buf[lo:lo + n].reshape(shp)

    def keep_params(self, group: str, buf) -> None:
        """ZeRO-3: hold the group's gathered buffer until :meth:`drop_params`."""
        self._pbufs[group] = buf
        self.param_bytes += buf.nbytes
        self.param_bytes_peak = max(self.param_bytes_peak, self.param_bytes)

    def drop_params(self, group: str) -> None:
        self.param_bytes -= self._pbufs.pop(group).nbytes

    @contextmanager
    def gathered(self, group: str, prefetch: str | None = None) -> Iterator[None]:
        """ZeRO-3: the group's parameters all-gathered for the block and freed after (a
        no-op otherwise). With ``prefetch`` (the sharder's ``prefetch`` on), that group's
        all-gather starts, non-blocking, as this block begins, and its later
        :meth:`gathered` waits for it instead of gathering: at most one group ahead, so the
        gathered parameters peak at two groups."""
        if self.sharder is None or group in self._pbufs:
            yield
            return
        ahead = self._prefetched.pop(group, None)
        if ahead is not None:
            buf, req = ahead
            req.Wait()
            self.param_bytes -= buf.nbytes  # (counted again by keep_params)
            self.prefetch_hits += 1
        else:
            self.drop_prefetched()  # a guess that was not used next: all ranks drop it
            buf = self.sharder.gather_group(group)
        self.keep_params(group, buf)
        if (prefetch is not None and self.sharder.prefetch and prefetch not in self._pbufs
                and prefetch not in self._prefetched):
            self.drop_prefetched()
            nbuf, req = self.sharder.gather_group_async(prefetch)
            self._prefetched[prefetch] = (nbuf, req)
            self.param_bytes += nbuf.nbytes
            self.param_bytes_peak = max(self.param_bytes_peak, self.param_bytes)
        try:
            yield
        finally:
            self.drop_params(group)

    def drop_prefetched(self) -> None:
        """Complete and discard the all-gathers started ahead (before the parameters'
        shard changes, and when the one ahead was not the group used next)."""
        for buf, req in self._prefetched.values():
            req.Wait()
            self.param_bytes -= buf.nbytes
        self._prefetched = {}

    def host_grad(self, name: str):
        if self.grad_spans is None:
            return self._view(self.flat_g, name)
        group = self.specs[name].group
        off, n, shp = self.offsets[name]
        lo = off - self.grad_spans[group][0]
        return self.grad_buffer(group)[lo:lo + n].reshape(shp)

    def p(self, name: str):
        """The parameter as the computation sees it (device copy when offloaded)."""
        if self.sharder is not None:
            return self.host_param(name)
        return self._get(name, 0, self.flat_p)

    def g(self, name: str):
        """The gradient accumulator the computation adds into."""
        if self.grad_spans is not None:
            return self.host_grad(name)
        return self._get(name, 1, self.flat_g)

    def _get(self, name: str, which: int, flat):
        if not self.offload:
            return self._view(flat, name)
        if name in self._dev:
            return self._dev[name][which]
        if name in self._resident_other:
            return self._resident_other[name][which]
        raise RuntimeError(f"{name} is offloaded and not resident")

    def setup_resident(self) -> None:
        """(Re)build the always-resident device copies of embedding and head (offload only)."""
        self._resident_other = {}
        if not self.offload:
            return
        for name in self.order:
            if not self.specs[name].group.startswith("layers."):
                zeros = self.xp.zeros(self.offsets[name][2], dtype=self.dtype)
                self._resident_other[name] = (self._to_dev(self.host_param(name)), zeros)

    def flush_resident(self) -> None:
        """Move the resident gradients to the host buffer (before the optimizer; offload only)."""
        if not self.offload:
            return
        for name, (_, g) in self._resident_other.items():
            self.host_grad(name)[...] += C.to_host(g)
            g[...] = 0

    def refresh_resident(self) -> None:
        """Copy updated parameters back to the resident device copies (after the optimizer)."""
        if not self.offload:
            return
        for name, (p, _) in self._resident_other.items():
            p[...] = self._to_dev(self.host_param(name))

    def _to_dev(self, h):
        self.bytes_h2d += h.nbytes
        if self.xp is np:
            return np.array(h, copy=True)  # a real copy, so the mechanism is exercised on CPUs
        return self.xp.asarray(h)

    @contextmanager
    def resident(self, group: str, grads: bool) -> Iterator[None]:
        """Bring one layer's parameters to the device for the duration of the block."""
        if not self.offload:
            yield
            return
        names = [n for n in self.order if self.specs[n].group == group]
        for n in names:
            self._dev[n] = (self._to_dev(self.host_param(n)),
                            self.xp.zeros(self.offsets[n][2], dtype=self.dtype) if grads else None)
        try:
            yield
        finally:
            for n in names:
                _, g = self._dev.pop(n)
                if grads:
                    h = C.to_host(g)
                    self.bytes_d2h += h.nbytes
                    self.host_grad(n)[...] += h

    def fresh_grad(self, name: str):
        """The gradient buffer of ``name`` if nothing was added to it since
        :meth:`zero_grads` (and it is one of the flat buffer's views), else None."""
        if name not in self._fresh:
            return None
        self._fresh.discard(name)
        return self._view(self.flat_g, name)

    def zero_grads(self) -> None:
        if self.grad_spans is None and not self.offload and self.xp is np:
            self._fresh = {n for n in self.order if n.endswith(".w")}
        self.flat_g[...] = 0
        for buf in self._gbufs.values():  # ZeRO-2: what a step left alive (evaluation)
            self.freed(buf.nbytes)
        self._gbufs = {}


class GPT:
    """The model chunks of one pipeline rank, computing with tensor (and sequence) parallelism."""

    def __init__(self, cfg: GPTConfig, ps, xp, dtype, seed: int, sequence_parallel: bool = False,
                 recompute: bool = False, offload: bool = False,
                 recompute_attention: bool = False, attention_block: int | None = None,
                 bf16: bool = False, fp16: bool = False):
        self.cfg, self.ps, self.xp = cfg, ps, xp
        self.dtype = np.dtype(dtype)
        self.sp = bool(sequence_parallel) and ps.tp > 1
        self.recompute = recompute
        self.recompute_attention = recompute_attention  # selective: the softmax's S x S
        self.attention_block = attention_block          # blocked online-softmax attention
        self.bf16 = bf16  # bfloat16 GEMM operands, float32 accumulation and everything else
        self.fp16 = fp16  # the same with float16 operands (the trainer scales the loss)
        nv = ps.n_virtual
        self.layers_per_chunk = cfg.layers // nv
        self.chunks = [ps.virtual_stage(c) for c in range(ps.vpp)]  # virtual stage per chunk
        groups = set()
        for vs in self.chunks:
            if vs == 0:
                groups.add("embed")
            if vs == nv - 1:
                groups.update(("head", "embed.wte"))
            groups.update(f"layers.{i}" for i in self.layer_range(vs))
        specs = [s for s in param_specs(cfg)
                 if s.group in groups or (s.name == "embed.wte" and "embed.wte" in groups)]
        self.specs = specs
        self.all_specs = param_specs(cfg)
        self.store = ParamStore(specs, ps.tp, xp, self.dtype, offload)
        for s in specs:
            self.store.host_param(s.name)[...] = self._cast(shard(full_tensor(s, cfg, seed),
                                                                  s.split, ps.tp, ps.tp_rank))
        self.store.setup_resident()
        self.heads_local = cfg.heads // ps.tp
        self.vocab_local = cfg.vocab_padded // ps.tp
        self.vocab_lo = ps.tp_rank * self.vocab_local
        self.s_local = cfg.seq_len // ps.tp if self.sp else cfg.seq_len
        # called with a layer's index after each of its backward passes (the optimizer's
        # bucketed gradient reduction starts a layer's all-reduce after its last one)
        self.grad_hook: Callable[[int], None] | None = None
        # called with a layer's index before its forward (the optimizer's overlapped ZeRO-1
        # parameter gather waits there for that layer's bucket)
        self.param_hook: Callable[[int], None] | None = None

    def rnd(self, a):
        """``a`` rounded to bfloat16 (and held as float32) under bf16, else ``a`` itself: a
        GEMM of rounded operands in float32 is exactly a bfloat16 GEMM with float32
        accumulation (the products of two bfloat16 numbers are exact in float32). Under fp16
        rounded to float16 the same way (numpy or cupy alike; 11-bit significands, products
        exact in float32 too): beyond 65504 an operand becomes inf, as on a GPU."""
        if self.fp16:
            return a.astype(self.xp.float16).astype(a.dtype)
        if not self.bf16:
            return a
        import ml_dtypes  # a dependency of the CPU bfloat16 path only

        return a.astype(ml_dtypes.bfloat16).astype(a.dtype)

    def mm(self, a, b):
        """a @ b, as a bfloat16 GEMM under bf16."""
        return self.rnd(a) @ self.rnd(b)

    def _cast(self, a: np.ndarray):
        a = a.astype(self.dtype)
        return a if self.store.host_ns is np else self.xp.asarray(a)

    def layer_range(self, vs: int) -> range:
        return range(vs * self.layers_per_chunk, (vs + 1) * self.layers_per_chunk)

    # -- the conjugate operators ----------------------------------------------------------
    def f_fwd(self, x):
        return C.allgather_seq(self.ps.tp_group, x) if self.sp else x

    def f_bwd(self, dx):
        if self.sp:
            return C.reduce_scatter_seq(self.ps.tp_group, dx)
        return C.allreduce(self.ps.tp_group, dx)

    def g_fwd(self, x):
        if self.sp:
            return C.reduce_scatter_seq(self.ps.tp_group, x)
        return C.allreduce(self.ps.tp_group, x)

    def g_bwd(self, dx):
        return C.allgather_seq(self.ps.tp_group, dx) if self.sp else dx

    # -- pieces ---------------------------------------------------------------------------
    def embed_fwd(self, tokens):
        P = self.store.p
        e, c = L.embedding_fwd(tokens, P("embed.wte"), self.vocab_lo)
        e = self.g_fwd(e)
        s0 = self.ps.tp_rank * self.s_local if self.sp else 0
        x = e + P("embed.wpe")[s0:s0 + self.s_local]
        return x, (c, s0)

    def embed_bwd(self, dx, cache) -> None:
        c, s0 = cache
        G = self.store.g
        G("embed.wpe")[s0:s0 + self.s_local] += dx.sum(axis=0)
        L.embedding_bwd(self.g_bwd(dx), c, G("embed.wte"))

    def block_fwd(self, i: int, x):
        P = self.store.p
        n = f"layers.{i}."
        b, s_loc, h = x.shape
        a, c_ln1 = L.layernorm_fwd(x, P(n + "ln1.g"), P(n + "ln1.b"))
        af = self.f_fwd(a)
        qkv = self.mm(af, P(n + "attn.qkv.w"))
        qkv += P(n + "attn.qkv.b")
        s = qkv.shape[1]
        nh, hd = self.heads_local, h // self.cfg.heads
        q5 = qkv.reshape(b, s, 3, nh, hd)
        q, k, v = (self.rnd(q5[:, :, j].transpose(0, 2, 1, 3)) for j in range(3))
        o, c_att = L.causal_attention_fwd(q, k, v, block=self.attention_block,
                                          keep_probs=not self.recompute_attention)
        o2 = o.transpose(0, 2, 1, 3).reshape(b, s, nh * hd)
        pr = self.g_fwd(self.mm(o2, P(n + "attn.proj.w")))
        pr += P(n + "attn.proj.b")
        pr += x  # fresh array: the residual in place
        x1 = pr
        m, c_ln2 = L.layernorm_fwd(x1, P(n + "ln2.g"), P(n + "ln2.b"))
        mf = self.f_fwd(m)
        u = self.mm(mf, P(n + "mlp.fc1.w"))
        u += P(n + "mlp.fc1.b")
        gl, c_g = L.gelu_fwd(u)
        y = self.g_fwd(self.mm(gl, P(n + "mlp.fc2.w")))
        y += P(n + "mlp.fc2.b")
        y += x1
        if self.store.sharder is not None:  # ZeRO-3: no reference keeps the gather alive
            c_ln1, c_ln2 = (*c_ln1[:2], None), (*c_ln2[:2], None)
        return y, (c_ln1, af, c_att, o2, c_ln2, mf, c_g, gl)

    def _wgrad(self, name: str, x, dy, defer: list | None) -> None:
        """A linear layer's weight gradient x^T dy into the store: now, or appended to
        ``defer`` for the zero-bubble schedules' W action."""
        def run() -> None:
            k, n = x.shape[-1], dy.shape[-1]
            a, b = x.reshape(-1, k).T, dy.reshape(-1, n)
            out = self.store.fresh_grad(name)
            if out is not None:  # the step's first product: straight into the buffer
                self.xp.matmul(self.rnd(a), self.rnd(b), out=out)
            else:
                self.store.g(name)[...] += self.mm(a, b)
        if defer is None:
            run()
        else:
            defer.append(run)

    def block_bwd(self, i: int, dx2, cache, defer: list | None = None):
        """Gradient of the layer's input from its output's; with ``defer`` a list, the four
        weight-gradient products are left in it for later (B/W split), the rest done now."""
        P, G = self.store.p, self.store.g
        n = f"layers.{i}."
        c_ln1, af, c_att, o2, c_ln2, mf, c_g, gl = cache
        c_ln1, c_ln2 = (*c_ln1[:2], P(n + "ln1.g")), (*c_ln2[:2], P(n + "ln2.g"))
        h = dx2.shape[-1]
        G(n + "mlp.fc2.b")[...] += dx2.reshape(-1, h).sum(axis=0)
        dy2 = self.g_bwd(dx2)
        self._wgrad(n + "mlp.fc2.w", gl, dy2, defer)
        dgl = self.mm(dy2, P(n + "mlp.fc2.w").T)
        du = L.gelu_bwd(dgl, c_g)
        G(n + "mlp.fc1.b")[...] += du.reshape(-1, du.shape[-1]).sum(axis=0)
        self._wgrad(n + "mlp.fc1.w", mf, du, defer)
        dmf = self.mm(du, P(n + "mlp.fc1.w").T)
        dx1n, dg, db = L.layernorm_bwd(self.f_bwd(dmf), c_ln2)
        G(n + "ln2.g")[...] += dg
        G(n + "ln2.b")[...] += db
        dx1n += dx2
        dx1 = dx1n
        G(n + "attn.proj.b")[...] += dx1.reshape(-1, h).sum(axis=0)
        dyp = self.g_bwd(dx1)
        self._wgrad(n + "attn.proj.w", o2, dyp, defer)
        do2 = self.mm(dyp, P(n + "attn.proj.w").T)
        b, s, _ = do2.shape
        nh, hd = self.heads_local, h // self.cfg.heads
        dq, dk, dv = L.causal_attention_bwd(do2.reshape(b, s, nh, hd).transpose(0, 2, 1, 3), c_att)
        dqkv = self.xp.empty((b, s, 3, nh, hd), dtype=do2.dtype)
        for j, d in enumerate((dq, dk, dv)):
            dqkv[:, :, j] = d.transpose(0, 2, 1, 3)
        dq3 = dqkv.reshape(b, s, 3 * nh * hd)
        G(n + "attn.qkv.b")[...] += dq3.reshape(-1, 3 * nh * hd).sum(axis=0)
        self._wgrad(n + "attn.qkv.w", af, dq3, defer)
        daf = self.mm(dq3, P(n + "attn.qkv.w").T)
        dxn, dg, db = L.layernorm_bwd(self.f_bwd(daf), c_ln1)
        G(n + "ln1.g")[...] += dg
        G(n + "ln1.b")[...] += db
        dxn += dx1
        return dxn

    def head_fwd(self, x, targets):
        """Sum over tokens of the cross-entropy (float64), and the cache for the backward."""
        xp, P = self.xp, self.store.p
        y, c_lnf = L.layernorm_fwd(x, P("head.lnf.g"), P("head.lnf.b"))
        if self.store.sharder is not None:  # ZeRO-3: no reference keeps the gather alive
            c_lnf = (*c_lnf[:2], None)
        yf = self.f_fwd(y)
        logits = self.mm(yf, P("embed.wte").T)
        pad = self.cfg.vocab - self.vocab_lo  # first padded column in local numbering
        if pad < self.vocab_local:
            logits[..., max(pad, 0):] = -xp.inf
        gmax = C.allreduce(self.ps.tp_group, logits.max(axis=-1), MPI.MAX)
        ex, sumexp, tl, tc = L.cross_entropy_fwd_local(logits, targets, self.vocab_lo, gmax)
        both = C.allreduce(self.ps.tp_group, xp.stack([sumexp, tl]))
        sumexp, tl = both[0], both[1]
        tok = xp.log(sumexp) + gmax - tl
        return float(tok.sum(dtype=np.float64)), (c_lnf, yf, ex, sumexp, tc)

    def head_bwd(self, cache, scale: float):
        c_lnf, yf, ex, sumexp, tc = cache
        c_lnf = (*c_lnf[:2], self.store.p("head.lnf.g"))
        G = self.store.g
        dlog = L.cross_entropy_bwd_local(ex, sumexp, tc, scale)
        w = self.store.p("embed.wte")
        dyf = self.mm(dlog, w)
        G("embed.wte")[...] += self.mm(dlog.reshape(-1, dlog.shape[-1]).T,
                                       yf.reshape(-1, yf.shape[-1]))
        dx, dg, db = L.layernorm_bwd(self.f_bwd(dyf), c_lnf)
        G("head.lnf.g")[...] += dg
        G("head.lnf.b")[...] += db
        return dx

    def backward_w(self, deferred: list) -> None:
        """The W action: run the weight-gradient products :meth:`backward` deferred, then
        tell the grad hook each of those layers is done for this micro-batch."""
        for _, fn in deferred:
            fn()
        if self.grad_hook is not None:
            for i in dict.fromkeys(i for i, _ in deferred):
                self.grad_hook(i)

    # -- one chunk ------------------------------------------------------------------------
    def forward(self, chunk: int, inp, targets=None):
        """Input activation (or tokens on virtual stage 0) -> output activation, or the summed
        token loss on the last virtual stage."""
        vs = self.chunks[chunk]
        caches: list[Any] = []
        x = inp
        if vs == 0:
            with self.store.gathered("embed"):
                x, c = self.embed_fwd(inp)
            caches.append(c)
        layers = self.layer_range(vs)
        for i in layers:
            if self.param_hook is not None:  # before the offloaded copy reads it too
                self.param_hook(i)
            nxt = f"layers.{i + 1}" if i + 1 in layers else None  # ZeRO-3 prefetch
            with self.store.gathered(f"layers.{i}", nxt), \
                    self.store.resident(f"layers.{i}", grads=False):
                if self.recompute:
                    keep = x
                    x, _ = self.block_fwd(i, x)
                    caches.append(("recompute", keep))
                else:
                    x, c = self.block_fwd(i, x)
                    caches.append(c)
        if vs == self.ps.n_virtual - 1:
            with self.store.gathered("head"), self.store.gathered("embed"):
                loss, c = self.head_fwd(x, targets)
            caches.append(c)
            return loss, caches
        return x, caches

    def backward(self, chunk: int, dout, caches, scale: float,
                 defer: list | None = None):
        """Gradient of the chunk's output (None on the last stage) -> gradient of its input
        (None on virtual stage 0); parameter gradients accumulate in the store. With
        ``defer`` a list, the layers' weight-gradient products are appended to it as
        (layer, thunk) for :meth:`backward_w` (the zero-bubble B/W split; not offloaded)."""
        vs = self.chunks[chunk]
        caches = list(caches)
        if vs == self.ps.n_virtual - 1:
            with self.store.gathered("head"), self.store.gathered("embed"):
                dout = self.head_bwd(caches.pop(), scale)
        layers = self.layer_range(vs)
        for i in reversed(layers):
            c = caches.pop()
            nxt = f"layers.{i - 1}" if i - 1 in layers else None  # ZeRO-3 prefetch
            with self.store.gathered(f"layers.{i}", nxt), \
                    self.store.resident(f"layers.{i}", grads=True):
                if isinstance(c, tuple) and len(c) == 2 and c[0] == "recompute":
                    _, c = self.block_fwd(i, c[1])
                if defer is None:
                    dout = self.block_bwd(i, dout, c)
                else:
                    mine: list = []
                    dout = self.block_bwd(i, dout, c, mine)
                    defer.extend((i, fn) for fn in mine)
            if self.grad_hook is not None and defer is None:  # the offloaded grads are home
                self.grad_hook(i)
        if vs == 0:
            self.embed_bwd(dout, caches.pop())
            return None
        return dout
