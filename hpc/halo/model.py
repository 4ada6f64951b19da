"""The measured send model behind ``--method auto`` (TEMPI's idea, measured on this machine).

``python -m hpc.halo measure`` (or :func:`measure`) times, across message sizes and block
lengths:

- ``contig``: ping-pong of contiguous bytes (half the round trip);
- ``datatype``: ping-pong of the same bytes described by a 2-D strided datatype (block
  length b, stride 2b): the library packs and unpacks;
- ``pack`` / ``unpack``: our packer on the same 2-D strided block.

Each figure is a trimean ((Q1 + 2 Q2 + Q3) / 4) of samples taken in batches until two
successive batches' trimeans agree within a tolerance (or a batch limit is hit), and the
whole table is cached as JSON per user (``$HPC_HALO_MODEL``, else
``$XDG_CACHE_HOME/hpc/halo/model-<host>.json``, else ``~/.cache/hpc/halo/...``). The cache
is trusted only as far as it must be: its directory must belong to the user and is kept at
mode 0700 (one owned by someone else, or writable by others, is refused: never read, never
written), the file must be a regular file of the user's, and its structure is validated on
load (:func:`validate`); an invalid cache is re-measured and replaced. Ping-pongs are
measured between rank 0 and a rank on the same host, and, when the job spans hosts, a rank on
another host; a model without the off-host table says so when it is used off-host.

:meth:`Model.choose` then compares, for one face (canonical block, bytes, same host or not),
``pack + contiguous send + unpack`` against the library's datatype send, interpolating
log-log in size and taking the nearest measured block length, and returns the choice with
its reason.
"""
from __future__ import annotations

import json
import math
import os
import socket
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mpi4py import MPI

from hpc.core.errors import UsageError
from hpc.core.exchange import host_ids

from . import packers
from .canonical import StridedBlock

VERSION = 1
#: a model file is a few kB; anything far larger is not one of ours (and is not parsed)
MAX_BYTES = 1 << 20
SIZES = [2**k for k in range(6, 23, 2)]        # 64 B .. 4 MiB
QUICK_SIZES = [2**k for k in range(6, 21, 2)]  # 64 B .. 1 MiB
BLOCKS = [8, 64, 512, 4096]


def trimean(x) -> float:
    q1, q2, q3 = np.percentile(np.asarray(x, float), [25, 50, 75])
    return float((q1 + 2 * q2 + q3) / 4)


def cache_path() -> Path:
    """Where the model of this host lives (per user)."""
    env = os.environ.get("HPC_HALO_MODEL")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    host = socket.gethostname().split(".")[0] or "host"
    return Path(base) / "hpc" / "halo" / f"model-{host}.json"


class InvalidModel(ValueError):
    """A model file that is not a model of this version: wrong structure or values."""


class UntrustedCache(UsageError):
    """The cache's directory or file belongs to someone else or others may write it."""


def _uid() -> int:
    return os.geteuid()


def _default_dir() -> bool:
    return not os.environ.get("HPC_HALO_MODEL")


def check_dir(d: Path, create: bool, dedicated: bool | None = None) -> None:
    """Check (and with ``create`` make) the directory of a model cache.

    It must be a directory of the user's that nobody else may write. The default one
    (``.../hpc/halo``, ``dedicated``) is the cache's alone: created with mode 0700 and
    tightened to 0700 when looser. A directory named through ``HPC_HALO_MODEL`` or
    ``--model`` is the user's to set up: never chmod-ed, refused when others may write it.

    Raises UntrustedCache (a UsageError) otherwise."""
    dedicated = _default_dir() if dedicated is None else dedicated
    if create and not d.exists():
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        st = os.lstat(d)
    except FileNotFoundError:
        return  # nothing there yet: nothing to trust or distrust
    if not stat.S_ISDIR(st.st_mode):
        raise UntrustedCache(f"halo model cache directory {d} is not a directory")
    if st.st_uid != _uid():
        raise UntrustedCache(f"halo model cache directory {d} belongs to uid {st.st_uid}, not "
                             f"to this user (uid {_uid()}): refused (set HPC_HALO_MODEL to a "
                             "path in a directory of yours, mode 0700)")
    mode = stat.S_IMODE(st.st_mode)
    if dedicated and create and mode != 0o700:
        os.chmod(d, 0o700)
    elif mode & 0o022:  # others could plant or swap the file
        raise UntrustedCache(f"halo model cache directory {d} is writable by others (mode "
                             f"{mode:04o}): refused")


