"""hpc.train kernels and the whole single-rank model: backward against float64 central
differences (relative error <= 1e-7), and the tensor-parallel slicing of parameters."""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from hpc.train import layers as L
from hpc.train.model import GPTConfig, param_specs, shard, unshard

TOL = 1e-7


def numgrad(f, x: np.ndarray, n: int = 40, eps: float = 1e-5, seed: int = 0):
    """Central differences of scalar f at up to n entries of x (modified in place, restored)."""
    rng = np.random.default_rng(seed)
    flat = x.reshape(-1)
    idx = rng.choice(flat.size, size=min(n, flat.size), replace=False)
    out = np.empty(idx.size)
    for j, i in enumerate(idx):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        out[j] = (fp - fm) / (2 * eps)
    return idx, out


def check(f, x, analytic, n: int = 40, what: str = ""):
    idx, num = numgrad(f, x, n)
    ana = analytic.reshape(-1)[idx]
    err = np.linalg.norm(ana - num) / max(np.linalg.norm(num), 1e-30)
    assert err <= TOL, f"relative error {err:.3g} ({what})"
    return err


@pytest.fixture(params=["fused", "plain"])
def rng(request, monkeypatch):
    """Every kernel test runs twice: numba-fused kernels and plain array expressions."""
    from hpc.train import kernels

    if request.param == "plain":
        monkeypatch.setattr(kernels, "ENABLED", False)
    elif not kernels.ENABLED:
        pytest.skip("numba not available")
    else:
        monkeypatch.setattr(kernels, "MIN_SIZE", 0)
    return np.random.default_rng(1234)


def test_layernorm(rng):
    x = rng.standard_normal((2, 5, 8)) * 3 + 1
    g, b = rng.standard_normal(8), rng.standard_normal(8)
    R = rng.standard_normal((2, 5, 8))
    f = lambda: float((L.layernorm_fwd(x, g, b)[0] * R).sum())  # noqa: E731
    _, c = L.layernorm_fwd(x, g, b)
    dx, dg, db = L.layernorm_bwd(R, c)
    check(f, x, dx)
    check(f, g, dg)
    check(f, b, db)


def test_linear(rng):
    x, w, b = rng.standard_normal((3, 4, 6)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    R = rng.standard_normal((3, 4, 5))
    f = lambda: float((L.linear_fwd(x, w, b)[0] * R).sum())  # noqa: E731
    dx, dw, db = L.linear_bwd(R, x, w)
    check(f, x, dx)
    check(f, w, dw)
    check(f, b, db)


def test_gelu(rng):
    x = rng.standard_normal((4, 7)) * 2
    R = rng.standard_normal((4, 7))
    f = lambda: float((L.gelu_fwd(x)[0] * R).sum())  # noqa: E731
    check(f, x, L.gelu_bwd(R, L.gelu_fwd(x)[1]))


def test_gelu_matches_tanh_formula(rng):
    x = rng.standard_normal(50)
    ref = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    np.testing.assert_allclose(L.gelu_fwd(x)[0], ref, rtol=1e-14)


def test_causal_attention(rng):
    q, k, v = (rng.standard_normal((2, 3, 6, 4)) for _ in range(3))
    R = rng.standard_normal((2, 3, 6, 4))
    f = lambda: float((L.causal_attention_fwd(q, k, v)[0] * R).sum())  # noqa: E731
    dq, dk, dv = L.causal_attention_bwd(R, L.causal_attention_fwd(q, k, v)[1])
    check(f, q, dq)
    check(f, k, dk)
    check(f, v, dv)


def test_attention_is_causal(rng):
    q, k, v = (rng.standard_normal((1, 2, 5, 3)) for _ in range(3))
    o1 = L.causal_attention_fwd(q, k, v)[0]
    k2, v2 = k.copy(), v.copy()
    k2[..., 3:, :] += 10
    v2[..., 3:, :] -= 7
    o2 = L.causal_attention_fwd(q, k2, v2)[0]
    np.testing.assert_array_equal(o1[..., :3, :], o2[..., :3, :])


def test_embedding_vocab_parallel(rng):
    w = rng.standard_normal((10, 4))
    tok = rng.integers(0, 20, size=(3, 5))
    R = rng.standard_normal((3, 5, 4))
    f = lambda: float((L.embedding_fwd(tok, w, lo=8)[0] * R).sum())  # noqa: E731
    out, c = L.embedding_fwd(tok, w, lo=8)
    inside = (tok >= 8) & (tok < 18)
    np.testing.assert_array_equal(out[~inside], 0)
    np.testing.assert_array_equal(out[inside], w[tok[inside] - 8])
    dw = np.zeros_like(w)
    L.embedding_bwd(R, c, dw)
    check(f, w, dw)


def test_vocab_parallel_cross_entropy_matches_full(rng):
    """Two vocabulary halves combined as the all-reduces combine them give the full loss."""
    logits = rng.standard_normal((2, 3, 12))
    tgt = rng.integers(0, 12, size=(2, 3))
    full = -np.log(np.exp(logits - logits.max(-1, keepdims=True)) /
                   np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True))
    ref = np.take_along_axis(full, tgt[..., None], -1)[..., 0]
    halves = [logits[..., :6], logits[..., 6:]]
    gmax = np.maximum(halves[0].max(-1), halves[1].max(-1))
    parts = [L.cross_entropy_fwd_local(h, tgt, lo, gmax) for h, lo in zip(halves, (0, 6))]
    sumexp = parts[0][1] + parts[1][1]
    tl = parts[0][2] + parts[1][2]
    np.testing.assert_allclose(np.log(sumexp) + gmax - tl, ref, rtol=1e-13)
    # backward: softmax minus one-hot, on each half
    d = np.concatenate([L.cross_entropy_bwd_local(p[0], sumexp, p[3], 1.0) for p in parts], -1)
    f = lambda: float(_ce(logits, tgt).sum())  # noqa: E731
    check(f, logits, d)


