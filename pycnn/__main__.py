"""Command line: ``python -m pycnn {train,evaluate,predict,export,info,bench}``.

``train`` trains a preset network (:mod:`pycnn.models`) on Fashion-MNIST
and prints loss, train and test accuracy and images/s per epoch; it can save
the model (``--save``) and draw plots (``--plots DIR``). ``evaluate``
measures a saved model on the test set (accuracy and a classification
report); ``predict`` classifies image files with one (needs Pillow);
``export`` writes a saved model as an ONNX file (needs onnx);
``info`` prints the build configuration; ``bench`` compares pycnn's kernels
with the NumPy baseline (and PyTorch when installed).

Errors a user can fix (missing data, bad options) print one line starting
with ``pycnn: error:`` and exit with status 1 (2 for bad command-line
syntax); set ``PYCNN_DEBUG=1`` to see the traceback instead.
"""
from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, cast

if TYPE_CHECKING:
    import numpy as np

DATA_HELP = """\
Data: --data DIR, else $PYCNN_DATA, ~/.cache/pycnn/fashion-mnist,
/usr/share/datasets/fashion-mnist (Debian: apt-get install dataset-fashion-mnist);
if none has it, it is downloaded (MD5-checked) into the cache unless --no-download."""

EPILOG_TRAIN = """\
The default network (--model fashion_mnist_cnn): Conv2d(1,32,3,padding=1)-ReLU-
MaxPool2d(2)-Conv2d(32,64,3,padding=1)-ReLU-MaxPool2d(2)-Flatten-Linear(3136,128)-
ReLU-Linear(128,10), cross-entropy loss. Train accuracy is the running average over
each epoch; test accuracy is measured on the 10,000 test images after each epoch
(with --validation-split, on the held-out training images instead, and on the
test set once at the end); images/s counts training only.

--save writes the model (architecture + weights, one .npz; 'python -m pycnn evaluate
FILE' and pycnn.load(FILE) read it). --plots DIR writes history.png (loss and accuracy
curves), filters.png (first-layer filters), feature_maps.png (one test image through
each conv layer), confusion_matrix.png (test set) and history.json; it needs
matplotlib (pip install "pycnn[viz]").

""" + DATA_HELP + """

examples:
  python -m pycnn train                      # 2 epochs, about 89% test accuracy
  python -m pycnn train --epochs 2 --plots out/ --save out/model.npz
  python -m pycnn train --epochs 10 --schedule cosine --augment --validation-split 0.1 --patience 3
  python -m pycnn train --limit 6000 --epochs 1 --threads 1
  mpiexec -n 2 python -m pycnn train --distributed   # 2 processes, data parallel (pip install "pycnn[mpi]")
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


def _shape(text: str) -> Tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.split(","))
    except ValueError:
        dims = ()
    if not dims or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes separated by commas (e.g. 3,32,32), got {text!r}")
    return dims


def _float_at_least(minimum: float, strict: bool) -> Callable[[str], float]:
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


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction strictly between 0 and 1, got {text}")
    return value


def optimizers() -> Dict[str, Tuple[type, float, str]]:
    """``{name: (class, default lr, description)}`` of the optimisers ``train --optimizer`` accepts.

    Adam and AdamW appear when ``pycnn.optim`` has them.
    """
    from . import optim

    table: Dict[str, Tuple[type, float, str]] = {
        "sgd": (optim.SGD, 0.05, "SGD with momentum (--momentum, default 0.9)"),
    }
    if hasattr(optim, "Adam"):
        table["adam"] = (optim.Adam, 1e-3, "Adam")
    if hasattr(optim, "AdamW"):
        table["adamw"] = (optim.AdamW, 1e-3, "AdamW (decoupled weight decay)")
    return table


def _data_options(p: Any) -> None:  # a parser or an argument group
    p.add_argument("--data", metavar="DIR", default=None,
                   help="directory holding the four Fashion-MNIST IDX files (.gz or not)")
    p.add_argument("--no-download", action="store_true",
                   help="fail instead of downloading the data when no local copy is found")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                   help="threads for pycnn's kernels (default: $OMP_NUM_THREADS, else all cores)")


def _version() -> str:
    from . import _core

    return _core.__version__


def build_parser() -> argparse.ArgumentParser:
    from .models import available_presets

    parser = argparse.ArgumentParser(
        prog="python -m pycnn",
        description="pycnn: fast CPU convolutional neural networks (C++ kernels, PyTorch-style API, NumPy arrays).",
        epilog="Run 'python -m pycnn COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"pycnn {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    presets = available_presets()
    opts = optimizers()
    train = sub.add_parser(
        "train",
        help="train a CNN on Fashion-MNIST; report loss, accuracy and images/s per epoch",
        description="Train a CNN on Fashion-MNIST with pycnn and print, per epoch, the training\n"
        "loss, train and test accuracy, and training speed in images/s.",
        epilog=EPILOG_TRAIN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = train.add_argument_group("model and optimiser")
    g.add_argument("--model", choices=sorted(presets), default="fashion_mnist_cnn", metavar="PRESET",
                   help="network preset: " + "; ".join(f"{k}: {v}" for k, v in sorted(presets.items()))
                   + " (default: fashion_mnist_cnn)")
    g.add_argument("--optimizer", choices=list(opts), default="sgd",
                   help="; ".join(f"{k}: {v[2]}, default lr {v[1]:g}" for k, v in opts.items()) + " (default: sgd)")
    g.add_argument("--lr", type=_float_at_least(0.0, strict=True), default=None,
                   help="learning rate (default: the optimiser's, above)")
    g.add_argument("--momentum", type=_float_at_least(0.0, strict=False), default=None,
                   help="SGD momentum (default: 0.9)")
    g.add_argument("--weight-decay", type=_float_at_least(0.0, strict=False), default=None, metavar="WD",
                   help="weight decay (default: the optimiser's: 0 for SGD and Adam, 0.01 for AdamW)")
    g.add_argument("--schedule", choices=("constant", "step", "cosine"), default="constant",
                   help="learning-rate schedule over the epochs: constant, step (x0.1 after every third "
                   "of the epochs) or cosine (annealed towards 0) (default: constant)")
    g = train.add_argument_group("training")
    g.add_argument("--epochs", type=_positive_int, default=2, metavar="N", help="passes over the training set (default: 2)")
    g.add_argument("--batch-size", type=_positive_int, default=128, metavar="N", help="samples per step (default: 128)")
    g.add_argument("--augment", action="store_true",
                   help="augment training batches: random crop (padding 2) and horizontal flip")
    g.add_argument("--validation-split", type=_fraction, default=None, metavar="F",
                   help="validate on the last fraction F of the training images instead of the test set")
    g.add_argument("--patience", type=_positive_int, default=None, metavar="N",
                   help="stop when the validation loss has not improved for N epochs and keep the best "
                   "weights (needs --validation-split: it must not pick the model on the test set)")
    g.add_argument("--seed", type=_int, default=0, help="seed for weight initialisation, shuffling and "
                   "augmentation (default: 0)")
    g.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="train on the first N training images only (quick runs)")
    g.add_argument("--quiet", action="store_true",
                   help="no progress bar (it is shown only on a terminal, with tqdm installed)")
    g.add_argument("--distributed", action="store_true",
                   help="data-parallel training over the processes of an MPI job: start it with "
                   "'mpiexec -n N python -m pycnn train --distributed' (pip install \"pycnn[mpi]\"); --batch-size "
                   "is the global batch, split over the N ranks; each rank uses cores / (ranks on its machine) "
                   "threads unless --threads says otherwise; rank 0 prints and saves")
    g = train.add_argument_group("output")
    g.add_argument("--save", metavar="FILE", default=None,
                   help="write the trained model (architecture + weights) to FILE, e.g. model.npz")
    g.add_argument("--plots", metavar="DIR", default=None,
                   help="write training curves, filters, feature maps and the confusion matrix as PNGs to DIR")
    _data_options(train.add_argument_group("data and threads"))

    ev = sub.add_parser(
        "evaluate",
        help="accuracy and classification report of a saved model on the Fashion-MNIST test set",
        description="Load a model saved with 'train --save' or pycnn.save, or an ONNX file (.onnx),\n"
        "and measure it on the 10,000 Fashion-MNIST test images: loss, accuracy, and a\n"
        "classification report (precision, recall and F1 per class, and their averages).",
        epilog=DATA_HELP + "\n\nexample:\n  python -m pycnn evaluate out/model.npz --plots out/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ev.add_argument("model", metavar="MODEL",
                    help="a model file written by pycnn.save (e.g. model.npz), or an ONNX file (model.onnx)")
    ev.add_argument("--batch-size", type=_positive_int, default=256, metavar="N", help="samples per forward pass (default: 256)")
    ev.add_argument("--plots", metavar="DIR", default=None, help="also write confusion_matrix.png to DIR")
    _data_options(ev)

    pr = sub.add_parser(
        "predict",
        help="classify image files with a saved model (needs Pillow)",
        description="Classify images (PNG, JPEG, ...) with a saved model. Each image is converted to\n"
        "grey, resized to the model's input (28x28 for Fashion-MNIST) and scaled to [0, 1];\n"
        "Fashion-MNIST pictures are light objects on black, so images with a light\n"
        "background are inverted (--invert). Needs Pillow (pip install pillow).",
        epilog="example:\n  python -m pycnn predict out/model.npz shoe.png shirt.png --top 3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pr.add_argument("model", metavar="MODEL", help="a model file written by pycnn.save, or an ONNX file (.onnx)")
    pr.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    pr.add_argument("--top", type=_positive_int, default=3, metavar="K", help="classes to show per image (default: 3)")
    pr.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                    help="invert grey levels: auto (when the border is light), yes or no (default: auto)")

    ex = sub.add_parser(
        "export",
        help="write a saved model as an ONNX file (needs onnx: pip install \"pycnn[onnx]\")",
        description="Write a model saved with 'train --save' or pycnn.save as an ONNX file (opset 17 or\n"
        "later, batch dimension N free), for ONNX Runtime and other runtimes. The input shape\n"
        "comes from --input-shape, else from the model file's metadata (what 'train --save'\n"
        "records), else from the graph's inputs for an nn.Model. See docs/onnx.md.",
        epilog="examples:\n  python -m pycnn export out/model.npz out/model.onnx\n"
        "  python -m pycnn export model.npz model.onnx --input-shape 3,32,32 --opset 20",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ex.add_argument("model", metavar="MODEL", help="a model file written by pycnn.save (e.g. model.npz)")
    ex.add_argument("output", metavar="OUTPUT", help="the ONNX file to write (e.g. model.onnx)")
    ex.add_argument("--input-shape", type=_shape, default=None, metavar="C,H,W",
                    help="one sample's shape without the batch dimension, e.g. 1,28,28 or 3,32,32 or C,L "
                         "(default: the model file's input_shape)")
    ex.add_argument("--opset", type=_positive_int, default=17, metavar="N", help="ONNX opset, 17 or later (default: 17)")

    sub.add_parser(
        "info",
        help="print the build configuration (pycnn.show_config()), the data location and optional packages",
        description="Print pycnn.show_config(), where Fashion-MNIST was found, and which optional\n"
        "packages, model presets and optimisers are available.",
    )
    sub.add_parser(
        "bench",
        help="time pycnn against the NumPy baseline and PyTorch (run 'bench --help')",
        add_help=False,
    )
    return parser


class UserError(Exception):
    """An error the user can fix; printed as one line without a traceback."""


def _data_error_line(exc: BaseException, path: Optional[str]) -> str:
    from .data.fashion_mnist import _search_dirs

    dirs = ", ".join(str(d) for d in _search_dirs(path))
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
# the same cores; the commands that run pycnn's kernels (train, evaluate,
# predict) therefore start NumPy with one BLAS thread (unless the user chose
# otherwise). main() does this before building the parser, which imports
# NumPy. Library users: see README, Threads.
_BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _single_threaded_blas() -> None:
    if "numpy" not in sys.modules:
        for var in _BLAS_THREAD_VARS:
            os.environ.setdefault(var, "1")


def _load_data(args: argparse.Namespace) -> Tuple[Tuple[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]:
    from . import data

    try:
        return data.load_fashion_mnist(args.data, download=not args.no_download)
    except data.DatasetNotFoundError as exc:
        raise UserError(_data_error_line(exc, args.data)) from exc
    except ValueError as exc:  # malformed file, failed MD5
        raise UserError(f"cannot load Fashion-MNIST: {exc}") from exc


def _need_matplotlib(option: str) -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise UserError(f"{option} needs matplotlib: pip install \"pycnn[viz]\" (or pip install matplotlib)")


def _prepare_dir(directory: str, option: str) -> str:
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise UserError(f"{option}: cannot create directory {directory!r}: {e.strerror or e}") from None
    return directory


def _load_model(path: str) -> Tuple[Any, Dict[str, Any]]:
    import pycnn

    if not os.path.exists(path):
        raise UserError(f"model file {path!r} not found (write one with 'python -m pycnn train --save {path}')")
    if path.lower().endswith(".onnx"):
        return _load_onnx(path)
    try:
        return pycnn.load(path), pycnn.io.read_metadata(path)
    except ValueError as e:
        raise UserError(f"cannot load the model: {e}") from e


def _load_onnx(path: str) -> Tuple[Any, Dict[str, Any]]:
    """An ONNX file's network, and as metadata the input shape it declares (what predict resizes images to)."""
    try:
        from .onnx.importer import load_with_input_shapes
        model, shapes = load_with_input_shapes(path)
    except ImportError as e:
        raise UserError(f"reading .onnx files needs the onnx package (pip install onnx): {e}") from None
    except ValueError as e:
        raise UserError(f"cannot load the model: {e}") from e
    meta: Dict[str, Any] = {}
    if len(shapes) == 1:
        meta["input_shape"] = list(shapes[0][1:])
    return model, meta


