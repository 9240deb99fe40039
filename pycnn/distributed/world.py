"""The process group: :func:`init`, rank and size, the collectives pycnn uses, and ending the job on a failure.

Two implementations of one small interface: :class:`_World` is a single
process without MPI (every collective is the identity), :class:`_MPIWorld`
runs the collectives over an mpi4py communicator.

Every collective of :class:`_MPIWorld` is non-blocking (``Iallreduce``,
``Ibcast``, ...) and waited for together with a standing receive for failure
notices (``MPI.Request.Waitany``), so a rank waiting for its peers learns at
once when one of them failed, instead of waiting forever: a rank that fails
sends every other rank a notice (:meth:`_MPIWorld.announce_failure`); a rank
that receives one while waiting prints a line saying so, acknowledges, and
raises :class:`DistributedError`. The failed rank then waits (at most
:data:`FAILURE_GRACE_SECONDS`) for the acknowledgements, so every rank has
said why it stops, and ends the whole job with ``MPI_Abort`` (non-zero exit
on every rank): a job in which one rank has gone cannot finish its
collectives, and a rank that merely exits leaves the others waiting forever
(measured with MPICH: a rank that calls ``sys.exit`` while another is in a
barrier hangs the job).
"""
from __future__ import annotations

import atexit
import os
import pickle
import sys
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["DistributedError", "init", "shutdown", "is_initialized", "rank", "size", "local_rank", "local_size",
           "barrier", "FAILURE_GRACE_SECONDS"]

#: How long a failed rank waits for the others to report the failure before it ends the job.
FAILURE_GRACE_SECONDS = 10.0

# Environment variables that MPI launchers set in every process they start:
# with one of these above 1 and no mpi4py, running as size 1 would train the
# same model independently in every process, so init() refuses.
_LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")

_TAG_FAILED = 0x7A1  # a rank's failure notice (message: its error, as UTF-8)
_TAG_ACK = 0x7A2  # "I have seen your notice"
_NOTICE_BYTES = 2048


class DistributedError(RuntimeError):
    """A collective operation could not complete.

    Either the ranks disagree (different models, data sizes or optimiser
    state): then every rank raises the same error (``every_rank`` is True)
    and the job can exit normally; or another rank failed (``every_rank`` is
    False): the job is ended on every rank (see :mod:`pycnn.distributed`).
    """

    def __init__(self, message: str, every_rank: bool) -> None:
        super().__init__(message)
        self.every_rank = every_rank


class _World:
    """A single process without MPI: rank 0 of 1, every collective the identity."""

    rank = 0
    size = 1
    local_rank = 0
    local_size = 1

    def allreduce_sum_(self, buf: np.ndarray) -> None:
        """Sum ``buf`` (contiguous) over the ranks, in place."""

    def bcast_(self, buf: np.ndarray, root: int) -> None:
        """Overwrite ``buf`` (contiguous) with root's, in place."""

    def allgather_object(self, obj: Any) -> List[Any]:
        """Every rank's ``obj`` (picklable), in rank order."""
        return [obj]

    def allgatherv(self, a: np.ndarray) -> np.ndarray:
        """Every rank's rows of ``a`` concatenated in rank order (the trailing shapes must agree)."""
        return a

    def barrier(self) -> None:
        """Wait until every rank has arrived."""

    def announce_failure(self, text: str) -> None:
        """Tell the other ranks that this one failed (see the module docstring)."""

    def end_job(self) -> None:
        """After a failure: end the job on every rank (MPI_Abort); returns only without MPI."""

    def close(self) -> None:
        """Release what the world holds (at exit or :func:`shutdown`)."""


