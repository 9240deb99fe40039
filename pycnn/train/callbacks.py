"""Callbacks: the hooks of :meth:`Trainer.fit` and the ready-made ones.

:class:`Callback` is the base; :class:`History` records the epochs;
:class:`EarlyStopping` and :class:`ModelCheckpoint` watch a metric;
:class:`LearningRateScheduler` (:class:`StepDecay`, :class:`CosineDecay`)
sets the learning rate before each epoch. The console output is
:class:`pycnn.train.ProgressLogger` (:mod:`pycnn.train.progress`).
"""
from __future__ import annotations

import json
import math
import os
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Union,
    cast,
)

import numpy as np

from .._checks import check_int, check_real
from ..lr_scheduler import CosineAnnealingLR, StepLR

if TYPE_CHECKING:
    from .trainer import Trainer

Logs = Dict[str, Any]
PathLike = Union[str, "os.PathLike[str]"]


class Callback:
    """Hooks into :meth:`Trainer.fit`; override the ones you need.

    ``self.trainer`` is set before training starts (it gives ``model``,
    ``optimizer``, ``loss_fn``, ``history`` and ``stop_training``),
    ``self.params`` holds ``epochs``, ``batch_size``, ``samples`` and
    ``steps`` (batches per epoch); when ``fit`` reads a data source,
    ``batch_size`` and ``samples`` are None, and ``steps`` too unless the
    source has a ``len()``.

    ``logs`` passed to the hooks:

    * ``on_batch_end(batch, logs)``: ``loss`` (mean over the batch), ``size``
      (samples in it) and, for classification, ``correct``;
    * ``on_epoch_end(epoch, logs)``: ``loss``, ``accuracy``, ``time`` (seconds
      spent training, evaluation excluded), ``images_per_s`` and, with
      validation data, ``val_loss`` and ``val_accuracy``. A callback may add
      keys (:class:`LearningRateScheduler` adds ``lr``): user callbacks run
      before :class:`History` records the row.

    Epochs and batches are numbered from 0.

    In a distributed fit (``fit(..., distributed=True)``) every rank runs
    the callbacks with the same logs, so their decisions agree, except
    those whose class sets ``rank_zero_only = True`` (side effects such as
    files and progress output: :class:`ModelCheckpoint`,
    :class:`ProgressLogger`), which run on rank 0 only.
    """

    trainer: Trainer = cast("Trainer", None)  # set by set_trainer() before training starts
    params: Dict[str, Any] = {}
    #: Run only on rank 0 of a distributed fit.
    rank_zero_only = False

    def set_trainer(self, trainer: Trainer, params: Dict[str, Any]) -> None:
        self.trainer = trainer
        self.params = params

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        pass

    def on_train_end(self, logs: Optional[Logs] = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: Optional[Logs] = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        pass

    def on_batch_begin(self, batch: int, logs: Optional[Logs] = None) -> None:
        pass

    def on_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        pass

    def _say(self, text: str) -> None:
        """Print a line; in a distributed fit on rank 0 only (the other ranks run the same callbacks)."""
        if getattr(self.trainer, "rank", 0) == 0:
            print(text, flush=True)


class _CallbackList:
    """Calls a hook (``on_...``) of every callback in turn."""

    def __init__(self, callbacks: Iterable[Callback]) -> None:
        self.callbacks = list(callbacks)

    def __getattr__(self, hook: str) -> Callable[..., None]:
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args: Any) -> None:
            for cb in self.callbacks:
                getattr(cb, hook)(*args)

        return call


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

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> List[float]:
        return self.history[key]

    def __contains__(self, key: str) -> bool:
        return key in self.history

    def __len__(self) -> int:
        return len(self.epoch)

    def to_json(self, path: Optional[PathLike] = None) -> str:
        """``{"epoch": [...], "params": {...}, "history": {...}}`` as JSON text; also written to ``path`` if given."""
        text = json.dumps({"epoch": list(self.epoch), "params": dict(self.params), "history": self.history},
                          indent=1)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    @classmethod
    def from_json(cls, source: PathLike) -> History:
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


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _monitor_mode(monitor: str, mode: str, who: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


def _monitored(logs: Logs, monitor: str, who: str) -> float:
    if monitor not in logs:
        hint = (" (val_* metrics need validation_data or validation_split in fit)"
                if monitor.startswith("val_") else "")
        raise ValueError(f"{who}: monitor {monitor!r} is not among the epoch's metrics "
                         f"{sorted(logs)}{hint}")
    return float(logs[monitor])


class _Monitor:
    """Tracks the best value of one metric."""

    def __init__(self, monitor: str, mode: str, min_delta: float, who: str) -> None:
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


class _MonitoringCallback(Callback):
    """A callback that watches one metric of the epoch logs for its best value (``best``, ``best_epoch``)."""

    def __init__(self, monitor: str, mode: str, min_delta: float, who: str) -> None:
        self.monitor = monitor
        self._tracker = _Monitor(monitor, mode, min_delta, who)

    @property
    def best(self) -> float:
        return self._tracker.best

    @property
    def best_epoch(self) -> Optional[int]:
        return self._tracker.best_epoch

    def _record_if_improved(self, epoch: int, logs: Logs) -> bool:
        """Whether the monitored metric improved this epoch; if so, its value is the new best."""
        value = _monitored(logs, self.monitor, self._tracker.who)
        if not self._tracker.improved(value):
            return False
        self._tracker.best = value
        self._tracker.best_epoch = epoch
        return True


class EarlyStopping(_MonitoringCallback):
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
                 restore_best_weights: bool = False, verbose: int = 0) -> None:
        self.patience = check_int(patience, "patience", "EarlyStopping", 0)
        super().__init__(monitor, mode, min_delta, "EarlyStopping")
        self.restore_best_weights = bool(restore_best_weights)
        self.verbose = verbose
        self._reset()

    def _reset(self) -> None:
        self._tracker.reset()
        self.wait = 0
        self.stopped_epoch: Optional[int] = None
        self.best_weights: Optional[Dict[str, np.ndarray]] = None
        self._last_epoch: Optional[int] = None

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        improved = self._record_if_improved(epoch, logs or {})
        self._last_epoch = epoch
        if improved:
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
                self._say(f"EarlyStopping: {self.monitor} has not improved for {self.wait} epoch(s) "
                          f"(best {self.best:.4f} at epoch {best_at}); stopping after epoch {epoch + 1}")

    def on_train_end(self, logs: Optional[Logs] = None) -> None:
        if (self.restore_best_weights and self.best_weights is not None
                and self.best_epoch != self._last_epoch):
            self.trainer.model.load_state_dict(self.best_weights)
            if self.verbose:
                self._say(f"EarlyStopping: restored the weights of epoch {cast(int, self.best_epoch) + 1} "
                          f"({self.monitor} {self.best:.4f})")


