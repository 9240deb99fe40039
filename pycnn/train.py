"""Training loop: :func:`fit`, :func:`evaluate`, :func:`predict`, :func:`predict_proba`, callbacks.

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
setting ``self.trainer.stop_training = True``. Ready-made ones:
:class:`EarlyStopping`, :class:`ModelCheckpoint`,
:class:`LearningRateScheduler` (:class:`StepDecay`, :class:`CosineDecay`).
:class:`History`, which :func:`fit` returns, is itself a callback; so is the
console output (:class:`ProgressLogger`).
"""
from __future__ import annotations

import inspect
import json
import math
import os
import sys
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "Callback",
    "History",
    "ProgressLogger",
    "EarlyStopping",
    "ModelCheckpoint",
    "LearningRateScheduler",
    "StepDecay",
    "CosineDecay",
    "format_epoch",
    "Trainer",
    "fit",
    "evaluate",
    "predict",
    "predict_proba",
    "predict_outputs",
    "DEFAULT_EVAL_BATCH_SIZE",
]

#: Batch size :func:`evaluate` and :func:`predict` use when none is given.
#: Inference needs no saved activations, so larger batches than training's
#: are cheap and amortise per-call overhead.
DEFAULT_EVAL_BATCH_SIZE = 256

ArrayPair = Tuple[np.ndarray, np.ndarray]


# ---------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------


class Callback:
    """Hooks into :meth:`Trainer.fit`; override the ones you need.

    ``self.trainer`` is set before training starts (it gives ``model``,
    ``optimizer``, ``loss_fn``, ``history`` and ``stop_training``),
    ``self.params`` holds ``epochs``, ``batch_size``, ``samples`` and
    ``steps`` (batches per epoch).

    ``logs`` passed to the hooks:

    * ``on_batch_end(batch, logs)``: ``loss`` (mean over the batch), ``size``
      (samples in it) and, for classification, ``correct``;
    * ``on_epoch_end(epoch, logs)``: ``loss``, ``accuracy``, ``time`` (seconds
      spent training, evaluation excluded), ``images_per_s`` and, with
      validation data, ``val_loss`` and ``val_accuracy``. A callback may add
      keys (:class:`LearningRateScheduler` adds ``lr``): user callbacks run
      before :class:`History` records the row.

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
            Callbacks may add keys (``lr`` from a learning-rate schedule).
        epoch: the epoch numbers recorded, from 0.
        params: ``epochs``, ``batch_size``, ``samples``, ``steps``.

    ``history["loss"]`` can be written ``history_obj["loss"]``;
    :meth:`to_json` / :meth:`from_json` store and read it.
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

    def to_json(self, path: Optional[Union[str, "os.PathLike[str]"]] = None) -> str:
        """``{"epoch": [...], "params": {...}, "history": {...}}`` as JSON text; also written to ``path`` if given."""
        text = json.dumps({"epoch": list(self.epoch), "params": dict(self.params), "history": self.history},
                          indent=1)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    @classmethod
    def from_json(cls, source: Union[str, "os.PathLike[str]"]) -> "History":
        """A History from :meth:`to_json`'s text or a file holding it."""
        text = os.fspath(source)
        if not text.lstrip().startswith("{"):
            with open(text, encoding="utf-8") as f:
                text = f.read()
        d = json.loads(text)
        h = cls()
        h.history = {str(k): list(v) for k, v in d["history"].items()}
        h.epoch = list(d.get("epoch", range(len(next(iter(h.history.values()), [])))))
        h.params = dict(d.get("params", {}))
        return h

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(no epochs)"
        last = ", ".join(f"{k}={_fmt_value(v[-1])}" for k, v in self.history.items())
        return f"History({len(self.epoch)} epochs; last: {last})"


def _fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _in_notebook() -> bool:
    return "ipykernel" in sys.modules


