"""Output files that never destroy anything: written to a private temporary, then renamed.

A run that fails half-way never leaves a file that looks complete, and never replaces what it
must not:

- the temporary is created with ``O_EXCL`` under a random name in the target's folder
  (:func:`tempfile.mkstemp`), so a symlink planted there is never followed;
- it is renamed only over a regular file or over nothing: a directory, a device, a FIFO or a
  socket at the target is refused (:class:`~hpc.core.errors.UsageError`), except that
  :func:`write_json` writes a character device or a FIFO directly (``--json /dev/stdout``);
- it is removed when the write fails; when the process gets SIGTERM/SIGHUP/SIGINT, by a
  handler that unlinks it first thing (it is registered in the same signal-blocked step that
  creates it, and the handler is installed only while a temporary is live); when the process is
  killed outright (SIGKILL: ``mpiexec`` kills the other ranks a few milliseconds after the first
  one dies, before their handlers may have run), by a small watcher process that outlives the
  writer and removes what it left when its pipe closes; and, when the watcher died with it
  (the whole node or cgroup killed), by the next write to the same target on the same host.

:func:`check_output` tests a path before the work starts, so an unwritable output is an exit 2
at once and not a traceback after the whole run.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .errors import UsageError

__all__ = ["atomic_path", "write_json", "check_output", "check_distinct"]

_LIVE: set[str] = set()          # temporaries of this process not yet renamed or removed
_HANDLED: dict[int, Any] = {}    # signal -> the handler ours replaced (while ours is installed)
_SIGNALS = tuple(getattr(signal, s) for s in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, s))
_NAME_MAX = 100                  # characters of the target's name kept in a temporary's name
_LOCK = threading.RLock()
_WATCHER: dict[str, Any] = {}    # {"pid": owner pid, "proc": Popen} of this process's watcher

# The watcher: reads "+ DEV INO HEXPATH" / "- DEV INO HEXPATH" lines until EOF (the writer has
# exited, however it ended), then removes each temporary still registered that is still the
# same file (same device and inode, a regular file of this user). It ignores the signals that
# end a job, so a SIGTERM sent to every process still leaves it to clean up after the others.
_WATCHER_SRC = r"""
import os, signal, stat, sys
for s in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"):
    if hasattr(signal, s):
        signal.signal(getattr(signal, s), signal.SIG_IGN)
live = {}
for line in sys.stdin.buffer:
    try:
        op, dev, ino, path = line.split()
        key = bytes.fromhex(path.decode())
        if op == b"+":
            live[key] = (int(dev), int(ino))
        else:
            live.pop(key, None)
    except ValueError:
        continue
uid = os.getuid()
for p, ident in live.items():
    try:
        st = os.lstat(p)
        if stat.S_ISREG(st.st_mode) and st.st_uid == uid and (st.st_dev, st.st_ino) == ident:
            os.unlink(p)
    except OSError:
        pass
"""


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _prefix(name: str, pid: int | None = None) -> str:
    """``.NAME.hpc-PID-HOST-``: the pid and host let a later write remove a killed run's file."""
    return f".{name[:_NAME_MAX]}.hpc-{os.getpid() if pid is None else pid}-{_host_tag()}-"


def _on_signal(signum, frame) -> None:  # pragma: no cover - exercised through a subprocess
    prev = _HANDLED.get(signum, signal.SIG_DFL)
    if callable(prev) and prev not in (signal.SIG_DFL, signal.SIG_IGN):
        # The program handles this signal itself (Ctrl-C's KeyboardInterrupt unwinds through
        # atomic_path, which removes its file; train stops after a final checkpoint): a write
        # in progress must be left to finish.
        prev(signum, frame)
        return
    if prev == signal.SIG_IGN:
        return
    for p in list(_LIVE):  # the signal ends the process: remove what it was writing, first
        try:
            os.unlink(p)
        except OSError:
            pass
    _LIVE.clear()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    """Remove live temporaries on a terminating signal (main thread only). Called with the
    signals blocked, while a temporary is live; :func:`_restore_handlers` undoes it."""
    if threading.current_thread() is not threading.main_thread():
        return
    for s in _SIGNALS:
        try:
            prev = signal.getsignal(s)
            if prev is None or prev is _on_signal:  # installed from C (leave it), or ours
                continue
            _HANDLED[s] = prev
            signal.signal(s, _on_signal)
        except (ValueError, OSError):  # not the main interpreter, or an unsupported signal
            pass


