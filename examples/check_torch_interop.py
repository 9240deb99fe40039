"""Load a state dict trained by pycnn into the equivalent PyTorch model and compare on the test set.

    python examples/fashion_mnist_bn_cnn.py --save bn_cnn.npz
    python examples/check_torch_interop.py bn_cnn.npz --model bn_cnn
    python examples/fashion_mnist_resnet.py --save resnet8.npz
    python examples/check_torch_interop.py resnet8.npz --model resnet --depth 8

Needs PyTorch (CPU). Prints both test accuracies, how many predictions differ
and the largest logit difference, in eval mode (running statistics).
"""
from __future__ import annotations

import argparse
from typing import Any, Optional, Sequence

import fashion_mnist_bn_cnn
import numpy as np

from pycnn import nn
from pycnn.data import load_fashion_mnist


def torch_bn_cnn() -> Any:
    import torch.nn as tnn

    return tnn.Sequential(
        tnn.Conv2d(1, 32, 3, padding=1, bias=False), tnn.BatchNorm2d(32), tnn.ReLU(),
        tnn.Conv2d(32, 32, 3, padding=1, bias=False), tnn.BatchNorm2d(32), tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 3, padding=1, bias=False), tnn.BatchNorm2d(64), tnn.ReLU(),
        tnn.Conv2d(64, 64, 3, padding=1, bias=False), tnn.BatchNorm2d(64), tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Linear(64 * 7 * 7, 256, bias=False), tnn.BatchNorm1d(256), tnn.ReLU(), tnn.Dropout(0.4),
        tnn.Linear(256, 10),
    )


def torch_resnet(depth: int, width: int, in_channels: int = 1, num_classes: int = 10) -> Any:
    """He et al.'s CIFAR ResNet with torchvision's BasicBlock names (pycnn.bench.resnet's PyTorch twin)."""
    import torch

    from pycnn.bench.resnet import torch_cifar_resnet

    return torch_cifar_resnet(torch, depth, in_channels, num_classes, width)


def main(argv: Optional[Sequence[str]] = None) -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights")
    ap.add_argument("--model", choices=["bn_cnn", "resnet"], default="bn_cnn")
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--width", type=int, default=16)
    args = ap.parse_args(argv)
    sd = dict(np.load(args.weights))
    if args.model == "bn_cnn":
        model, tmodel = fashion_mnist_bn_cnn.bn_cnn(), torch_bn_cnn()
    else:
        model, tmodel = nn.ResNet(args.depth, 1, 10, args.width), torch_resnet(args.depth, args.width)
    model.load_state_dict(sd)
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})  # strict
    model.eval(), tmodel.eval()
    (xtr, _), (xte, yte) = load_fashion_mnist()
    mean, std = float(xtr.mean()), float(xtr.std())  # the examples' normalisation
    xte = (xte - mean) / std
    ours, theirs = [], []
    with torch.no_grad():
        for i in range(0, len(xte), 1000):
            ours.append(model(xte[i:i + 1000]))
            theirs.append(tmodel(torch.from_numpy(xte[i:i + 1000])).numpy())
    ours, theirs = np.concatenate(ours), np.concatenate(theirs)
    acc_p, acc_t = (ours.argmax(1) == yte).mean(), (theirs.argmax(1) == yte).mean()
    print(f"pycnn test accuracy {acc_p:.4f}, PyTorch with the same state dict {acc_t:.4f}; "
          f"{int((ours.argmax(1) != theirs.argmax(1)).sum())} of {len(yte)} predictions differ; "
          f"max |logit difference| {np.abs(ours - theirs).max():.2e}")
    # and back: PyTorch's state dict into a fresh pycnn model
    fresh = fashion_mnist_bn_cnn.bn_cnn() if args.model == "bn_cnn" else nn.ResNet(args.depth, 1, 10, args.width)
    fresh.load_state_dict(tmodel.state_dict())
    fresh.eval()
    back = fresh(xte[:1000])
    print(f"round trip PyTorch -> pycnn: max |logit difference| {np.abs(back - ours[:1000]).max():.2e}")


if __name__ == "__main__":
    main()