class ProgressLogger(Callback):
    """Console output of :func:`fit`.

    ``verbose=1``: a progress bar per epoch showing the running loss,
    accuracy and images/s (``tqdm``, drawn on stderr when it is a terminal or
    in a notebook), then one line per epoch. Without tqdm, or when stderr is
    redirected, only the lines.
    ``verbose=2``: one line per epoch only (best for logs).

    Args:
        verbose: 1 or 2, as above.
        file: where the lines go (default: ``sys.stdout`` at print time).
        formatter: ``formatter(epoch, epochs, logs) -> str`` for the epoch
            line; :func:`format_epoch` by default.
        bar: None (default) draws the bar where it can be seen, True always
            (when tqdm is installed), False never.
    """

    def __init__(self, verbose: int = 1, file=None, formatter=None, bar: Optional[bool] = None) -> None:
        if verbose not in (1, 2):
            raise ValueError(f"ProgressLogger: verbose must be 1 or 2, got {verbose!r}")
        self.verbose = verbose
        self.file = file
        self.formatter = formatter or format_epoch
        self.bar = bar
        self._bar = None

    def _use_bar(self) -> bool:
        if self.verbose != 1 or self.bar is False:
            return False
        try:
            import tqdm  # noqa: F401
        except ImportError:
            return False
        if self.bar:
            return True
        return _in_notebook() or bool(getattr(sys.stderr, "isatty", lambda: False)())

    def on_epoch_begin(self, epoch, logs=None) -> None:
        if not self._use_bar():
            return
        if _in_notebook():
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm
        self._bar = tqdm(
            total=self.params.get("samples"),
            desc=f"Epoch {epoch + 1}/{self.params.get('epochs')}",
            unit="img",
            leave=False,
            dynamic_ncols=True,
            file=sys.stderr,
            bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]",
        )
        self._loss_sum, self._seen, self._correct, self._acc = 0.0, 0, 0, True
        self._t0 = time.perf_counter()

    def on_batch_end(self, batch, logs=None) -> None:
        if self._bar is None:
            return
        size = logs["size"]
        self._loss_sum += logs["loss"] * size
        self._seen += size
        if "correct" in logs:
            self._correct += logs["correct"]
        else:
            self._acc = False
        self._bar.update(size)
        if batch % 10 == 0:  # the epoch's running means, as the epoch line will report them
            parts = [f"loss {self._loss_sum / self._seen:.4f}"]
            if self._acc:
                parts.append(f"accuracy {self._correct / self._seen:.4f}")
            elapsed = time.perf_counter() - self._t0
            if elapsed > 0:
                parts.append(f"{self._seen / elapsed:,.0f} images/s")
            # Drawn at once after the first batch; later the bar's own updates redraw it.
            self._bar.set_postfix_str(", ".join(parts), refresh=batch == 0)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_epoch_end(self, epoch, logs=None) -> None:
        self._close()
        line = self.formatter(epoch, self.params.get("epochs"), logs)
        print(line, file=self.file or sys.stdout, flush=True)

    def on_train_end(self, logs=None) -> None:
        self._close()  # stopped mid-epoch


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
        if key == "lr":
            parts.append(f"lr: {value:.4g}")
        else:
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
# Ready-made callbacks: early stopping, checkpoints, learning-rate schedules
# ---------------------------------------------------------------------------


