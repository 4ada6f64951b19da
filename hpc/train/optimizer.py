"""Adam with global gradient-norm clipping over the flat parameter buffer, optionally as a
ZeRO-1 distributed optimizer (Rajbhandari et al. 2020: the optimizer state is sharded over the
data-parallel group; gradients are reduce-scattered, each rank updates its shard, and the
parameters are all-gathered), and as ZeRO-2 (the gradients sharded too: each bucket, a
transformer layer, is reduce-scattered over dp after each of its backward passes, summed into
this rank's shard, and its full-size buffer released; the embedding/head groups at the step), and as ZeRO-3 (the
parameters sharded too: a rank keeps only its 1/dp of the flat parameter vector; each
parameter group, a transformer layer or the embedding/head, is all-gathered just before its
forward and its backward and freed right after).

Before the update the gradients are finished the way Megatron finishes them: sequence-parallel
replicated parameters are all-reduced over tp, the tied embedding over the embedding group
(first and last pipeline stage), everything over dp. The global norm counts every parameter
element once: replicated ones on tp rank 0 only, the tied embedding on the first stage only.
"""
from __future__ import annotations

import math

import numpy as np
from mpi4py import MPI

from . import comm as C
from . import kernels as _k


class Adam:
    def __init__(self, model, lr: float, betas=(0.9, 0.95), eps: float = 1e-8,
                 weight_decay: float = 0.0, clip: float = 1.0, zero: bool | int = False,
                 overlap: bool = False, overlap_params: bool = False):
        self.model, self.store, self.ps = model, model.store, model.ps
        self.lr, self.b1, self.b2, self.eps = lr, betas[0], betas[1], eps
        # the ZeRO stage (True: 1); nothing to shard at dp = 1
        self.stage = int(zero) if self.ps.dp > 1 else 0
        self.wd, self.clip, self.zero = weight_decay, clip, self.stage >= 1
        st, ps = self.store, self.ps
        ns = st.host_ns
        if self.stage >= 2 and (ns is not np or st.offload):
            raise RuntimeError("ZeRO-2/3 keep host (numpy) gradient buffers, not offloaded")
        # Bucketed, overlapped data-parallel reduction (Megatron's overlap_grad_reduce): one
        # bucket per transformer layer, its non-blocking all-reduce started as soon as the
        # layer's last backward of the step is done. Host (numpy) buffers; not ZeRO-1. Under
        # ZeRO-2 the buckets are reduce-scattered, non-blocking with overlap (one in flight).
        self.overlap = overlap and ps.dp > 1 and self.stage != 1 and ns is np
        self.hooks_grads = self.overlap or self.stage >= 2  # wants the model's grad_hook
        self._reduced: set[str] = set()  # ZeRO-2: the groups reduce-scattered this step
        self._inflight: list = []        # ZeRO-2: (request, buffer) of the bucket in flight
        self.buckets: dict[int, tuple[int, int]] = {}
        for name in st.order:
            grp = st.specs[name].group
            if grp.startswith("layers."):
                i = int(grp.split(".")[1])
                off, n, _ = st.offsets[name]
                lo, hi = self.buckets.get(i, (off, off + n))
                self.buckets[i] = (min(lo, off), max(hi, off + n))
        self._count: dict[int, int] = {}
        self._reqs: list = []
        self._micro_batches = 0
        self.bucketed_steps = 0  # steps whose dp reduction went by the overlapped buckets
        # ZeRO-1's parameter all-gather per layer bucket, non-blocking, each waited for just
        # before the layer's next forward (Megatron's overlap_param_gather)
        self.overlap_params = overlap_params and self.stage in (1, 2) and ns is np
        # ZeRO-3: each layer group's all-gather for the next layer (forward: i + 1, backward:
        # i - 1) started, non-blocking, as layer i begins (ParamStore.gathered)
        self.prefetch = overlap_params and self.stage == 3
        self._param_reqs: dict[int, MPI.Request] = {}
        self.async_gathers = 0  # steps whose parameters were gathered that way
        dp = ps.dp if self.zero else 1
        self.padded = -(-st.numel // dp) * dp
        self.shard = self.padded // dp
        self.lo = ps.dp_rank * self.shard if self.zero else 0
        # the flat buffers padded for reduce-scatter (padding stays zero)
        if self.padded != st.numel:
            for attr in ("flat_p", "flat_g"):
                old = getattr(st, attr)
                new = ns.zeros(self.padded, dtype=st.dtype)
                new[:st.numel] = old
                setattr(st, attr, new)
        if self.stage >= 2:  # per-group gradient buffers; this rank keeps its shard's sum
            st.shard_grads()
            self.g_shard = np.zeros(self.shard, dtype=st.dtype)
        if self.stage == 3:  # this rank's shard of the parameters, and the groups it keeps
            self.p_shard = st.flat_p[self.lo:self.lo + self.shard].copy()
            st.flat_p = np.zeros(0, dtype=st.dtype)
            st.sharder = self
        weight = np.zeros(self.padded, dtype=st.dtype)
        for name in st.order:
            off, n, _ = st.offsets[name]
            spec = st.specs[name]
            counts = (spec.split != "rep" or ps.tp_rank == 0) and not (
                name == "embed.wte" and ps.pp > 1 and not ps.is_first_stage)
            weight[off:off + n] = 1.0 if counts else 0.0
        w = weight[self.lo:self.lo + self.shard]
        self.weight = w if ns is np else ns.asarray(w)
        self.m = ns.zeros(self.shard, dtype=st.dtype)
        self.v = ns.zeros(self.shard, dtype=st.dtype)
        self.t = 0
        self.last_grad_norm = 0.0
        # float16 loss scaling: the gradients arrive multiplied by grad_scale; the update
        # divides it out, and a step with an inf or NaN anywhere is skipped (check_finite)
        self.grad_scale = 1.0
        self.check_finite = False
        self.skipped = False  # whether the last step was skipped

    def _finish_grads(self) -> None:
        st, ps, model = self.store, self.ps, self.model
        if model.sp:
            for name in st.order:
                if st.specs[name].split == "rep" and st.specs[name].group not in self._reduced:
                    C.allreduce_inplace(ps.tp_group, st.host_grad(name))
        if ps.pp > 1 and "embed.wte" in st.offsets and (ps.is_first_stage or ps.is_last_stage):
            C.allreduce_inplace(ps.embedding_group, st.host_grad("embed.wte"))

    # -- bucketed overlap --------------------------------------------------------------
    def begin_step(self, micro_batches: int) -> None:
        """Arm the buckets for a step of ``micro_batches`` backward passes per layer."""
        self._count = {}
        self._reqs = []
        self._micro_batches = micro_batches
        if self.stage >= 2:
            self.g_shard[...] = 0

    def layer_done(self, i: int) -> None:
        """The model's grad_hook: after a layer's last backward, start its all-reduce (its
        reduce-scatter under ZeRO-2)."""
        if not self.hooks_grads:
            return
        c = self._count[i] = self._count.get(i, 0) + 1
        if self.stage >= 2:  # every micro-batch: the layer's buffer lives through one backward
            self._scatter(f"layers.{i}", nonblocking=self.overlap)
            return
        if c == self._micro_batches:
            lo, hi = self.buckets[i]
            self._reqs.append(self.ps.dp_group.Iallreduce(MPI.IN_PLACE,
                                                          self.store.flat_g[lo:hi]))
        if self._reqs:  # let MPI move the buckets along while the backward goes on
            MPI.Request.Testall(self._reqs)

    def _reduce_dp(self) -> None:
        """The data-parallel sum of the gradients: the buckets in flight and the rest."""
        st, ps = self.store, self.ps
        started, self._reqs = len(self._reqs), []
        if not self.overlap or started != len(self.buckets):
            if started:
                raise RuntimeError("a step's buckets were only partly reduced")
            C.allreduce_inplace(ps.dp_group, st.flat_g)  # no buckets: one all-reduce
            return
        self.bucketed_steps += 1
        done = sorted(self.buckets.values())
        edges = [0] + [x for lo, hi in done for x in (lo, hi)] + [st.flat_g.shape[0]]
        for lo, hi in zip(edges[0::2], edges[1::2]):  # embedding, head: not in a bucket
            if hi > lo:
                C.allreduce_inplace(ps.dp_group, st.flat_g[lo:hi])

    # -- ZeRO-2: gradients reduce-scattered per bucket --------------------------------------
    def _wait_inflight(self) -> None:
        for req, buf, recv, a in self._inflight:
            req.Wait()
            self.g_shard[a:a + recv.shape[0]] += recv
            self.store.freed(buf.nbytes)
        self._inflight = []

    def _scatter(self, group: str, nonblocking: bool, tp_summed: bool = False) -> None:
        """Reduce-scatter the group's gradient buffer over dp, add this rank's part into
        g_shard, and release the buffer (after the request, when non-blocking)."""
        st, ps = self.store, self.ps
        if self.model.sp and not tp_summed:  # sequence-parallel replicated: tp sum first
            for name in st.order:
                if st.specs[name].group == group and st.specs[name].split == "rep":
                    C.allreduce_inplace(ps.tp_group, st.host_grad(name))
        buf = st.grad_buffer(group)  # (a group without any backward: zeros, all take part)
        st.take_grad(group)
        lo, hi = st.grad_spans[group]
        counts, _ = self._pieces(lo, hi)
        a = min(max(lo, self.lo), self.lo + self.shard) - self.lo
        recv = np.empty(counts[ps.dp_rank], dtype=st.dtype)
        self._reduced.add(group)
        if not nonblocking:
            ps.dp_group.Reduce_scatter(buf, recv, counts, op=MPI.SUM)
            self.g_shard[a:a + recv.shape[0]] += recv
            st.freed(buf.nbytes)
            return
        self._wait_inflight()  # one bucket in flight bounds the gradient memory
        self._inflight.append((ps.dp_group.Ireduce_scatter(buf, recv, counts, op=MPI.SUM),
                               buf, recv, a))

    def _reduce_scatter_rest(self) -> None:
        """The buckets no hook reduced (embedding, head; all of them without the hook)."""
        st = self.store
        self._wait_inflight()
        self._finish_grads()  # (the tp sums of these groups included)
        for group in sorted(st.grad_spans, key=lambda k: st.grad_spans[k]):
            if group not in self._reduced:
                self._scatter(group, nonblocking=False, tp_summed=True)
        self._reduced = set()

    def step(self) -> float:
        """Finish the gradients, clip to the global norm, update; returns the norm before
        clipping (collective over the world)."""
        st, ps = self.store, self.ps
        MPI.Request.Waitall(self._reqs)  # the buckets in flight: before anything else writes
        self.finish_params()
        st.flush_resident()
        if self.stage >= 2:
            self._reduce_scatter_rest()
            g = self.g_shard
            group = ps.world
        elif self.zero:
            self._finish_grads()
            g = st.host_ns.empty(self.shard, dtype=st.dtype)
            C.reduce_scatter_flat(ps.dp_group, st.flat_g, g)
            group = ps.world
        else:
            self._finish_grads()
            self._reduce_dp()
            g = st.flat_g
            group = ps.mp_group
        if self.check_finite and not bool(st.host_ns.isfinite(g).all()):
            local = math.inf  # (the fused sum below assumes finite numbers)
        elif _k.usable(g, self.weight, min_size=_k.OPT_MIN_SIZE):
            local = _k.sumsq_weighted(g, self.weight)
        else:
            local = float((g * g * self.weight).sum())
        norm = math.sqrt(group.allreduce(local, op=MPI.SUM)) / self.grad_scale
        self.last_grad_norm = norm
        self.skipped = self.check_finite and not math.isfinite(norm)
        if self.skipped:  # every rank saw the same sum: all skip, parameters untouched
            return norm
        coef = 1.0
        if self.clip > 0:
            coef = min(1.0, self.clip / (norm + 1e-6))
        coef /= self.grad_scale  # unscaled in the update's one pass
        self.t += 1
        b1, b2 = self.b1, self.b2
        p = self.p_shard if self.stage == 3 else st.flat_p[self.lo:self.lo + self.shard]
        if _k.usable(p, g, self.m, self.v, min_size=_k.OPT_MIN_SIZE):
            _k.adam(p, g, self.m, self.v, coef, b1, b2, 1 - b1 ** self.t, 1 - b2 ** self.t,
                    self.lr, self.eps, self.wd)
            self._share_update()
            st.refresh_resident()
            return norm
        if coef != 1.0:
            g *= coef
        self.m *= b1
        self.m += (1 - b1) * g
        self.v *= b2
        self.v += (1 - b2) * (g * g)
        mhat = self.m / (1 - b1 ** self.t)
        vhat = self.v / (1 - b2 ** self.t)
        upd = mhat / (vhat ** 0.5 + self.eps)
        if self.wd:
            upd += self.wd * p
        p -= self.lr * upd
        self._share_update()
        st.refresh_resident()
        return norm

    def _share_update(self) -> None:
        """After the update of this rank's shard: the parameters every rank needs."""
        if self.stage in (1, 2):  # (ZeRO-3 gathers each group when it is used)
            self._gather_params()

    # -- ZeRO-3: parameters gathered per group ------------------------------------------
    def gather_group(self, group: str, out=None):
        """The group's full parameter buffer, all-gathered from every dp rank's shard."""
        lo, hi = self.store.grad_spans[group]
        counts, displs = self._pieces(lo, hi)
        a = min(max(lo, self.lo), self.lo + self.shard) - self.lo
        if out is None:
            out = np.empty(hi - lo, dtype=self.store.dtype)
        self.ps.dp_group.Allgatherv(self.p_shard[a:a + counts[self.ps.dp_rank]],
                                    [out, (counts, displs)])
        return out

    def gather_group_async(self, group: str):
        """(buffer, request): the group's all-gather started, non-blocking (prefetch)."""
        lo, hi = self.store.grad_spans[group]
        counts, displs = self._pieces(lo, hi)
        a = min(max(lo, self.lo), self.lo + self.shard) - self.lo
        out = np.empty(hi - lo, dtype=self.store.dtype)
        req = self.ps.dp_group.Iallgatherv(self.p_shard[a:a + counts[self.ps.dp_rank]],
                                           [out, (counts, displs)])
        return out, req

    def full_params(self):
        """The whole flat parameter vector (padded), all-gathered over dp (checkpoints)."""
        full = np.zeros(self.padded, dtype=self.store.dtype)
        full[self.lo:self.lo + self.shard] = self.p_shard
        C.allgather_flat(self.ps.dp_group, full)
        return full

    def set_full_params(self, full) -> None:
        """Take this rank's shard of a whole flat parameter vector (loading)."""
        self.p_shard[...] = full[self.lo:self.lo + self.shard]

    # -- ZeRO-1 parameter gather, overlapped ---------------------------------------------
    def _pieces(self, lo: int, hi: int) -> tuple[list[int], list[int]]:
        """Counts and displacements of every dp rank's shard within flat[lo:hi]."""
        S, n = self.shard, self.ps.dp
        counts = [max(0, min(hi, (r + 1) * S) - max(lo, r * S)) for r in range(n)]
        displs = [max(lo, r * S) - lo if counts[r] else 0 for r in range(n)]
        return counts, displs

    def _gather_params(self) -> None:
        """Every rank's updated shard into flat_p: at once, or (overlap_params) the layer
        buckets by non-blocking all-gathers that :meth:`wait_params` completes."""
        st, grp = self.store, self.ps.dp_group
        if not self.overlap_params:
            C.allgather_flat(grp, st.flat_p)
            return
        self.finish_params()
        spans = sorted(self.buckets.items(), key=lambda kv: kv[1])
        edges = [0] + [x for _, (lo, hi) in spans for x in (lo, hi)] + [st.flat_p.shape[0]]
        for lo, hi in zip(edges[0::2], edges[1::2]):  # embedding, head, padding: now
            if hi > lo:
                grp.Allgatherv(MPI.IN_PLACE, [st.flat_p[lo:hi], self._pieces(lo, hi)])
        for i, (lo, hi) in spans:
            self._param_reqs[i] = grp.Iallgatherv(MPI.IN_PLACE,
                                                  [st.flat_p[lo:hi], self._pieces(lo, hi)])
        self.async_gathers += 1

    def wait_params(self, i: int) -> None:
        """The model's param_hook: layer i's parameters are complete on return."""
        req = self._param_reqs.pop(i, None)
        if req is not None:
            req.Wait()

    def finish_params(self) -> None:
        """Complete every parameter gather in flight (before flat_p is read or written as a
        whole: checkpoints, loading, the next update, closing)."""
        if self._param_reqs:
            MPI.Request.Waitall(list(self._param_reqs.values()))
            self._param_reqs = {}
        if self.stage == 3:  # a prefetch reads p_shard: done before anything writes it
            self.store.drop_prefetched()

    # -- checkpoint support ---------------------------------------------------------------
    def full_state(self):
        """(m, v) over this rank's whole flat buffer (all-gathered over dp under ZeRO-1)."""
        self.finish_params()  # the caller reads flat_p too
        if not self.zero:
            return self.m, self.v
        ns = self.store.host_ns
        out = []
        for s in (self.m, self.v):
            full = ns.zeros(self.padded, dtype=self.store.dtype)
            full[self.lo:self.lo + self.shard] = s
            C.allgather_flat(self.ps.dp_group, full)
            out.append(full)
        return out[0], out[1]

    def set_full_state(self, m_full, v_full, t: int) -> None:
        self.m[...] = m_full[self.lo:self.lo + self.shard]
        self.v[...] = v_full[self.lo:self.lo + self.shard]
        self.t = t