class _MPIWorld(_World):
    """The ranks of an mpi4py communicator (see the module docstring for the failure protocol)."""

    def __init__(self, MPI: Any, comm: Any) -> None:
        self.MPI = MPI
        # Private duplicates: pycnn's messages never match a user's on the same communicator.
        self.comm = comm.Dup()
        self.notices = comm.Dup()
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        local = comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()
        #: Why this rank can no longer take part in collectives (its own failure or a peer's).
        self.failure: Optional[str] = None
        self.announced = False
        self._sends: List[Any] = []
        self._notice = bytearray(_NOTICE_BYTES)
        self._notice_req = self._post_notice_receive()

    def _post_notice_receive(self) -> Any:
        return self.notices.Irecv(self._notice, source=self.MPI.ANY_SOURCE, tag=_TAG_FAILED)

    def _notice_text(self) -> str:
        return bytes(self._notice).rstrip(b"\0").decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ waiting
    def _wait(self, start: Callable[[], Any], what: str) -> None:
        """Start a non-blocking collective and wait for it, or for a peer's failure notice."""
        if self.failure is not None:
            raise DistributedError(f"pycnn.distributed: cannot run {what}: {self.failure}", every_rank=False)
        req = start()
        status = self.MPI.Status()
        if self.MPI.Request.Waitany([req, self._notice_req], status) == 0:
            return
        source = status.Get_source()
        text = self._notice_text()
        self.failure = f"rank {source} of {self.size} failed: {text}"
        print(f"pycnn.distributed: rank {self.rank} of {self.size} stops (waiting in {what}) because rank {source} "
              f"failed: {text}", file=sys.stderr, flush=True)
        self._sends.append(self.notices.Isend(bytearray(1), dest=source, tag=_TAG_ACK))
        raise DistributedError(f"rank {source} of {self.size} failed: {text}; rank {self.rank} stops too",
                               every_rank=False)

    # ------------------------------------------------------------------ collectives
    def allreduce_sum_(self, buf: np.ndarray) -> None:
        self._wait(lambda: self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM), "an all-reduce")

    def bcast_(self, buf: np.ndarray, root: int) -> None:
        self._wait(lambda: self.comm.Ibcast(buf, root=root), "a broadcast")

    def _allgather_counts(self, n: int) -> np.ndarray:
        mine = np.array([n], np.int64)
        counts = np.empty(self.size, np.int64)
        self._wait(lambda: self.comm.Iallgather(mine, counts), "an all-gather")
        return counts

    def allgather_object(self, obj: Any) -> List[Any]:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        counts = self._allgather_counts(len(data))
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        out = bytearray(int(counts.sum()))
        self._wait(lambda: self.comm.Iallgatherv([data, self.MPI.BYTE],
                                                 [out, (counts, displs), self.MPI.BYTE]), "an all-gather")
        # The bytes come from this job's own ranks, which run the same program.
        return [pickle.loads(bytes(out[d : d + c])) for d, c in zip(displs, counts)]

    def allgatherv(self, a: np.ndarray) -> np.ndarray:
        a = np.ascontiguousarray(a)
        shapes = self.allgather_object((a.shape, a.dtype.str))
        if len({(s[1:], d) for s, d in shapes}) > 1:
            raise DistributedError("all-gather: the ranks' arrays differ beyond their first axis: "
                                   + ", ".join(f"rank {r}: {s} {np.dtype(d)}" for r, (s, d) in enumerate(shapes)),
                                   every_rank=True)
        row = int(np.prod(a.shape[1:], dtype=np.int64))
        counts = np.array([s[0] * row for s, _ in shapes], np.int64)
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        out = np.empty((sum(s[0] for s, _ in shapes),) + a.shape[1:], a.dtype)
        self._wait(lambda: self.comm.Iallgatherv(a, [out, (counts, displs)]), "an all-gather")
        return out

    def barrier(self) -> None:
        self._wait(self.comm.Ibarrier, "a barrier")

    # ------------------------------------------------------------------ failures
    def announce_failure(self, text: str) -> None:
        if self.announced or self.failure is not None:  # already said, or a peer's failure: nothing new
            return
        self.announced = True
        self.failure = f"rank {self.rank} of {self.size} failed: {text}"
        msg = bytearray(_NOTICE_BYTES)
        raw = text.encode("utf-8")[: _NOTICE_BYTES - 1]
        msg[: len(raw)] = raw
        for r in range(self.size):
            if r != self.rank:
                self._sends.append(self.notices.Isend(msg, dest=r, tag=_TAG_FAILED))

    def end_job(self) -> None:
        if self.announced:
            # Give the others a moment to receive the notice and say why they stop.
            pending = set(range(self.size)) - {self.rank}
            ack = self.notices.Irecv(bytearray(1), source=self.MPI.ANY_SOURCE, tag=_TAG_ACK)
            deadline = time.monotonic() + FAILURE_GRACE_SECONDS
            status = self.MPI.Status()
            while pending and time.monotonic() < deadline:
                if ack.Test(status):
                    pending.discard(status.Get_source())
                    ack = self.notices.Irecv(bytearray(1), source=self.MPI.ANY_SOURCE, tag=_TAG_ACK)
                elif self._notice_req.Test(status):  # a peer that failed too will not acknowledge
                    pending.discard(status.Get_source())
                    self._notice_req = self._post_notice_receive()
                else:
                    time.sleep(0.005)
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(1)

    def close(self) -> None:
        if self.failure is not None:
            self.end_job()  # a failure was caught and the program went on to exit: end the job, never hang
        self._notice_req.Cancel()
        self._notice_req.Wait()
        self.MPI.Request.Waitall(self._sends)
        self.notices.Free()
        self.comm.Free()


