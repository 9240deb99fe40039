"""The training loop: :class:`Trainer` and :func:`fit`."""
from __future__ import annotations

import contextlib
import inspect
import math
import time
import warnings
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Tuple, cast

import numpy as np

from .._checks import check_bool, check_int, check_samples
from ..nn.grad_mode import enable_grad
from .callbacks import Callback, History, _CallbackList
from .inference import (
    DEFAULT_EVAL_BATCH_SIZE,
    TransformLike,
    _is_classification,
    _n_correct,
    _set_mode,
    _transform_fn,
    evaluate,
    predict,
    predict_outputs,
    predict_proba,
)
from ._epoch_metrics import Accumulator
from ._epoch_metrics import resolve as resolve_metrics
from ._input_range import as_input_array
from ._sources import DataSource, is_data_source, iter_batches, source_of
from .progress import ProgressLogger

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

ArrayPair = Tuple[np.ndarray, np.ndarray]


class _NonFiniteLoss(Exception):
    """Raised (when fit asks) for a NaN or infinite loss of a batch of ``size`` samples, before the update."""

    def __init__(self, loss: float, size: int) -> None:
        super().__init__(loss)
        self.loss = loss
        self.size = size


class _StopRequested(Exception):
    """Distributed fit: a rank's callbacks asked to stop after the previous batch; leave before this update."""


def _accepts_input_grad(model: Any) -> bool:
    try:
        params = inspect.signature(model.backward).parameters
    except (TypeError, ValueError):
        return False
    return "input_grad" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _check_model_argument(model: Any) -> None:
    """fit(loader, ...) or fit(x, y, ...) without the model: say that the model comes first."""
    if isinstance(model, np.ndarray) or (hasattr(model, "__iter__") and not callable(model)):
        raise TypeError(f"fit: the first argument is the model, got {type(model).__name__}: call "
                        f"fit(model, x, y, loss_fn=..., optimizer=...) or fit(model, loader, loss_fn=..., "
                        f"optimizer=...)")


def _split_validation(x: np.ndarray, y: np.ndarray, validation_split: Any) -> Tuple[ArrayPair, ArrayPair]:
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float, np.floating)) \
            or not 0.0 < float(validation_split) < 1.0:
        raise ValueError(f"validation_split must be a number strictly between 0 and 1, got {validation_split!r}")
    # Keras's rule: the *last* fraction of the samples as given, before shuffling.
    split_at = int(len(x) * (1.0 - float(validation_split)))
    if split_at == 0 or split_at == len(x):
        raise ValueError(f"validation_split={validation_split} of {len(x)} samples leaves an empty "
                         f"{'training' if split_at == 0 else 'validation'} set")
    return (x[:split_at], y[:split_at]), (x[split_at:], y[split_at:])


