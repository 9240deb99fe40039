"""A convolutional autoencoder on Fashion-MNIST: strided convolutions down, transposed convolutions
(or nearest upsampling + convolutions) up; prints the test reconstruction MSE.

    python examples/fashion_mnist_autoencoder.py [--epochs 5] [--decoder transpose|upsample]
        [--latent-channels 8] [--plot reconstructions.png] [--threads 2] [--limit N]

Encoder: conv3x3/2(16)-ReLU-conv3x3/2(32)-ReLU-conv3x3(latent) on 28x28 -> a latent code of
latent x 7 x 7 (392 numbers for 8 channels, half the 784 pixels). Decoder ('transpose'):
conv3x3(32)-ReLU-ConvTranspose3x3/2(16, output_padding=1)-ReLU-ConvTranspose3x3/2(1,
output_padding=1)-Sigmoid; ('upsample'): the two transposed convolutions become Upsample(2, nearest)
followed by conv3x3. Loss: MSE between the input pixels (in [0, 1]) and the output; Adam. The MSE
of always predicting the training set's mean image is printed as the baseline to beat. With --plot
(needs matplotlib) a PNG of test images above their reconstructions is written.
"""
from __future__ import annotations

import argparse
import time
from typing import Optional, Sequence

import numpy as np

import pycnn
from pycnn import nn, optim


def autoencoder(decoder: str = "transpose", latent_channels: int = 8) -> nn.Sequential:
    """The network: 28x28 -> latent_channels x 7 x 7 -> 28x28, every layer a Sequential member."""
    encoder = [nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),       # 14x14
               nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),      # 7x7
               nn.Conv2d(32, latent_channels, 3, padding=1)]              # the code
    if decoder == "transpose":
        up = [nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),  # 14x14
              nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1)]            # 28x28
    elif decoder == "upsample":
        up = [nn.Upsample(scale_factor=2), nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(),
              nn.Upsample(scale_factor=2), nn.Conv2d(16, 1, 3, padding=1)]
    else:
        raise ValueError(f"decoder must be 'transpose' or 'upsample', got {decoder!r}")
    return nn.Sequential(*encoder, nn.Conv2d(latent_channels, 32, 3, padding=1), nn.ReLU(), *up, nn.Sigmoid())


def train_epoch(model: nn.Module, opt: optim.Optimizer, x: np.ndarray, batch_size: int,
                rng: np.random.Generator) -> float:
    """One pass over x in shuffled mini-batches, the target being the input -> mean training MSE."""
    model.train()
    loss_fn = nn.MSELoss()
    order = rng.permutation(len(x))
    total = 0.0
    for start in range(0, len(x), batch_size):
        xb = x[order[start:start + batch_size]]
        loss = loss_fn(model(xb), xb)
        opt.zero_grad()
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()
        total += loss * len(xb)
    return total / len(x)


def reconstruction_mse(model: nn.Module, x: np.ndarray, batch_size: int = 500) -> float:
    """Mean squared error per pixel of the reconstructions of x, in eval mode."""
    model.eval()
    sq = sum(float(np.sum((model(x[i:i + batch_size]) - x[i:i + batch_size]) ** 2, dtype=np.float64))
             for i in range(0, len(x), batch_size))
    return sq / x.size


def plot_reconstructions(model: nn.Module, x: np.ndarray, path: str, n: int = 10) -> Optional[str]:
    """Originals (top row) above their reconstructions (bottom row) as a PNG; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    model.eval()
    images = x[:n]
    recon = model(images)
    fig, axes = plt.subplots(2, n, figsize=(n * 1.2, 2.6))
    for i in range(n):
        for row, img in enumerate((images[i, 0], recon[i, 0])):
            axes[row, i].imshow(img, cmap="gray", vmin=0, vmax=1)
            axes[row, i].axis("off")
    axes[0, 0].set_title("input", fontsize=8, loc="left")
    axes[1, 0].set_title("reconstruction", fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: Optional[Sequence[str]] = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--decoder", choices=("transpose", "upsample"), default="transpose")
    ap.add_argument("--latent-channels", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images only (smoke test)")
    ap.add_argument("--test-limit", type=int, default=0, help="evaluate on the first N test images only")
    ap.add_argument("--plot", default="", help="write test images and their reconstructions to this PNG")
    args = ap.parse_args(argv)
    if args.threads:
        pycnn.set_num_threads(args.threads)
    pycnn.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    from pycnn.data import load_fashion_mnist

    (xtr, _), (xte, _) = load_fashion_mnist()  # pixels in [0, 1]: the Sigmoid output's range
    if args.limit:
        xtr = xtr[:args.limit]
    if args.test_limit:
        xte = xte[:args.test_limit]
    model = autoencoder(args.decoder, args.latent_channels)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    baseline = float(np.mean((xte - xtr.mean(axis=0)) ** 2))
    print(f"pycnn {pycnn.__version__}, {pycnn.get_num_threads()} threads; {args.decoder} decoder, "
          f"{sum(p.size for p in model.parameters()):,} parameters, code {args.latent_channels}x7x7; "
          f"{len(xtr)} training images; mean-image baseline MSE {baseline:.4f}", flush=True)
    mse = baseline
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        train_mse = train_epoch(model, opt, xtr, args.batch_size, rng)
        secs = time.perf_counter() - t0
        mse = reconstruction_mse(model, xte)
        print(f"epoch {epoch + 1}/{args.epochs}  train MSE {train_mse:.4f}  test MSE {mse:.4f}  "
              f"{secs:.0f} s ({len(xtr) / secs:.0f} img/s)", flush=True)
    if args.plot:
        written = plot_reconstructions(model, xte, args.plot)
        print(f"wrote {written}" if written else "--plot needs matplotlib (pip install matplotlib)")
    return mse


if __name__ == "__main__":
    main()