def _class_names(meta: Dict[str, Any], n: int) -> List[str]:
    from . import data

    names = meta.get("class_names")
    if isinstance(names, list) and len(names) == n:
        return [str(c) for c in names]
    if n == len(data.FASHION_MNIST_CLASSES):
        return list(data.FASHION_MNIST_CLASSES)
    return [str(i) for i in range(n)]


def _make_optimizer(args: argparse.Namespace, params: Any) -> Tuple[Any, Dict[str, float]]:
    table = optimizers()
    cls, default_lr, _ = table[args.optimizer]
    kwargs = {"lr": args.lr if args.lr is not None else default_lr}
    if args.optimizer == "sgd":
        kwargs["momentum"] = 0.9 if args.momentum is None else args.momentum
    elif args.momentum is not None:
        raise UserError(f"--momentum applies to --optimizer sgd only, not {args.optimizer}")
    if args.weight_decay is not None:
        kwargs["weight_decay"] = args.weight_decay
    return cls(params, **kwargs), kwargs


def cmd_train(args: argparse.Namespace) -> int:
    if args.patience is not None and args.validation_split is None:
        # Early stopping picks the epoch by val_loss, which without a split is the test set's loss:
        # the reported test accuracy would then be chosen on the test set.
        raise UserError("--patience stops on the validation loss, and without --validation-split that is the "
                        "test set (the model would be selected on its test score); add --validation-split 0.1")
    if not args.distributed:
        return _train(args, 0, 1)
    from . import distributed

    distributed.init()
    if distributed.rank() == 0:
        return _train(args, 0, distributed.size())
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # rank 0 reports
        return _train(args, distributed.rank(), distributed.size())


