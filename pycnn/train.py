"""Training loop: :func:`fit`, :func:`evaluate`, :func:`predict`.

The loop is the textbook one, written out once so nobody has to::

    for xb, yb in loader:                      # one epoch
        logits = model(xb)
        loss = loss_fn(logits, yb)
        optimizer.zero_grad()
        model.backward(loss_fn.backward(), input_grad=False)
        optimizer.step()

Use the functions (``fit(model, x, y, loss_fn=..., optimizer=...)``) or, to
keep a model, loss and optimiser together across several calls, a
:class:`Trainer` (``Trainer(model, loss_fn, optimizer).fit(x, y)``); the
functions are thin wrappers around it.

Extending the loop: pass ``callbacks=[...]`` of :class:`Callback` subclasses.
A callback sees the start and end of training, of each epoch and of each
batch, with a ``logs`` dict of what was measured; it reaches the model,
optimiser and loss through ``self.trainer`` and can stop training early by
setting ``self.trainer.stop_training = True``. :class:`History`, which
:func:`fit` returns, is itself such a callback; so is the console output
(:class:`ProgressLogger`).
"""
from __future__ import annotations

import inspect
import math
import sys
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "Callback",
    "History",
    "ProgressLogger",
    "format_epoch",
    "Trainer",
    "fit",
    "evaluate",
    "predict",
    "DEFAULT_EVAL_BATCH_SIZE",
]

#: Batch size :func:`evaluate` and :func:`predict` use when none is given.
#: Inference needs no saved activations, so larger batches than training's
#: are cheap and amortise per-call overhead.
DEFAULT_EVAL_BATCH_SIZE = 256


# ---------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------


class Callback:
    """Hooks into :meth:`Trainer.fit`; override the ones you need.

    ``self.trainer`` is set before training starts (it gives ``model``,
    ``optimizer``, ``loss_fn`` and ``stop_training``), ``self.params`` holds
    ``epochs``, ``batch_size``, ``samples`` and ``steps`` (batches per epoch).

    ``logs`` passed to the hooks:

    * ``on_batch_end(batch, logs)``: ``loss`` (mean over the batch), ``size``
      (samples in it) and, for classification, ``correct``;
    * ``on_epoch_end(epoch, logs)``: ``loss``, ``accuracy``, ``time`` (seconds
      spent training, evaluation excluded), ``images_per_s`` and, with
      validation data, ``val_loss`` and ``val_accuracy``.

    Epochs and batches are numbered from 0.
    """

    trainer: "Trainer" = None
    params: dict = {}

    def set_trainer(self, trainer: "Trainer", params: dict) -> None:
        self.trainer = trainer
        self.params = params

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        pass

    def on_train_end(self, logs: Optional[dict] = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        pass

    def on_batch_begin(self, batch: int, logs: Optional[dict] = None) -> None:
        pass

    def on_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
        pass


class History(Callback):
    """What :func:`fit` returns: per-epoch metrics.

    Attributes:
        history: ``{metric: [value per epoch]}`` with the keys ``loss``,
            ``accuracy`` (classification only), ``time``, ``images_per_s`` and,
            with validation data, ``val_loss`` and ``val_accuracy``. ``loss``
            and ``accuracy`` are averaged over the epoch's batches while the
            weights change (as Keras and most training logs report them);
            ``val_*`` are measured after the epoch, in ``eval()`` mode.
            ``time`` is the seconds spent training (evaluation excluded) and
            ``images_per_s`` is training samples divided by ``time``.
        epoch: the epoch numbers recorded, from 0.
        params: ``epochs``, ``batch_size``, ``samples``, ``steps``.

    ``history["loss"]`` can be written ``history_obj["loss"]``.
    """

    def __init__(self) -> None:
        self.history: Dict[str, List[float]] = {}
        self.epoch: List[int] = []

    def on_train_begin(self, logs=None) -> None:
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> List[float]:
        return self.history[key]

    def __contains__(self, key: str) -> bool:
        return key in self.history

    def __len__(self) -> int:
        return len(self.epoch)

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(no epochs)"
        last = ", ".join(f"{k}={_fmt_value(v[-1])}" for k, v in self.history.items())
        return f"History({len(self.epoch)} epochs; last: {last})"


def _fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class ProgressLogger(Callback):
    """Console output of :func:`fit`.

    ``verbose=1``: one line per epoch, plus a progress bar while the epoch
    runs when ``tqdm`` is installed and stderr is a terminal.
    ``verbose=2``: one line per epoch only (best for logs).

    Args:
        verbose: 1 or 2, as above.
        file: where the lines go (default: ``sys.stdout`` at print time).
        formatter: ``formatter(epoch, epochs, logs) -> str`` for the epoch
            line; :func:`format_epoch` by default.
    """

    def __init__(self, verbose: int = 1, file=None, formatter=None) -> None:
        if verbose not in (1, 2):
            raise ValueError(f"ProgressLogger: verbose must be 1 or 2, got {verbose!r}")
        self.verbose = verbose
        self.file = file
        self.formatter = formatter or format_epoch
        self._bar = None

    def _use_bar(self) -> bool:
        if self.verbose != 1:
            return False
        try:
            import tqdm  # noqa: F401
        except ImportError:
            return False
        return bool(getattr(sys.stderr, "isatty", lambda: False)())

    def on_epoch_begin(self, epoch, logs=None) -> None:
        if self._use_bar():
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.params.get("samples"),
                desc=f"Epoch {epoch + 1}/{self.params.get('epochs')}",
                unit="img",
                unit_scale=True,
                leave=False,
            )
            self._loss_sum, self._seen = 0.0, 0

    def on_batch_end(self, batch, logs=None) -> None:
        if self._bar is not None:
            self._loss_sum += logs["loss"] * logs["size"]
            self._seen += logs["size"]
            self._bar.update(logs["size"])
            if batch % 10 == 0:  # the epoch's running mean, as the epoch line will report it
                self._bar.set_postfix(loss=f"{self._loss_sum / self._seen:.4f}", refresh=False)

    def on_epoch_end(self, epoch, logs=None) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        line = self.formatter(epoch, self.params.get("epochs"), logs)
        print(line, file=self.file or sys.stdout, flush=True)

    def on_train_end(self, logs=None) -> None:
        if self._bar is not None:  # stopped mid-epoch
            self._bar.close()
            self._bar = None


