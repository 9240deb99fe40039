"""Fashion-MNIST with a small ResNet (He et al. 2016's CIFAR ResNet, depth 6n+2) and augmentation.

    python examples/fashion_mnist_resnet.py [--depth 8] [--width 16] [--epochs 12] [--threads 2]

ResNet-8 by default (stem conv + 3 BasicBlocks with 16/32/64 channels, 1x1
projection shortcuts, global average pooling; 78k parameters); ``--depth 20``
for ResNet-20 (0.27M, about 3x the time per epoch). SGD with Nesterov momentum
0.9, weight decay 5e-4, lr 0.1 with one epoch of linear warm-up then cosine
annealing; augmentation: random horizontal flip and +-2 pixel shifts.
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from _loop import add_training_args, count_parameters, prepare, run, warmup_then_cosine

import pycnn
from pycnn import nn, optim


def main(argv: Optional[Sequence[str]] = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--width", type=int, default=16)
    add_training_args(ap, epochs=12, lr=0.1)
    args = ap.parse_args(argv)
    rng, train, test = prepare(args)
    model = nn.ResNet(args.depth, in_channels=1, num_classes=10, width=args.width)
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    print(f"pycnn {pycnn.__version__}, {pycnn.get_num_threads()} threads; ResNet-{args.depth} width {args.width}: "
          f"{count_parameters(model):,} parameters; {len(train[0])} training images, {args.epochs} epochs", flush=True)
    return run(model, loss_fn, opt, warmup_then_cosine(opt, args.epochs), train, test, args, rng, lr_format=".3f")


if __name__ == "__main__":
    main()