def _monitor_mode(monitor: str, mode: str, who: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


def _monitored(logs: dict, monitor: str, who: str) -> float:
    if monitor not in logs:
        hint = (" (val_* metrics need validation_data or validation_split in fit)"
                if monitor.startswith("val_") else "")
        raise ValueError(f"{who}: monitor {monitor!r} is not among the epoch's metrics "
                         f"{sorted(logs)}{hint}")
    return float(logs[monitor])


class _Monitor:
    """Tracks the best value of one metric."""

    def __init__(self, monitor: str, mode: str, min_delta: float, who: str):
        self.monitor = monitor
        self.mode = _monitor_mode(monitor, mode, who)
        self.min_delta = abs(float(min_delta))
        self.who = who
        self.reset()

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: Optional[int] = None

    def improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stop training when a metric has stopped improving (Keras's ``EarlyStopping``).

    After each epoch the monitored value is compared with the best so far;
    an improvement is a decrease (``mode="min"``) or increase (``"max"``) of
    more than ``min_delta``. After ``patience`` epochs in a row without one,
    training stops (``patience=0``: at the first). ``mode="auto"`` maximises
    metrics whose name contains "acc" and minimises the rest.

    With ``restore_best_weights=True`` the weights of the best epoch are put
    back at the end of training (whether it stopped early or ran all its
    epochs), so the model is the best one seen, not the last.

    Attributes (after training): ``best`` (value), ``best_epoch``,
    ``stopped_epoch`` (None if training ran to the end), ``wait``.

    Args:
        monitor: a key of the epoch logs, e.g. ``"val_loss"`` (default) or
            ``"val_accuracy"``.
        patience: epochs without improvement to tolerate.
        min_delta: smallest change that counts as an improvement.
        mode: ``"auto"``, ``"min"`` or ``"max"``.
        restore_best_weights: put the best epoch's weights back at the end.
        verbose: 1 prints a line when it stops or restores.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0, mode: str = "auto",
                 restore_best_weights: bool = False, verbose: int = 0):
        self.patience = _check_int("EarlyStopping: patience", patience, 0)
        self._tracker = _Monitor(monitor, mode, min_delta, "EarlyStopping")
        self.monitor = monitor
        self.restore_best_weights = bool(restore_best_weights)
        self.verbose = verbose
        self._reset()

    def _reset(self) -> None:
        self._tracker.reset()
        self.wait = 0
        self.stopped_epoch: Optional[int] = None
        self.best_weights: Optional[Dict[str, np.ndarray]] = None
        self._last_epoch: Optional[int] = None

    @property
    def best(self) -> float:
        return self._tracker.best

    @property
    def best_epoch(self) -> Optional[int]:
        return self._tracker.best_epoch

    def on_train_begin(self, logs=None) -> None:
        self._reset()

    def on_epoch_end(self, epoch, logs=None) -> None:
        value = _monitored(logs or {}, self.monitor, "EarlyStopping")
        self._last_epoch = epoch
        if self._tracker.improved(value):
            self._tracker.best = value
            self._tracker.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = self.trainer.model.state_dict()
            return
        self.wait += 1
        if self.wait >= max(self.patience, 1):
            self.stopped_epoch = epoch
            self.trainer.stop_training = True
            if self.verbose:
                best_at = "-" if self.best_epoch is None else self.best_epoch + 1
                print(f"EarlyStopping: {self.monitor} has not improved for {self.wait} epoch(s) "
                      f"(best {self.best:.4f} at epoch {best_at}); stopping after epoch {epoch + 1}", flush=True)

    def on_train_end(self, logs=None) -> None:
        if (self.restore_best_weights and self.best_weights is not None
                and self.best_epoch != self._last_epoch):
            self.trainer.model.load_state_dict(self.best_weights)
            if self.verbose:
                print(f"EarlyStopping: restored the weights of epoch {self.best_epoch + 1} "
                      f"({self.monitor} {self.best:.4f})", flush=True)


class ModelCheckpoint(Callback):
    """Save the model after every epoch, or only when a metric improves.

    ``filepath`` may hold ``str.format`` fields filled from the epoch
    (from 1) and its logs: ``"ckpt/epoch{epoch:02d}-{val_loss:.3f}.npz"``.
    Files are written with :func:`pycnn.save` (architecture and weights;
    :func:`pycnn.load` reads them back) or, with ``save_weights_only``,
    :func:`pycnn.io.save_weights` (weights only; load them into a model with
    :func:`pycnn.io.load_weights`). Each write replaces the file atomically.

    Attributes: ``best``, ``best_epoch`` (with ``save_best_only``),
    ``saved`` (the paths written, in order).

    Args:
        filepath: where to write, as above.
        monitor: the metric deciding what is best (``save_best_only``).
        mode: ``"auto"``, ``"min"`` or ``"max"`` (see :class:`EarlyStopping`).
        save_best_only: write only when ``monitor`` improves.
        save_weights_only: write the weights alone.
        verbose: 1 prints a line per file written.
    """

    def __init__(self, filepath, monitor: str = "val_loss", mode: str = "auto", save_best_only: bool = False,
                 save_weights_only: bool = False, verbose: int = 0):
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.verbose = verbose
        self._tracker = _Monitor(monitor, mode, 0.0, "ModelCheckpoint")
        self.saved: List[str] = []

    @property
    def best(self) -> float:
        return self._tracker.best

    @property
    def best_epoch(self) -> Optional[int]:
        return self._tracker.best_epoch

    def on_train_begin(self, logs=None) -> None:
        self._tracker.reset()
        self.saved = []

    def on_epoch_end(self, epoch, logs=None) -> None:
        logs = logs or {}
        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            if not self._tracker.improved(value):
                return
            self._tracker.best = value
            self._tracker.best_epoch = epoch
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"ModelCheckpoint: cannot fill in filepath {self.filepath!r} from epoch and "
                             f"{sorted(logs)}: {e}") from None
        from . import io

        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            io.save_weights(self.trainer.model, path)
        else:
            io.save(self.trainer.model, path)
        self.saved.append(path)
        if self.verbose:
            print(f"ModelCheckpoint: saved {path}", flush=True)


