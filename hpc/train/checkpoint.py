"""Checkpoints in HDF5: the whole state of a run in the single-rank layout, so a checkpoint
saved at any layout loads at any other and the resumed run continues the uninterrupted curve.

Layout of the file: ``/params/<name>``, ``/adam/m/<name>``, ``/adam/v/<name>`` (full tensors,
vocabulary padded as in every layout); ``/history/losses``, ``/history/grad_norms``,
``/history/lrs`` (one per step since step ``history_start``, normally 0) and ``/history/eval_steps``,
``/history/eval_losses``; attributes on ``/``: ``format``, ``step`` (the next step to run:
also the data position, since a step's batch is a function of (seed, step)), ``adam_t``,
``seed`` (the only random state: parameters derive from (seed, name), batches from (seed,
step); nothing else draws random numbers), the model sizes, ``dtype``, the learning-rate
schedule (``lr``, ``lr_warmup``, ``lr_style``, ``lr_decay_steps``, ``lr_min_lr``), the
optimizer settings and the data's length and CRC-32.

Writing: :func:`snapshot` gathers the state to rank 0 (collective; copies, so training may
go on), :func:`write` writes it from rank 0 through :func:`hpc.core.atomic.atomic_path` (a
temporary file renamed over the target: a reader sees the old file or the whole new one,
never a part). :class:`Checkpointer` does this every N steps into a folder, the file written
by a background thread while the next steps run, keeping the newest K.

Reading: :func:`load` checks every field (shapes, finite values, counts) and raises
UsageError naming the file and the field: a corrupt but well-formed file is a usage error,
not a traceback.
"""
from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hpc.core.atomic import atomic_path
from hpc.core.errors import UsageError
from hpc.core.runtime import agree, collective

from . import comm as C
from .model import shard, unshard
from .validate import arg

FORMAT = "hpc.train/2"
SHAPE_ATTRS = ("vocab", "hidden", "heads", "layers", "seq_len")
HISTORY = ("losses", "grad_norms", "lrs", "eval_steps", "eval_losses")
FILE_RE = re.compile(r"^step_(\d{8,})\.h5$")


def _owned(model, name: str) -> bool:
    ps = model.ps
    if ps.dp_rank != 0:
        return False
    if name == "embed.wte" and ps.pp > 1 and not ps.is_first_stage:
        return False
    return True


def gather_full(model, opt=None) -> dict[str, tuple[np.ndarray, ...]] | None:
    """Collective: {name: (param, adam m, adam v)} as full single-rank tensors on world rank 0
    (None elsewhere); without opt only the parameter. Also what the tests compare layouts by.
    The arrays are copies: the model may train on while they are written."""
    ps, st = model.ps, model.store
    whole = st.flat_p if st.sharder is None else st.sharder.full_params()  # ZeRO-3: gathered
    flats = [whole] + (list(opt.full_state()) if opt is not None else [])
    local = {}
    for name in st.order:
        if _owned(model, name):
            off, n, shp = st.offsets[name]
            local[name] = tuple(np.array(C.to_host(a[off:off + n])).reshape(shp) for a in flats)
    gathered = ps.world.gather((ps.tp_rank, local), root=0)
    if ps.rank != 0:
        return None
    pieces: dict[str, dict[int, tuple]] = {}
    for tp_rank, d in gathered:
        for name, arrs in d.items():
            pieces.setdefault(name, {})[tp_rank] = arrs
    return {s.name: tuple(unshard([pieces[s.name][r][j] for r in range(ps.tp)], s.split)
                          for j in range(len(flats)))
            for s in model.all_specs}


def check_writable(path: str | os.PathLike, comm, option: str = "save") -> None:
    """Collective: raise UsageError on every rank unless rank 0 can create ``path`` (its
    nearest existing parent is a writable folder, and ``path`` is not a folder). Lets a run
    fail before it trains."""
    err = None
    if comm.Get_rank() == 0:
        target = Path(path)
        parent = target.resolve().parent
        while not parent.exists():
            parent = parent.parent
        if target.is_dir():
            err = f"{arg(option)} {path} is a folder, not a file"
        elif target.exists() and not target.is_file():
            err = f"{arg(option)} {path} is not a regular file"
        elif not (parent.is_dir() and os.access(parent, os.W_OK)):
            err = f"{arg(option)} {path}: {parent} is not a writable folder"
    agree(comm, err)


def snapshot(model, opt, attrs: Mapping[str, Any], history: Mapping[str, Any]
             ) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """Collective: the checkpoint's datasets and attributes on world rank 0 (None elsewhere),
    as copies that stay valid while training continues."""
    full = gather_full(model, opt)
    if full is None:
        return None
    datasets: dict[str, np.ndarray] = {}
    for name, arrs in full.items():
        for key, a in zip(("/params/", "/adam/m/", "/adam/v/"), arrs):
            datasets[key + name] = a
    for k in HISTORY:
        datasets["/history/" + k] = np.array(history.get(k, []),
                                             dtype=np.int64 if k == "eval_steps" else np.float64)
    st = model.store
    full_attrs = {"format": FORMAT, "dtype": str(st.dtype), "adam_t": opt.t,
                  **{k: getattr(model.cfg, k) for k in SHAPE_ATTRS}, **attrs}
    return datasets, full_attrs