def _series(name: str, v: Any, n: int) -> None:
    if not isinstance(v, list) or len(v) != n:
        raise InvalidModel(f"{name} must be a list of {n} times, got "
                           f"{type(v).__name__}{' of ' + str(len(v)) if isinstance(v, list) else ''}")
    for x in v:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) \
                or x <= 0:
            raise InvalidModel(f"{name} holds {x!r}: times must be positive finite numbers")


def _ints(name: str, v: Any) -> list[int]:
    if not isinstance(v, list) or not v:
        raise InvalidModel(f"{name} must be a non-empty list of byte counts")
    if any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in v):
        raise InvalidModel(f"{name} must hold positive integers, got {v!r:.80}")
    if any(b <= a for a, b in zip(v, v[1:])):
        raise InvalidModel(f"{name} must be strictly increasing, got {v!r:.80}")
    return v


def validate(d: Any) -> None:
    """Raise InvalidModel (with the first thing wrong) unless d is a well-formed model.

    Checked: a JSON object of this version; ``sizes`` and ``blocks`` non-empty, strictly
    increasing positive integers; ``contig`` with a ``same_host`` series (``other_host``
    optional); ``datatype`` with the same placements, each with a series per block; ``pack``
    and ``unpack`` with a series per block; every series as long as ``sizes`` of positive
    finite times; ``meta`` an object."""
    if not isinstance(d, dict):
        raise InvalidModel(f"a model is a JSON object, got {type(d).__name__}")
    if d.get("version") != VERSION:
        raise InvalidModel(f"model version {d.get('version')!r:.40} (expected {VERSION})")
    missing = [k for k in ("sizes", "blocks", "contig", "datatype", "pack", "unpack")
               if k not in d]
    if missing:
        raise InvalidModel(f"model lacks {', '.join(missing)}")
    n = len(_ints("sizes", d["sizes"]))
    blocks = [str(b) for b in _ints("blocks", d["blocks"])]
    contig, dtype = d["contig"], d["datatype"]
    if not isinstance(contig, dict) or "same_host" not in contig \
            or set(contig) - {"same_host", "other_host"}:
        raise InvalidModel("contig must map same_host (and optionally other_host) to series")
    if not isinstance(dtype, dict) or set(dtype) != set(contig):
        raise InvalidModel(f"datatype must have the placements of contig ({sorted(contig)})")
    for place in contig:
        _series(f"contig.{place}", contig[place], n)
        if not isinstance(dtype[place], dict) or set(dtype[place]) != set(blocks):
            raise InvalidModel(f"datatype.{place} must have a series per block {blocks}")
        for b in blocks:
            _series(f"datatype.{place}.{b}", dtype[place][b], n)
    for key in ("pack", "unpack"):
        if not isinstance(d[key], dict) or set(d[key]) != set(blocks):
            raise InvalidModel(f"{key} must have a series per block {blocks}")
        for b in blocks:
            _series(f"{key}.{b}", d[key][b], n)
    if not isinstance(d.get("meta", {}), dict):
        raise InvalidModel("meta must be an object")