def _ce(logits, tgt):
    m = logits.max(-1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(-1)) + m[..., 0]
    return lse - np.take_along_axis(logits, tgt[..., None], -1)[..., 0]


@pytest.mark.parametrize("tp", [1, 2, 4])
def test_shard_unshard_roundtrip(tp):
    cfg = GPTConfig(vocab=200, hidden=16, heads=4, layers=1, seq_len=8)
    rng = np.random.default_rng(0)
    for s in param_specs(cfg):
        full = rng.standard_normal(s.shape)
        pieces = [shard(full, s.split, tp, r) for r in range(tp)]
        np.testing.assert_array_equal(unshard(pieces, s.split), full)


def test_qkv_shard_keeps_whole_heads():
    h, tp = 8, 2
    full = np.arange(3 * h)[None, :].repeat(2, 0)  # q 0..7, k 8..15, v 16..23
    part = shard(full, "qkv", tp, 1)
    np.testing.assert_array_equal(part[0], [4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23])


def _single_rank_model(dtype=np.float64, **kw):
    from hpc.train.model import GPT
    from hpc.train.parallel_state import ParallelLayout, ParallelState

    cfg = GPTConfig(**{"vocab": 70, "hidden": 12, "heads": 3, "layers": 2, "seq_len": 6, **kw})
    ps = ParallelState(MPI.COMM_SELF, ParallelLayout())
    return cfg, GPT(cfg, ps, np, dtype, seed=5)


