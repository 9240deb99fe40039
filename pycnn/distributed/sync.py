"""Making the ranks' models and optimisers the same: broadcasts from a root rank, averaged buffers.

Each broadcast first gathers a description of every rank's side (names,
shapes, dtypes) and compares them, so a rank with another architecture is
reported -- on every rank, with the same message -- before any array is
sent: a broadcast of arrays of different sizes would otherwise corrupt
memory or hang.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Tuple

import numpy as np

from ..nn.module import Module
from ..nn.parameter import Parameter
from .world import check_alike, check_root, current, differences

__all__ = ["broadcast_parameters", "broadcast_optimizer_state", "average_buffers"]

def _as_targets(params: Any) -> Tuple[List[Tuple[str, np.ndarray]], List[Any]]:
    """(name, array written in place) for a mapping or (name, value) pairs, and the Parameters among them."""
    items: Iterable[Any] = params.items() if isinstance(params, Mapping) else params
    targets, owners = [], []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError("broadcast_parameters: expected an nn.Module, a mapping of names to Parameters or "
                            f"arrays, or (name, Parameter) pairs (model.named_parameters()); got an item {item!r:.80}")
        name, value = item
        if isinstance(value, Parameter):
            owners.append(value)
            value = value.data
        if not (isinstance(value, np.ndarray) and value.flags.c_contiguous and value.flags.writeable):
            raise TypeError(f"broadcast_parameters: {name!r} must be a Parameter or a writeable C-contiguous "
                            f"ndarray (it is overwritten in place), got {type(value).__name__}")
        targets.append((name, value))
    return targets, owners


def broadcast_parameters(params: Any, root_rank: int = 0) -> None:
    """Make every rank's parameters and buffers equal to ``root_rank``'s, in place (Horovod's function).

    Call it once after building the model on every rank (``fit(...,
    distributed=True)`` does), so all ranks start from the same weights.

    Args:
        params: an ``nn.Module`` (its ``state_dict()``: parameters, and
            buffers such as BatchNorm's running statistics, loaded with
            ``load_state_dict``; which parameters are frozen is compared
            too), or a mapping of names to Parameters or arrays, or
            ``(name, Parameter)`` pairs such as ``model.named_parameters()``.
        root_rank: the rank whose values every rank receives.

    Raises:
        DistributedError: on every rank, when the ranks' names, shapes or
            dtypes differ (the message lists the differences per rank).
    """
    root = check_root(root_rank, "broadcast_parameters")
    world = current()
    if isinstance(params, Module):
        state = params.state_dict()
        targets = list(state.items())
        frozen = [name for name, p in params.named_parameters() if not p.requires_grad]
        owners: List[Any] = []
    else:
        targets, owners = _as_targets(params)
        frozen = []
    described = ([(name, tuple(a.shape), a.dtype.str) for name, a in targets], frozen)

    def compare(mine: Any, theirs: Any, root: int) -> List[str]:
        diffs = differences(mine[0], theirs[0], root)
        if mine[1] != theirs[1]:
            diffs.append(f"frozen parameters {mine[1]} where rank {root} has {theirs[1]}")
        return diffs

    check_alike("broadcast_parameters: every rank must build the same model", described, root, compare)
    if world.size == 1:
        return
    for _, a in targets:
        world.bcast_(a.reshape(-1), root)
    if world.rank != root:
        if isinstance(params, Module):
            params.load_state_dict(state)  # (in place, and marks prepared inference weights stale)
        for p in owners:
            p._version += 1


def _inner(optimizer: Any) -> Any:
    from .optimizer import DistributedOptimizer

    return optimizer.optimizer if isinstance(optimizer, DistributedOptimizer) else optimizer


def broadcast_optimizer_state(optimizer: Any, root_rank: int = 0) -> None:
    """Make every rank's optimiser state (hyper-parameters, momentum buffers, Adam's moments and step) ``root_rank``'s.

    For a run resumed from a checkpoint that only the root loaded; with a
    fresh optimiser it makes sure the hyper-parameters agree. Works on a
    :class:`DistributedOptimizer` or the optimiser it wraps.

    Raises:
        DistributedError: on every rank, when the ranks' optimisers differ
            in class or in their parameters' shapes.
    """
    root = check_root(root_rank, "broadcast_optimizer_state")
    world = current()
    opt = _inner(optimizer)
    if not (hasattr(opt, "state_dict") and hasattr(opt, "load_state_dict") and hasattr(opt, "params")):
        raise TypeError(f"broadcast_optimizer_state: expected a pycnn optimizer, got {type(opt).__name__}")
    shapes = [(f"parameter {i}", tuple(p.shape), p.dtype.str) for i, p in enumerate(opt.params)]
    check_alike("broadcast_optimizer_state: every rank must build the same optimiser", (type(opt).__name__, shapes),
                root, lambda mine, theirs, root: ([f"optimizer {mine[0]} where rank {root} has {theirs[0]}"]
                                                  if mine[0] != theirs[0] else []) + differences(mine[1], theirs[1], root))
    if world.size == 1:
        return
    sd = opt.state_dict() if world.rank == root else None
    # The root's layout: hyper-parameters and scalars travel pickled, arrays by broadcast.
    layout = world.allgather_object(None if sd is None else {
        "param_groups": sd["param_groups"],
        "state": {i: {k: (("array", v.shape, v.dtype.str) if isinstance(v, np.ndarray) else ("value", v))
                      for k, v in s.items()} for i, s in sd["state"].items()},
    })[root]
    state: Dict[Any, Dict[str, Any]] = {}
    for i, entries in layout["state"].items():
        state[i] = {}
        for k, (kind, *spec) in entries.items():
            if kind == "value":
                state[i][k] = spec[0]
                continue
            a = sd["state"][i][k] if sd is not None else np.empty(spec[0], np.dtype(spec[1]))
            world.bcast_(a.reshape(-1), root)
            state[i][k] = a
    if world.rank != root:
        opt.load_state_dict({"state": state, "param_groups": layout["param_groups"]})


def average_buffers(model: Module) -> None:
    """Average the model's floating-point buffers over the ranks, in place (BatchNorm's running statistics).

    In data-parallel training each rank's BatchNorm layers normalise with
    their own batch's statistics and update their own running mean and
    variance. Running statistics are exponential moving averages, linear in
    the per-step statistics, so averaging them over the ranks once (before
    evaluating or saving; ``fit(..., distributed=True)`` does it after every
    epoch) gives the same values as averaging every step would: the moving
    average of the mean over the ranks of each step's batch statistics.
    Integer buffers (``num_batches_tracked``) are equal on every rank already.
    """
    world = current()
    owners = []
    seen = set()
    for m in model.modules():
        for name, b in m._buffers.items():
            if b is not None and b.dtype.kind == "f" and id(b) not in seen:
                seen.add(id(b))
                owners.append((m, b))
    if world.size == 1 or not owners:
        return
    flat = np.concatenate([b.ravel().astype(np.float64) for _, b in owners])
    world.allreduce_sum_(flat)
    flat /= world.size
    offset = 0
    for m, b in owners:
        np.copyto(b, flat[offset : offset + b.size].reshape(b.shape), casting="same_kind")
        offset += b.size
        m._buffers_changed()
