"""Every process group of a tensor x data x pipeline parallel run, ordered as Megatron orders it.

Megatron-LM (megatron/core/parallel_state.py, ``RankGenerator`` with the default order
"tp-cp-ep-dp-pp") numbers ranks with tensor parallel fastest, then data parallel, then
pipeline parallel::

    world_rank = tp_rank + tp * (dp_rank + dp * pp_rank)

so the ranks of one tensor-parallel group are consecutive (one node's fast links) and a
pipeline group strides over tp * dp ranks. The groups built here:

- tp: same (dp, pp), varying tp_rank (all-reduce / all-gather / reduce-scatter in layers);
- dp: same (tp, pp) (gradient all-reduce, ZeRO-1 reduce-scatter / all-gather);
- pp: same (tp, dp) (point-to-point activations and gradients);
- embedding: the first and last pipeline stage of a pp group (the tied embedding's gradient);
- model-parallel: same dp_rank (tp x pp; the global gradient norm).
"""
from __future__ import annotations

from dataclasses import dataclass

from hpc.core import UsageError


@dataclass(frozen=True)
class Layout:
    tp: int = 1
    pp: int = 1
    dp: int = 1
    vpp: int = 1

    def rank_of(self, tp_rank: int, dp_rank: int, pp_rank: int) -> int:
        """World rank of grid coordinates (Megatron's tp-dp-pp order)."""
        return tp_rank + self.tp * (dp_rank + self.dp * pp_rank)

    def coords(self, rank: int) -> tuple[int, int, int]:
        """(tp_rank, dp_rank, pp_rank) of a world rank."""
        return rank % self.tp, (rank // self.tp) % self.dp, rank // (self.tp * self.dp)

    @property
    def size(self) -> int:
        return self.tp * self.pp * self.dp


def check_layout(layout: Layout, world_size: int, layers: int, heads: int, micro_batches: int,
                 global_batch: int, schedule: str, seq_len: int, sequence_parallel: bool,
                 vocab_padded: int) -> None:
    """Raise UsageError (exit 2) for a layout the run cannot take."""
    t, p, d, v = layout.tp, layout.pp, layout.dp, layout.vpp
    if t * p * d != world_size:
        raise UsageError(f"--tp {t} x --pp {p} x --dp {d} = {t * p * d} but the job has "
                         f"{world_size} rank(s)")
    if layers % (p * v):
        raise UsageError(f"--layers {layers} is not divisible by --pp {p} x --vpp {v}")
    if heads % t:
        raise UsageError(f"--heads {heads} is not divisible by --tp {t}")
    if vocab_padded % t:
        raise UsageError(f"the padded vocabulary ({vocab_padded}) is not divisible by --tp {t}")
    if global_batch % (d * micro_batches):
        raise UsageError(f"--global-batch {global_batch} is not divisible by --dp {d} x "
                         f"--micro-batches {micro_batches}")
    if v > 1 and schedule != "interleaved":
        raise UsageError(f"--vpp {v} needs --schedule interleaved (got {schedule})")
    if schedule == "interleaved" and p > 1 and micro_batches % p:
        raise UsageError(f"the interleaved schedule needs --micro-batches ({micro_batches}) to be "
                         f"a multiple of --pp ({p})")
    if sequence_parallel and seq_len % t:
        raise UsageError(f"--sequence-parallel needs --seq-len {seq_len} divisible by --tp {t}")


class ParallelState:
    """This rank's coordinates and communicators (collective to build)."""

    def __init__(self, comm, layout: Layout):
        from mpi4py import MPI

        self.world = comm
        self.layout = layout
        self.rank = comm.Get_rank()
        self.tp_rank, self.dp_rank, self.pp_rank = layout.coords(self.rank)
        t, d, p = layout.tp, layout.dp, layout.pp
        self.tp, self.dp, self.pp, self.vpp = t, d, p, layout.vpp
        self.tp_group = comm.Split(self.dp_rank + d * self.pp_rank, self.tp_rank)
        self.dp_group = comm.Split(self.tp_rank + t * self.pp_rank, self.dp_rank)
        self.pp_group = comm.Split(self.tp_rank + t * self.dp_rank, self.pp_rank)
        self.mp_group = comm.Split(self.dp_rank, self.tp_rank + t * self.pp_rank)
        on_ends = self.pp_rank in (0, p - 1) and p > 1
        self.embedding_group = comm.Split(self.tp_rank + t * self.dp_rank if on_ends
                                          else MPI.UNDEFINED, self.pp_rank)
        self.is_first_stage = self.pp_rank == 0
        self.is_last_stage = self.pp_rank == p - 1

    def free(self) -> None:
        from mpi4py import MPI

        for g in (self.tp_group, self.dp_group, self.pp_group, self.mp_group, self.embedding_group):
            if g != MPI.COMM_NULL:
                g.Free()

    # virtual pipeline stages: chunk j on pp rank r is virtual stage j * pp + r (Megatron)
    @property
    def n_virtual(self) -> int:
        return self.pp * self.vpp

    def virtual_stage(self, chunk: int) -> int:
        return chunk * self.pp + self.pp_rank

    def stage_rank(self, vstage: int) -> tuple[int, int]:
        """(pp rank, chunk) that holds a virtual stage."""
        return vstage % self.pp, vstage // self.pp
