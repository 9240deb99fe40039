"""Console output of :func:`fit`: :class:`ProgressLogger` (tqdm bar, epoch lines) and :func:`format_epoch`."""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional, TextIO, cast

from .callbacks import Callback, Logs

#: ``formatter(epoch, epochs, logs) -> line`` of :class:`ProgressLogger`.
EpochFormatter = Callable[[int, Optional[int], Logs], str]


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

    In a distributed fit it runs on rank 0 only (``rank_zero_only``).
    """

    rank_zero_only = True

    def __init__(self, verbose: int = 1, file: Optional[TextIO] = None, formatter: Optional[EpochFormatter] = None,
                 bar: Optional[bool] = None) -> None:
        if verbose not in (1, 2):
            raise ValueError(f"ProgressLogger: verbose must be 1 or 2, got {verbose!r}")
        self.verbose = verbose
        self.file = file
        self.formatter = formatter or format_epoch
        self.bar = bar
        self._bar: Any = None

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

    def on_epoch_begin(self, epoch: int, logs: Optional[Logs] = None) -> None:
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

    def on_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        if self._bar is None:
            return
        logs = cast(Logs, logs)  # fit passes every hook its logs
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

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        self._close()
        line = self.formatter(epoch, self.params.get("epochs"), cast(Logs, logs))
        print(line, file=self.file or sys.stdout, flush=True)

    def on_train_end(self, logs: Optional[Logs] = None) -> None:
        self._close()  # stopped mid-epoch


def format_epoch(epoch: int, epochs: Optional[int], logs: Logs) -> str:
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