def format_epoch(epoch: int, epochs: Optional[int], logs: dict) -> str:
    """``Epoch 1/2 - 12.3s - 4,870 images/s - loss: 0.5123 - accuracy: 0.8123 - ...``"""
    parts = [f"Epoch {epoch + 1}/{epochs}" if epochs else f"Epoch {epoch + 1}"]
    if "time" in logs:
        parts.append(f"{logs['time']:.1f}s")
    if "images_per_s" in logs:
        parts.append(f"{logs['images_per_s']:,.0f} images/s")
    for key, value in logs.items():
        if key in ("time", "images_per_s"):
            continue
        parts.append(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return " - ".join(parts)


class _CallbackList:
    def __init__(self, callbacks: Iterable[Callback]):
        self.callbacks = list(callbacks)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args):
            for cb in self.callbacks:
                getattr(cb, hook)(*args)

        return call


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_xy(x, y, what: str = "x and y") -> Tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"{what} must have a leading sample dimension (got a 0-d array)")
    if len(x) != len(y):
        raise ValueError(f"{what} must have the same length, got {len(x)} and {len(y)}")
    if len(x) == 0:
        raise ValueError(f"{what} are empty (0 samples)")
    return x, y


def _is_classification(logits: np.ndarray, y: np.ndarray) -> bool:
    return logits.ndim == 2 and y.ndim == 1 and y.dtype.kind in "iu"


def _n_correct(logits: np.ndarray, y: np.ndarray) -> int:
    return int(np.count_nonzero(np.argmax(logits, axis=1) == y))


def _set_mode(model, training: bool) -> None:
    if training:
        model.train()
    else:
        model.eval()


