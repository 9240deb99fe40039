"""Transfer learning on Fashion-MNIST: pretrain on five classes, fine-tune a new head on the other five.

    python examples/fashion_mnist_transfer.py [--model resnet8] [--pretrain-epochs 2] [--epochs 20]
                                              [--per-class 100] [--threads 2] [--quick]

1. Pretrain the network on every training image of classes 0-4 (T-shirt,
   Trouser, Pullover, Dress, Coat).
2. Fine-tune: ``model.freeze()`` (every parameter, and the BatchNorms pinned
   in eval mode with their pretrained statistics), a new ``Linear`` head for
   classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot), trained on
   ``--per-class`` labelled images of each.
3. Baselines on the same images with the same optimiser, epochs and batch
   size: the same network trained from scratch, and the frozen backbone
   whose BatchNorms are frozen in their parameters only
   (``freeze(bn_eval=False)``, PyTorch's ``requires_grad_(False)``), so that
   they normalise with batch statistics and re-estimate their running
   statistics on the small set.

Prints the test accuracy of each on the 5,000 test images of classes 5-9.

The network is the ``resnet8`` preset by default (He et al.'s CIFAR ResNet,
BasicBlocks with BatchNorm, 77k parameters): ``resnet18`` (the torchvision
layout, ``--model resnet18``) has 3.5x the FLOPs per 28x28 image and 144x
the parameters (11.2M, all updated by every pretraining step), and its 7x7
stride-2 stem and max pool shrink 28x28 to 7x7 before the first stage; the
recipe is the same. ``--quick`` is a smoke run (1,000
pretraining images for 1 epoch, 20 images per new class for 4 epochs, 300
test images, without the third variant).
"""
from __future__ import annotations

import argparse
import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from _loop import count_parameters, standardised_fashion_mnist

import pycnn
from pycnn import nn, optim
from pycnn.models import get_preset
from pycnn.train import CosineDecay, evaluate, fit

OLD_CLASSES = (0, 1, 2, 3, 4)
NEW_CLASSES = (5, 6, 7, 8, 9)


def select(x: np.ndarray, y: np.ndarray, classes: Sequence[int], per_class: int = 0,
           rng: Optional[np.random.Generator] = None) -> Tuple[np.ndarray, np.ndarray]:
    """The images of ``classes`` with labels renumbered 0..len(classes)-1; ``per_class`` > 0 draws that many
    of each class with ``rng`` (without replacement)."""
    picked = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        if per_class:
            assert rng is not None
            if per_class > len(idx):
                raise ValueError(f"--per-class {per_class}: class {c} has only {len(idx)} images")
            idx = rng.choice(idx, per_class, replace=False)
        picked.append(idx)
    order = np.sort(np.concatenate(picked))
    relabel = np.zeros(10, np.int64)
    relabel[list(classes)] = np.arange(len(classes))
    return x[order], relabel[y[order]]


def build(name: str, num_classes: int) -> nn.Module:
    """The preset ``name`` for one-channel 28x28 images."""
    kwargs = {"in_channels": 1} if name == "resnet18" else {}
    return get_preset(name)(num_classes=num_classes, **kwargs)


def new_head(model: nn.Module, num_classes: int) -> None:
    """Replace the last layer (the classifier, a Linear) with a fresh one for ``num_classes``."""
    old = model[-1]
    model[-1] = nn.Linear(old.in_features, num_classes)


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, args: argparse.Namespace, epochs: int, lr: float,
          batch_size: int, seed: int) -> float:
    """SGD with Nesterov momentum 0.9, weight decay 5e-4, cosine decay; returns the seconds spent."""
    opt = optim.SGD(model.trainable_parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    t0 = time.perf_counter()
    fit(model, x, y, loss_fn=nn.CrossEntropyLoss(), optimizer=opt, epochs=epochs, batch_size=batch_size,
        seed=seed, verbose=args.verbose, callbacks=[CosineDecay()])
    return time.perf_counter() - t0


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet8", choices=["resnet8", "resnet18", "fashion_mnist_bn_cnn"])
    ap.add_argument("--pretrain-epochs", type=int, default=2)
    ap.add_argument("--pretrain-lr", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=20, help="epochs on the small set (every variant)")
    ap.add_argument("--lr", type=float, default=0.05, help="learning rate on the small set (every variant)")
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=50, help="batch size on the small set (pretraining: 128)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", type=int, default=0, help="fit's verbosity (0, 1, 2)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1,000 pretraining images, 1 epoch; "
                                                         "20 images per new class, 4 epochs; 300 test images; "
                                                         "no BatchNorm-in-training-mode variant")
    args = ap.parse_args(argv)
    if args.threads:
        pycnn.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    (xtr, ytr), (xte, yte) = standardised_fashion_mnist()
    x_old, y_old = select(xtr, ytr, OLD_CLASSES)
    x_old_test, y_old_test = select(xte, yte, OLD_CLASSES)
    x_test, y_test = select(xte, yte, NEW_CLASSES)
    pretrain_epochs, epochs = args.pretrain_epochs, args.epochs
    if args.quick:
        keep = rng.permutation(len(x_old))[:1000]
        x_old, y_old = x_old[keep], y_old[keep]
        pretrain_epochs, epochs, args.per_class, args.batch_size = 1, min(epochs, 4), 20, 20
        test = rng.permutation(len(x_test))[:300]
        x_old_test, y_old_test, x_test, y_test = x_old_test[:300], y_old_test[:300], x_test[test], y_test[test]
    x_new, y_new = select(xtr, ytr, NEW_CLASSES, args.per_class, rng)

    pycnn.manual_seed(args.seed)
    pretrained = build(args.model, len(OLD_CLASSES))
    print(f"pycnn {pycnn.__version__}, {pycnn.get_num_threads()} threads; {args.model}: "
          f"{count_parameters(pretrained):,} parameters", flush=True)
    secs = train(pretrained, x_old, y_old, args, pretrain_epochs, args.pretrain_lr, 128, args.seed)
    acc_old = evaluate(pretrained, x_old_test, y_old_test)["accuracy"]
    print(f"pretrained on classes {OLD_CLASSES}: {len(x_old):,} images, {pretrain_epochs} epochs, {secs:.0f} s; "
          f"test accuracy on those classes {acc_old:.4f}", flush=True)
    state = {k: v.copy() for k, v in pretrained.state_dict().items()}
    print(f"small set: {args.per_class} images of each of classes {NEW_CLASSES}; {epochs} epochs, batch "
          f"{args.batch_size}, lr {args.lr}; test accuracy on the {len(x_test):,} test images of those classes:",
          flush=True)

    results: Dict[str, float] = {}
    variants = (("finetune", "fine-tuned head, frozen backbone (BatchNorm statistics frozen too)"),
                ("finetune_bn_train", "fine-tuned head, frozen parameters, BatchNorm in training mode"),
                ("scratch", "the same network from scratch (every layer trained)"))
    for key, label in variants:
        if args.quick and key == "finetune_bn_train":
            continue
        pycnn.manual_seed(args.seed + 1)  # the same new head (and, from scratch, the same fresh backbone)
        model = build(args.model, len(OLD_CLASSES))
        if key != "scratch":
            model.load_state_dict(state)
            model.freeze(bn_eval=(key == "finetune"))
        new_head(model, len(NEW_CLASSES))
        secs = train(model, x_new, y_new, args, epochs, args.lr, args.batch_size, args.seed)
        results[key] = evaluate(model, x_test, y_test)["accuracy"]
        print(f"  {label}: test accuracy {results[key]:.4f} ({secs:.1f} s)", flush=True)
    return results


if __name__ == "__main__":
    main()