def write(path: str | os.PathLike, datasets: Mapping[str, np.ndarray],
          attrs: Mapping[str, Any]) -> None:
    """Write a snapshot to ``path`` atomically (one process; not collective)."""
    import h5py  # 0.13 s to import: only runs that save pay it

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for name, a in datasets.items():
                f.create_dataset(name, data=a)
            for k, v in attrs.items():
                f.attrs[k] = v


def save(path: str | os.PathLike, model, opt, attrs: Mapping[str, Any],
         history: Mapping[str, Any]) -> None:
    """Collective: gather every parameter to rank 0 in the single-rank layout and write."""
    snap = snapshot(model, opt, attrs, history)
    err = None
    if snap is not None:
        try:
            write(path, *snap)
        except OSError as e:
            err = f"{arg('save')} {path}: {e.strerror or e}"
    agree(model.ps.world, err)


# -- reading -------------------------------------------------------------------------------
class _Reader:
    """Field checks of one open checkpoint: every failure a UsageError naming file and field."""

    def __init__(self, f, path, option: str):
        self.f, self.where = f, f"{arg(option)} {path}"

    def fail(self, field: str, what: str) -> UsageError:
        return UsageError(f"{self.where}: {field} {what}")

    def attr(self, k: str):
        if k not in self.f.attrs:
            raise self.fail(k, "is missing (not an hpc.train checkpoint?)")
        return self.f.attrs[k]

    def int_attr(self, k: str, lo: int = 0) -> int:
        v = self.attr(k)
        if isinstance(v, np.ndarray) and v.shape == ():
            v = v[()]
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise self.fail(k, f"must be an integer, got {v!r}")
        if int(v) < lo:
            raise self.fail(k, f"must be >= {lo}, got {int(v)}")
        return int(v)

    def array(self, name: str, shape: tuple[int, ...] | None = None, finite: bool = True,
              nonneg: bool = False) -> np.ndarray:
        if name not in self.f:
            raise self.fail(name, "is missing")
        ds = self.f[name]
        if not hasattr(ds, "shape") or not hasattr(ds, "dtype"):
            raise self.fail(name, "is not a dataset")
        if shape is not None and tuple(ds.shape) != tuple(shape):
            raise self.fail(name, f"has shape {tuple(ds.shape)}, expected {tuple(shape)}")
        if ds.dtype.kind not in "fiu":
            raise self.fail(name, f"has dtype {ds.dtype}, not a number")
        a = ds[...]
        if finite and ds.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise self.fail(name, f"has {int(np.sum(~np.isfinite(a)))} non-finite values")
        if nonneg and a.size and float(np.min(a)) < 0:
            raise self.fail(name, "has negative values")
        return a


