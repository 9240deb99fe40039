"""A minimal training loop shared by the examples (pycnn.train.fit may replace it).

Kept deliberately small: one epoch = shuffled mini-batches, forward, loss,
backward, optimiser step; evaluation in eval() mode in large batches.
"""
from __future__ import annotations

import argparse
import time
from typing import Any, Callable, Optional, Tuple

import numpy as np

from pycnn import nn

ArrayPair = Tuple[np.ndarray, np.ndarray]
#: ``augment(batch, rng) -> batch``, e.g. :func:`flip_and_shift`.
Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def train_epoch(model: nn.Module, loss_fn: Any, opt: Any, x: np.ndarray, y: np.ndarray, batch_size: int,
                rng: np.random.Generator, augment: Optional[Augment] = None,
                log_every: int = 0) -> Tuple[float, float, float]:
    """One pass over (x, y) in shuffled mini-batches -> (mean loss, accuracy, seconds)."""
    model.train()
    order = rng.permutation(len(x))
    total_loss, correct, seen = 0.0, 0, 0
    t0 = time.perf_counter()
    nb = (len(x) + batch_size - 1) // batch_size
    for b in range(nb):
        idx = order[b * batch_size:(b + 1) * batch_size]
        xb, yb = x[idx], y[idx]
        if augment is not None:
            xb = augment(xb, rng)
        logits = model(xb)
        loss = loss_fn(logits, yb)
        opt.zero_grad()
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()
        total_loss += loss * len(idx)
        correct += int((logits.argmax(axis=1) == yb).sum())
        seen += len(idx)
        if log_every and (b + 1) % log_every == 0:
            el = time.perf_counter() - t0
            print(f"    batch {b + 1}/{nb}  loss {total_loss / seen:.4f}  {seen / el:.0f} img/s", flush=True)
    return total_loss / seen, correct / seen, time.perf_counter() - t0


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float:
    """Accuracy of model on (x, y) in eval() mode."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i:i + batch_size]).argmax(axis=1) == y[i:i + batch_size]).sum())
    return correct / len(x)


def flip_and_shift(xb: np.ndarray, rng: np.random.Generator, max_shift: int = 2) -> np.ndarray:
    """Fashion-MNIST augmentation: random horizontal flip and a random shift of up to max_shift pixels
    (zero fill), i.e. PyTorch's RandomHorizontalFlip + RandomCrop(28, padding=max_shift)."""
    n, c, h, w = xb.shape
    out = np.array(xb, copy=True)
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, :, ::-1]
    if max_shift:
        p = max_shift
        padded = np.zeros((n, c, h + 2 * p, w + 2 * p), np.float32)
        padded[:, :, p:p + h, p:p + w] = out
        dy = rng.integers(0, 2 * p + 1, n)
        dx = rng.integers(0, 2 * p + 1, n)
        for i in range(n):
            out[i] = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    return out


def count_parameters(model: nn.Module) -> int:
    return int(sum(p.size for p in model.parameters()))


def add_training_args(ap: argparse.ArgumentParser, epochs: int, lr: float) -> None:
    """The options every Fashion-MNIST example takes (its own defaults for epochs and lr)."""
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images only (smoke test)")
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--save", default="", help="write the trained state_dict to this .npz file")


def prepare(args: argparse.Namespace) -> Tuple[np.random.Generator, ArrayPair, ArrayPair]:
    """Apply --threads and --seed, load the data -> (rng, train, test)."""
    import pycnn

    if args.threads:
        pycnn.set_num_threads(args.threads)
    pycnn.manual_seed(args.seed)
    return np.random.default_rng(args.seed), *standardised_fashion_mnist(args.limit)


def standardised_fashion_mnist(limit: int = 0) -> Tuple[ArrayPair, ArrayPair]:
    """Fashion-MNIST standardised with the training set's mean and std; the first `limit` training images if > 0."""
    from pycnn.data import load_fashion_mnist

    (xtr, ytr), (xte, yte) = load_fashion_mnist()
    mean, std = float(xtr.mean()), float(xtr.std())
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    if limit:
        xtr, ytr = xtr[:limit], ytr[:limit]
    return (xtr, ytr), (xte, yte)


def warmup_then_cosine(opt: Any, epochs: int) -> Any:
    """One epoch of linear warm-up from lr/10, then cosine annealing to 0 (stepped once per epoch)."""
    from pycnn import optim

    warmup = optim.LinearLR(opt, start_factor=0.1, total_iters=1)
    cosine = optim.CosineAnnealingLR(opt, T_max=max(1, epochs - 1))
    return optim.SequentialLR(opt, [warmup, cosine], milestones=[1])


def run(model: nn.Module, loss_fn: Any, opt: Any, sched: Any, train: ArrayPair, test: ArrayPair,
        args: argparse.Namespace, rng: np.random.Generator, lr_format: str = ".2e") -> float:
    """Train for args.epochs (printing one line per epoch), save to args.save if set -> final test accuracy."""
    (xtr, ytr), (xte, yte) = train, test
    augment = None if args.no_augment else flip_and_shift
    t_start = time.perf_counter()
    acc = 0.0
    for epoch in range(args.epochs):
        lr = opt.lr
        loss, train_acc, secs = train_epoch(model, loss_fn, opt, xtr, ytr, args.batch_size, rng, augment)
        sched.step()
        acc = evaluate(model, xte, yte)
        print(f"epoch {epoch + 1:2d}/{args.epochs}  lr {lr:{lr_format}}  loss {loss:.4f}  train acc {train_acc:.4f}  "
              f"test acc {acc:.4f}  {secs:.0f} s ({len(xtr) / secs:.0f} img/s)", flush=True)
    total = time.perf_counter() - t_start
    print(f"final test accuracy {acc:.4f} after {args.epochs} epochs, {total / 60:.1f} min total", flush=True)
    if args.save:
        np.savez(args.save, **model.state_dict())
    return acc
