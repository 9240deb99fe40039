"""Command line: ``python -m pycnn {train,info,bench}``.

``train`` trains the Fashion-MNIST CNN (:func:`pycnn.models.fashion_mnist_cnn`)
and prints loss, train and test accuracy and images/s per epoch; ``info``
prints the build configuration; ``bench`` compares pycnn's kernels with the
NumPy baseline (and PyTorch when installed).

Errors a user can fix (missing data, bad options) print one line starting
with ``pycnn: error:`` and exit with status 1 (2 for bad command-line
syntax); set ``PYCNN_DEBUG=1`` to see the traceback instead.
"""
from __future__ import annotations

import argparse
import os
import sys
import time



EPILOG_TRAIN = """\
The network: Conv2d(1,32,3,padding=1)-ReLU-MaxPool2d(2)-Conv2d(32,64,3,padding=1)-
ReLU-MaxPool2d(2)-Flatten-Linear(3136,128)-ReLU-Linear(128,10), SGD with momentum,
cross-entropy loss. Train accuracy is the running average over each epoch; test
accuracy is measured on the 10,000 test images after each epoch; images/s counts
training only.

Data: --data DIR, else $PYCNN_DATA, ~/.cache/pycnn/fashion-mnist,
/usr/share/datasets/fashion-mnist (Debian: apt-get install dataset-fashion-mnist);
if none has it, it is downloaded (MD5-checked) into the cache unless --no-download.

examples:
  python -m pycnn train                      # 2 epochs, about 89% test accuracy
  python -m pycnn train --limit 6000 --epochs 1 --threads 1
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float_at_least(minimum: float, strict: bool):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (value > minimum if strict else value >= minimum) or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(
                f"expected a finite number {'>' if strict else '>='} {minimum:g}, got {text}"
            )
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pycnn",
        description="pycnn: fast CPU convolutional neural networks (C++ kernels, PyTorch-style API, NumPy arrays).",
        epilog="Run 'python -m pycnn COMMAND --help' for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train the Fashion-MNIST CNN and report loss, accuracy and images/s per epoch",
        description="Train a small CNN on Fashion-MNIST with pycnn and print, per epoch,\n"
        "the training loss, train and test accuracy, and training speed in images/s.",
        epilog=EPILOG_TRAIN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--epochs", type=_positive_int, default=2, metavar="N", help="passes over the training set (default: 2)")
    train.add_argument("--batch-size", type=_positive_int, default=128, metavar="N", help="samples per SGD step (default: 128)")
    train.add_argument("--lr", type=_float_at_least(0.0, strict=True), default=0.05, help="learning rate (default: 0.05)")
    train.add_argument("--momentum", type=_float_at_least(0.0, strict=False), default=0.9, help="SGD momentum (default: 0.9)")
    train.add_argument(
        "--threads", type=_positive_int, default=None, metavar="N",
        help="threads for pycnn's kernels (default: $OMP_NUM_THREADS, else all cores)",
    )
    train.add_argument("--data", metavar="DIR", default=None, help="directory holding the four Fashion-MNIST IDX files (.gz or not)")
    train.add_argument("--no-download", action="store_true", help="fail instead of downloading the data when no local copy is found")
    train.add_argument("--seed", type=_int, default=0, help="seed for weight initialisation and shuffling (default: 0)")
    train.add_argument("--limit", type=_positive_int, default=None, metavar="N", help="train on the first N training images only (quick runs)")
    train.add_argument(
        "--quiet", action="store_true",
        help="no progress bar (it is shown only on a terminal, with tqdm installed)",
    )

    sub.add_parser(
        "info",
        help="print the build configuration (version, compiler, flags, threads)",
        description="Print pycnn.show_config() and where Fashion-MNIST was found.",
    )
    sub.add_parser(
        "bench",
        help="time pycnn against the NumPy baseline and PyTorch (run 'bench --help')",
        add_help=False,
    )
    return parser


class UserError(Exception):
    """An error the user can fix; printed as one line without a traceback."""


def _data_error_line(exc, path) -> str:
    from . import data

    dirs = ", ".join(str(d) for d in data._search_dirs(path))
    line = f"Fashion-MNIST not found in {dirs}"
    cause = exc.__cause__
    if cause is not None:
        line += f" (download failed: {cause})"
    if path is not None:
        return line + "; check the --data directory, or leave --data out to use the default places"
    return line + "; install it with 'sudo apt-get install dataset-fashion-mnist' or pass --data DIR"


def _pct(v: float) -> str:
    return f"{100.0 * v:.2f}%"


# Training does no BLAS work of NumPy's, but an idle OpenBLAS pool still
# spins for a while after each call and competes with pycnn's threads for
# the same cores; the training command therefore starts NumPy with one BLAS
# thread (unless the user chose otherwise). Library users: see README, Threads.
_BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _single_threaded_blas() -> None:
    if "numpy" not in sys.modules:
        for var in _BLAS_THREAD_VARS:
            os.environ.setdefault(var, "1")


def cmd_train(args) -> int:
    _single_threaded_blas()
    import numpy as np

    import pycnn
    from . import data
    from .models import fashion_mnist_cnn
    from .train import ProgressLogger, Trainer

    if args.threads is not None:
        pycnn.set_num_threads(args.threads)

    t_load = time.perf_counter()
    try:
        (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist(args.data, download=not args.no_download)
    except data.DatasetNotFoundError as exc:
        raise UserError(_data_error_line(exc, args.data)) from exc
    except ValueError as exc:  # malformed file, failed MD5
        raise UserError(f"cannot load Fashion-MNIST: {exc}") from exc
    t_load = time.perf_counter() - t_load
    if args.limit is not None:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    where = data.find_fashion_mnist(args.data)
    print(
        f"Fashion-MNIST ({where}): {len(x_train):,} train / {len(x_test):,} test images, loaded in {t_load:.1f}s",
        flush=True,
    )

    pycnn.manual_seed(args.seed)
    model = fashion_mnist_cnn()
    loss_fn = pycnn.nn.CrossEntropyLoss()
    optimizer = pycnn.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    n_params = sum(int(np.prod(p.data.shape)) for p in model.parameters())
    print(
        f"pycnn {pycnn.__version__}, {pycnn.get_num_threads()} threads; CNN with {n_params:,} parameters; "
        f"SGD lr {args.lr:g}, momentum {args.momentum:g}, batch {args.batch_size}, "
        f"{args.epochs} epoch{'s' if args.epochs != 1 else ''}, seed {args.seed}",
        flush=True,
    )

    width = len(str(args.epochs))

    def line(epoch, epochs, logs):
        return (
            f"epoch {epoch + 1:>{width}}/{epochs}  loss {logs['loss']:.4f}  "
            f"train acc {_pct(logs['accuracy'])}  test loss {logs['val_loss']:.4f}  "
            f"test acc {_pct(logs['val_accuracy'])}  {logs['images_per_s']:,.0f} images/s  "
            f"({logs['time']:.1f}s)"
        )

    trainer = Trainer(model, loss_fn, optimizer)
    history = trainer.fit(
        x_train, y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=(x_test, y_test),
        verbose=0,
        callbacks=[ProgressLogger(2 if args.quiet else 1, formatter=line)],
    )
    h = history.history
    total = sum(h["time"])
    print(
        f"test accuracy {_pct(h['val_accuracy'][-1])} after {len(history)} epoch{'s' if len(history) != 1 else ''}; "
        f"training took {total:.1f}s ({sum(len(x_train) for _ in h['time']) / total:,.0f} images/s)",
        flush=True,
    )
    return 0


def cmd_info(args) -> int:
    import pycnn
    from . import data

    pycnn.show_config()
    where = data.find_fashion_mnist()
    print(f"  data:        Fashion-MNIST {'in ' + str(where) if where else 'not found locally (downloaded on first use)'}")
    return 0


def cmd_bench(argv) -> int:
    from . import bench

    return bench.main(argv, prog="python -m pycnn bench")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("PYCNN_DEBUG", "") not in ("", "0")
    parser = build_parser()
    try:
        if argv and argv[0] == "bench":
            return cmd_bench(argv[1:])
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        if args.command == "train":
            return cmd_train(args)
        return cmd_info(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print("pycnn: interrupted", file=sys.stderr)
        return 130
    except (UserError, ValueError, TypeError, OSError, ImportError) as exc:
        if debug:
            raise
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not isinstance(exc, UserError):
            msg = f"{type(exc).__name__}: {msg}"
        print(f"pycnn: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