class Trainer:
    """A model, its loss and its optimiser, and the loop that trains them.

    Args:
        model: a network with ``__call__``, ``backward(dy)``, ``train()``
            and ``eval()`` (e.g. ``nn.Sequential``). If its ``backward``
            takes ``input_grad``, training passes ``input_grad=False``: the
            input images need no gradient, which saves the first layer's
            data-gradient pass.
        loss_fn: a loss module: ``loss_fn(outputs, targets)`` returns the
            batch-mean loss as a float and ``loss_fn.backward()`` returns its
            gradient with respect to ``outputs``.
        optimizer: an optimiser over ``model.parameters()`` with ``step()``
            and ``zero_grad()``.
        callbacks: extra :class:`Callback` objects for every :meth:`fit`.

    Attributes:
        stop_training: set it to True (from a callback) to stop :meth:`fit`
            after the current batch.
        history: the :class:`History` of the running (or last) :meth:`fit`.
    """

    def __init__(self, model: Any, loss_fn: Any, optimizer: Any, callbacks: Sequence[Callback] = ()) -> None:
        _check_model_argument(model)
        if loss_fn is None:
            raise TypeError("Trainer: loss_fn is required (e.g. nn.CrossEntropyLoss())")
        if optimizer is None:
            raise TypeError("Trainer: optimizer is required (e.g. optim.SGD(model.parameters(), lr=0.05))")
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.callbacks = list(callbacks)
        self.stop_training = False
        self.history: Optional[History] = None
        self._input_grad_kw = _accepts_input_grad(model)
        self._stop_on_nan = False  # set by fit(terminate_on_nan=...)
        #: This process's rank in a distributed fit (0 otherwise): callbacks print on rank 0 only.
        self.rank = 0

    def _forward_backward(self, xb: np.ndarray, yb: np.ndarray, optimizer: Any,
                          check_loss: bool) -> Tuple[np.ndarray, float]:
        """Forward, loss and backward of a batch (gradients cleared first); returns (outputs, loss)."""
        with enable_grad():  # a backward follows: eval-mode layers (frozen BatchNorm) save what it needs
            out = self.model(xb)
        loss = float(self.loss_fn(out, yb))
        if check_loss and not math.isfinite(loss):
            raise _NonFiniteLoss(loss, len(xb))  # before backward: the weights keep their finite values
        dout = self.loss_fn.backward()
        # Parameter gradients accumulate, so clear them before this batch's backward.
        optimizer.zero_grad()
        if self._input_grad_kw:
            self.model.backward(dout, input_grad=False)
        else:
            self.model.backward(dout)
        return out, loss

    def train_step(self, xb: np.ndarray, yb: np.ndarray,
                   outputs: Optional[Accumulator] = None) -> Tuple[float, Optional[int]]:
        """One optimisation step on a batch; returns (batch-mean loss, correct predictions or None).

        ``outputs``, when given, collects the batch's targets and outputs for fit's ``metrics``.
        """
        out, loss = self._forward_backward(xb, yb, self.optimizer, self._stop_on_nan)
        if outputs is not None:
            outputs.add(yb, out)
        self.optimizer.step()
        correct = _n_correct(out, yb) if _is_classification(out, yb) else None
        return loss, correct

    def _distributed_step(self, xb: np.ndarray, yb: np.ndarray, dopt: Any) -> Tuple[float, Optional[int], int]:
        """One step of a distributed fit; returns the (loss, correct, samples) of the batch over all ranks.

        The batch's loss, correct predictions and size, and whether this
        rank wants to stop, travel in the gradients' all-reduce: no message
        of their own. The checks on them come after the reduction and before
        the update, so every rank decides alike.
        """
        out, loss = self._forward_backward(xb, yb, dopt, check_loss=False)
        n_ok = _n_correct(out, yb) if _is_classification(out, yb) else None
        sums = dopt.synchronize((loss * len(xb), n_ok or 0, len(xb), n_ok is None, self.stop_training))
        if sums[4] > 0:
            raise _StopRequested
        n = int(sums[2])
        loss = float(sums[0]) / n
        if self._stop_on_nan and not math.isfinite(loss):
            raise _NonFiniteLoss(loss, n)
        dopt.step()
        return loss, (None if sums[3] > 0 else int(sums[1])), n

    def _join(self, world: Any, x: np.ndarray, y: np.ndarray, validation: Optional[ArrayPair], seed: Optional[int],
              batch_size: int) -> Tuple[int, Any]:
        """Start a distributed fit: check the ranks agree, share rank 0's seed and weights; (seed, optimizer)."""
        from .._random import generator
        from ..distributed import DistributedOptimizer, broadcast_optimizer_state, broadcast_parameters
        from ..distributed.world import check_alike

        if batch_size % world.size:
            raise ValueError(f"fit(distributed=True): batch_size is the global batch, split evenly over the "
                             f"{world.size} ranks; {batch_size} is not a multiple of {world.size}")
        if not all(hasattr(self.model, a) for a in ("state_dict", "load_state_dict", "modules")):
            raise TypeError("fit(distributed=True) needs an nn.Module (state_dict, load_state_dict, modules) to "
                            f"share the weights, got {type(self.model).__name__}")
        arrays = [("x", x), ("y", y)] + ([("validation x", validation[0]), ("validation y", validation[1])]
                                         if validation is not None else [])
        check_alike("fit(distributed=True): every rank must pass the same data",
                    [(name, tuple(a.shape), a.dtype.str) for name, a in arrays])
        mine = int(generator().integers(2**63)) if seed is None else int(seed)
        shared_seed = world.allgather_object(mine)[0]
        broadcast_parameters(self.model, 0)
        broadcast_optimizer_state(self.optimizer, 0)
        dopt = self.optimizer if isinstance(self.optimizer, DistributedOptimizer) \
            else DistributedOptimizer(self.optimizer)
        return shared_seed, dopt

    def fit(
        self,
        x: Any,
        y: Optional[ArrayLike] = None,
        *,
        epochs: int = 1,
        batch_size: int = 32,
        validation_data: Optional[ArrayPair] = None,
        validation_split: float = 0.0,
        shuffle: bool = True,
        seed: Optional[int] = None,
        verbose: int = 1,
        callbacks: Sequence[Callback] = (),
        eval_batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
        transform: Optional[TransformLike] = None,
        terminate_on_nan: bool = True,
        distributed: bool = False,
        metrics: Optional[Sequence[Any]] = None,
    ) -> History:
        """Train for ``epochs`` passes over ``(x, y)``; see :func:`fit`."""
        from .._random import generator
        from ..data import DataLoader

        epochs = check_int(epochs, "epochs", "fit", 0)
        batch_size = check_int(batch_size, "batch_size", "fit", 1)
        eval_batch_size = check_int(eval_batch_size, "eval_batch_size", "fit", 1)
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        terminate_on_nan = check_bool(terminate_on_nan, "terminate_on_nan", "fit")
        tf = _transform_fn(transform)
        extra = resolve_metrics(metrics, "fit")
        if validation_data is not None and validation_split:
            raise ValueError("pass validation_data or validation_split, not both")
        source = source_of(x, y, "fit", epochs, distributed, "fit(model, loader, loss_fn=..., optimizer=...)")
        if source is not None and validation_split:
            raise ValueError("fit: validation_split needs arrays; with an iterable of batches pass "
                             "validation_data (arrays (x_val, y_val) or another iterable of batches)")
        if source is None:
            if y is None:
                raise ValueError("fit: y is None: pass the targets, fit(model, x, y, ...), or x as an iterable of "
                                 "(x, y) batches such as pycnn.data.DataLoader(x, y, batch_size=32)")
            x, y = check_samples(as_input_array(x, self.model, training=True), y, allow_empty=False)
        y = cast(np.ndarray, y)  # (unused with a data source)
        val_source = False
        if validation_data is not None:
            if is_data_source(validation_data):
                DataSource(validation_data, "fit: validation_data", epochs)  # a generator: one epoch only
                val_source = True
            elif not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (x_val, y_val) or an iterable of (x, y) batches")
            else:
                x_val, y_val = check_samples(*validation_data, what="validation x and y", allow_empty=False)
        elif validation_split:
            (x, y), (x_val, y_val) = _split_validation(x, y, validation_split)
            validation_data = (x_val, y_val)

        world: Any = None  # the ranks (pycnn.distributed) in a distributed fit
        dopt: Any = None  # its DistributedOptimizer when there are several ranks
        if distributed:
            from ..distributed.world import joined

            world = joined()
        loader: Any
        aug_rng: Optional[np.random.Generator] = None
        if source is not None:
            loader = source
        elif world is not None and world.size > 1:
            if extra:
                raise ValueError("fit: metrics are not available with distributed=True")
            seed, dopt = self._join(world, x, y, validation_data, seed, batch_size)
            # Every rank draws the same order from the shared seed and takes its shard of every batch.
            loader = DataLoader(x, y, batch_size // world.size, shuffle=shuffle, seed=seed,
                                num_replicas=world.size, rank=world.rank)
            aug_rng = np.random.default_rng([seed, 0x617567, world.rank]) if tf is not None else None
        else:
            # seed=None draws the shuffling order from pycnn's generator, so
            # pycnn.manual_seed() makes the whole run (init + order) reproducible.
            loader = DataLoader(x, y, batch_size, shuffle=shuffle, seed=generator() if seed is None else seed)
        if tf is not None and dopt is None:
            # Its own stream, so adding augmentation leaves the shuffling order unchanged.
            aug_rng = generator() if seed is None else np.random.default_rng([int(seed), 0x617567])
        self.rank = 0 if world is None else world.rank
        history = History()
        self.history = history
        cbs = self.callbacks + list(callbacks) + [history]  # History records what the others added
        if verbose:
            cbs.append(ProgressLogger(verbose))
        if self.rank != 0:  # progress, checkpoints: rank 0's business
            cbs = [cb for cb in cbs if not cb.rank_zero_only]
        steps = source.known_length() if source is not None else len(loader)
        params = {"epochs": epochs, "batch_size": batch_size if source is None else None,
                  "samples": len(x) if source is None else None, "steps": steps}
        if dopt is not None:
            params["ranks"] = world.size
        for cb in cbs:
            cb.set_trainer(self, params)
        hooks = _CallbackList(cbs)

        was_training = getattr(self.model, "training", True)
        self.stop_training = False
        self._stop_on_nan = terminate_on_nan
        from .. import get_num_threads
        from .._blas import blas_limited

        hooks.on_train_begin({})
        blas = contextlib.ExitStack()  # NumPy's BLAS on one thread while the loop runs (pycnn._blas)
        blas.enter_context(blas_limited(get_num_threads()))
        try:
            for epoch in range(epochs):
                self.model.train()
                hooks.on_epoch_begin(epoch, {})
                total_loss = 0.0
                correct = 0
                seen = 0
                classification = True
                train_time = 0.0
                seen_outputs = Accumulator(extra)
                t0 = time.perf_counter()
                batches = iter_batches(source) if source is not None else loader
                for batch, (xb, yb) in enumerate(batches):
                    if source is not None:
                        xb = as_input_array(xb, self.model, training=True)
                    hooks.on_batch_begin(batch, {"size": len(xb)})
                    if tf is not None:
                        xb = tf(xb, aug_rng, True)
                    try:
                        if dopt is None:
                            size = len(xb)
                            loss, n_ok = self.train_step(xb, yb, seen_outputs)
                        else:
                            loss, n_ok, size = self._distributed_step(xb, yb, dopt)
                    except _NonFiniteLoss as e:
                        # Keras's TerminateOnNaN, but before this batch's update.
                        if self.rank == 0:
                            of_steps = "" if steps is None else f"/{steps}"
                            warnings.warn(f"fit: the loss is {e.loss} at epoch {epoch + 1}/{epochs}, batch "
                                          f"{batch + 1}{of_steps}; training stopped before this batch's "
                                          f"update (the batch's inputs or targets may hold NaN or Inf, or the "
                                          f"learning rate is too high); fit(..., terminate_on_nan=False) trains "
                                          f"on regardless", RuntimeWarning, stacklevel=3)
                        total_loss += e.loss * e.size
                        seen += e.size
                        self.stop_training = True
                        break
                    except _StopRequested:
                        self.stop_training = True
                        break
                    total_loss += loss * size
                    seen += size
                    if n_ok is None:
                        classification = False
                    else:
                        correct += n_ok
                    logs = {"loss": loss, "size": size}
                    if n_ok is not None:
                        logs["correct"] = n_ok
                    # Callbacks' own time (progress bars) is not training time.
                    train_time += time.perf_counter() - t0
                    hooks.on_batch_end(batch, logs)
                    t0 = time.perf_counter()
                    # (A distributed fit tells the other ranks in the next batch's all-reduce.)
                    if self.stop_training and dopt is None:
                        break
                if dopt is not None:
                    from ..distributed import average_buffers

                    average_buffers(self.model)  # BatchNorm's running statistics: the ranks' mean
                epoch_logs = {"loss": total_loss / max(seen, 1)}
                if seen == 0 and source is not None:
                    raise ValueError(f"fit: x yielded no batch in epoch {epoch + 1} (an empty iterable, or a "
                                     f"function returning an exhausted generator)")
                if classification:
                    epoch_logs["accuracy"] = correct / max(seen, 1)
                epoch_logs.update(seen_outputs.scores())
                if validation_data is not None:
                    val_x, val_y = (validation_data, None) if val_source else (x_val, y_val)
                    val = evaluate(self.model, val_x, val_y, eval_batch_size, self.loss_fn, transform,
                                   distributed=dopt is not None, metrics=metrics)
                    epoch_logs.update({f"val_{k}": v for k, v in val.items()})
                epoch_logs["time"] = train_time
                epoch_logs["images_per_s"] = seen / train_time if train_time > 0 else math.inf
                hooks.on_epoch_end(epoch, epoch_logs)
                if dopt is not None:  # stop when any rank's callbacks say so
                    self.stop_training = any(world.allgather_object(self.stop_training))
                if self.stop_training:
                    break
        except BaseException as e:
            if dopt is not None:
                from ..distributed.world import DistributedError, describe

                if not isinstance(e, DistributedError):
                    world.announce_failure(describe(e))  # the others stop at their next collective
            raise
        finally:
            blas.close()
            self._stop_on_nan = False
            _set_mode(self.model, was_training)
        hooks.on_train_end({})
        return history

    def evaluate(self, x: Any, y: Optional[ArrayLike] = None, batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
                 transform: Optional[TransformLike] = None, distributed: bool = False,
                 metrics: Optional[Sequence[Any]] = None) -> Dict[str, float]:
        """:func:`evaluate` with this trainer's model and loss."""
        return evaluate(self.model, x, y, batch_size, self.loss_fn, transform, distributed, metrics)

    def predict(self, x: Any, batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
                transform: Optional[TransformLike] = None, distributed: bool = False) -> np.ndarray:
        """:func:`predict` (class labels) with this trainer's model."""
        return predict(self.model, x, batch_size, transform, distributed)

    def predict_proba(self, x: Any, batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
                      transform: Optional[TransformLike] = None, distributed: bool = False) -> np.ndarray:
        """:func:`predict_proba` with this trainer's model."""
        return predict_proba(self.model, x, batch_size, transform, distributed)

    def predict_outputs(self, x: Any, batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
                        transform: Optional[TransformLike] = None, distributed: bool = False) -> np.ndarray:
        """:func:`predict_outputs` (raw outputs) with this trainer's model."""
        return predict_outputs(self.model, x, batch_size, transform, distributed)