@dataclass
class Model:
    """Measured times (seconds) per size, and per block length where it matters."""

    sizes: list[int]
    blocks: list[int]
    contig: dict[str, list[float]]                  # "same_host"/"other_host" -> per size
    datatype: dict[str, dict[str, list[float]]]     # placement -> str(block) -> per size
    pack: dict[str, list[float]]                    # str(block) -> per size
    unpack: dict[str, list[float]]
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""                                # where this model came from (the record)

    # -- interpolation -------------------------------------------------------------------
    def _at(self, series: list[float], nbytes: int) -> float:
        xs = np.log(np.asarray(self.sizes, float))
        ys = np.log(np.maximum(np.asarray(series, float), 1e-12))
        x = math.log(max(nbytes, 1))
        if x >= xs[-1]:  # beyond the table: bandwidth-bound, linear in bytes
            return float(series[-1]) * nbytes / self.sizes[-1]
        return float(math.exp(np.interp(x, xs, ys)))

    def _block(self, b: int) -> str:
        return str(min(self.blocks, key=lambda m: abs(math.log(m) - math.log(max(b, 1)))))

    def costs(self, block: StridedBlock, nbytes: int, same_host: bool) -> dict[str, float]:
        place = "same_host" if same_host or "other_host" not in self.contig else "other_host"
        b = self._block(block.block_bytes)
        t_contig = self._at(self.contig[place], nbytes)
        return {
            "datatype": self._at(self.datatype[place][b], nbytes),
            "pack": self._at(self.pack[b], nbytes) + t_contig + self._at(self.unpack[b], nbytes),
            "place": place, "block": int(b),
        }

    def choose(self, block: StridedBlock | None, nbytes: int, same_host: bool) -> tuple[str, str]:
        """("pack" | "datatype", why) for one face."""
        if block is None:
            return "datatype", "library fallback: not a strided form"
        if block.ndim == 1:
            return "datatype", "contiguous bytes: nothing to pack, the library sends in place"
        c = self.costs(block, nbytes, same_host)
        pick = "pack" if c["pack"] < c["datatype"] else "datatype"
        note = "" if (same_host or c["place"] == "other_host") else \
            " (no off-host measurement: same-host figures used)"
        return pick, (f"model: pack+send+unpack {c['pack'] * 1e6:.1f} us vs datatype send "
                      f"{c['datatype'] * 1e6:.1f} us ({nbytes} B, blocks of "
                      f"{block.block_bytes} B ~ {c['block']} B, {c['place'].replace('_', ' ')})"
                      + note)

    # -- persistence ---------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, "sizes": self.sizes, "blocks": self.blocks,
                "contig": self.contig, "datatype": self.datatype, "pack": self.pack,
                "unpack": self.unpack, "meta": self.meta}

    @classmethod
    def from_json(cls, d: dict[str, Any], source: str = "") -> "Model":
        """The model of a JSON object; InvalidModel (a ValueError) unless :func:`validate`
        passes."""
        validate(d)
        return cls(d["sizes"], d["blocks"], d["contig"], d["datatype"], d["pack"], d["unpack"],
                   d.get("meta", {}), source)

    def save(self, path: Path | None = None) -> Path:
        """Write the model (atomically) into a directory of the user's, mode 0700.

        Raises UntrustedCache (a UsageError) when the directory belongs to someone else."""
        from hpc.core.atomic import write_json

        dedicated = path is None and _default_dir()
        path = Path(path or cache_path())
        check_dir(path.parent, create=True, dedicated=dedicated)
        write_json(str(path), self.to_json())
        return path


def read(path: Path | None = None) -> tuple[Model | None, str]:
    """(the cached model, "") or (None, why it is not used): absent, untrusted, unreadable,
    invalid, or measured with another MPI. Never raises for a bad file."""
    dedicated = path is None and _default_dir()
    path = Path(path or cache_path())
    try:
        check_dir(path.parent, create=False, dedicated=dedicated)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None, "absent"
    except UntrustedCache as exc:
        return None, str(exc)
    except OSError as exc:  # a symlink (ELOOP), a directory, no permission
        return None, f"cannot open {path}: {exc.strerror or exc}"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, f"{path} is not a regular file"
        if st.st_uid != _uid():
            return None, f"{path} belongs to uid {st.st_uid}, not to this user: refused"
        if st.st_size > MAX_BYTES:
            return None, f"{path} is {st.st_size} bytes, not a model (at most {MAX_BYTES})"
        with os.fdopen(fd, "rb") as f:
            fd = -1
            raw = f.read(MAX_BYTES + 1)
    finally:
        if fd >= 0:
            os.close(fd)
    try:
        m = Model.from_json(json.loads(raw), source=f"cached model {path}")
    except RecursionError:  # deeply nested JSON
        return None, f"{path} is not a model: nested too deeply"
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, InvalidModel
        return None, f"{path} is not a valid model: {exc}"
    if m.meta.get("mpi") != MPI.Get_library_version().splitlines()[0]:
        return None, f"{path} was measured with another MPI library"
    return m, ""


