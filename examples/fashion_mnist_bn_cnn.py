"""Fashion-MNIST with a BatchNorm CNN: the "2 conv blocks + pooling + BN" network, >= 93% test accuracy.

    python examples/fashion_mnist_bn_cnn.py [--epochs 15] [--batch-size 128] [--threads 2]

Network (871k parameters): [conv3x3(32)-BN-ReLU] x2 - maxpool - [conv3x3(64)-BN-ReLU] x2 -
maxpool - flatten - Linear(3136, 256) - BN - ReLU - Dropout(0.4) - Linear(256, 10).
Adam (lr 2e-3) with one epoch of linear warm-up, then cosine annealing to 0;
augmentation: random horizontal flip and +-2 pixel shifts. The data set comes
from pycnn.data.load_fashion_mnist (Debian's dataset-fashion-mnist package,
or a download into the user cache).
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from _loop import add_training_args, count_parameters, prepare, run, warmup_then_cosine

import pycnn
from pycnn import nn, optim


def bn_cnn() -> nn.Sequential:
    # One definition of the network, shared with `python -m pycnn train --model fashion_mnist_bn_cnn`.
    from pycnn.models import fashion_mnist_bn_cnn

    return fashion_mnist_bn_cnn()


def main(argv: Optional[Sequence[str]] = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_training_args(ap, epochs=15, lr=2e-3)
    args = ap.parse_args(argv)
    rng, train, test = prepare(args)
    model = bn_cnn()
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=args.lr)
    print(f"pycnn {pycnn.__version__}, {pycnn.get_num_threads()} threads; model: {count_parameters(model):,} "
          f"parameters; {len(train[0])} training images, {args.epochs} epochs, batch {args.batch_size}", flush=True)
    return run(model, loss_fn, opt, warmup_then_cosine(opt, args.epochs), train, test, args, rng)


if __name__ == "__main__":
    main()