class ModelCheckpoint(_MonitoringCallback):
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

    In a distributed fit it runs on rank 0 only (``rank_zero_only``).
    """

    rank_zero_only = True

    def __init__(self, filepath: PathLike, monitor: str = "val_loss", mode: str = "auto",
                 save_best_only: bool = False, save_weights_only: bool = False, verbose: int = 0) -> None:
        self.filepath = os.fspath(filepath)
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.verbose = verbose
        super().__init__(monitor, mode, 0.0, "ModelCheckpoint")
        self.saved: List[str] = []

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        self._tracker.reset()
        self.saved = []

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        logs = logs or {}
        if self.save_best_only and not self._record_if_improved(epoch, logs):
            return
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"ModelCheckpoint: cannot fill in filepath {self.filepath!r} from epoch and "
                             f"{sorted(logs)}: {e}") from None
        from .. import io

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

    def __init__(self, schedule: Any, verbose: int = 0) -> None:
        if not (callable(schedule) or hasattr(schedule, "step")):
            raise TypeError("LearningRateScheduler: schedule must be a function (epoch, lr) -> lr or an "
                            f"object with step(), got {type(schedule).__name__}")
        self.schedule = schedule
        self.verbose = verbose

    def _groups(self) -> List[Dict[str, Any]]:
        groups = getattr(self.trainer.optimizer, "param_groups", None)
        if not groups:
            raise TypeError(f"{type(self).__name__}: the optimizer has no param_groups with an 'lr' to set")
        return groups

    def rates(self, epoch: int) -> Optional[List[float]]:
        """The learning rate of each parameter group for ``epoch`` (None: a step()-scheduler sets them)."""
        if hasattr(self.schedule, "step") and not callable(self.schedule):
            return None
        return [self.schedule(epoch, g["lr"]) for g in self._groups()]

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        for g in self._groups():
            g.setdefault("initial_lr", g["lr"])

    def on_epoch_begin(self, epoch: int, logs: Optional[Logs] = None) -> None:
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
            self._say(f"Epoch {epoch + 1}: learning rate {self._epoch_lr:.6g}")

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        if logs is not None:
            logs["lr"] = self._epoch_lr
        if self.rates(epoch) is None:
            self.schedule.step()


class _ClosedFormDecay(LearningRateScheduler):
    """A schedule that is a formula of the epoch and each group's ``initial_lr``."""

    def __init__(self, verbose: int) -> None:
        super().__init__(self._lr_at, verbose)

    def _lr_at(self, epoch: int, initial_lr: float) -> float:
        raise NotImplementedError

    def rates(self, epoch: int) -> List[float]:
        return [self._lr_at(epoch, g["initial_lr"]) for g in self._groups()]


class StepDecay(_ClosedFormDecay):
    """``lr = initial_lr * gamma ** (epoch // step_size)``: divide the rate by 10 every ``step_size`` epochs.

    The same rule as PyTorch's ``StepLR`` (:meth:`pycnn.optim.StepLR.closed_form`), applied per epoch.
    """

    def __init__(self, step_size: int, gamma: float = 0.1, verbose: int = 0) -> None:
        self.step_size = check_int(step_size, "step_size", "StepDecay", 1)
        self.gamma = check_real(gamma, "gamma", "StepDecay", 0.0, finite=True)
        super().__init__(verbose)

    def _lr_at(self, epoch: int, initial_lr: float) -> float:
        return StepLR.closed_form(initial_lr, epoch, self.step_size, self.gamma)


class CosineDecay(_ClosedFormDecay):
    """Cosine annealing from ``initial_lr`` down to ``eta_min`` over ``T_max`` epochs (PyTorch's ``CosineAnnealingLR``).

    ``lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``
    for epochs 0, 1, ... (:meth:`pycnn.optim.CosineAnnealingLR.closed_form`);
    ``T_max`` defaults to the ``epochs`` of the fit call; after ``T_max``
    epochs the rate stays at ``eta_min``.
    """

    def __init__(self, T_max: Optional[int] = None, eta_min: float = 0.0, verbose: int = 0) -> None:
        self.T_max = None if T_max is None else check_int(T_max, "T_max", "CosineDecay", 1)
        self.eta_min = check_real(eta_min, "eta_min", "CosineDecay", 0.0, finite=True)
        super().__init__(verbose)

    def _lr_at(self, epoch: int, initial_lr: float) -> float:
        t_max = self.T_max or max(1, int(self.params.get("epochs") or 1))
        return CosineAnnealingLR.closed_form(initial_lr, min(epoch, t_max), t_max, self.eta_min)