def _accepts_input_grad(model) -> bool:
    try:
        params = inspect.signature(model.backward).parameters
    except (TypeError, ValueError):
        return False
    return "input_grad" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _default_loss():
    from .nn import CrossEntropyLoss

    return CrossEntropyLoss()


# ---------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------


def predict(model, x, batch_size: int = DEFAULT_EVAL_BATCH_SIZE) -> np.ndarray:
    """Run ``model`` on ``x`` in batches in ``eval()`` mode; return all outputs.

    The model's mode (train/eval) is restored afterwards, even on error.

    Args:
        model: anything callable on a batch with ``train()``/``eval()``,
            e.g. an ``nn.Sequential``.
        x: inputs ``(N, ...)``, e.g. float32 images ``(N, C, H, W)``.
        batch_size: samples per forward call.

    Returns:
        The outputs stacked along the first axis, e.g. logits ``(N, classes)``;
        for an empty ``x`` (N = 0) the model's output for the empty batch,
        e.g. ``(0, classes)``.
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"predict: x must have a leading sample dimension, got shape {x.shape}")
    was_training = getattr(model, "training", True)
    model.eval()
    try:
        if len(x) == 0:  # pycnn's layers take empty batches: the output has the right shape
            return np.asarray(model(x))
        out = None
        for start in range(0, len(x), batch_size):
            yb = np.asarray(model(x[start : start + batch_size]))
            if out is None:
                out = np.empty((len(x),) + yb.shape[1:], dtype=yb.dtype)
            out[start : start + len(yb)] = yb
        return out
    finally:
        _set_mode(model, was_training)


def evaluate(model, x, y, batch_size: int = DEFAULT_EVAL_BATCH_SIZE, loss_fn=None) -> Dict[str, float]:
    """Loss and accuracy of ``model`` on ``(x, y)``, in ``eval()`` mode, in batches.

    The model's mode is restored afterwards, even on error.

    Args:
        model: the network (see :func:`predict`).
        x: inputs ``(N, ...)``.
        y: targets ``(N, ...)``; class indices ``(N,)`` for classification.
        batch_size: samples per forward call.
        loss_fn: a loss module called as ``loss_fn(outputs, y_batch)``
            returning the batch mean; ``nn.CrossEntropyLoss()`` if None.

    Returns:
        ``{"loss": mean loss over all samples, "accuracy": fraction of
        correct argmax predictions}``; ``accuracy`` only for classification
        (2-D outputs and integer labels).
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    x, y = _check_xy(x, y)
    if loss_fn is None:
        loss_fn = _default_loss()
    was_training = getattr(model, "training", True)
    model.eval()
    try:
        total_loss = 0.0
        correct = 0
        classification = True
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size]
            yb = y[start : start + batch_size]
            out = model(xb)
            total_loss += float(loss_fn(out, yb)) * len(xb)
            if classification and _is_classification(out, yb):
                correct += _n_correct(out, yb)
            else:
                classification = False
    finally:
        _set_mode(model, was_training)
    result = {"loss": total_loss / len(x)}
    if classification:
        result["accuracy"] = correct / len(x)
    return result


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


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
    """

    def __init__(self, model, loss_fn, optimizer, callbacks: Sequence[Callback] = ()):
        if loss_fn is None:
            raise TypeError("Trainer: loss_fn is required (e.g. nn.CrossEntropyLoss())")
        if optimizer is None:
            raise TypeError("Trainer: optimizer is required (e.g. optim.SGD(model.parameters(), lr=0.05))")
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.callbacks = list(callbacks)
        self.stop_training = False
        self._input_grad_kw = _accepts_input_grad(model)

    def train_step(self, xb: np.ndarray, yb: np.ndarray) -> Tuple[float, Optional[int]]:
        """One optimisation step on a batch; returns (batch-mean loss, correct predictions or None)."""
        out = self.model(xb)
        loss = float(self.loss_fn(out, yb))
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
        x,
        y,
        *,
        epochs: int = 1,
        batch_size: int = 32,
        validation_data: Optional[Tuple[np.ndarray, np.ndarray]] = None,
        shuffle: bool = True,
        seed=None,
        verbose: int = 1,
        callbacks: Sequence[Callback] = (),
        eval_batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
    ) -> History:
        """Train for ``epochs`` passes over ``(x, y)``; see :func:`fit`."""
        from .data import DataLoader
        from ._random import generator

        epochs = _check_int("epochs", epochs, 0)
        batch_size = _check_int("batch_size", batch_size, 1)
        eval_batch_size = _check_int("eval_batch_size", eval_batch_size, 1)
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        x, y = _check_xy(x, y)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (x_val, y_val)")
            x_val, y_val = _check_xy(*validation_data, what="validation x and y")

        # seed=None draws the shuffling order from pycnn's generator, so
        # pycnn.manual_seed() makes the whole run (init + order) reproducible.
        loader = DataLoader(x, y, batch_size, shuffle=shuffle, seed=generator() if seed is None else seed)
        history = History()
        cbs = [history] + self.callbacks + list(callbacks)
        if verbose:
            cbs.append(ProgressLogger(verbose))
        params = {"epochs": epochs, "batch_size": batch_size, "samples": len(x), "steps": len(loader)}
        for cb in cbs:
            cb.set_trainer(self, params)
        hooks = _CallbackList(cbs)

        was_training = getattr(self.model, "training", True)
        self.stop_training = False
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
                    loss, n_ok = self.train_step(xb, yb)
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
                    val = evaluate(self.model, x_val, y_val, eval_batch_size, self.loss_fn)
                    epoch_logs.update({f"val_{k}": v for k, v in val.items()})
                epoch_logs["time"] = train_time
                epoch_logs["images_per_s"] = seen / train_time if train_time > 0 else math.inf
                hooks.on_epoch_end(epoch, epoch_logs)
                if self.stop_training:
                    break
        finally:
            _set_mode(self.model, was_training)
        hooks.on_train_end({})
        return history

    def evaluate(self, x, y, batch_size: int = DEFAULT_EVAL_BATCH_SIZE) -> Dict[str, float]:
        """:func:`evaluate` with this trainer's model and loss."""
        return evaluate(self.model, x, y, batch_size, self.loss_fn)

    def predict(self, x, batch_size: int = DEFAULT_EVAL_BATCH_SIZE) -> np.ndarray:
        """:func:`predict` with this trainer's model."""
        return predict(self.model, x, batch_size)


