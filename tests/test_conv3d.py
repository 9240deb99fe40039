"""conv3d (NCTHW video): every pass against the float64 NumPy reference and finite differences, every
ISA and 2-D algorithm underneath, threads, the Conv3d and Conv2Plus1d modules, PyTorch parity, save/load
and errors.

conv3d runs on the 2-D kernels with each output frame's input frames stacked as channels (csrc/conv/
conv3d.h), so the cases vary what that mapping must get right: temporal padding (frames of zeros),
temporal stride and dilation, groups (the stacked channels of a group stay contiguous), kernels spanning
the whole clip (no stacking copy), and clips long enough to be cut into several chunks.

Tolerances: conftest.tol(reduction length), as for conv2d.
"""
from __future__ import annotations

import numpy as np
import pytest

import pycnn
from conftest import assert_close, assert_step_matches_torch, case_id, f32, f64, needs_torch, ref, tol, torch
from pycnn import functional as F
from pycnn import nn

# (N, C, T, H, W, K, kernel, stride, padding, dilation, groups): odd sizes so every tail runs.
CASES = [
    dict(N=2, C=3, T=5, H=7, W=6, K=4, k=(3, 3, 3), stride=1, padding=1, dilation=1, groups=1),
    dict(N=1, C=4, T=7, H=9, W=5, K=6, k=(3, 2, 3), stride=(2, 1, 2), padding=(1, 0, 2), dilation=(2, 1, 1),
         groups=2),
    dict(N=2, C=4, T=6, H=5, W=7, K=4, k=(2, 3, 3), stride=1, padding="same", dilation=(1, 2, 1), groups=1),
    dict(N=2, C=6, T=5, H=6, W=6, K=6, k=(3, 3, 3), stride=1, padding="same", dilation=1, groups=6),  # depthwise
    dict(N=2, C=5, T=5, H=7, W=7, K=3, k=(1, 1, 1), stride=1, padding=0, dilation=1, groups=1),  # pointwise
    dict(N=2, C=5, T=5, H=7, W=7, K=3, k=(1, 1, 1), stride=(2, 1, 1), padding=0, dilation=1,
         groups=1),  # strided pointwise: frames stacked
    dict(N=2, C=3, T=9, H=8, W=9, K=5, k=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), dilation=1,
         groups=1),  # T kernel 1: the 2-D convolution per frame
    dict(N=2, C=3, T=9, H=6, W=5, K=4, k=(3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0), dilation=1,
         groups=1),  # temporal only: a (kt, 1) kernel over (T, H * W) planes, no copies
    dict(N=2, C=3, T=9, H=6, W=5, K=4, k=(3, 1, 1), stride=(1, 2, 1), padding=(1, 0, 0), dilation=1,
         groups=1),  # temporal kernel, strided plane: frames stacked
    dict(N=2, C=4, T=5, H=3, W=9, K=4, k=(1, 1, 3), stride=(1, 1, 2), padding=(0, 0, 1), dilation=(1, 1, 2),
         groups=2),  # horizontal kernel only: a (1, kw) kernel over (T * H, W) planes
    dict(N=2, C=2, T=4, H=5, W=6, K=3, k=(4, 3, 3), stride=1, padding=(0, 1, 1), dilation=1,
         groups=1),  # kernel spans the clip: x is already the stacked input
    dict(N=2, C=2, T=3, H=5, W=5, K=3, k=(2, 3, 3), stride=(3, 1, 1), padding=(1, 1, 1), dilation=1,
         groups=1),  # taps reading padding frames only, for some outputs
    dict(N=1, C=4, T=1, H=6, W=6, K=4, k=(1, 3, 3), stride=1, padding=(0, 1, 1), dilation=1,
         groups=2),  # one-frame clip
]
ALGOS = ["auto", "im2col", "direct"]