class LearningRateScheduler(Callback):
    """Set the optimiser's learning rate before every epoch.

    ``schedule`` is either

    * a function ``schedule(epoch, lr) -> new_lr`` (Keras's convention;
      ``epoch`` from 0, ``lr`` the current rate), called before each epoch; or
    * a scheduler object with a ``step()`` method (``pycnn.optim``'s
      ``StepLR``/``CosineAnnealingLR`` or anything PyTorch-like that sets
      ``optimizer.param_groups[i]["lr"]``), stepped after each epoch.

    The rate used in each epoch is added to the epoch logs as ``lr`` (so the
    History has it). The first rate of every parameter group is remembered
    as ``group["initial_lr"]`` (PyTorch's key); :class:`StepDecay` and
    :class:`CosineDecay` start from it.
    """

    def __init__(self, schedule, verbose: int = 0):
        if not (callable(schedule) or hasattr(schedule, "step")):
            raise TypeError("LearningRateScheduler: schedule must be a function (epoch, lr) -> lr or an "
                            f"object with step(), got {type(schedule).__name__}")
        self.schedule = schedule
        self.verbose = verbose

    def _groups(self) -> List[dict]:
        groups = getattr(self.trainer.optimizer, "param_groups", None)
        if not groups:
            raise TypeError(f"{type(self).__name__}: the optimizer has no param_groups with an 'lr' to set")
        return groups

    def rates(self, epoch: int) -> Optional[List[float]]:
        """The learning rate of each parameter group for ``epoch`` (None: a step()-scheduler sets them)."""
        if hasattr(self.schedule, "step") and not callable(self.schedule):
            return None
        return [self.schedule(epoch, g["lr"]) for g in self._groups()]

    def on_train_begin(self, logs=None) -> None:
        for g in self._groups():
            g.setdefault("initial_lr", g["lr"])

    def on_epoch_begin(self, epoch, logs=None) -> None:
        rates = self.rates(epoch)
        if rates is not None:
            for g, lr in zip(self._groups(), rates):
                if isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating)) \
                        or not math.isfinite(lr) or lr < 0:
                    raise ValueError(f"{type(self).__name__}: the schedule gave learning rate {lr!r} for "
                                     f"epoch {epoch}; expected a finite number >= 0")
                g["lr"] = float(lr)
        self._epoch_lr = float(self._groups()[0]["lr"])
        if self.verbose:
            print(f"Epoch {epoch + 1}: learning rate {self._epoch_lr:.6g}", flush=True)

    def on_epoch_end(self, epoch, logs=None) -> None:
        if logs is not None:
            logs["lr"] = self._epoch_lr
        if self.rates(epoch) is None:
            self.schedule.step()