def fit(
    model,
    x,
    y,
    *,
    loss_fn,
    optimizer,
    epochs: int = 1,
    batch_size: int = 32,
    validation_data: Optional[Tuple[np.ndarray, np.ndarray]] = None,
    shuffle: bool = True,
    seed=None,
    verbose: int = 1,
    callbacks: Sequence[Callback] = (),
    eval_batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
) -> History:
    """Train ``model`` on ``(x, y)`` with mini-batch gradient descent.

    Each epoch shuffles the samples (unless ``shuffle=False``), then for each
    batch runs forward, the loss, backward and ``optimizer.step()``. After
    the epoch it evaluates on ``validation_data`` (in ``eval()`` mode, not
    counted in the epoch's time), records everything in the returned
    :class:`History` and, if ``verbose``, prints a line like::

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
        shuffle: reshuffle every epoch.
        seed: int seed for the shuffling order; None draws it from pycnn's
            generator, so ``pycnn.manual_seed(s)`` before building the model
            makes the whole run reproducible.
        verbose: 0 silent, 1 a line per epoch (and a progress bar on a
            terminal when tqdm is installed), 2 a line per epoch only.
        callbacks: :class:`Callback` objects to call during training.
        eval_batch_size: batch size for the validation pass.

    Returns:
        A :class:`History`; ``history.history`` maps ``loss``, ``accuracy``,
        ``val_loss``, ``val_accuracy``, ``time`` and ``images_per_s`` to a
        list with one value per epoch.
    """
    trainer = Trainer(model, loss_fn, optimizer)
    return trainer.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation_data,
        shuffle=shuffle,
        seed=seed,
        verbose=verbose,
        callbacks=callbacks,
        eval_batch_size=eval_batch_size,
    )
