#!/usr/bin/env python3
"""ResNet-18's max pool (kernel 3, stride 2, padding 1) in pycnn, PyTorch and ONNX Runtime, side by side.

    python benchmarks/maxpool.py                      # 2 threads, batch 1 and 16, 21 rounds
    python benchmarks/maxpool.py --threads 1 --rounds 31 --shape 1,64,112,112

pycnn runs twice: ``train`` is ``F.max_pool2d(..., return_indices=True)``
(the training forward, which also writes the int32 argmax that backward
needs) and ``eval`` is ``nn.MaxPool2d(3, 2, 1).eval()`` (values only, when
the build has the index-free path). PyTorch runs ``nn.MaxPool2d`` under
``torch.no_grad()`` (values only); ONNX Runtime a one-node MaxPool model
(no spinning of idle threads, as in :mod:`pycnn.bench.resnet`). All at the
same thread count, timed in interleaved rounds by
:func:`pycnn.bench.timing.measure`; the table shows medians in ms with half
the interquartile range, each peer's median divided by pycnn eval's, and
how many cores other processes kept busy meanwhile (a shared machine
shows there). The input is ReLU'd normal data (what the layer sees in
ResNet-18).
"""
from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import pycnn  # noqa: E402
from pycnn import functional as F  # noqa: E402
from pycnn import nn  # noqa: E402
from pycnn.bench.timing import OtherLoad, measure, spread  # noqa: E402


def _ort_maxpool(shape, threads):
    try:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except Exception:
        return None
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    n, c, h, w = shape
    ho, wo = (h + 2 - 3) // 2 + 1, (w + 2 - 3) // 2 + 1
    graph = helper.make_graph([node], "maxpool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, c, ho, wo])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return lambda x: session.run(["y"], {"x": x})[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--shape", action="append", help="N,C,H,W (repeatable); default 1,64,112,112 and 16,64,112,112")
    args = ap.parse_args()
    shapes = [tuple(int(v) for v in s.split(",")) for s in args.shape] if args.shape else \
        [(1, 64, 112, 112), (16, 64, 112, 112)]
    pycnn.set_num_threads(args.threads)
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    print(f"pycnn {pycnn.__version__} ({pycnn._core.isa()}), {args.threads} threads, {args.rounds} rounds; "
          f"torch {torch.__version__ if torch else '-'}")
    for shape in shapes:
        x = np.maximum(np.random.default_rng(0).standard_normal(shape, dtype=np.float32), 0)
        pool = nn.MaxPool2d(3, stride=2, padding=1).eval()
        fns = {"pycnn train": lambda: F.max_pool2d(x, 3, 2, 1, return_indices=True),
               "pycnn eval": lambda: pool(x)}
        ref = F.max_pool2d(x, 3, 2, 1)
        if torch is not None:
            tpool, tx = torch.nn.MaxPool2d(3, 2, 1), torch.from_numpy(x)

            def torch_run():
                with torch.no_grad():
                    return tpool(tx)
            fns["torch"] = torch_run
            assert np.array_equal(torch_run().numpy(), ref)
        ort = _ort_maxpool(shape, args.threads)
        if ort is not None:
            fns["onnxruntime"] = lambda: ort(x)
            assert np.array_equal(ort(x), ref)
        assert np.array_equal(pool(x), ref)
        load = OtherLoad()
        load.start()
        times = measure(fns, args.rounds)
        busy = load.stop()
        base = statistics.median(times["pycnn eval"])
        print(f"\n{shape}: (other processes used {busy if busy is not None else float('nan'):.2f} cores meanwhile)")
        for name, t in times.items():
            med = statistics.median(t)
            print(f"  {name:12s} {med * 1e3:8.3f} ms  +-{spread(t) * 100:4.1f}%   x{med / base:5.2f} of pycnn eval")


if __name__ == "__main__":
    main()