def load(path: str | os.PathLike, model, opt, option: str = "load") -> dict[str, Any]:
    """Collective: fill this rank's slices from a checkpoint.

    Returns
    -------
    dict
        ``step`` (the next step), ``attrs`` (every attribute, as Python values),
        ``history`` (the curves: losses, grad_norms, lrs, eval_steps, eval_losses) and
        ``history_start`` (the step they begin at: 0, or ``step`` for a file without).

    Raises
    ------
    UsageError
        The file cannot be opened, holds another model, or has a field of the wrong shape,
        a non-finite value or an impossible count; the message names the file and the field.
    """
    import h5py  # 0.13 s to import: only runs that load pay it (hpc.core.h5io does the same)

    ps, st = model.ps, model.store
    out: dict[str, Any] = {}
    ns = st.host_ns
    m_full = ns.zeros(opt.padded, dtype=st.dtype)
    v_full = ns.zeros(opt.padded, dtype=st.dtype)
    p_full = st.flat_p if st.sharder is None else ns.zeros(opt.padded, dtype=st.dtype)
    with collective(ps.world):
        try:
            f = h5py.File(path, "r")
        except OSError as err:
            raise UsageError(f"{arg(option)} {path}: cannot open ({err})") from None
        with f:
            r = _Reader(f, path, option)
            for k in SHAPE_ATTRS:
                want = getattr(model.cfg, k)
                got = r.int_attr(k, 1)
                if got != want:
                    raise UsageError(f"{r.where}: checkpoint has {k}={got}, the run has "
                                     f"{arg(k)} {want}")
            step = r.int_attr("step", 0)
            t = r.int_attr("adam_t", 0)
            if t > step:
                raise r.fail("adam_t", f"{t} is more than step {step}")
            for name in st.order:
                spec = st.specs[name]
                off, n, _ = st.offsets[name]
                for key, flat in (("/params/", p_full), ("/adam/m/", m_full),
                                  ("/adam/v/", v_full)):
                    full = r.array(key + name, spec.shape, nonneg=key == "/adam/v/")
                    part = shard(full, spec.split, ps.tp, ps.tp_rank).astype(st.dtype).reshape(-1)
                    flat[off:off + n] = part if ns is np else ns.asarray(part)
            history: dict[str, list] = {k: [] for k in HISTORY}
            start = step  # format 1 files have no history: it begins here
            if "history" in f:
                start = r.int_attr("history_start", 0) if "history_start" in f.attrs else 0
                if start > step:
                    raise r.fail("history_start", f"{start} is more than step {step}")
                for k in HISTORY:
                    a = r.array("/history/" + k, finite=k != "losses")
                    if a.ndim != 1:
                        raise r.fail("/history/" + k, f"must be 1-D, has shape {a.shape}")
                    history[k] = a.tolist()
                if len(history["losses"]) != step - start:
                    raise r.fail("/history/losses", f"has {len(history['losses'])} entries, "
                                 f"the checkpoint's steps {start} to {step} are "
                                 f"{step - start}")
                if len(history["eval_steps"]) != len(history["eval_losses"]):
                    raise r.fail("/history/eval_losses", "is not as long as "
                                 "/history/eval_steps")
            attrs = {k: (v.item() if isinstance(v, np.generic) else
                         v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            out = {"step": step, "attrs": attrs, "history": history, "history_start": start}
    if st.sharder is not None:  # ZeRO-3: this rank's shard of what was read
        st.sharder.set_full_params(p_full)
    opt.set_full_state(m_full, v_full, t)
    st.refresh_resident()
    return out


# -- periodic checkpoints ----------------------------------------------------------------------
def file_name(step: int) -> str:
    """A periodic checkpoint's name in its folder: ``step_00000042.h5``."""
    return f"step_{step:08d}.h5"


def listing(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """The periodic checkpoints in ``folder``, oldest first (only complete files carry the
    name: the writer renames a finished temporary file)."""
    p = Path(folder)
    if not p.is_dir():
        return []
    found = []
    for q in p.iterdir():
        mt = FILE_RE.match(q.name)
        if mt and q.is_file():
            found.append((int(mt.group(1)), q))
    return sorted(found)


def newest(folder: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint in ``folder`` that opens as HDF5 with a step (None when
    there is none); a file that does not open (a disk that lost it) is passed over."""
    import h5py

    for _, q in reversed(listing(folder)):
        try:
            with h5py.File(q, "r") as f:
                if "step" in f.attrs and f.attrs.get("format") == FORMAT:
                    return q
        except OSError:
            continue
    return None


class Checkpointer:
    """Checkpoints every N steps into a folder, the newest ``keep`` kept (collective).

    :meth:`save` gathers the state to rank 0 (the only part training waits for) and hands
    it to a background thread that writes it (h5py and the file system release the GIL, so
    the next steps run meanwhile); the next :meth:`save` or :meth:`close` waits for it.
    ``stall_s`` and ``write_s`` add up the time training waited and the time spent writing.
    """

    def __init__(self, folder: str | os.PathLike, keep: int, comm, background: bool = True):
        self.folder, self.keep, self.comm = Path(folder), keep, comm
        self.background = background
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.stall_s = 0.0
        self.write_s = 0.0
        self.saved: list[str] = []
        if comm.Get_rank() == 0:
            self.folder.mkdir(parents=True, exist_ok=True)

    def _write(self, path: Path, snap) -> None:
        t0 = time.perf_counter()
        try:
            write(path, *snap)
            old = listing(self.folder)
            for _, q in old[:max(0, len(old) - self.keep)]:
                q.unlink(missing_ok=True)
        except BaseException as e:  # reported on the main thread by wait()
            self._error = e
        self.write_s += time.perf_counter() - t0

    def save(self, model, opt, attrs: Mapping[str, Any], history: Mapping[str, Any],
             wait: bool = False) -> Path:
        """Checkpoint the state now (collective); returns the file's path. ``wait``: return
        only once the file is written (what a run about to exit wants)."""
        t0 = time.perf_counter()
        self.wait()
        snap = snapshot(model, opt, attrs, history)
        path = self.folder / file_name(int(attrs["step"]))
        if snap is not None:
            if self.background and not wait:
                self._thread = threading.Thread(target=self._write, args=(path, snap),
                                                name="hpc.train checkpoint", daemon=False)
                self._thread.start()
            else:
                self._write(path, snap)
        if wait:
            self.wait()
        self.saved.append(str(path))
        self.stall_s += time.perf_counter() - t0
        return path

    def wait(self) -> None:
        """Wait for the write in flight (rank 0); agree on its failure (collective)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        err, self._error = self._error, None
        msg = None
        if err is not None:
            msg = f"{arg('save_dir')} {self.folder}: writing a checkpoint failed ({err})"
        agree(self.comm, msg)

    def close(self) -> None:
        """Wait for the last write (collective)."""
        self.wait()