def load(path: Path | None = None) -> Model | None:
    """The cached model, or None when absent, untrusted, unreadable, invalid, or measured
    with another MPI (:func:`read` says which)."""
    return read(path)[0]


# -- measuring -------------------------------------------------------------------------------
class _Stable:
    """Batches of samples until two successive trimeans agree (or the batch limit)."""

    def __init__(self, rtol: float, min_batches: int, max_batches: int):
        self.rtol, self.min_b, self.max_b = rtol, min_batches, max_batches
        self.samples: list[float] = []
        self.prev: float | None = None
        self.batches = 0

    def add(self, batch: list[float]) -> bool:
        """Add a batch; True when done."""
        self.samples += batch
        self.batches += 1
        t = trimean(self.samples)
        done = (self.batches >= self.min_b and self.prev is not None
                and abs(t - self.prev) <= self.rtol * self.prev) or self.batches >= self.max_b
        self.prev = t
        return done

    @property
    def value(self) -> float:
        return trimean(self.samples)


def _pingpong(comm, me: int, peer: int, lead: bool, nbytes: int, dtype, stable: _Stable,
              batch: int) -> float | None:
    """Half round trip of one message (seconds), repeated until stable; lead decides."""
    if dtype is None:
        buf = np.zeros(nbytes, np.uint8)
        spec = [buf, MPI.BYTE]
    else:
        t, span = dtype
        buf = np.zeros(span, np.uint8)
        spec = [buf, 1, t]
    tag = 77
    while True:
        times = []
        for _ in range(batch):
            if lead:
                t0 = time.perf_counter()
                comm.Send(spec, peer, tag)
                comm.Recv(spec, peer, tag)
                times.append((time.perf_counter() - t0) / 2)
            else:
                comm.Recv(spec, peer, tag)
                comm.Send(spec, peer, tag)
        if lead:  # the leader judges stability and tells its partner
            done = stable.add(times)
            comm.send(done, peer, 78)
        else:
            done = comm.recv(source=peer, tag=78)
        if done:
            return stable.value if lead else None


def _pack_time(pack, block: StridedBlock, src: np.ndarray, dst: np.ndarray,
               stable: _Stable, batch: int) -> float:
    pack(src, block, dst)  # warm (JIT, page faults)
    while True:
        times = []
        for _ in range(batch):
            t0 = time.perf_counter()
            pack(src, block, dst)
            times.append(time.perf_counter() - t0)
        if stable.add(times):
            return stable.value


