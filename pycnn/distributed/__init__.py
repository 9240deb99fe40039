"""Data-parallel training and inference across processes and machines, over MPI (mpi4py), in Horovod's API shape.

::

    # mpiexec -n 2 python train.py
    import pycnn.distributed as dist
    dist.init()
    model = build_model()
    opt = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
    dist.broadcast_parameters(model, root_rank=0)
    dist.broadcast_optimizer_state(opt, root_rank=0)
    ...                                  # each rank: its own shard of every batch, then opt.step()

or simply ``fit(model, x, y, ..., distributed=True)``, which does all of
that, shards the data, reduces the metrics and keeps the side effects
(progress, checkpoints) on rank 0. ``pip install "pycnn[mpi]"`` installs
mpi4py and the MPICH wheel (which brings ``mpiexec``). Without mpi4py, or in
one process, every function here works as a job of size 1.

Failures: an uncaught exception on one rank ends the job on every rank with
a message and a non-zero exit (see :mod:`pycnn.distributed.world`), never a
hang; ranks that disagree (another model, other data sizes) raise the same
:class:`DistributedError` on every rank. docs/distributed.md has the
details, launch flags and measurements.
"""
from __future__ import annotations

from .optimizer import DistributedOptimizer
from .sync import average_buffers, broadcast_optimizer_state, broadcast_parameters
from .world import (
    DistributedError,
    barrier,
    init,
    is_initialized,
    local_rank,
    local_size,
    rank,
    shutdown,
    size,
)

__all__ = [
    "init", "shutdown", "is_initialized", "rank", "size", "local_rank", "local_size", "barrier",
    "DistributedOptimizer", "broadcast_parameters", "broadcast_optimizer_state", "average_buffers",
    "DistributedError",
]


def __dir__() -> list[str]:
    """The public names (``__all__``) only, for ``dir()`` and tab completion."""
    return sorted(__all__)