def _train(args: argparse.Namespace, rank: int, ranks: int) -> int:
    import numpy as np

    import pycnn
    from . import data, train as T
    from .models import get_preset

    if rank == 0 and args.plots is not None:
        _need_matplotlib("--plots")
        _prepare_dir(args.plots, "--plots")
    if rank == 0 and args.save is not None and os.path.dirname(args.save):
        _prepare_dir(os.path.dirname(args.save), "--save")
    if args.threads is not None:
        pycnn.set_num_threads(args.threads)

    t_load = time.perf_counter()
    if ranks > 1:
        # Rank 0 first: a download (when no copy is found) happens once, and the others then find it.
        from . import distributed

        if rank == 0:
            (x_train, y_train), (x_test, y_test) = _load_data(args)
        distributed.barrier()
        if rank != 0:
            (x_train, y_train), (x_test, y_test) = _load_data(args)
    else:
        (x_train, y_train), (x_test, y_test) = _load_data(args)
    t_load = time.perf_counter() - t_load
    if args.limit is not None:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    where = data.find_fashion_mnist(args.data)
    print(
        f"Fashion-MNIST ({where}): {len(x_train):,} train / {len(x_test):,} test images, loaded in {t_load:.1f}s",
        flush=True,
    )

    pycnn.manual_seed(args.seed)
    build = get_preset(args.model)
    # Presets made for other data (resnet18: RGB) take the channel count as an argument.
    extra = {"in_channels": 1} if "in_channels" in inspect.signature(build).parameters else {}
    model = build(num_classes=len(data.FASHION_MNIST_CLASSES), **extra)
    loss_fn = pycnn.nn.CrossEntropyLoss()
    optimizer, opt_kwargs = _make_optimizer(args, model.parameters())
    n_params = sum(int(p.size) for p in model.parameters())
    opt_text = ", ".join(f"{k} {v:g}" for k, v in opt_kwargs.items())
    print(
        f"pycnn {pycnn.__version__}, "
        + (f"{ranks} ranks x " if args.distributed else "")
        + f"{pycnn.get_num_threads()} thread{'s' if pycnn.get_num_threads() != 1 else ''}"
        + f"; {args.model} with {n_params:,} parameters; "
        f"{args.optimizer.upper() if args.optimizer == 'sgd' else args.optimizer.capitalize()} {opt_text}, "
        f"batch {args.batch_size}, {args.epochs} epoch{'s' if args.epochs != 1 else ''}, seed {args.seed}"
        + (f", {args.schedule} schedule" if args.schedule != "constant" else "")
        + (", augmented" if args.augment else ""),
        flush=True,
    )

    callbacks: list = []
    if args.schedule == "step":
        callbacks.append(T.StepDecay(step_size=-(-args.epochs // 3), gamma=0.1))
    elif args.schedule == "cosine":
        callbacks.append(T.CosineDecay())
    early = None
    if args.patience is not None:
        early = T.EarlyStopping("val_loss", patience=args.patience, restore_best_weights=True)
        callbacks.append(early)
    transform = None
    if args.augment:
        transform = data.Compose([data.RandomCrop(28, padding=2), data.RandomHorizontalFlip()])

    fit_kw = {}
    if args.validation_split is not None:
        fit_kw["validation_split"] = args.validation_split
        val_name = "val"
    else:
        fit_kw["validation_data"] = (x_test, y_test)
        val_name = "test"
    width = len(str(args.epochs))

    def line(epoch, epochs, logs):
        text = (
            f"epoch {epoch + 1:>{width}}/{epochs}  loss {logs['loss']:.4f}  "
            f"train acc {_pct(logs['accuracy'])}  {val_name} loss {logs['val_loss']:.4f}  "
            f"{val_name} acc {_pct(logs['val_accuracy'])}  {logs['images_per_s']:,.0f} images/s  "
            f"({logs['time']:.1f}s)"
        )
        if "lr" in logs:
            text += f"  lr {logs['lr']:.4g}"
        return text

    trainer = T.Trainer(model, loss_fn, optimizer)
    history = trainer.fit(
        x_train, y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        verbose=0,
        callbacks=callbacks + [T.ProgressLogger(2 if args.quiet else 1, formatter=line)],
        transform=transform,
        seed=None,  # drawn from pycnn's generator, seeded above
        distributed=args.distributed,
        **fit_kw,
    )
    h = history.history
    total = sum(h["time"])
    trained = history.params["samples"] * len(history)
    if early is not None and early.stopped_epoch is not None:
        print(f"early stopping: val_loss did not improve for {args.patience} epoch(s); "
              f"kept the weights of epoch {cast(int, early.best_epoch) + 1}", flush=True)
    if args.validation_split is not None:
        test_acc = T.evaluate(model, x_test, y_test, distributed=args.distributed)["accuracy"]
    else:
        test_acc = h["val_accuracy"][(early.best_epoch if early is not None and early.best_epoch is not None
                                      else len(history) - 1)]
    print(
        f"test accuracy {_pct(test_acc)} after {len(history)} epoch{'s' if len(history) != 1 else ''}; "
        f"training took {total:.1f}s ({trained / total:,.0f} images/s)",
        flush=True,
    )

    if rank != 0:
        return 0
    if args.save is not None:
        pycnn.save(model, args.save, metadata={
            "preset": args.model, "dataset": "fashion-mnist", "input_shape": [1, 28, 28],
            "class_names": list(data.FASHION_MNIST_CLASSES), "test_accuracy": test_acc,
            "history": {k: [float(v) for v in vals] for k, vals in h.items()},
        })
        print(f"saved the model to {args.save} (python -m pycnn evaluate {args.save}; pycnn.load)", flush=True)
    if args.plots is not None:
        from . import metrics, viz

        d = args.plots
        y_pred = T.predict(model, x_test)
        written: list = [
            viz.plot_history(history, os.path.join(d, "history.png"), title=f"{args.model} on Fashion-MNIST"),
            viz.plot_filters(model, os.path.join(d, "filters.png")),
            viz.plot_feature_maps(model, x_test[0], os.path.join(d, "feature_maps.png")),
            viz.plot_confusion_matrix(metrics.confusion_matrix(y_test, y_pred, labels=np.arange(10)),
                                      os.path.join(d, "confusion_matrix.png"),
                                      class_names=data.FASHION_MNIST_CLASSES,
                                      title=f"Confusion matrix, test accuracy {_pct(test_acc)}"),
        ]
        history.to_json(os.path.join(d, "history.json"))
        written.append(os.path.join(d, "history.json"))
        print("wrote " + ", ".join(str(p) for p in written), flush=True)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    import pycnn
    from . import metrics, train as T

    if args.plots is not None:
        _need_matplotlib("--plots")
        _prepare_dir(args.plots, "--plots")
    if args.threads is not None:
        pycnn.set_num_threads(args.threads)
    model, meta = _load_model(args.model)
    _, (x_test, y_test) = _load_data(args)
    t0 = time.perf_counter()
    try:
        logits = T.predict_outputs(model, x_test, batch_size=args.batch_size)
    except ValueError as e:
        raise UserError(f"the model does not take Fashion-MNIST images (N, 1, 28, 28): {e}") from e
    seconds = time.perf_counter() - t0
    if logits.ndim != 2:
        raise UserError(f"the model's outputs have shape {logits.shape}; evaluate needs class scores (N, classes)")
    loss = float(pycnn.nn.CrossEntropyLoss()(logits, y_test))
    y_pred = logits.argmax(axis=1)
    names = _class_names(meta, logits.shape[1])
    labels = np.arange(logits.shape[1])
    print(f"{args.model}: {len(x_test):,} test images in {seconds:.1f}s ({len(x_test) / seconds:,.0f} images/s)")
    print(f"loss {loss:.4f}  accuracy {_pct(metrics.accuracy_score(y_test, y_pred))}\n")
    print(metrics.classification_report(y_test, y_pred, labels=labels, target_names=names, digits=4,
                                        zero_division=0.0))
    if args.plots is not None:
        from . import viz

        path = viz.plot_confusion_matrix(metrics.confusion_matrix(y_test, y_pred, labels=labels),
                                         os.path.join(args.plots, "confusion_matrix.png"), class_names=names)
        print(f"wrote {path}")
    return 0


def _read_image(path: str, shape: Sequence[int], invert: str) -> np.ndarray:
    import numpy as np

    try:
        from PIL import Image
    except ImportError:
        raise UserError("predict needs Pillow to read images: pip install pillow") from None
    c, h, w = shape
    try:
        with Image.open(path) as f:
            im = f.convert("RGB" if c == 3 else "L").resize((w, h), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise UserError(f"image {path!r} not found") from None
    except OSError as e:
        raise UserError(f"cannot read image {path!r}: {e}") from None
    a = a.transpose(2, 0, 1) if c == 3 else a[None]
    if invert == "yes" or (invert == "auto" and np.concatenate(
            [a[:, 0, :].ravel(), a[:, -1, :].ravel(), a[:, :, 0].ravel(), a[:, :, -1].ravel()]).mean() > 0.5):
        a = 1.0 - a
    return a


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from . import train as T

    model, meta = _load_model(args.model)
    shape = meta.get("input_shape") or [1, 28, 28]
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(d, int) and d > 0 for d in shape)):
        raise UserError(f"the model file gives input_shape {shape!r}; predict handles images (C, H, W)")
    x = np.stack([_read_image(p, shape, args.invert) for p in args.images])
    probs = T.predict_proba(model, x)
    names = _class_names(meta, probs.shape[1])
    k = min(args.top, probs.shape[1])
    for path, p in zip(args.images, probs):
        order = np.argsort(-p, kind="stable")[:k]
        best = order[0]
        rest = ", ".join(f"{names[i]} {_pct(p[i])}" for i in order[1:])
        print(f"{path}: {names[best]} ({_pct(p[best])})" + (f"  [{rest}]" if rest else ""))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from . import nn
    from .onnx import export

    model, meta = _load_model(args.model)
    shape: Any = args.input_shape
    if shape is None:
        recorded = meta.get("input_shape")
        if recorded is not None:
            if not (isinstance(recorded, list) and recorded
                    and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in recorded)):
                raise UserError(f"the model file gives input_shape {recorded!r}, not a list of positive sizes; "
                                f"give --input-shape")
            shape = tuple(recorded)
        elif not isinstance(model, nn.Model):
            raise UserError(f"{args.model} records no input_shape: give --input-shape (e.g. --input-shape 1,28,28)")
    proto = export(model, args.output, shape, opset=args.opset)
    dims = [i.type.tensor_type.shape.dim for i in proto.graph.input]
    shapes = ", ".join("(" + ", ".join(d.dim_param or str(d.dim_value) for d in ds) + ")" for ds in dims)
    print(f"wrote {args.output}: {type(model).__name__}, input {shapes}, opset {args.opset}, "
          f"{len(proto.graph.node)} nodes")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import importlib.util

    import pycnn
    from . import data
    from .models import available_presets

    pycnn.show_config()
    where = data.find_fashion_mnist()
    print(f"  data:        Fashion-MNIST {'in ' + str(where) if where else 'not found locally (downloaded on first use)'}")
    extras = ", ".join(f"{name} {'yes' if importlib.util.find_spec(mod) else 'no'}"
                       for name, mod in (("tqdm", "tqdm"), ("matplotlib", "matplotlib"), ("pillow", "PIL"),
                                         ("torch", "torch"), ("mpi4py", "mpi4py"),
                                         ("onnx", "onnx"), ("onnxruntime", "onnxruntime")))
    print(f"  optional:    {extras}")
    print(f"  presets:     {', '.join(sorted(available_presets()))}")
    print(f"  optimisers:  {', '.join(optimizers())}")
    return 0


def cmd_bench(argv: Sequence[str]) -> int:
    from . import bench

    return bench.main(argv, prog="python -m pycnn bench")


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "export": cmd_export,
            "info": cmd_info}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("PYCNN_DEBUG", "") not in ("", "0")
    try:
        if argv and argv[0] == "bench":  # before anything imports NumPy (bench sets BLAS threads)
            return cmd_bench(argv[1:])
        if argv and argv[0] in ("train", "evaluate", "predict"):
            _single_threaded_blas()
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        return COMMANDS[args.command](args)
    except KeyboardInterrupt as exc:
        if debug:
            raise
        print("pycnn: interrupted", file=sys.stderr)
        _end_distributed_job(exc)
        return 130
    except (UserError, ValueError, TypeError, OSError, ImportError) as exc:
        if debug:
            raise
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not isinstance(exc, UserError):
            msg = f"{type(exc).__name__}: {msg}"
        print(f"pycnn: error: {msg}", file=sys.stderr)
        _end_distributed_job(exc)
        return 1


def _end_distributed_job(exc: BaseException) -> None:
    """In an MPI job, an error that ends this rank must end every rank (returning would leave them waiting)."""
    world = sys.modules.get("pycnn.distributed.world")
    if world is not None:
        world.end_job_after(exc)


if __name__ == "__main__":
    sys.exit(main())