def measure(comm, quick: bool = False, packer: str = "native", progress=None,
            rtol: float = 0.05) -> Model:
    """Measure the model on comm (collective; ping-pongs between rank 0 and its partners).

    Returns the model on every rank. quick: fewer sizes and batches (the automatic
    measurement ``--method auto`` does when no model is cached).
    """
    rank, size = comm.Get_rank(), comm.Get_size()
    sizes = QUICK_SIZES if quick else SIZES
    min_b, max_b, batch = (2, 6, 5) if quick else (3, 30, 10)
    hosts = host_ids(comm)
    partners: dict[str, int] = {}
    same = [r for r in range(1, size) if hosts[r] == hosts[0]]
    other = [r for r in range(1, size) if hosts[r] != hosts[0]]
    partners["same_host"] = same[0] if same else 0  # alone: rank 0 talks to itself
    if other:
        partners["other_host"] = other[0]

    def say(msg: str) -> None:
        if progress and rank == 0:
            progress(msg)

    contig: dict[str, list[float]] = {}
    dtype_t: dict[str, dict[str, list[float]]] = {}
    for place, peer in partners.items():
        contig[place] = []
        dtype_t[place] = {str(b): [] for b in BLOCKS}
        for n in sizes:
            involved = rank in (0, peer)
            lead = rank == 0
            # a rank talking to itself: Isend + Recv ping
            if involved:
                if peer == 0:
                    contig[place].append(_self_time(comm, n, None, min_b, max_b, batch, rtol))
                else:
                    v = _pingpong(comm, rank, peer if lead else 0, lead, n, None,
                                  _Stable(rtol, min_b, max_b), batch)
                    if lead:
                        contig[place].append(v)
            for b in BLOCKS:
                blk = min(b, n)
                cnt = max(1, n // blk)
                t = MPI.BYTE.Create_hvector(cnt, blk, 2 * blk).Commit()
                span = 2 * blk * cnt
                if involved:
                    if peer == 0:
                        v = _self_time(comm, n, (t, span), min_b, max_b, batch, rtol)
                    else:
                        v = _pingpong(comm, rank, peer if lead else 0, lead, n, (t, span),
                                      _Stable(rtol, min_b, max_b), batch)
                    if lead:
                        dtype_t[place][str(b)].append(v)
                t.Free()
            say(f"ping-pong {place.replace('_', ' ')}: {n} B done")
    comm.Barrier()
    pk: dict[str, list[float]] = {str(b): [] for b in BLOCKS}
    up: dict[str, list[float]] = {str(b): [] for b in BLOCKS}
    if rank == 0:
        pack, unpack = packers.get(packer)
        for n in sizes:
            for b in BLOCKS:
                blk = min(b, n)
                cnt = max(1, n // blk)
                block = StridedBlock(0, (blk, cnt), (1, 2 * blk)) if cnt > 1 else \
                    StridedBlock(0, (blk,), (1,))
                src = np.ones(2 * blk * cnt, np.uint8)
                dst = np.empty(blk * cnt, np.uint8)
                pk[str(b)].append(_pack_time(pack, block, src, dst,
                                             _Stable(rtol, min_b, max_b), batch))
                up[str(b)].append(_pack_time(lambda s, bl, d: unpack(d, bl, s), block, src, dst,
                                             _Stable(rtol, min_b, max_b), batch))
            say(f"pack/unpack: {n} B done")
    meta = {
        "mpi": MPI.Get_library_version().splitlines()[0],
        "host": socket.gethostname(),
        "packer": packer,
        "quick": quick,
        "ranks": size,
        "partners": partners,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "statistic": f"trimean; batches of {batch} until successive trimeans agree within "
                     f"{rtol:.0%} ({min_b}..{max_b} batches)",
    }
    d = comm.bcast(Model(sizes, BLOCKS, contig, dtype_t, pk, up, meta).to_json()
                   if rank == 0 else None, root=0)
    return Model.from_json(d, source="measured now")


def _self_time(comm, nbytes: int, dtype, min_b: int, max_b: int, batch: int,
               rtol: float) -> float:
    """One rank alone: a message to itself (Isend + Recv), the best a single rank can time."""
    if dtype is None:
        a, b = np.zeros(nbytes, np.uint8), np.zeros(nbytes, np.uint8)
        sa, sb = [a, MPI.BYTE], [b, MPI.BYTE]
    else:
        t, span = dtype
        a, b = np.zeros(span, np.uint8), np.zeros(span, np.uint8)
        sa, sb = [a, 1, t], [b, 1, t]
    me = comm.Get_rank()
    st = _Stable(rtol, min_b, max_b)
    while True:
        times = []
        for _ in range(batch):
            t0 = time.perf_counter()
            r = comm.Isend(sa, me, 79)
            comm.Recv(sb, me, 79)
            r.Wait()
            times.append(time.perf_counter() - t0)
        if st.add(times):
            return st.value


def load_or_measure(comm, quick: bool = True) -> Model:
    """The cached model (rank 0 reads, every rank gets it), else a quick measurement now,
    cached for next time (replacing an invalid cache). Collective.

    A cache that cannot be used never aborts the run: it is re-measured, and the model's
    ``source`` (in the run record) says why and whether the new one was cached."""
    m, why = read() if comm.Get_rank() == 0 else (None, "")
    d = comm.bcast(None if m is None else (m.to_json(), m.source), root=0)
    if d is not None:
        return Model.from_json(d[0], source=d[1])
    why = comm.bcast(why, root=0)
    m = measure(comm, quick=quick)
    path, err = None, ""
    if comm.Get_rank() == 0:
        try:
            path = m.save()
        except (OSError, UsageError) as exc:
            err = str(exc)
    path, err = comm.bcast((str(path) if path else None, err), root=0)
    head = "no cached model" if why == "absent" else f"cached model not used ({why})"
    m.source = (f"{head}: measured now (quick) and cached in {path}" if path
                else f"{head}: measured now (quick); not cached ({err})")
    return m
