"""The peak RSS of one training epoch, measured in this (fresh) process: run by :func:`pycnn.bench.memory.peak_rss_mib`.

``python -m pycnn.bench.rss_probe WHICH THREADS`` trains the Fashion-MNIST
CNN for one epoch (batch 128, SGD momentum 0.9) on 60,000 images -- the real
ones when pycnn finds them, else random ones of the same shape -- with
``WHICH`` = ``pycnn`` or ``torch``, on ``THREADS`` threads; ``data`` stops
after loading. After the data is loaded the kernel's peak-RSS counter is
reset (``/proc/self/clear_refs``, Linux), so the peak printed (``VmHWM``, in
KiB, the last line of stdout) is that of training alone, with the data set
resident.
"""
from __future__ import annotations

import gc
import sys
from typing import Sequence


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS


def _peak_rss_kib() -> str:
    with open("/proc/self/status") as f:
        status = f.read()
    return next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))


def main(argv: Sequence[str]) -> int:
    """Load the data, reset the peak, train one epoch with ``argv = [which, threads]``, print the peak (KiB)."""
    which, threads = argv[0], int(argv[1])
    import numpy as np

    from .. import data
    from .cnn import random_images, torch_cnn

    try:
        (x, y), _ = data.load_fashion_mnist(download=False)
    except data.DatasetNotFoundError:
        x, y = random_images(60000)
    gc.collect()
    _reset_peak_rss()
    if which == "pycnn":
        from .. import models, nn, optim, set_num_threads

        set_num_threads(threads)
        model = models.fashion_mnist_cnn()
        loss_fn = nn.CrossEntropyLoss()
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for i in range(0, len(x), 128):
            loss_fn(model(x[i:i + 128]), y[i:i + 128])
            opt.zero_grad()
            model.backward(loss_fn.backward(), input_grad=False)
            opt.step()
    elif which == "torch":
        import torch

        torch.set_num_threads(threads)
        tmodel = torch_cnn(torch)
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.05, momentum=0.9)
        xt, yt = torch.from_numpy(x), torch.from_numpy(np.asarray(y, dtype=np.int64))
        for i in range(0, len(x), 128):
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tmodel(xt[i:i + 128]), yt[i:i + 128]).backward()
            topt.step()
    print(_peak_rss_kib())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