def fit(
    model: Any,
    x: Any,
    y: Optional[ArrayLike] = None,
    *,
    loss_fn: Any,
    optimizer: Any,
    epochs: int = 1,
    batch_size: int = 32,
    validation_data: Optional[ArrayPair] = None,
    validation_split: float = 0.0,
    shuffle: bool = True,
    seed: Optional[int] = None,
    verbose: int = 1,
    callbacks: Sequence[Callback] = (),
    eval_batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
    transform: Optional[TransformLike] = None,
    terminate_on_nan: bool = True,
    distributed: bool = False,
    metrics: Optional[Sequence[Any]] = None,
) -> History:
    """Train ``model`` on ``(x, y)`` with mini-batch gradient descent.

    Each epoch shuffles the samples (unless ``shuffle=False``), then for each
    batch applies ``transform`` (augmentation) and runs forward, the loss,
    backward and ``optimizer.step()``. After the epoch it evaluates on the
    validation data (in ``eval()`` mode, not counted in the epoch's time),
    records everything in the returned :class:`History` and, if
    ``verbose``, prints a line like::

        Epoch 1/2 - 12.3s - 4,870 images/s - loss: 0.5123 - accuracy: 0.8123 - val_loss: 0.3901 - val_accuracy: 0.8602

    The model trains in ``train()`` mode; its previous mode is restored at
    the end.

    Args:
        model: the network (see :class:`Trainer`).
        x: training inputs ``(N, ...)``, e.g. float32 images ``(N, 1, 28, 28)``
            (float64, integer and list inputs are converted to float32; uint8
            images are *not* scaled, see docs/training.md); or, with
            ``y=None``, a data source yielding ``(x, y)`` batches: a
            :class:`pycnn.data.DataLoader`, an object whose ``__iter__``
            starts a new pass each epoch, a function returning a new iterable
            (``lambda: batches_from_disk(path)``), or a generator (one epoch
            only: a second pass over a generator is empty, so ``epochs > 1``
            with a generator raises ``ValueError``). The source makes its own
            batches: ``batch_size``, ``shuffle`` and ``seed`` (except for
            ``transform``'s random draws) do not apply, nor do
            ``validation_split`` and ``distributed``.
        y: training targets ``(N, ...)``, e.g. int64 class indices ``(N,)``;
            None when ``x`` is a data source.
        loss_fn: e.g. ``nn.CrossEntropyLoss()``.
        optimizer: e.g. ``optim.SGD(model.parameters(), lr=0.05, momentum=0.9)``.
        epochs: passes over the data (0 trains nothing).
        batch_size: samples per step; the last batch of an epoch may be smaller.
        validation_data: ``(x_val, y_val)`` evaluated after every epoch, or a
            data source of ``(x, y)`` batches (as ``x``; read once per epoch).
        validation_split: instead of ``validation_data``, hold out this
            fraction (0 < f < 1) of ``(x, y)``: the *last*
            ``len(x) - int(len(x) * (1 - f))`` samples as given, taken before
            any shuffling (Keras's rule; shuffle data sorted by class first).
        shuffle: reshuffle every epoch.
        seed: int seed for the shuffling order (and the augmentation's
            random draws); None draws them from pycnn's generator, so
            ``pycnn.manual_seed(s)`` before building the model makes the
            whole run reproducible.
        verbose: 0 silent; 1 a progress bar per epoch with loss, accuracy and
            images/s (tqdm, on a terminal or notebook) and a line per epoch;
            2 a line per epoch only.
        callbacks: :class:`Callback` objects to call during training, e.g.
            :class:`EarlyStopping`, :class:`ModelCheckpoint`, :class:`CosineDecay`.
        eval_batch_size: batch size for the validation pass.
        transform: per-batch augmentation, e.g. ``data.Compose([data.RandomCrop(28,
            padding=2), data.RandomHorizontalFlip()])``. Training batches get
            it in training mode (random, seeded as above); validation
            batches in evaluation mode (only deterministic steps such as
            ``data.Normalize``). A plain function ``f(x)`` is applied to
            training batches only.
        terminate_on_nan: stop training, with a ``RuntimeWarning`` naming the
            epoch and batch, when a batch's loss is NaN or infinite (checked
            before its backward pass, so the weights keep their last finite
            values; Keras's ``TerminateOnNaN``). False trains on regardless.
        distributed: data-parallel training over the ranks of
            :mod:`pycnn.distributed` (joined if needed; ``mpiexec -n 2
            python script.py``). Every rank calls ``fit`` with the same
            arguments and data; ``batch_size`` is the global batch, split
            evenly over the ranks (it must be a multiple of their number),
            so the hyper-parameters mean what they mean in one process.
            Rank 0's weights, optimiser state and seed are shared first;
            each epoch every rank draws the same order and trains on its
            shard of every batch, with gradients averaged in one all-reduce
            per step; BatchNorm's running statistics are averaged after each
            epoch; the metrics (training and validation) are over all ranks'
            samples and the same on every rank, and so are the callbacks'
            decisions; progress output and checkpoints (callbacks with
            ``rank_zero_only``) happen on rank 0 only. With one rank it is
            ``fit`` as usual. See docs/distributed.md.
        metrics: extra scores per epoch: names ``"precision"``, ``"recall"``,
            ``"f1"`` (macro averages), ``"top_k_accuracy"`` (k = 5),
            ``"top3_accuracy"`` (any k), or functions ``f(y_true, outputs)``
            (or ``("name", f)`` pairs) returning a float; recorded as
            ``f1`` (training) and ``val_f1`` (validation). See
            :mod:`pycnn.train._epoch_metrics`.

    Returns:
        A :class:`History`; ``history.history`` maps ``loss``, ``accuracy``,
        ``val_loss``, ``val_accuracy``, ``time`` and ``images_per_s`` (and
        ``lr`` with a learning-rate schedule, and each metric) to a list with
        one value per epoch.
    """
    trainer = Trainer(model, loss_fn, optimizer)
    return trainer.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation_data,
        validation_split=validation_split,
        shuffle=shuffle,
        seed=seed,
        verbose=verbose,
        callbacks=callbacks,
        eval_batch_size=eval_batch_size,
        transform=transform,
        terminate_on_nan=terminate_on_nan,
        distributed=distributed,
        metrics=metrics,
    )
