"""Time-series classification with Conv1d: the Fully Convolutional Network of Wang et al. (2017)
on a UCR archive data set (default OSULeaf), next to the archive's 1-NN Euclidean baseline.

    pip install --no-deps aeon      # only for its bundled data files (no numba/pandas needed)
    python examples/timeseries_conv1d.py [--dataset OSULeaf] [--epochs 300] [--threads 2]

The UCR data sets GunPoint, OSULeaf, ArrowHead, ItalyPowerDemand and ACSF1 ship
inside the ``aeon`` wheel (aeon/datasets/data/<name>/<name>_{TRAIN,TEST}.ts);
this script reads those files directly with a small .ts parser, so aeon is
never imported and nothing is downloaded at run time. Standard train/test
splits, each series z-normalised (the archive's convention).

Model (Wang, Yan, Oates, "Time Series Classification from Scratch with Deep
Neural Networks: A Strong Baseline", IJCNN 2017): three Conv1d-BN-ReLU blocks
(kernels 8, 5, 3, padding 'same'), global average pooling, Linear. Widths
default to half the paper's 128-256-128 (``--width 128`` for the original) to
fit a 2-core CPU budget. Adam with cosine annealing; the paper's FCN used Adam
for 2000 epochs with plateau decay.

Published test error rates for OSULeaf (UCR archive / Wang et al. 2017):
1-NN Euclidean 0.479, 1-NN DTW 0.409, FCN 0.012, ResNet 0.021.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from _loop import count_parameters, evaluate, train_epoch

import pycnn
from pycnn import nn, optim

# Published error rates (UCR archive 1-NN baselines; FCN/ResNet from Wang et al. 2017, Table 2).
PUBLISHED = {
    "OSULeaf": dict(ed=0.479, dtw=0.409, fcn=0.012, resnet=0.021),
    "GunPoint": dict(ed=0.087, dtw=0.093, fcn=0.000, resnet=0.007),
    "ArrowHead": dict(ed=0.200, dtw=0.297, fcn=0.120, resnet=0.183),
    "ItalyPowerDemand": dict(ed=0.045, dtw=0.050, fcn=0.030, resnet=0.040),
}


def read_ts(path: Union[str, "os.PathLike[str]"]) -> Tuple[np.ndarray, List[str]]:
    """Parse a univariate, equal-length UCR/UEA ``.ts`` file -> (x float32 (N, L), labels as strings)."""
    rows, labels, in_data = [], [], False
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if line.lower().startswith("@data"):
                    in_data = True
                continue
            *dims, label = line.split(":")
            if len(dims) != 1:
                raise ValueError(f"{path}: only univariate series are supported, got {len(dims)} dimensions")
            rows.append(np.array([float(v) for v in dims[0].split(",")], dtype=np.float32))
            labels.append(label)
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"{path}: series of unequal length")
    return np.stack(rows), labels


def aeon_data_dir() -> str:
    spec = importlib.util.find_spec("aeon")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        sys.exit("This example reads UCR data files bundled with aeon: pip install --no-deps aeon")
    return os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data")


def load_ucr(name: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, List[str]]:
    d = os.path.join(aeon_data_dir(), name)
    xtr, ltr = read_ts(os.path.join(d, f"{name}_TRAIN.ts"))
    xte, lte = read_ts(os.path.join(d, f"{name}_TEST.ts"))
    classes = sorted(set(ltr), key=lambda s: (len(s), s))
    index = {c: i for i, c in enumerate(classes)}
    ytr = np.array([index[c] for c in ltr], np.int64)
    yte = np.array([index[c] for c in lte], np.int64)

    def znorm(x: np.ndarray) -> np.ndarray:
        return ((x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-8)).astype(np.float32)

    return znorm(xtr)[:, None, :], ytr, znorm(xte)[:, None, :], yte, classes


def one_nn_euclidean(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray) -> np.ndarray:
    a, b = xtr.reshape(len(xtr), -1).astype(np.float64), xte.reshape(len(xte), -1).astype(np.float64)
    d = (b * b).sum(1)[:, None] - 2 * b @ a.T + (a * a).sum(1)[None, :]
    return ytr[d.argmin(axis=1)]


def fcn(classes: int, width: int = 64) -> nn.Sequential:
    w1, w2, w3 = width, 2 * width, width
    return nn.Sequential(
        nn.Conv1d(1, w1, 8, padding="same", bias=False), nn.BatchNorm1d(w1), nn.ReLU(),
        nn.Conv1d(w1, w2, 5, padding="same", bias=False), nn.BatchNorm1d(w2), nn.ReLU(),
        nn.Conv1d(w2, w3, 3, padding="same", bias=False), nn.BatchNorm1d(w3), nn.ReLU(),
        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(w3, classes),
    )


def main(argv: Optional[Sequence[str]] = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="OSULeaf")
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report-every", type=int, default=25)
    args = ap.parse_args(argv)
    if args.threads:
        pycnn.set_num_threads(args.threads)
    pycnn.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    xtr, ytr, xte, yte, classes = load_ucr(args.dataset)
    print(f"{args.dataset}: train {xtr.shape}, test {xte.shape}, {len(classes)} classes", flush=True)
    ed_acc = float((one_nn_euclidean(xtr, ytr, xte) == yte).mean())
    print(f"1-NN Euclidean baseline (computed here): test accuracy {ed_acc:.4f}", flush=True)
    model = fcn(len(classes), args.width)
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=args.lr)
    sched = optim.CosineAnnealingLR(opt, T_max=args.epochs)
    print(f"FCN: {count_parameters(model):,} parameters, {args.epochs} epochs, batch {args.batch_size}, "
          f"{pycnn.get_num_threads()} threads", flush=True)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        loss, train_acc, _ = train_epoch(model, loss_fn, opt, xtr, ytr, args.batch_size, rng)
        sched.step()
        if (epoch + 1) % args.report_every == 0 or epoch + 1 == args.epochs:
            acc = evaluate(model, xte, yte, batch_size=256)
            print(f"epoch {epoch + 1:4d}  loss {loss:.4f}  train acc {train_acc:.4f}  test acc {acc:.4f}  "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
    acc = evaluate(model, xte, yte, batch_size=256)
    total = time.perf_counter() - t0
    pub = PUBLISHED.get(args.dataset)
    print(f"final: FCN (pycnn) test accuracy {acc:.4f} after {args.epochs} epochs, {total / 60:.1f} min; "
          f"1-NN Euclidean {ed_acc:.4f}", flush=True)
    if pub:
        print(f"published accuracy: 1-NN ED {1 - pub['ed']:.3f}, 1-NN DTW {1 - pub['dtw']:.3f}, "
              f"FCN {1 - pub['fcn']:.3f}, ResNet {1 - pub['resnet']:.3f} (Wang et al. 2017)", flush=True)
    return acc


if __name__ == "__main__":
    main()