def _restore_handlers() -> None:
    """Put back the handlers ours replaced, once no temporary is live: a process that is not
    writing gets its signals exactly as it would without this module (a rank blocked in MPI
    is not kept alive by a Python-level handler that cannot run)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for s, prev in list(_HANDLED.items()):
        try:
            if signal.getsignal(s) is _on_signal:  # not if the program has replaced ours since
                signal.signal(s, prev)
                del _HANDLED[s]
        except (ValueError, OSError):
            pass


@contextmanager
def _signals_blocked() -> Iterator[None]:
    """The terminating signals held back (this thread) while a temporary is created and
    registered, or renamed and unregistered: a handler never sees a half-registered file."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    except (AttributeError, ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _watch(op: str, name: str, st: os.stat_result) -> None:
    """Tell this process's watcher (started on first use) that ``name`` is live (``+``) or gone
    (``-``). Best effort: without a watcher, the signal handler and the next write's sweep
    still remove the file."""
    line = f"{op} {st.st_dev} {st.st_ino} {os.fsencode(name).hex()}\n".encode()
    w = _WATCHER.get("proc")
    if w is None or _WATCHER.get("pid") != os.getpid() or w.poll() is not None:
        if op == "-":
            return
        try:
            w = subprocess.Popen([sys.executable, "-I", "-S", "-c", _WATCHER_SRC],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, bufsize=0, close_fds=True,
                                 start_new_session=True)  # not in the job's process group
        except (OSError, ValueError):
            _WATCHER.clear()
            return
        _WATCHER.update(pid=os.getpid(), proc=w)
    try:
        w.stdin.write(line)
    except (OSError, ValueError):
        _WATCHER.clear()


def _register(name: str) -> None:
    """Mark a just-created temporary live: for the handler, the watcher and (the first one)
    install the handler. Called with the signals blocked, right after the file is created."""
    with _LOCK:
        _LIVE.add(name)
        try:
            _watch("+", name, os.lstat(name))
        except OSError:
            pass
        _install_handlers()


def _unregister(name: str, st: os.stat_result | None) -> None:
    with _LOCK:
        _LIVE.discard(name)
        if st is not None:
            _watch("-", name, st)
        if not _LIVE:
            _restore_handlers()


def _sweep(folder: Path, name: str) -> None:
    """Remove this user's temporaries of ``name`` left on this host by processes now dead."""
    head = f".{name[:_NAME_MAX]}.hpc-"
    tag = _host_tag()
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for e in entries:
        if not (e.startswith(head) and e.endswith(".tmp")):
            continue
        parts = e[len(head):].split("-")
        if len(parts) < 3 or parts[1] != tag or not parts[0].isdigit():
            continue
        pid = int(parts[0])
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except OSError:
            continue
        p = folder / e
        try:
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid():
                os.unlink(p)
        except OSError:
            pass