@pytest.mark.parametrize("recompute", [False, True])
def test_whole_model_gradient(recompute, rng):  # rng: fused and plain kernels
    """Every parameter of the reference GPT (padded vocabulary included) against central
    differences of the mean token loss."""
    cfg, model = _single_rank_model()
    model.recompute = recompute
    rng = np.random.default_rng(3)
    # random non-trivial parameters (biases and gains too)
    model.store.flat_p[...] = rng.standard_normal(model.store.numel) * 0.3
    model.store.host_param("embed.wte")[cfg.vocab:] = 0
    tok = rng.integers(0, cfg.vocab, size=(2, cfg.seq_len + 1))
    scale = 1.0 / tok[:, 1:].size

    def loss():
        return model.forward(0, tok[:, :-1], tok[:, 1:])[0] * scale

    model.store.zero_grads()
    _, cache = model.forward(0, tok[:, :-1], tok[:, 1:])
    model.backward(0, None, cache, scale)
    for name in model.store.order:
        p = model.store.host_param(name)
        g = model.store.host_grad(name).copy()
        if name == "embed.wte":  # padded rows: no gradient; compare the real rows
            np.testing.assert_array_equal(g[cfg.vocab:], 0)
        check(loss, p, g, n=12, what=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_kernels_match_plain_expressions(monkeypatch, dtype):
    from hpc.train import kernels

    if not kernels.ENABLED:
        pytest.skip("numba not available")
    monkeypatch.setattr(kernels, "MIN_SIZE", 0)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 16, 24)).astype(dtype)
    g, b = rng.standard_normal(24).astype(dtype), rng.standard_normal(24).astype(dtype)
    q, k, v = (rng.standard_normal((2, 3, 16, 8)).astype(dtype) for _ in range(3))
    dy = rng.standard_normal(x.shape).astype(dtype)

    def run():
        y1, c1 = L.layernorm_fwd(x, g, b)
        y2, c2 = L.gelu_fwd(x)
        o, ca = L.causal_attention_fwd(q, k, v)
        return [y1, *L.layernorm_bwd(dy, c1), y2, L.gelu_bwd(dy, c2), o,
                *L.causal_attention_bwd(o, ca)]

    fused = run()
    monkeypatch.setattr(kernels, "ENABLED", False)
    plain = run()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a, p in zip(fused, plain):
        np.testing.assert_allclose(a, p, rtol=tol, atol=tol)


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_fused_adam_matches_formula(wd):
    from hpc.train import kernels

    if not kernels.ENABLED:
        pytest.skip("numba not available")
    rng = np.random.default_rng(2)
    n = 1000
    p, g = rng.standard_normal(n), rng.standard_normal(n)
    m, v = rng.standard_normal(n) * 0.1, rng.random(n) * 0.01
    b1, b2, t, lr, eps, coef = 0.9, 0.95, 3, 1e-3, 1e-8, 0.7
    gg = g * coef
    m_ref = b1 * m + (1 - b1) * gg
    v_ref = b2 * v + (1 - b2) * gg * gg
    upd = (m_ref / (1 - b1 ** t)) / (np.sqrt(v_ref / (1 - b2 ** t)) + eps) + wd * p
    p_ref = p - lr * upd
    kernels.adam(p, g, m, v, coef, b1, b2, 1 - b1 ** t, 1 - b2 ** t, lr, eps, wd)
    np.testing.assert_allclose(m, m_ref, rtol=1e-13)
    np.testing.assert_allclose(v, v_ref, rtol=1e-13)
    np.testing.assert_allclose(p, p_ref, rtol=1e-12)
    w = (rng.random(n) < 0.5).astype(float)
    assert kernels.sumsq_weighted(g, w) == pytest.approx(float((g * g * w).sum()), rel=1e-12)


def test_offload_moves_layers_only_while_in_use():
    """Superpipeline-style offload: layer parameters live in host memory, are copied in for
    their forward/backward only, and the gradients equal those without offload."""
    from hpc.train.model import GPT
    from hpc.train.parallel_state import ParallelLayout, ParallelState

    cfg = GPTConfig(vocab=70, hidden=12, heads=3, layers=2, seq_len=6)
    ps = ParallelState(MPI.COMM_SELF, ParallelLayout())
    grads = []
    tok = np.random.default_rng(4).integers(0, cfg.vocab, size=(2, cfg.seq_len + 1))
    for offload in (False, True):
        model = GPT(cfg, ps, np, np.float64, seed=5, offload=offload)
        model.store.zero_grads()
        _, cache = model.forward(0, tok[:, :-1], tok[:, 1:])
        model.backward(0, None, cache, 0.1)
        model.store.flush_resident()
        grads.append(model.store.flat_g.copy())
        if offload:
            assert not model.store._dev  # nothing of a layer left on the "device"
            with pytest.raises(RuntimeError, match="offloaded"):
                model.store.p("layers.0.mlp.fc1.w")
            layer_bytes = sum(model.store.host_param(n).nbytes for n in model.store.order
                              if n.startswith("layers."))
            # each layer in twice (forward, backward) plus the resident embedding/head once
            assert model.store.bytes_h2d >= 2 * layer_bytes
            assert model.store.bytes_d2h == layer_bytes  # layer gradients back once
    np.testing.assert_array_equal(grads[0], grads[1])
    ps.free()