_world: Optional[_World] = None
_previous_excepthook: Optional[Callable[..., Any]] = None


def _launcher_size() -> int:
    for var in _LAUNCHER_SIZE_VARS:
        try:
            return int(os.environ[var])
        except (KeyError, ValueError):
            continue
    return 1


def _default_threads(local_size: int) -> int:
    total = os.cpu_count() or 1
    mask = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else total
    # A launcher that bound this rank to some cores has already divided them.
    return mask if mask < total else max(1, total // local_size)


def describe(exc: BaseException) -> str:
    """``"ValueError: message"`` (first line), what failure notices and messages say about an exception."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _excepthook(exc_type: Any, exc: BaseException, tb: Any) -> None:
    assert _previous_excepthook is not None
    _previous_excepthook(exc_type, exc, tb)  # the traceback, as usual
    end_job_after(exc)


def end_job_after(exc: BaseException) -> None:
    """After ``exc`` ended this rank's work: with other ranks, tell them and end the job (MPI_Abort).

    Returns without doing anything in a single process, and for a
    :class:`DistributedError` that every rank raised alike (the job can
    exit normally: no rank is left waiting).
    """
    world = _world
    if world is None or world.size == 1 or (isinstance(exc, DistributedError) and exc.every_rank):
        return
    assert isinstance(world, _MPIWorld)
    world.announce_failure(describe(exc))  # (nothing new if a peer's failure is what stopped this rank)
    if world.announced:
        print(f"pycnn.distributed: rank {world.rank} of {world.size} failed ({describe(exc)}); ending the job "
              f"on every rank", file=sys.stderr, flush=True)
    world.end_job()


def init(comm: Any = None) -> None:
    """Join the job's process group; call it once on every rank before any other function here.

    With mpi4py installed the ranks are those of ``comm`` (default
    ``MPI.COMM_WORLD``; any mpi4py intracommunicator works). Without it this
    process is rank 0 of 1 and everything runs as in a single process,
    unless an MPI launcher started it as one of several processes (then each
    would train alone): that raises ``ImportError`` naming the extra to
    install. Calling it again does nothing.

    With more than one rank it also:

    * sets pycnn's threads to the cores divided by the ranks on this machine
      (``local_size``), unless ``OMP_NUM_THREADS`` is set or
      :func:`pycnn.set_num_threads` was called: oversubscribed cores make
      every rank wait for the slowest;
    * installs an exception hook: an uncaught exception on one rank prints
      its traceback, tells the other ranks and ends the job on all of them
      with a non-zero exit, instead of leaving them waiting forever.
    """
    global _world, _previous_excepthook
    if _world is not None:
        return
    try:
        from mpi4py import MPI
    except ImportError:
        if comm is not None:
            raise ImportError("pycnn.distributed.init(comm): mpi4py is not installed "
                              "(pip install \"pycnn[mpi]\")") from None
        launched = _launcher_size()
        if launched > 1:
            raise ImportError(f"pycnn.distributed: this process was started by an MPI launcher as one of "
                              f"{launched}, but mpi4py is not installed, so each process would train alone: "
                              f"pip install \"pycnn[mpi]\" (mpi4py and the MPICH wheel)") from None
        _world = _World()
        return
    _world = world = _MPIWorld(MPI, MPI.COMM_WORLD if comm is None else comm)
    atexit.register(_close_at_exit)  # after mpi4py's own (MPI_Finalize), so it runs before it
    if world.size > 1:
        import pycnn

        if "OMP_NUM_THREADS" not in os.environ and not pycnn._num_threads_chosen:
            from .. import _core

            _core.set_num_threads(_default_threads(world.local_size))
        _previous_excepthook = sys.excepthook
        sys.excepthook = _excepthook


def _close_at_exit() -> None:
    if _world is not None:
        shutdown()


def shutdown() -> None:
    """Leave the process group (done at exit); :func:`init` may be called again afterwards."""
    global _world, _previous_excepthook
    world, _world = _world, None
    if _previous_excepthook is not None:
        sys.excepthook = _previous_excepthook
        _previous_excepthook = None
    if world is not None:
        world.close()


def is_initialized() -> bool:
    """Whether :func:`init` has been called (and not :func:`shutdown`)."""
    return _world is not None


def current() -> _World:
    """The world joined by :func:`init`; ``ValueError`` before it (Horovod's rule: a forgotten init would
    otherwise run every rank as a job of its own)."""
    if _world is None:
        raise ValueError("pycnn.distributed has not been initialized: call pycnn.distributed.init() first")
    return _world


def joined() -> _World:
    """The world, joining it first if needed (for ``distributed=True`` options)."""
    init()
    return current()


def rank() -> int:
    """This process's rank, 0 to ``size() - 1``."""
    return current().rank


def size() -> int:
    """The number of processes (ranks) in the job."""
    return current().size


def local_rank() -> int:
    """This process's rank among those on the same machine."""
    return current().local_rank


def local_size() -> int:
    """The number of ranks on this machine."""
    return current().local_size


def barrier() -> None:
    """Wait until every rank has called it (raises :class:`DistributedError` if a rank failed meanwhile)."""
    current().barrier()


def check_root(root_rank: Any, op: str) -> int:
    """``root_rank`` checked as a rank of the current world."""
    from .._checks import check_int

    world = current()
    root = check_int(root_rank, "root_rank", op, 0)
    if root >= world.size:
        raise ValueError(f"{op}: root_rank must be below the number of ranks ({world.size}), got {root}")
    return root


#: (name, shape, dtype) of one array, as the ranks compare them.
Entry = Tuple[str, Tuple[int, ...], str]


def _entry_text(entry: Entry) -> str:
    return f"{entry[0]!r} of shape {entry[1]} ({np.dtype(entry[2])})"


def differences(mine: Sequence[Entry], root: Sequence[Entry], root_rank: int) -> List[str]:
    """How a rank's entries differ from the root's, in words (empty: the same)."""
    if list(mine) == list(root):
        return []
    theirs = {e[0]: e for e in root}
    ours = {e[0]: e for e in mine}
    out = [f"{_entry_text(e)} where rank {root_rank} has {_entry_text(theirs[e[0]])}"
           for e in mine if e[0] in theirs and e != theirs[e[0]]]
    out += [f"no {_entry_text(e)}" for e in root if e[0] not in ours]
    out += [f"{_entry_text(e)} that rank {root_rank} lacks" for e in mine if e[0] not in theirs]
    if not out:
        out.append(f"the same entries in another order than rank {root_rank}")
    return out


def check_alike(what: str, described: Any, root: int = 0,
                compare: Callable[[Any, Any, int], List[str]] = differences) -> None:
    """Gather every rank's ``described`` (one all-gather) and raise the same :class:`DistributedError` on
    every rank if any differs from the root's; ``compare(mine, root's, root)`` lists differences in words."""
    everyone = current().allgather_object(described)
    lines = []
    for r, desc in enumerate(everyone):
        diffs = compare(desc, everyone[root], root)
        if diffs:
            shown = diffs[:6] + ([f"... ({len(diffs) - 6} more)"] if len(diffs) > 6 else [])
            lines.append(f"rank {r} has " + "; ".join(shown))
    if lines:
        raise DistributedError(f"{what}: the ranks differ from rank {root}: " + " | ".join(lines), every_rank=True)
