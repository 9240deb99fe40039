#!/usr/bin/env python3
"""ResNet-18 inference per layer: pycnn's convolutions in the network next to ONNX Runtime's per-node profile.

    python benchmarks/resnet18_layers.py                 # batch 1, 2 threads, 40 runs of each
    python benchmarks/resnet18_layers.py --batch 16 --runs 10

Needs torch (to export the same weights to ONNX) and onnxruntime. The two
run alternately in one process (pycnn, ORT, pycnn, ...). pycnn's numbers
are each eval-mode convolution (BatchNorm folded, ReLU and residual fused)
timed where the network calls it; ORT's are its profiler's node times
(profiling slows ORT a little: its whole-network time here is not the
benchmark's). The first 5 runs of each are left out.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import defaultdict

import numpy as np

import pycnn
from pycnn.bench import resnet as rn
from pycnn.nn import fused


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--runs", type=int, default=40)
    a = ap.parse_args()
    import onnxruntime as ort
    import torch

    pycnn.set_num_threads(a.threads)
    torch.set_num_threads(a.threads)
    model = rn.pycnn_resnet18().eval()
    x = np.random.default_rng(0).random((a.batch, 3, 224, 224), dtype=np.float32)
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "resnet18.onnx")
    torch.onnx.export(rn.torch_copy(torch, rn.pycnn_resnet18()).eval(), torch.zeros(1, 3, 224, 224), path,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
                      opset_version=17, dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = a.threads, 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.enable_profiling = True
    opts.profile_file_prefix = os.path.join(tmp, "profile")
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    calls: "defaultdict[tuple, list]" = defaultdict(list)
    plain = fused.fused_conv2d

    def timed(conv, inp, *args, **kwargs):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        out = plain(conv, inp, *args, **kwargs)
        key = (inp.shape[1], inp.shape[2], conv.out_channels, conv.kernel_size[0], conv.stride[0])
        calls[key].append(time.perf_counter() - t0)
        return out

    fused.fused_conv2d = timed
    try:
        whole = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            model(x)
            whole.append(time.perf_counter() - t0)
            session.run(["y"], {"x": x})
    finally:
        fused.fused_conv2d = plain
    skip = 5
    print(f"pycnn network {statistics.median(whole[skip:]) * 1e3:.2f} ms (batch {a.batch}, {a.threads} threads)")
    total = 0.0
    for (c, h, k, ks, st), times in calls.items():
        per_run = len(times) // a.runs
        med = statistics.median(times[skip * per_run:]) * 1e3
        total += med * per_run
        print(f"pycnn {c}x{h}x{h} -> {k}, {ks}x{ks} stride {st}: {med:.3f} ms x {per_run}")
    print(f"pycnn convolutions: {total:.2f} ms")
    nodes: "defaultdict[str, list]" = defaultdict(list)
    with open(session.end_profiling()) as f:
        for e in json.load(f):
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                nodes[e["name"][: -len("_kernel_time")]].append(e["dur"] / 1e3)
    total = 0.0
    for name, durs in nodes.items():
        med = statistics.median(durs[skip:])
        total += med
        print(f"ort {name}: {med:.3f} ms")
    print(f"ort nodes: {total:.2f} ms")


if __name__ == "__main__":
    main()
