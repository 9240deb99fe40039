"""A short forward/backward run of every op for valgrind memcheck (tools/valgrind.sh).

Small shapes with odd sizes (so tail paths run), both convolution algorithms,
every pass, 1 and 2 threads, and every instruction set valgrind can execute
(it does not emulate AVX-512, so that ISA is skipped when running under it).
"""
import sys

import numpy as np

import pycnn
from pycnn import _core, nn, optim
from pycnn import functional as F


def run_ops(rng):
    x = rng.standard_normal((3, 5, 9, 7)).astype(np.float32)
    for algo in ("im2col", "direct"):
        for w_shape, kw in [((6, 5, 3, 3), dict(padding=1)), ((4, 5, 2, 3), dict(stride=2, dilation=(1, 2))),
                            ((10, 1, 3, 3), dict(groups=5, padding="same")), ((7, 5, 1, 1), {})]:
            w = rng.standard_normal(w_shape).astype(np.float32)
            b = rng.standard_normal(w_shape[0]).astype(np.float32)
            y = F.conv2d(x, w, b, algo=algo, relu=True, **kw)
            F.conv2d_backward(y, x, w, algo=algo, **kw)
    y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    F.max_pool2d_backward(y, idx, x.shape, 3, 2, 1, relu_output=y)
    y, idx = F.max_pool2d(x[:, :, :8, :6], 2, return_indices=True)
    F.max_pool2d_backward(y, idx, (3, 5, 8, 6), 2)
    for inc in (True, False):
        F.avg_pool2d_backward(F.avg_pool2d(x, 3, 2, 1, count_include_pad=inc), x.shape, 3, 2, 1, count_include_pad=inc)
    F.adaptive_avg_pool2d_backward(F.adaptive_avg_pool2d(x, (4, 3)), x.shape)
    for name in ("relu", "sigmoid", "tanh"):
        yy = getattr(F, name)(x)
        getattr(F, name + "_backward")(x, yy)
    F.leaky_relu_backward(x, x, 0.1)
    z = rng.standard_normal((13, 11)).astype(np.float32)
    w = rng.standard_normal((17, 11)).astype(np.float32)
    yl = F.linear(z, w, np.ones(17, np.float32), relu=True)
    F.linear_backward(yl, z, w)
    t = rng.integers(0, 17, 13)
    _, probs = F.cross_entropy_forward(yl, t)
    F.cross_entropy_backward(probs, t)
    F.mse_loss_backward(z, z[::-1])
    F.mse_loss(z, z[::-1])
    _core.sgemm(rng.standard_normal((70, 90)).astype(np.float32), rng.standard_normal((90, 50)).astype(np.float32))
    # Winograd: edge tiles (13 is not a multiple of 4), bias + ReLU epilogue, backward-data
    xw = rng.standard_normal((2, 9, 13, 11)).astype(np.float32)
    ww = rng.standard_normal((10, 9, 3, 3)).astype(np.float32)
    yw = F.conv2d(xw, ww, np.ones(10, np.float32), padding=1, algo="winograd", relu=True)
    F.conv2d_backward(yw, xw, ww, padding=1, algo="winograd")
    # One image of a larger plane (the per-image GEMM split by rows or columns), and
    # prepared weights with the residual epilogue of every algorithm
    x1 = rng.standard_normal((1, 6, 17, 15)).astype(np.float32)
    for k_out, stride in ((40, 1), (7, 2)):
        w1 = rng.standard_normal((k_out, 6, 3, 3)).astype(np.float32)
        y1 = F.conv2d(x1, w1, None, stride=stride, padding=1, relu=True)
        F.conv2d_backward(y1, x1, w1, stride=stride, padding=1)
    w6 = rng.standard_normal((6, 6, 3, 3)).astype(np.float32)
    for algo in ("im2col", "winograd", "direct"):
        p = _core.PreparedConv2d(w6, np.ones(6, np.float32), (1, 1), (1, 1, 1, 1), (1, 1), 1, algo)
        p.forward(x1, x1, True)
        p.forward(np.concatenate([x1, x1]), None, False)


def run_fused_block(rng):
    block = nn.BasicBlock(4, 8, stride=2).eval()  # BN folded, shortcut add + ReLU in the conv's write
    block(rng.standard_normal((2, 4, 9, 11)).astype(np.float32))


def run_model(rng):
    pycnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.ReLU(), nn.AvgPool2d(2),
                          nn.Flatten(), nn.Linear(8 * 3 * 3, 10))
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    x = rng.standard_normal((6, 1, 13, 13)).astype(np.float32)
    y = rng.integers(0, 10, 6)
    for _ in range(2):
        loss_fn(model(x), y)
        opt.zero_grad()
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()


def main():
    rng = np.random.default_rng(0)
    under_valgrind = "--valgrind" in sys.argv
    isas = [i for i in _core.supported_isas() if not (under_valgrind and i == "avx512")]
    for isa in isas:
        _core.set_isa(isa)
        for nt in (1, 2):
            pycnn.set_num_threads(nt)
            run_ops(rng)
            run_model(rng)
            run_fused_block(rng)
    print("memcheck workload done: ISAs", ", ".join(isas))


if __name__ == "__main__":
    main()
