"""The SPMD runner every app uses: errors become exit codes, exceptions become MPI Abort.

Like ``python -m mpi4py``: an uncaught exception on any rank aborts the whole job instead of
leaving the other ranks blocked in a collective. A UsageError raised on every rank is a
clean exit 2 with one ``error:`` line from rank 0.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from contextlib import contextmanager
from typing import Callable, Iterator, NoReturn, Sequence

from mpi4py import MPI

from .errors import EXIT_USAGE, InputTypeError, UsageError

_ERRCOMM = None  # a private duplicate of COMM_WORLD that only error agreement uses


def world():
    """COMM_WORLD."""
    return MPI.COMM_WORLD


def as_comm(comm) -> MPI.Intracomm:
    """``comm`` checked for the public API: None gives ``MPI.COMM_WORLD``; anything but an
    mpi4py intracommunicator raises :class:`InputTypeError` (a TypeError). The one check every
    public function's ``comm`` argument goes through."""
    if comm is None:
        return MPI.COMM_WORLD
    if not isinstance(comm, MPI.Intracomm):
        raise InputTypeError(f"comm must be an mpi4py intracommunicator, got {type(comm).__name__}")
    return comm


def _agree_timeout() -> float:
    return float(os.environ.get("HPC_ERROR_AGREE_TIMEOUT", "5"))


def _usage_exit(err: UsageError) -> int:
    """Exit 2 cleanly if every rank raised; otherwise print and abort (others may be blocked)."""
    comm = world()
    rank, size = comm.Get_rank(), comm.Get_size()
    msg = str(err).strip().splitlines()[0] if str(err).strip() else "bad usage"
    if size == 1:
        print(f"error: {msg}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    req = _ERRCOMM.Ibarrier()
    deadline = time.monotonic() + _agree_timeout()
    while not req.Test():
        if time.monotonic() > deadline:
            # Only some ranks failed, outside a collective() block: the rest may be waiting
            # in a collective that will never complete.
            print(f"error: {msg} (rank {rank})", file=sys.stderr, flush=True)
            time.sleep(0.2)
            comm.Abort(EXIT_USAGE)
        time.sleep(0.001)
    if rank == 0:
        print(f"error: {msg}", file=sys.stderr, flush=True)
    return EXIT_USAGE


def _abort(exc: BaseException) -> NoReturn:
    comm = world()
    rank = comm.Get_rank()
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    sys.stderr.write("".join(f"[rank {rank}] {line}" for text in lines for line in text.splitlines(True)))
    sys.stderr.flush()
    time.sleep(0.2)  # let mpiexec forward the traceback before Abort tears the job down
    comm.Abort(1)
    os._exit(1)  # Abort does not return; this is belt and braces


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> NoReturn:
    """Run an app's ``main(argv) -> exit code`` on every rank and exit with its status."""
    global _ERRCOMM
    comm = world()
    if _ERRCOMM is None:
        _ERRCOMM = comm.Dup()
    try:
        code = main(argv)
    except UsageError as err:
        code = _usage_exit(err)
    except SystemExit as exc:  # argparse's --help
        code = exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        comm.Abort(130)
        raise
    except BaseException as exc:  # noqa: BLE001 - every other failure aborts the job
        _abort(exc)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(int(code or 0))


@contextmanager
def collective(comm=None) -> Iterator[None]:
    """Agree on user errors raised inside the block on any subset of ranks.

    Every rank enters and leaves together; if any rank raised UsageError, every rank raises
    the first (lowest rank's) message, as an InputTypeError where that was one, so the job
    exits 2 cleanly instead of hanging.
    """
    comm = comm if comm is not None else world()
    local: tuple[bool, str] | None = None   # (an InputTypeError, its message)
    try:
        yield
    except UsageError as err:
        local = (isinstance(err, InputTypeError), str(err))
    if comm.Get_size() > 1:
        local = next((e for e in comm.allgather(local) if e is not None), None)
    if local is not None:
        raise (InputTypeError if local[0] else UsageError)(local[1])


def agree(comm, local_error: str | None) -> None:
    """Raise UsageError everywhere if any rank reports an error message (collective)."""
    with collective(comm):
        if local_error is not None:
            raise UsageError(local_error)
