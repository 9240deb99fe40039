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

Modules: :mod:`~pycnn.train.trainer` (the loop), :mod:`~pycnn.train.callbacks`,
:mod:`~pycnn.train.progress` (console output), :mod:`~pycnn.train.inference`
(inference and evaluation).
"""
from __future__ import annotations

from .callbacks import (
                        Callback,
                        CosineDecay,
                        EarlyStopping,
                        History,
                        LearningRateScheduler,
                        ModelCheckpoint,
                        StepDecay,
)
from .inference import (
                        DEFAULT_EVAL_BATCH_SIZE,
                        evaluate,
                        predict,
                        predict_outputs,
                        predict_proba,
)
from .progress import ProgressLogger, format_epoch
from .trainer import Trainer, fit

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


def __dir__() -> list[str]:
    """The public names (``__all__``) only, for ``dir()`` and tab completion."""
    return sorted(__all__)