class StepDecay(LearningRateScheduler):
    """``lr = initial_lr * gamma ** (epoch // step_size)``: divide the rate by 10 every ``step_size`` epochs.

    The same rule as PyTorch's ``StepLR``, applied per epoch.
    """

    def __init__(self, step_size: int, gamma: float = 0.1, verbose: int = 0):
        self.step_size = _check_int("StepDecay: step_size", step_size, 1)
        self.gamma = _check_real("StepDecay: gamma", gamma, 0.0)
        super().__init__(self._rate, verbose)

    def _rate(self, epoch: int, lr: float) -> float:  # pragma: no cover - rates() is used instead
        return lr

    def rates(self, epoch: int) -> List[float]:
        return [g["initial_lr"] * self.gamma ** (epoch // self.step_size) for g in self._groups()]


class CosineDecay(LearningRateScheduler):
    """Cosine annealing from ``initial_lr`` down to ``eta_min`` over ``T_max`` epochs (PyTorch's ``CosineAnnealingLR``).

    ``lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``
    for epochs 0, 1, ...; ``T_max`` defaults to the ``epochs`` of the fit
    call; after ``T_max`` epochs the rate stays at ``eta_min``.
    """

    def __init__(self, T_max: Optional[int] = None, eta_min: float = 0.0, verbose: int = 0):
        self.T_max = None if T_max is None else _check_int("CosineDecay: T_max", T_max, 1)
        self.eta_min = _check_real("CosineDecay: eta_min", eta_min, 0.0)
        super().__init__(self._rate, verbose)

    def _rate(self, epoch: int, lr: float) -> float:  # pragma: no cover - rates() is used instead
        return lr

    def rates(self, epoch: int) -> List[float]:
        t_max = self.T_max or max(1, int(self.params.get("epochs") or 1))
        t = min(epoch, t_max)
        return [self.eta_min + (g["initial_lr"] - self.eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2
                for g in self._groups()]


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_real(name: str, value, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum:g}, got {value}")
    return float(value)


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


def _transform_fn(transform) -> Optional[Callable[..., np.ndarray]]:
    """``f(x, rng, training)`` for a transform (see :mod:`pycnn.data`), or None."""
    if transform is None:
        return None
    if not callable(transform):
        raise TypeError(f"transform must be callable, got {type(transform).__name__}")
    try:
        params = inspect.signature(transform).parameters
    except (TypeError, ValueError):
        params = {}
    has_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    if has_kw or ("rng" in params and "training" in params):
        return lambda x, rng, training: transform(x, rng=rng, training=training)

    # A plain function f(x) is an augmentation: training batches only.
    def plain(x, rng, training):
        return transform(x) if training else x

    return plain


def _split_validation(x, y, validation_split) -> Tuple[ArrayPair, ArrayPair]:
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float, np.floating)) \
            or not 0.0 < float(validation_split) < 1.0:
        raise ValueError(f"validation_split must be a number strictly between 0 and 1, got {validation_split!r}")
    # Keras's rule: the *last* fraction of the samples as given, before shuffling.
    split_at = int(len(x) * (1.0 - float(validation_split)))
    if split_at == 0 or split_at == len(x):
        raise ValueError(f"validation_split={validation_split} of {len(x)} samples leaves an empty "
                         f"{'training' if split_at == 0 else 'validation'} set")
    return (x[:split_at], y[:split_at]), (x[split_at:], y[split_at:])


# ---------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------


def predict_outputs(model, x, batch_size: int = DEFAULT_EVAL_BATCH_SIZE, transform=None) -> np.ndarray:
    """Run ``model`` on ``x`` in batches in ``eval()`` mode; return all its raw outputs (logits, values).

    The model's mode (train/eval) is restored afterwards, even on error.

    Args:
        model: anything callable on a batch with ``train()``/``eval()``,
            e.g. an ``nn.Sequential``.
        x: inputs ``(N, ...)``, e.g. float32 images ``(N, C, H, W)``.
        batch_size: samples per forward call.
        transform: preprocessing applied to every batch in evaluation mode
            (e.g. the ``data.Normalize`` used in training; random
            augmentations do nothing here).

    Returns:
        The outputs stacked along the first axis, e.g. logits ``(N, classes)``;
        for an empty ``x`` (N = 0) the model's output for the empty batch,
        e.g. ``(0, classes)``.
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    tf = _transform_fn(transform)
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
            xb = x[start : start + batch_size]
            if tf is not None:
                xb = tf(xb, None, False)
            yb = np.asarray(model(xb))
            if out is None:
                out = np.empty((len(x),) + yb.shape[1:], dtype=yb.dtype)
            out[start : start + len(yb)] = yb
        return out
    finally:
        _set_mode(model, was_training)


def _class_scores(model, x, batch_size, transform, who: str) -> np.ndarray:
    out = predict_outputs(model, x, batch_size, transform)
    if out.ndim != 2:
        raise ValueError(f"{who} is for classifiers, whose outputs are (N, classes) scores; this model gives "
                         f"outputs of shape {out.shape}: use predict_outputs() for raw outputs")
    return out


def predict(model, x, batch_size: int = DEFAULT_EVAL_BATCH_SIZE, transform=None) -> np.ndarray:
    """Predicted class labels, ``(N,)`` int64: the argmax of the model's ``(N, classes)`` outputs.

    Runs in ``eval()`` mode in batches (see :func:`predict_outputs`, which
    returns the raw outputs, and :func:`predict_proba`).
    """
    return np.argmax(_class_scores(model, x, batch_size, transform, "predict"), axis=1).astype(np.int64)


def predict_proba(model, x, batch_size: int = DEFAULT_EVAL_BATCH_SIZE, transform=None) -> np.ndarray:
    """Class probabilities, ``(N, classes)`` float32: the softmax of the model's outputs (logits).

    Each row sums to 1; ``predict_proba(...).argmax(1) == predict(...)``.
    """
    from . import functional as F

    return F.softmax(_class_scores(model, x, batch_size, transform, "predict_proba"), axis=1)


def evaluate(model, x, y, batch_size: int = DEFAULT_EVAL_BATCH_SIZE, loss_fn=None,
             transform=None) -> Dict[str, float]:
    """Loss and accuracy of ``model`` on ``(x, y)``, in ``eval()`` mode, in batches.

    The model's mode is restored afterwards, even on error.

    Args:
        model: the network (see :func:`predict_outputs`).
        x: inputs ``(N, ...)``.
        y: targets ``(N, ...)``; class indices ``(N,)`` for classification.
        batch_size: samples per forward call.
        loss_fn: a loss module called as ``loss_fn(outputs, y_batch)``
            returning the batch mean; ``nn.CrossEntropyLoss()`` if None.
        transform: preprocessing in evaluation mode (see :func:`predict_outputs`).

    Returns:
        ``{"loss": mean loss over all samples, "accuracy": fraction of
        correct argmax predictions}``; ``accuracy`` only for classification
        (2-D outputs and integer labels). For precision, recall, F1 and the
        confusion matrix, see :mod:`pycnn.metrics` on :func:`predict`'s labels.
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    tf = _transform_fn(transform)
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
            if tf is not None:
                xb = tf(xb, None, False)
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
        history: the :class:`History` of the running (or last) :meth:`fit`.
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
        self.history: Optional[History] = None
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
        validation_data: Optional[ArrayPair] = None,
        validation_split: float = 0.0,
        shuffle: bool = True,
        seed=None,
        verbose: int = 1,
        callbacks: Sequence[Callback] = (),
        eval_batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
        transform=None,
    ) -> History:
        """Train for ``epochs`` passes over ``(x, y)``; see :func:`fit`."""
        from .data import DataLoader
        from ._random import generator

        epochs = _check_int("epochs", epochs, 0)
        batch_size = _check_int("batch_size", batch_size, 1)
        eval_batch_size = _check_int("eval_batch_size", eval_batch_size, 1)
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        tf = _transform_fn(transform)
        x, y = _check_xy(x, y)
        if validation_data is not None and validation_split:
            raise ValueError("pass validation_data or validation_split, not both")
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (x_val, y_val)")
            x_val, y_val = _check_xy(*validation_data, what="validation x and y")
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
                    val = evaluate(self.model, x_val, y_val, eval_batch_size, self.loss_fn, transform)
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

    def evaluate(self, x, y, batch_size: int = DEFAULT_EVAL_BATCH_SIZE, transform=None) -> Dict[str, float]:
        """:func:`evaluate` with this trainer's model and loss."""
        return evaluate(self.model, x, y, batch_size, self.loss_fn, transform)

    def predict(self, x, batch_size: int = DEFAULT_EVAL_BATCH_SIZE, transform=None) -> np.ndarray:
        """:func:`predict` (class labels) with this trainer's model."""
        return predict(self.model, x, batch_size, transform)

    def predict_proba(self, x, batch_size: int = DEFAULT_EVAL_BATCH_SIZE, transform=None) -> np.ndarray:
        """:func:`predict_proba` with this trainer's model."""
        return predict_proba(self.model, x, batch_size, transform)

    def predict_outputs(self, x, batch_size: int = DEFAULT_EVAL_BATCH_SIZE, transform=None) -> np.ndarray:
        """:func:`predict_outputs` (raw outputs) with this trainer's model."""
        return predict_outputs(self.model, x, batch_size, transform)


def fit(
    model,
    x,
    y,
    *,
    loss_fn,
    optimizer,
    epochs: int = 1,
    batch_size: int = 32,
    validation_data: Optional[ArrayPair] = None,
    validation_split: float = 0.0,
    shuffle: bool = True,
    seed=None,
    verbose: int = 1,
    callbacks: Sequence[Callback] = (),
    eval_batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
    transform=None,
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
    )