def _resolve(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` means: symlinks followed (as a shell redirection does)."""
    p = Path(os.fspath(path))
    if os.fspath(p) == "":
        raise UsageError("output path is empty")
    return Path(os.path.realpath(p))


def _kind(st: os.stat_result) -> str:
    m = st.st_mode
    for test, word in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket")):
        if test(m):
            return word
    return "not a regular file"


def _existing_folder(folder: Path) -> Path:
    """The nearest existing ancestor of a folder still to be created."""
    f = folder
    while not f.exists() and f != f.parent:
        f = f.parent
    return f


def check_output(path: str | os.PathLike, what: str = "output", *, stream: bool = False,
                 directory: bool = False) -> None:
    """Check before the work starts that ``path`` can be written; UsageError naming ``what``
    if not. With ``directory``, ``path`` is a folder to write files in: it must be one, or be
    creatable.

    Refused: an empty path, a directory, a socket or block device (and a character device or
    FIFO unless ``stream``: what :func:`write_json` writes directly), a folder that is not one,
    cannot be created, or refuses a new file (read-only, full permissions, ``/proc``). The test
    creates and removes one temporary file in the target's folder; nothing else is touched.
    """
    raw = os.fspath(path)
    if raw == "":
        raise UsageError(f"{what}: the path is empty")
    target = _resolve(raw)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise UsageError(f"{what} {raw}: cannot be written ({e.strerror})") from None
    if directory:
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise UsageError(f"{what} {raw}: is {_kind(st) if not stat.S_ISREG(st.st_mode) else 'a file'}"
                             ", not a directory")
        _probe(target if st is not None else _existing_folder(target), what, raw)
        return
    if st is not None and not stat.S_ISREG(st.st_mode):
        if not (stream and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode))):
            raise UsageError(f"{what} {raw}: is {_kind(st)}, not a file that can be replaced")
        if not os.access(target, os.W_OK):
            raise UsageError(f"{what} {raw}: cannot be written (permission denied)")
        return
    _probe(_existing_folder(target.parent), what, raw)
    if target.parent.is_dir():
        _sweep(target.parent, target.name)  # what a killed earlier run left beside it


def _probe(folder: Path, what: str, raw: str) -> None:
    """UsageError unless a new file can be created in ``folder`` (created and removed)."""
    if not folder.is_dir():
        raise UsageError(f"{what} {raw}: {folder} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".hpc-probe-", suffix=".tmp")
    except OSError as e:
        why = e.strerror or str(e)
        raise UsageError(f"{what} {raw}: cannot create a file in {folder} ({why})") from None
    os.close(fd)
    os.unlink(probe)


def check_distinct(**paths: str | os.PathLike | None) -> None:
    """UsageError if two of the named output paths (``json=..., output=...``) are one file."""
    seen: dict[str, str] = {}
    for name, p in paths.items():
        if p is None or os.fspath(p) == "":
            continue
        key = os.path.normcase(os.path.realpath(os.fspath(p)))
        if key in seen:
            raise UsageError(f"{seen[key]} and {name} name the same file {os.fspath(p)}; "
                             "give each output its own path")
        seen[key] = name


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new, empty temporary file beside ``path``; rename it onto ``path`` on success.

    The temporary is private (``O_EXCL``, a random name, mode 0600 until the rename, when it
    gets the mode a new file would have), and removed on any failure. Raises UsageError, before
    yielding, if the target exists and is not a regular file.
    """
    target = _resolve(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{os.fspath(path)}: is {_kind(st)}, not a file that can be replaced")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _sweep(target.parent, target.name)
        with _signals_blocked():  # created and registered as one step
            fd, name = tempfile.mkstemp(dir=target.parent, prefix=_prefix(target.name),
                                        suffix=".tmp")
            ident = os.fstat(fd)
            _register(name)
    except OSError as e:
        raise UsageError(f"{os.fspath(path)}: cannot create a file in {target.parent} "
                         f"({e.strerror or e})") from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        with _signals_blocked():
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            _unregister(name, ident)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write obj as indented JSON: atomically to a file, directly to a character device or
    FIFO. A write that fails (``/dev/full``, a FIFO with no reader) raises UsageError and
    leaves the target as it was."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n"
    target = _resolve(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    try:
        if st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
            _write_stream(target, text.encode())
            return
        with atomic_path(target) as tmp:
            with open(tmp, "w") as f:
                f.write(text)
    except OSError as e:
        raise UsageError(f"{os.fspath(path)}: the record could not be written "
                         f"({e.strerror or e})") from None


def _write_stream(target: Path, data: bytes) -> None:
    """Write to a device or FIFO in place; a FIFO with no reader is an error, not a hang."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise OSError(errno.ENXIO, "a FIFO with no reader") from None
        raise
    try:
        os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)


def _jsonable(x: Any) -> Any:
    import numpy as np

    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
