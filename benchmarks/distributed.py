"""Time one data-parallel training step, split into compute, all-reduce and update.

    mpiexec -n 2 python benchmarks/distributed.py                       # Fashion-MNIST CNN, global batch 128
    python benchmarks/distributed.py --threads 2                        # the same step in one process
    mpiexec -n 2 python benchmarks/distributed.py --model resnet18 --image 224 --batch 16 --steps 4

Each rank runs forward + loss + backward on its share of the global batch
(compute), then ``DistributedOptimizer.synchronize`` (the one all-reduce of
all gradients), then the optimiser's update. Rank 0 prints the median of
each part over the timed steps (after two warm-up steps), the gradient bytes
reduced per step and the job's images/s. docs/distributed.md has results.
"""
from __future__ import annotations

import argparse
import inspect
import time

import numpy as np

import pycnn
import pycnn.distributed as dist
from pycnn import nn, optim
from pycnn.models import get_preset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="fashion_mnist_cnn")
    p.add_argument("--image", type=int, default=28, help="input height and width (default 28)")
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--batch", type=int, default=128, help="global batch (default 128)")
    p.add_argument("--steps", type=int, default=30, help="timed steps (default 30)")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()

    dist.init()
    if args.threads is not None:
        pycnn.set_num_threads(args.threads)
    rank, size = dist.rank(), dist.size()
    build = get_preset(args.model)
    kw = {"in_channels": args.channels} if "in_channels" in inspect.signature(build).parameters else {}
    pycnn.manual_seed(0)
    model = build(num_classes=10, **kw)
    opt = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    dist.broadcast_parameters(model)
    loss_fn = nn.CrossEntropyLoss()
    local = args.batch // size
    rng = np.random.default_rng(rank)
    x = rng.random((local, args.channels, args.image, args.image), dtype=np.float32)
    y = rng.integers(0, 10, local)
    model.train()
    parts = []
    for step in range(args.steps + 2):
        dist.barrier()  # every rank starts the step together: the all-reduce then times the reduction
        t0 = time.perf_counter()
        loss_fn(model(x), y)
        opt.zero_grad()
        model.backward(loss_fn.backward(), input_grad=False)
        t1 = time.perf_counter()
        opt.synchronize()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if step >= 2:
            parts.append((t1 - t0, t2 - t1, t3 - t2))
    compute, reduce, update = (float(np.median(c)) for c in zip(*parts))
    grad_bytes = 4 * sum(p.size for p in model.parameters() if p.requires_grad)
    step_s = compute + reduce + update
    if rank == 0:
        print(f"{args.model} {args.channels}x{args.image}x{args.image}, global batch {args.batch}: "
              f"{size} rank(s) x {pycnn.get_num_threads()} thread(s); gradients {grad_bytes / 1e6:.2f} MB; "
              f"per step (median of {args.steps}): compute {1e3 * compute:.1f} ms, all-reduce {1e3 * reduce:.2f} ms, "
              f"update {1e3 * update:.2f} ms; {args.batch / step_s:,.0f} images/s", flush=True)


if __name__ == "__main__":
    main()
