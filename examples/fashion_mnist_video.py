"""Video classification on Moving Fashion-MNIST: a small 3-D CNN against a single-frame 2-D CNN.

    python examples/fashion_mnist_video.py [--epochs 3] [--train-clips 6000] [--test-clips 1000]
        [--width 8] [--plot clips.png] [--threads 2] [--quick]

The clips (pycnn.data.moving_fashion_mnist) show a Fashion-MNIST item circling the centre of a
40x40 canvas for 8 frames, clockwise or counter-clockwise; the 6 classes are (item group: top,
footwear, other) x (direction). One frame shows the item and where it is, but where it is has the
same distribution for both directions, so a model that sees one frame can at best get the group
right and guess the direction: about half the clips. The 3-D CNN sees all frames:
[Conv3d 3x3x3 - BatchNorm3d - ReLU] x 3 with a spatial stride and two MaxPool3d, then
AdaptiveAvgPool3d(1) and Linear. The baseline is the same network in 2-D (Conv2d, BatchNorm2d,
MaxPool2d, AdaptiveAvgPool2d) on the first frame, trained with the same clips, epochs and
optimiser (Adam). Both test accuracies are printed; with --plot (needs matplotlib) a PNG of a few
training clips is written. --quick: a tiny run (a few hundred clips, one epoch) to check that
everything works, not to learn.
"""
from __future__ import annotations

import argparse
import time
from typing import Dict, Optional, Sequence

import numpy as np

import pycnn
from pycnn import nn, optim

try:  # run as a script (examples/ on sys.path) or imported by the tests (pythonpath = examples)
    from _loop import evaluate, train_epoch
except ImportError:  # pragma: no cover
    from examples._loop import evaluate, train_epoch


def video_cnn(num_classes: int, width: int = 8) -> nn.Sequential:
    """The 3-D CNN on (N, 1, T, H, W) clips; the shapes in the comments are for 8 x 40 x 40.

    The first layer halves the frame and the spatial pooling starts early: the motion (2-4 pixels a
    frame) is caught at 20x20 by the first layer's 3-frame kernels, and the rest stays cheap.
    """
    w = width
    return nn.Sequential(
        nn.Conv3d(1, w, 3, stride=(1, 2, 2), padding=1), nn.BatchNorm3d(w), nn.ReLU(),   # w x 8 x 20 x 20
        nn.MaxPool3d((1, 2, 2)),                                                           # w x 8 x 10 x 10
        nn.Conv3d(w, 2 * w, 3, padding=1), nn.BatchNorm3d(2 * w), nn.ReLU(),
        nn.MaxPool3d(2, ceil_mode=True),                                                   # 2w x 4 x 5 x 5
        nn.Conv3d(2 * w, 4 * w, 3, padding=1), nn.BatchNorm3d(4 * w), nn.ReLU(),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4 * w, num_classes))


def frame_cnn(num_classes: int, width: int = 8) -> nn.Sequential:
    """The same network in 2-D, on one (N, 1, H, W) frame."""
    w = width
    return nn.Sequential(
        nn.Conv2d(1, w, 3, stride=2, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.BatchNorm2d(4 * w), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, num_classes))


def train_and_test(name: str, model: nn.Module, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray,
                   yte: np.ndarray, epochs: int, batch_size: int, lr: float, seed: int) -> float:
    """Adam with a cosine schedule over ``epochs``; prints one line per epoch -> the test accuracy."""
    rng = np.random.default_rng(seed)
    opt = optim.Adam(model.parameters(), lr=lr)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    params = sum(p.size for p in model.parameters())
    acc = 0.0
    for epoch in range(epochs):
        loss, train_acc, secs = train_epoch(model, nn.CrossEntropyLoss(), opt, xtr, ytr, batch_size, rng)
        sched.step()
        acc = evaluate(model, xte, yte, batch_size=250)
        print(f"{name} ({params:,} parameters) epoch {epoch + 1}/{epochs}  loss {loss:.3f}  "
              f"train {train_acc:.3f}  test {acc:.3f}  {secs:.0f} s ({len(xtr) / secs:.0f} clips/s)", flush=True)
    return acc


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--train-clips", type=int, default=6000)
    ap.add_argument("--test-clips", type=int, default=1000)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=40)
    ap.add_argument("--width", type=int, default=8, help="channels of the first layer (then 2x and 4x)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default="", help="write a few training clips to this PNG")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke test: 256 training clips, 128 test clips, 1 epoch, width 4")
    args = ap.parse_args(argv)
    if args.quick:
        args.train_clips, args.test_clips, args.epochs, args.width = 256, 128, 1, 4
    if args.threads:
        pycnn.set_num_threads(args.threads)
    pycnn.manual_seed(args.seed)

    from pycnn.data import MOVING_FASHION_MNIST_CLASSES, load_fashion_mnist, moving_fashion_mnist

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    t0 = time.perf_counter()
    # Training clips from the training items, test clips from the test items, different seeds.
    xtr, ytr = moving_fashion_mnist(x_train, y_train, args.train_clips, frames=args.frames, size=args.size,
                                    seed=args.seed)
    xte, yte = moving_fashion_mnist(x_test, y_test, args.test_clips, frames=args.frames, size=args.size,
                                    seed=args.seed + 1)
    classes = len(MOVING_FASHION_MNIST_CLASSES)
    print(f"pycnn {pycnn.__version__}, {pycnn.get_num_threads()} threads; {len(xtr)} training and {len(xte)} "
          f"test clips of {args.frames} x {args.size} x {args.size}, {classes} classes "
          f"(made in {time.perf_counter() - t0:.1f} s)", flush=True)
    if args.plot:
        try:
            from pycnn import viz

            print(f"wrote {viz.plot_clips(xtr, args.plot, ytr, MOVING_FASHION_MNIST_CLASSES, max_clips=6)}")
        except ImportError:
            print("--plot needs matplotlib (pip install matplotlib)")

    results = {
        "3-D CNN": train_and_test("3-D CNN", video_cnn(classes, args.width), xtr, ytr, xte, yte, args.epochs,
                                  args.batch_size, args.lr, args.seed),
        # The baseline sees the first frame only (any single frame is as good: they are alike in distribution).
        "single-frame 2-D CNN": train_and_test("frame CNN", frame_cnn(classes, args.width), xtr[:, :, 0], ytr,
                                               xte[:, :, 0], yte, args.epochs, args.batch_size, args.lr, args.seed),
    }
    for name, acc in results.items():
        print(f"test accuracy, {name}: {acc:.4f}")
    print(f"(chance {1 / classes:.3f}; one frame cannot tell the direction, so about 0.5 is its ceiling)")
    return results


if __name__ == "__main__":
    main()
