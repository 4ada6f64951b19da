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

from dataclasses import dataclass, replace

from mpi4py import MPI

from hpc.core.errors import InputTypeError, UsageError

from . import validate as V
from .model import GPTConfig
from .schedules import SCHEDULES


@dataclass(frozen=True)
class ParallelLayout:
    """How a run spreads one GPT over the ranks: tensor x pipeline x data parallel.

    Megatron-LM's decomposition: tensor parallelism inside each layer (Shoeybi et al. 2019),
    pipeline parallelism over the layers, optionally interleaved (Narayanan et al. 2021), data
    parallelism over the batch, optionally with a ZeRO-1 sharded optimizer (Rajbhandari et al.
    2020). The loss curve does not depend on the layout.

    Parameters
    ----------
    tp : int, default 1
        Tensor-parallel degree: ranks sharing each layer's matrices (must divide ``heads`` and
        the padded vocabulary).
    pp : int, default 1
        Pipeline-parallel degree: stages the layers are split into (must divide ``layers`` /
        ``vpp``).
    dp : int or None, default None
        Data-parallel degree; None takes the rest: ranks / (tp x pp).
    vpp : int, default 1
        Model chunks per pipeline rank (the interleaved schedule when > 1).
    sequence_parallel : bool, default False
        Split layer norms, residuals and dropout-free element-wise work along the sequence over
        the tp ranks (Korthikanti et al. 2022); needs ``seq_len`` divisible by ``tp``.
    zero1 : bool, default False
        ZeRO-1: shard the Adam state over the data-parallel group (reduce-scatter the
        gradients, update the shard, all-gather the parameters).
    zero : int, default 0
        The ZeRO stage, 0 to 3 (``zero1`` is stage 1). Stage 2 also shards the gradients:
        each bucket (a transformer layer; the embedding and head groups) is reduce-scattered
        once its last backward of the step is done and its full-size buffer released, so only
        this rank's 1/dp of the gradients outlives the backward (numpy back end, no offload).
        Stage 3 also shards the parameters: a rank keeps its 1/dp of them (and the embedding
        and head groups whole); each transformer layer is all-gathered for its forward and
        for its backward and freed after each.

    Ranks are numbered as Megatron numbers them: tp fastest, then dp, then pp,
    ``rank = tp_rank + tp * (dp_rank + dp * pp_rank)``.

    Raises
    ------
    TypeError
        A degree that is not an integer, a switch that is not a bool.
    ValueError
        A degree below 1.
    """

    tp: int = 1
    pp: int = 1
    dp: int | None = None
    vpp: int = 1
    sequence_parallel: bool = False
    zero1: bool = False
    zero: int = 0

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "vpp"):
            object.__setattr__(self, name, V.integer(getattr(self, name), name))
        if self.dp is not None:
            object.__setattr__(self, "dp", V.integer(self.dp, "dp"))
        for name in ("sequence_parallel", "zero1"):
            object.__setattr__(self, name, V.flag(getattr(self, name), name))
        object.__setattr__(self, "zero", V.integer(self.zero, "zero", 0))
        if self.zero > 3:
            raise UsageError(f"{V.arg('zero')} is a ZeRO stage 0 to 3, got {self.zero}")

    @property
    def zero_stage(self) -> int:
        """The ZeRO stage: ``zero``, or 1 for ``zero1``."""
        return max(self.zero, 1 if self.zero1 else 0)

    def resolve(self, world_size: int) -> "ParallelLayout":
        """This layout with ``dp`` set for a job of ``world_size`` ranks.

        Raises
        ------
        ValueError
            tp x pp does not divide the ranks, or tp x pp x dp is not the rank count.
        """
        t, p = self.tp, self.pp
        d = self.dp
        if d is None:
            if world_size % (t * p):
                raise UsageError(f"{world_size} rank(s) are not divisible by {V.arg('tp')} {t} "
                                 f"x {V.arg('pp')} {p}")
            d = world_size // (t * p)
        if t * p * d != world_size:
            raise UsageError(f"{V.arg('tp')} {t} x {V.arg('pp')} {p} x {V.arg('dp')} {d} = "
                             f"{t * p * d} but the job has {world_size} rank(s)")
        return replace(self, dp=d)

    def _need_dp(self) -> int:
        if self.dp is None:
            raise UsageError("the layout's dp is not set yet: resolve(world_size) first")
        return self.dp

    def rank_of(self, tp_rank: int, dp_rank: int, pp_rank: int) -> int:
        """World rank of grid coordinates (Megatron's tp-dp-pp order)."""
        return tp_rank + self.tp * (dp_rank + self._need_dp() * pp_rank)

    def coords(self, rank: int) -> tuple[int, int, int]:
        """(tp_rank, dp_rank, pp_rank) of a world rank."""
        dp = self._need_dp()
        return rank % self.tp, (rank // self.tp) % dp, rank // (self.tp * dp)

    @property
    def size(self) -> int:
        """Ranks the layout takes (tp x pp x dp)."""
        return self.tp * self.pp * self._need_dp()


def default_schedule(layout: ParallelLayout) -> str:
    """Megatron's choice: the interleaved 1F1B with model chunks (vpp > 1), else 1F1B."""
    return "interleaved" if layout.vpp > 1 else "1f1b"


def check_layout(layout: ParallelLayout, cfg: GPTConfig, micro_batches: int,
                 global_batch: int, schedule: str) -> None:
    """Raise ValueError (hpc.core.errors.UsageError; exit 2 on the CLI) for a resolved layout
    the model, batch or schedule cannot take."""
    t, p, d, v = layout.tp, layout.pp, layout._need_dp(), layout.vpp
    a = V.arg
    if schedule not in SCHEDULES:
        raise UsageError(f"{a('schedule')} must be one of {', '.join(SCHEDULES)}, "
                         f"got {schedule!r}")
    if cfg.layers % (p * v):
        raise UsageError(f"{a('layers')} {cfg.layers} is not divisible by {a('pp')} {p} x "
                         f"{a('vpp')} {v}")
    if cfg.heads % t:
        raise UsageError(f"{a('heads')} {cfg.heads} is not divisible by {a('tp')} {t}")
    if cfg.vocab_padded % t:
        raise UsageError(f"the padded vocabulary ({cfg.vocab_padded}) is not divisible by "
                         f"{a('tp')} {t}")
    if global_batch % (d * micro_batches):
        raise UsageError(f"{a('global_batch')} {global_batch} is not divisible by {a('dp')} {d} "
                         f"x {a('micro_batches')} {micro_batches}")
    if v > 1 and schedule != "interleaved":
        raise UsageError(f"{a('vpp')} {v} needs {a('schedule')} interleaved (got {schedule})")
    if schedule == "interleaved" and p > 1 and micro_batches % p:
        raise UsageError(f"the interleaved schedule needs {a('micro_batches')} ({micro_batches}) "
                         f"to be a multiple of {a('pp')} ({p})")
    if layout.sequence_parallel and cfg.seq_len % t:
        raise UsageError(f"{a('sequence_parallel')} needs {a('seq_len')} {cfg.seq_len} "
                         f"divisible by {a('tp')} {t}")


class ParallelState:
    """This rank's coordinates in a layout and every process group of it (collective to build).

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
        The ranks of the run (``world`` below); its size must be the layout's.
    layout : ParallelLayout
        ``dp`` None is resolved against ``comm``'s size.

    Attributes
    ----------
    world, tp_group, dp_group, pp_group, mp_group, embedding_group : mpi4py.MPI.Comm
        The groups of the module docstring (``embedding_group`` is ``MPI.COMM_NULL`` off the
        first and last pipeline stage, and everywhere when pp == 1).
    tp_rank, dp_rank, pp_rank : int
        This rank's grid coordinates.

    :meth:`free` releases the groups (collective).
    """

    def __init__(self, comm: MPI.Comm, layout: ParallelLayout):
        if not isinstance(comm, MPI.Comm):
            raise InputTypeError(f"comm must be an mpi4py communicator, got {type(comm).__name__}")
        if not isinstance(layout, ParallelLayout):
            raise InputTypeError(f"layout must be a ParallelLayout, got {type(layout).__name__}")
        layout = layout.resolve(comm.Get_size())
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
        self._freed = False

    def free(self) -> None:
        """Release every group (collective; a second call does nothing)."""
        if self._freed:
            return
        self._freed = True
        for g in (self.tp_group, self.dp_group, self.pp_group, self.mp_group,
                  self.embedding_group):
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