# -- blocked (online-softmax) attention and selective recompute ------------------------------
@pytest.mark.parametrize("s,block", [(16, 4), (17, 5), (33, 8), (8, 8)])
def test_blocked_and_selective_attention_equal_the_full_one(s, block):
    from hpc.train import layers as L

    rng = np.random.default_rng(s)
    q, k, v = (rng.standard_normal((2, 3, s, 4)) for _ in range(3))
    do = rng.standard_normal((2, 3, s, 4))
    o, c = L.causal_attention_fwd(q, k, v)
    grads = L.causal_attention_bwd(do, c)
    for kw in (dict(block=block), dict(keep_probs=False)):
        o2, c2 = L.causal_attention_fwd(q, k, v, **kw)
        np.testing.assert_allclose(o2, o, rtol=1e-12, atol=1e-14)
        for a, b in zip(L.causal_attention_bwd(do, c2), grads):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)
    torch = pytest.importorskip("torch")
    ref = torch.nn.functional.scaled_dot_product_attention(
        *(torch.from_numpy(x) for x in (q, k, v)), is_causal=True)
    np.testing.assert_allclose(L.causal_attention_fwd(q, k, v, block=block)[0], ref.numpy(),
                               rtol=1e-12, atol=1e-14)


def test_blocked_attention_memory_is_linear_in_the_sequence(monkeypatch):
    """The full attention holds S x S scores per head; the blocked one block x block tiles."""
    import tracemalloc

    from hpc.train import kernels
    from hpc.train import layers as L

    monkeypatch.setattr(kernels, "ENABLED", False)  # numpy's expressions: nothing to compile

    def peak(s: int, block) -> int:
        rng = np.random.default_rng(0)
        q, k, v = (rng.standard_normal((1, 2, s, 8)) for _ in range(3))
        tracemalloc.start()
        o, c = L.causal_attention_fwd(q, k, v, block=block)
        L.causal_attention_bwd(np.ones_like(o), c)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    full = [peak(s, None) for s in (128, 256)]
    blocked = [peak(s, 16) for s in (128, 256)]
    assert full[1] > 3.5 * full[0]          # quadratic: S x S x heads x 8 bytes
    assert blocked[1] < 2.5 * blocked[0]    # linear
    assert blocked[1] < full[1] / 8


def test_native_float32_kernels_against_float64():
    """hpc._core.train's vectorised exp, GeLU and causal softmax (float32) against float64
    numpy, over the whole range (large |x|: tanh saturates, exp clamps) and odd sizes."""
    nat = pytest.importorskip("hpc._core").train
    x = np.concatenate([np.linspace(-87.0, 88.0, 100_003), [0.0, -0.0, 1e-30, -1e-30]])
    x = x.astype(np.float32)
    y = np.empty_like(x)
    nat.exp(x, y)
    ref = np.exp(x.astype(np.float64))
    assert np.max(np.abs(y - ref) / ref) < 3 * 2.0 ** -24  # within 3 ulp
    x = np.concatenate([np.linspace(-60, 60, 70_001), [0.0, 1e-20, -1e-20, 1e4, -1e4]])
    x = x.astype(np.float32)
    y, t = np.empty_like(x), np.empty_like(x)
    nat.gelu_fwd(x, y, t)
    xd = x.astype(np.float64)
    td = np.tanh(np.sqrt(2 / np.pi) * (xd + 0.044715 * xd ** 3))
    np.testing.assert_allclose(t, td, rtol=0, atol=3e-7)
    yd = 0.5 * xd * (1 + td)  # (1 + t cancels for x << 0: an absolute error of t's size)
    assert np.all(np.abs(y - yd) <= 1e-6 * np.abs(yd) + 3e-7 * np.abs(xd))
    rng = np.random.default_rng(4)
    for n in (1, 7, 33):
        s = (rng.standard_normal((3, n, n)) * 30).astype(np.float32)
        ref = s.astype(np.float64) * 0.3 + np.triu(np.full((n, n), -np.inf), 1)
        ref = np.exp(ref - ref.max(axis=-1, keepdims=True))
        ref /= ref.sum(axis=-1, keepdims=True)
        nat.causal_softmax(s, 0.3)
        np.testing.assert_allclose(s, ref, rtol=1e-5, atol=1e-7)
        assert not np.triu(s, 1).any()
    with pytest.raises(ValueError, match="wrong dtype"):
        nat.gelu_fwd(x.astype(np.float64), y, t)
    with pytest.raises(ValueError, match="sizes differ"):
        nat.gelu_fwd(x, y[:-1], t)
    with pytest.raises(ValueError, match="n, n"):
        nat.causal_softmax(np.zeros((2, 3, 4), np.float32), 1.0)
