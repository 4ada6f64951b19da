"""Checkpoints in HDF5: every parameter and its Adam moments in the single-rank layout, and
the step, so a checkpoint saved at any layout loads at any other.

Layout of the file: ``/params/<name>``, ``/adam/m/<name>``, ``/adam/v/<name>`` (full tensors,
vocabulary padded as in every layout), attributes on ``/`` (step, adam_t, seed, model sizes,
dtype). Written atomically through hpc.core.h5io (rank 0 writes a temporary file, renames).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hpc.core import h5io
from hpc.core.errors import UsageError
from hpc.core.runtime import agree, collective

from . import comm as C
from .model import shard, unshard
from .validate import arg

SHAPE_ATTRS = ("vocab", "hidden", "heads", "layers", "seq_len")


def _owned(model, name: str) -> bool:
    ps = model.ps
    if ps.dp_rank != 0:
        return False
    if name == "embed.wte" and ps.pp > 1 and not ps.is_first_stage:
        return False
    return True


def gather_full(model, opt=None) -> dict[str, tuple[np.ndarray, ...]] | None:
    """Collective: {name: (param, adam m, adam v)} as full single-rank tensors on world rank 0
    (None elsewhere); without opt only the parameter. Also what the tests compare layouts by."""
    ps, st = model.ps, model.store
    flats = [st.flat_p] + (list(opt.full_state()) if opt is not None else [])
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


def check_writable(path: str | os.PathLike, comm) -> None:
    """Collective: raise ValueError on every rank unless rank 0 can create ``path`` (its
    nearest existing parent is a writable folder). Lets a run fail before it trains."""
    ok = True
    parent = Path(path).resolve().parent
    if comm.Get_rank() == 0:
        while not parent.exists():
            parent = parent.parent
        ok = parent.is_dir() and os.access(parent, os.W_OK)
    agree(comm, None if ok else f"{arg('save')} {path}: {parent} is not a writable folder")


def save(path: str | os.PathLike, model, opt, step: int, seed: int) -> None:
    """Collective: gather every parameter to rank 0 in the single-rank layout and write."""
    ps, st = model.ps, model.store
    full = gather_full(model, opt)
    datasets: dict = {}
    if full is not None:
        for name, arrs in full.items():
            for key, a in zip(("/params/", "/adam/m/", "/adam/v/"), arrs):
                datasets[key + name] = a
    names = ps.world.bcast(sorted(datasets) if ps.rank == 0 else None, root=0)
    if ps.rank != 0:
        datasets = {k: None for k in names}
    attrs = {"step": step, "adam_t": opt.t, "seed": seed, "dtype": str(st.dtype),
             **{k: getattr(model.cfg, k) for k in SHAPE_ATTRS}}
    h5io.write(str(path), ps.world, datasets, attrs={"/": attrs})


def load(path: str | os.PathLike, model, opt) -> int:
    """Collective: fill this rank's slices from a checkpoint; returns the step it was saved at."""
    import h5py  # 0.13 s to import: only runs that load pay it (hpc.core.h5io does the same)

    ps, st = model.ps, model.store
    step = 0
    with collective(ps.world):
        try:
            f = h5py.File(path, "r")
        except OSError as err:
            raise UsageError(f"{arg('load')} {path}: cannot open ({err})") from None
        with f:
            for k in SHAPE_ATTRS:
                want = getattr(model.cfg, k)
                if k not in f.attrs or int(f.attrs[k]) != want:
                    got = f.attrs.get(k)
                    raise UsageError(f"{arg('load')} {path}: checkpoint has {k}={got}, the run "
                                     f"has {arg(k)} {want}")
            step = int(f.attrs["step"])
            t = int(f.attrs["adam_t"])
            ns = st.host_ns
            m_full = ns.zeros(opt.padded, dtype=st.dtype)
            v_full = ns.zeros(opt.padded, dtype=st.dtype)
            for name in st.order:
                spec = st.specs[name]
                off, n, shp = st.offsets[name]
                for key, flat in (("/params/", st.flat_p), ("/adam/m/", m_full),
                                  ("/adam/v/", v_full)):
                    if key + name not in f:
                        raise UsageError(f"{arg('load')} {path}: no dataset {key + name}")
                    full = f[key + name][...]
                    part = shard(full, spec.split, ps.tp, ps.tp_rank).astype(st.dtype).reshape(-1)
                    flat[off:off + n] = part if ns is np else ns.asarray(part)
    opt.set_full_state(m_full, v_full, t)
    st.refresh_resident()
    return step
