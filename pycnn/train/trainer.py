"""The training loop: :class:`Trainer` and :func:`fit`."""
from __future__ import annotations

import inspect
import math
import time
import warnings
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Tuple

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
from .progress import ProgressLogger

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

ArrayPair = Tuple[np.ndarray, np.ndarray]


class _NonFiniteLoss(Exception):
    """Raised by train_step (when fit asks) for a NaN or infinite loss, before the backward pass."""

    def __init__(self, loss: float) -> None:
        super().__init__(loss)
        self.loss = loss


def _accepts_input_grad(model: Any) -> bool:
    try:
        params = inspect.signature(model.backward).parameters
    except (TypeError, ValueError):
        return False
    return "input_grad" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


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

    def train_step(self, xb: np.ndarray, yb: np.ndarray) -> Tuple[float, Optional[int]]:
        """One optimisation step on a batch; returns (batch-mean loss, correct predictions or None)."""
        with enable_grad():  # a backward follows: eval-mode layers (frozen BatchNorm) save what it needs
            out = self.model(xb)
        loss = float(self.loss_fn(out, yb))
        if self._stop_on_nan and not math.isfinite(loss):
            raise _NonFiniteLoss(loss)  # before backward: the weights keep their finite values
        dout = self.loss_fn.backward()
        # Parameter gradients accumulate, so clear them before this batch's backward.
        self.optimizer.zero_grad()
        if self._input_grad_kw:
            self.model.backward(dout, input_grad=False)
        else:
            self.model.backward(dout)
        self.optimizer.step()
        correct = _n_correct(out, yb) if _is_classification(out, yb) else None
        return loss, correct

    def fit(
        self,
        x: ArrayLike,
        y: ArrayLike,
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
        x, y = check_samples(x, y, allow_empty=False)
        if validation_data is not None and validation_split:
            raise ValueError("pass validation_data or validation_split, not both")
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (x_val, y_val)")
            x_val, y_val = check_samples(*validation_data, what="validation x and y", allow_empty=False)
        elif validation_split:
            (x, y), (x_val, y_val) = _split_validation(x, y, validation_split)
            validation_data = (x_val, y_val)

        # seed=None draws the shuffling order from pycnn's generator, so
        # pycnn.manual_seed() makes the whole run (init + order) reproducible.
        loader = DataLoader(x, y, batch_size, shuffle=shuffle, seed=generator() if seed is None else seed)
        aug_rng = None
        if tf is not None:
            # Its own stream, so adding augmentation leaves the shuffling order unchanged.
            aug_rng = generator() if seed is None else np.random.default_rng([int(seed), 0x617567])
        history = History()
        self.history = history
        cbs = self.callbacks + list(callbacks) + [history]  # History records what the others added
        if verbose:
            cbs.append(ProgressLogger(verbose))
        params = {"epochs": epochs, "batch_size": batch_size, "samples": len(x), "steps": len(loader)}
        for cb in cbs:
            cb.set_trainer(self, params)
        hooks = _CallbackList(cbs)

        was_training = getattr(self.model, "training", True)
        self.stop_training = False
        self._stop_on_nan = terminate_on_nan
        hooks.on_train_begin({})
        try:
            for epoch in range(epochs):
                self.model.train()
                hooks.on_epoch_begin(epoch, {})
                total_loss = 0.0
                correct = 0
                seen = 0
                classification = True
                train_time = 0.0
                t0 = time.perf_counter()
                for batch, (xb, yb) in enumerate(loader):
                    hooks.on_batch_begin(batch, {"size": len(xb)})
                    if tf is not None:
                        xb = tf(xb, aug_rng, True)
                    try:
                        loss, n_ok = self.train_step(xb, yb)
                    except _NonFiniteLoss as e:
                        # Keras's TerminateOnNaN, but before this batch's update.
                        warnings.warn(f"fit: the loss is {e.loss} at epoch {epoch + 1}/{epochs}, batch "
                                      f"{batch + 1}/{len(loader)}; training stopped before this batch's update "
                                      f"(the batch's inputs or targets may hold NaN or Inf, or the learning rate "
                                      f"is too high); fit(..., terminate_on_nan=False) trains on regardless",
                                      RuntimeWarning, stacklevel=3)
                        total_loss += e.loss * len(xb)
                        seen += len(xb)
                        self.stop_training = True
                        break
                    total_loss += loss * len(xb)
                    seen += len(xb)
                    if n_ok is None:
                        classification = False
                    else:
                        correct += n_ok
                    logs = {"loss": loss, "size": len(xb)}
                    if n_ok is not None:
                        logs["correct"] = n_ok
                    # Callbacks' own time (progress bars) is not training time.
                    train_time += time.perf_counter() - t0
                    hooks.on_batch_end(batch, logs)
                    t0 = time.perf_counter()
                    if self.stop_training:
                        break
                epoch_logs = {"loss": total_loss / max(seen, 1)}
                if classification:
                    epoch_logs["accuracy"] = correct / max(seen, 1)
                if validation_data is not None:
                    val = evaluate(self.model, x_val, y_val, eval_batch_size, self.loss_fn, transform)
                    epoch_logs.update({f"val_{k}": v for k, v in val.items()})
                epoch_logs["time"] = train_time
                epoch_logs["images_per_s"] = seen / train_time if train_time > 0 else math.inf
                hooks.on_epoch_end(epoch, epoch_logs)
                if self.stop_training:
                    break
        finally:
            self._stop_on_nan = False
            _set_mode(self.model, was_training)
        hooks.on_train_end({})
        return history

    def evaluate(self, x: ArrayLike, y: ArrayLike, batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
                 transform: Optional[TransformLike] = None) -> Dict[str, float]:
        """:func:`evaluate` with this trainer's model and loss."""
        return evaluate(self.model, x, y, batch_size, self.loss_fn, transform)

    def predict(self, x: ArrayLike, batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
                transform: Optional[TransformLike] = None) -> np.ndarray:
        """:func:`predict` (class labels) with this trainer's model."""
        return predict(self.model, x, batch_size, transform)

    def predict_proba(self, x: ArrayLike, batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
                      transform: Optional[TransformLike] = None) -> np.ndarray:
        """:func:`predict_proba` with this trainer's model."""
        return predict_proba(self.model, x, batch_size, transform)

    def predict_outputs(self, x: ArrayLike, batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
                        transform: Optional[TransformLike] = None) -> np.ndarray:
        """:func:`predict_outputs` (raw outputs) with this trainer's model."""
        return predict_outputs(self.model, x, batch_size, transform)


def fit(
    model: Any,
    x: ArrayLike,
    y: ArrayLike,
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
        x: training inputs ``(N, ...)``, e.g. float32 images ``(N, 1, 28, 28)``.
        y: training targets ``(N, ...)``, e.g. int64 class indices ``(N,)``.
        loss_fn: e.g. ``nn.CrossEntropyLoss()``.
        optimizer: e.g. ``optim.SGD(model.parameters(), lr=0.05, momentum=0.9)``.
        epochs: passes over the data (0 trains nothing).
        batch_size: samples per step; the last batch of an epoch may be smaller.
        validation_data: ``(x_val, y_val)`` evaluated after every epoch.
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

    Returns:
        A :class:`History`; ``history.history`` maps ``loss``, ``accuracy``,
        ``val_loss``, ``val_accuracy``, ``time`` and ``images_per_s`` (and
        ``lr`` with a learning-rate schedule) to a list with one value per epoch.
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
    )