def _data(rng, c):
    x = f32(rng, c["N"], c["C"], c["T"], c["H"], c["W"])
    w = f32(rng, c["K"], c["C"] // c["groups"], *c["k"])
    b = f32(rng, c["K"])
    return x, w, b


def _args(c):
    return dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"], groups=c["groups"])


def _reduction(c):
    return c["C"] // c["groups"] * int(np.prod(c["k"]))


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("c", CASES, ids=case_id)
def test_conv3d_matches_reference(rng, c, algo):
    x, w, b = _data(rng, c)
    y = F.conv3d(x, w, b, **_args(c), algo=algo)
    y_ref = ref.conv3d(f64(x), f64(w), f64(b), **_args(c))
    assert y.dtype == np.float32
    assert_close(y, y_ref, **tol(_reduction(c)), case="forward", algo=algo)
    dy = f32(rng, *y.shape)
    dx, dw, db = F.conv3d_backward(dy, x, w, **_args(c), algo=algo)
    dx_ref, dw_ref, db_ref = ref.conv3d_backward(f64(dy), f64(x), f64(w), **_args(c))
    assert_close(dx, dx_ref, **tol(c["K"] // c["groups"] * int(np.prod(c["k"]))), case="dx", algo=algo)
    per_weight = int(np.prod(y.shape)) // c["K"]  # each dw element sums over the batch and output positions
    assert_close(dw, dw_ref, **tol(per_weight), case="dw", algo=algo)
    assert_close(db, db_ref, **tol(per_weight), case="db", algo=algo)
    # relu fused into the forward's output write
    assert_close(F.conv3d(x, w, b, **_args(c), algo=algo, relu=True), np.maximum(y_ref, 0), **tol(_reduction(c)))


@pytest.mark.parametrize("c", [CASES[1], CASES[3], CASES[8]], ids=case_id)
def test_conv3d_gradients_match_finite_differences(rng, c):
    """The backward is the derivative of the forward: central differences of L = sum(y * dy) at random
    coordinates of x, w and b (L is linear in each, so the differences are exact up to float32 rounding,
    taken in float64 sums of the float32 outputs)."""
    x, w, b = _data(rng, c)
    dy = f32(rng, *F.conv3d(x, w, b, **_args(c)).shape)
    dx, dw, db = F.conv3d_backward(dy, x, w, **_args(c))

    def loss(x_, w_, b_):
        return float(np.sum(F.conv3d(x_, w_, b_, **_args(c)).astype(np.float64) * dy))

    h = 0.5
    for name, arr, grad in (("x", x, dx), ("w", w, dw), ("b", b, db)):
        for flat in rng.choice(arr.size, size=min(6, arr.size), replace=False):
            idx = np.unravel_index(flat, arr.shape)
            plus, minus = arr.copy(), arr.copy()
            plus[idx] += h
            minus[idx] -= h
            args_p = {"x": (plus, w, b), "w": (x, plus, b), "b": (x, w, plus)}[name]
            args_m = {"x": (minus, w, b), "w": (x, minus, b), "b": (x, w, minus)}[name]
            fd = (loss(*args_p) - loss(*args_m)) / (2 * h)
            assert abs(fd - grad[idx]) <= 1e-3 * (1 + abs(fd)), f"d{name}{idx}: fd {fd} vs backward {grad[idx]}"


@pytest.mark.parametrize("chunk", [1, 2, 5])
def test_conv3d_long_clip_runs_in_chunks(rng, chunk):
    """Output frames are processed a chunk at a time (16 MiB of stacked frames by default; here the
    budget is cut to `chunk` frames): the last chunk partial, clips split across chunks, temporal
    windows overlapping the chunk boundaries in the input gradient."""
    c = dict(N=2, C=3, T=7, H=6, W=5, K=4, k=(3, 3, 3), stride=1, padding=1, dilation=1, groups=1)
    x, w, b = _data(rng, c)
    per_frame = 3 * 3 * 6 * 5 + 4 * 6 * 5  # stacked input + output floats of one frame
    old = pycnn._core._set_conv3d_chunk_floats(chunk * per_frame)
    try:
        y = F.conv3d(x, w, b, **_args(c))
        dy = f32(rng, *y.shape)
        dx, dw, db = F.conv3d_backward(dy, x, w, **_args(c))
    finally:
        pycnn._core._set_conv3d_chunk_floats(old)
    assert_close(y, ref.conv3d(f64(x), f64(w), f64(b), **_args(c)), **tol(_reduction(c)))
    dx_ref, dw_ref, db_ref = ref.conv3d_backward(f64(dy), f64(x), f64(w), **_args(c))
    assert_close(dx, dx_ref, **tol(4 * 27))
    assert_close(dw, dw_ref, **tol(y.size // 4))
    assert_close(db, db_ref, **tol(y.size // 4))


@pytest.mark.parametrize("c", [CASES[0], CASES[1], CASES[5]], ids=case_id)
def test_conv3d_one_and_two_threads_agree(rng, c):
    x, w, b = _data(rng, c)
    dy = f32(rng, *F.conv3d(x, w, b, **_args(c)).shape)
    results = []
    old = pycnn.get_num_threads()
    try:
        for n in (1, 2):
            pycnn.set_num_threads(n)
            results.append((F.conv3d(x, w, b, **_args(c)),) + F.conv3d_backward(dy, x, w, **_args(c)))
    finally:
        pycnn.set_num_threads(old)
    for name, one, two in zip(("y", "dx", "dw", "db"), *results):
        assert_close(two, one, rtol=1e-5, atol=1e-5, array=name)  # dw's partial sums are split differently


def test_conv3d_with_unit_temporal_kernel_is_conv2d_per_frame(rng):
    x = f32(rng, 2, 6, 5, 9, 9)
    w = f32(rng, 8, 6, 1, 3, 3)
    y = F.conv3d(x, w, None, stride=(1, 2, 1), padding=(0, 1, 1))
    frames = x.transpose(0, 2, 1, 3, 4).reshape(10, 6, 9, 9)
    y2 = F.conv2d(frames, w[:, :, 0], None, stride=(2, 1), padding=1).reshape(2, 5, 8, 5, 9).transpose(0, 2, 1, 3, 4)
    assert_close(y, y2, rtol=1e-5, atol=1e-5)


def test_conv3d_accumulates_into_given_gradients(rng):
    x, w, b = _data(rng, CASES[0])
    dy = f32(rng, *F.conv3d(x, w, b, padding=1).shape)
    gw, gb = np.ones_like(w), np.ones_like(b)
    _, dw, db = F.conv3d_backward(dy, x, w, padding=1)
    _, gw2, gb2 = F.conv3d_backward(dy, x, w, padding=1, grad_weight=gw, grad_bias=gb, input_grad=False)
    assert gw2 is gw and gb2 is gb
    assert_close(gw, dw + 1, rtol=1e-6, atol=1e-6)
    assert_close(gb, db + 1, rtol=1e-6, atol=1e-6)


def test_conv3d_errors(rng):
    x, w = f32(rng, 2, 4, 5, 6, 6), f32(rng, 8, 4, 3, 3, 3)
    with pytest.raises(ValueError, match=r"conv3d: expected input of shape \(N, C, T, H, W\)"):
        F.conv3d(x[0], w)
    with pytest.raises(ValueError, match=r"conv3d: expected weight of shape"):
        F.conv3d(x, w[0])
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 8, T, H, W\)"):
        F.conv3d(x, w, groups=2)
    with pytest.raises(ValueError, match="groups=3 must divide"):
        F.conv3d(f32(rng, 1, 6, 3, 3, 3), f32(rng, 8, 2, 1, 1, 1), groups=3)
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.conv3d(f32(rng, 1, 4, 2, 6, 6), w)
    with pytest.raises(ValueError, match=r"bias of shape \(8,\)"):
        F.conv3d(x, w, f32(rng, 7))
    with pytest.raises(ValueError, match="'same' is not supported for strided"):
        F.conv3d(x, w, stride=(2, 1, 1), padding="same")
    with pytest.raises(ValueError, match="triple"):
        F.conv3d(x, w, stride=(1, 1))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        F.conv3d(x, w, stride=0)
    with pytest.raises(TypeError, match="stride must be an int or a triple"):
        F.conv3d(x, w, stride=1.5)
    with pytest.raises(ValueError, match="grad_output"):
        F.conv3d_backward(f32(rng, 2, 8, 3, 4, 5), x, w)
    with pytest.raises(OverflowError):
        F.conv3d(f32(rng, 1, 1, 1, 1, 1), f32(rng, 1, 1, 1, 1, 1), padding=(2 ** 62, 2 ** 62, 0))
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv3d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="'same'"):
        nn.Conv3d(2, 2, 3, stride=2, padding="same")


def test_conv3d_module(rng):
    conv = nn.Conv3d(4, 6, (3, 1, 3), stride=(1, 2, 1), padding=(1, 0, 1), groups=2)
    assert conv.weight.shape == (6, 2, 3, 1, 3) and list(conv.state_dict()) == ["weight", "bias"]
    assert np.abs(conv.weight.data).max() <= 1 / np.sqrt(2 * 9)  # PyTorch's kaiming-uniform bound
    x = f32(rng, 2, 4, 5, 7, 6)
    y = conv(x)
    assert_close(y, ref.conv3d(f64(x), f64(conv.weight.data), f64(conv.bias.data), (1, 2, 1), (1, 0, 1), 1, 2),
                 **tol(18))
    dy = f32(rng, *y.shape)
    dx = conv.backward(dy)
    dx_ref, dw_ref, db_ref = ref.conv3d_backward(f64(dy), f64(x), f64(conv.weight.data), (1, 2, 1), (1, 0, 1), 1, 2)
    assert_close(dx, dx_ref, **tol(9))
    assert_close(conv.weight.grad, dw_ref, **tol(y.size // 6))
    assert_close(conv.bias.grad, db_ref, **tol(y.size // 6))
    assert repr(conv) == "Conv3d(4, 6, kernel_size=(3, 1, 3), stride=(1, 2, 1), padding=(1, 0, 1), groups=2)"
    same = nn.Conv3d(2, 3, (2, 3, 4), padding="same", bias=False)
    assert same(f32(rng, 1, 2, 5, 6, 7)).shape == (1, 3, 5, 6, 7) and same.bias is None


def test_conv2plus1d_block(rng):
    block = nn.Conv2Plus1d(4, 8, kernel_size=3, stride=(2, 2, 1))
    mid = 4 * 8 * 27 // (4 * 9 + 3 * 8)  # R(2+1)D's parameter-preserving width
    assert block.spatial.weight.shape == (mid, 4, 1, 3, 3) and block.temporal.weight.shape == (8, mid, 3, 1, 1)
    assert list(block.state_dict()) == ["spatial.weight", "spatial.bias", "temporal.weight", "temporal.bias"]
    x = f32(rng, 2, 4, 7, 9, 8)
    y = block(x)
    h = np.maximum(ref.conv3d(f64(x), f64(block.spatial.weight.data), f64(block.spatial.bias.data),
                              (1, 2, 1), (0, 1, 1)), 0)
    assert_close(y, ref.conv3d(h, f64(block.temporal.weight.data), f64(block.temporal.bias.data), (2, 1, 1),
                               (1, 0, 0)), **tol(36 * mid))
    assert y.shape == (2, 8, 4, 5, 8)
    dy = f32(rng, *y.shape)
    dx = block.backward(dy)
    dh, dw_t, _ = ref.conv3d_backward(f64(dy), h, f64(block.temporal.weight.data), (2, 1, 1), (1, 0, 0))
    dh = dh * (h > 0)
    dx_ref, dw_s, _ = ref.conv3d_backward(dh, f64(x), f64(block.spatial.weight.data), (1, 2, 1), (0, 1, 1))
    assert_close(dx, dx_ref, **tol(27 * mid))
    assert_close(block.temporal.weight.grad, dw_t, **tol(y.size))
    assert_close(block.spatial.weight.grad, dw_s, **tol(y.size))
    block(x)
    assert block.backward(dy, input_grad=False) is None
    assert nn.Conv2Plus1d(3, 5, mid_channels=7, padding=0)(x[:, :3]).shape == (2, 5, 5, 7, 6)


def test_conv3d_save_load_summary_and_graph(rng, tmp_path):
    model = nn.Sequential(nn.Conv3d(3, 4, 3, padding="same"), nn.ReLU(), nn.Conv2Plus1d(4, 6, mid_channels=5),
                          nn.Conv3d(6, 2, (1, 3, 3), stride=(1, 2, 2), groups=2, bias=False, algo="im2col"))
    x = f32(rng, 2, 3, 5, 8, 8)
    path = tmp_path / "video.npz"
    pycnn.save(model, path)
    loaded = pycnn.load(path)
    assert repr(loaded) == repr(model)
    np.testing.assert_array_equal(loaded.eval()(x), model.eval()(x))
    s = pycnn.summary(model, (3, 5, 8, 8), print_fn=None)
    shapes = {r.name: r.output_shape for r in s.rows}
    assert shapes["0"] == (None, 4, 5, 8, 8) and shapes["2"] == (None, 6, 5, 8, 8) and shapes["3"] == (None, 2, 5, 3, 3)
    assert s.total_params == sum(p.data.size for p in model.parameters())
    inp = nn.Input((3, 5, 8, 8))
    out = nn.Conv3d(4, 2, 1)(nn.ReLU()(nn.Conv3d(3, 4, 3, padding=1)(inp)))
    graph = nn.Model(inp, out)
    assert graph.output_shapes == [(None, 2, 5, 8, 8)]
    assert graph(x).shape == (2, 2, 5, 8, 8)


@needs_torch
def test_conv3d_modules_match_torch(rng):
    tnn = torch.nn
    model = nn.Sequential(nn.Conv3d(3, 8, 3, padding="same", dilation=(2, 1, 1)), nn.ReLU(),
                          nn.Conv3d(8, 8, (2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), groups=4), nn.ReLU(),
                          nn.Conv3d(8, 4, 1))
    tmodel = tnn.Sequential(tnn.Conv3d(3, 8, 3, padding="same", dilation=(2, 1, 1)), tnn.ReLU(),
                            tnn.Conv3d(8, 8, (2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), groups=4), tnn.ReLU(),
                            tnn.Conv3d(8, 4, 1))
    tmodel.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    x = f32(rng, 2, 3, 6, 9, 10)
    dy = f32(rng, 2, 4, 5, 5, 5)  # the output: T 6 -> 6 ('same') -> 5 (kt 2), H 9 -> 5 and W 10 -> 5 (stride 2)
    assert_step_matches_torch(model, tmodel, x, dy)
