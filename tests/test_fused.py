"""Fused inference (pycnn.nn.fused, _core.PreparedConv2d): correct, and rebuilt whenever it may be stale.

Kernel level: a prepared convolution equals the per-call one bitwise (same
kernels, same summation order), and with a residual it equals
relu(conv + bias + residual) from NumPy, for every algorithm and ISA.
Model level: eval-mode fusion (BN folded, residual add and ReLU in the
convolution's output write) equals the unfused eval forward to float32
rounding, and what is prepared follows every change of weights, buffers,
hyper-parameters, mode, ISA and thread count.
"""
import numpy as np
import pytest

import pycnn
from pycnn import _core, nn, optim
from pycnn import functional as F
from pycnn.nn import fused

from conftest import assert_close, f32, needs_torch, run_benchmark_script, torch

# ---------------------------------------------------------------- PreparedConv2d, every ISA

CASES = [
    # C, K, H, W, k, stride, pad, dilation, groups, algo
    dict(C=3, K=5, H=9, W=11, k=3, stride=1, pad=1, dilation=1, groups=1, algo="im2col"),
    dict(C=8, K=12, H=13, W=10, k=3, stride=1, pad=1, dilation=1, groups=1, algo="winograd"),
    dict(C=16, K=9, H=7, W=7, k=3, stride=1, pad=(0, 2, 1, 1), dilation=1, groups=1, algo="winograd"),
    dict(C=6, K=10, H=17, W=23, k=3, stride=2, pad=1, dilation=1, groups=1, algo="im2col"),
    dict(C=4, K=8, H=19, W=33, k=7, stride=2, pad=3, dilation=1, groups=1, algo="im2col"),
    dict(C=12, K=20, H=15, W=15, k=1, stride=2, pad=0, dilation=1, groups=1, algo="im2col"),
    dict(C=10, K=14, H=12, W=12, k=1, stride=1, pad=0, dilation=1, groups=1, algo="im2col"),
    dict(C=6, K=6, H=11, W=9, k=3, stride=1, pad=2, dilation=2, groups=3, algo="im2col"),
    dict(C=4, K=4, H=8, W=13, k=3, stride=1, pad=1, dilation=1, groups=4, algo="direct"),
    dict(C=70, K=40, H=5, W=6, k=3, stride=1, pad=1, dilation=1, groups=1, algo="im2col"),
    # the channel-blocked direct forward (AVX-512): 64-channel blocks and depth slices, a 7x7 stride-2 stem
    dict(C=40, K=70, H=7, W=7, k=3, stride=1, pad=1, dilation=1, groups=1, algo="direct"),
    dict(C=3, K=33, H=19, W=31, k=7, stride=2, pad=3, dilation=1, groups=1, algo="direct"),
]


def _pads(pad):
    return tuple(pad) if isinstance(pad, tuple) else (pad,) * 4


def _case(rng, c, n=2, bias=True):
    x = f32(rng, n, c["C"], c["H"], c["W"])
    w = f32(rng, c["K"], c["C"] // c["groups"], c["k"], c["k"], scale=0.3)
    b = f32(rng, c["K"]) if bias else None
    args = ((c["stride"],) * 2, _pads(c["pad"]), (c["dilation"],) * 2, c["groups"])
    return x, w, b, args


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("c", CASES, ids=[f"{c['algo']}-C{c['C']}-k{c['k']}-s{c['stride']}-g{c['groups']}"
                                          for c in CASES])
@pytest.mark.parametrize("n", [1, 3])
def test_prepared_equals_per_call_bitwise_and_adds_the_residual(rng, c, n):
    x, w, b, args = _case(rng, c, n)
    p = _core.PreparedConv2d(w, b, *args, c["algo"])
    assert p.resolve_algo(list(x.shape)) == _core.conv2d_resolve_algo(list(x.shape), list(w.shape), *args, c["algo"])
    for relu in (False, True):
        ref = _core.conv2d_fwd(x, w, b, *args, c["algo"], relu)
        np.testing.assert_array_equal(p.forward(x, None, relu), ref)
    assert p.packed_bytes > 0 or p.resolve_algo(list(x.shape)) == "direct"
    # the residual joins before the ReLU
    plain = _core.conv2d_fwd(x, w, b, *args, c["algo"], False)
    r = f32(rng, *plain.shape)
    for relu in (False, True):
        expected = plain.astype(np.float64) + r
        if relu:
            expected = np.maximum(expected, 0)
        assert_close(p.forward(x, r, relu), expected, rtol=1e-5, atol=1e-5, relu=relu)


@pytest.mark.usefixtures("isa")
def test_prepared_residual_may_be_the_input(rng):
    # an identity shortcut: the residual is the convolution's own input
    x = f32(rng, 2, 16, 9, 9)
    w = f32(rng, 16, 16, 3, 3, scale=0.2)
    for algo in ("im2col", "winograd", "direct"):
        p = _core.PreparedConv2d(w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, algo)
        expected = np.maximum(_core.conv2d_fwd(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, algo, False) + x, 0)
        assert_close(p.forward(x, x, True), expected, rtol=1e-5, atol=1e-5, algo=algo)


def test_prepared_weights_follow_the_isa(rng):
    isas = list(_core.supported_isas())
    if len(isas) < 2:
        pytest.skip("one ISA only: nothing to switch to")
    x = f32(rng, 2, 16, 12, 12)
    w = f32(rng, 24, 16, 3, 3, scale=0.2)
    b = f32(rng, 24)
    args = ((1, 1), (1, 1, 1, 1), (1, 1), 1)
    previous = _core.isa()
    try:
        for algo in ("im2col", "winograd", "direct"):
            p = _core.PreparedConv2d(w, b, *args, algo)
            for name in isas + isas[::-1]:  # packed under one ISA, then run under each other one
                _core.set_isa(name)
                np.testing.assert_array_equal(p.forward(x, None, True), _core.conv2d_fwd(x, w, b, *args, algo, True),
                                              err_msg=f"{algo} under {name}")
    finally:
        _core.set_isa(previous)


def test_prepared_copies_the_weights(rng):
    x = f32(rng, 1, 4, 6, 6)
    w = f32(rng, 5, 4, 3, 3)
    p = _core.PreparedConv2d(w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, "im2col")
    before = p.forward(x, None, False)
    w[...] = 0  # the caller's array is not read again
    np.testing.assert_array_equal(p.forward(x, None, False), before)


def test_prepared_rejects_bad_input_with_clear_errors(rng):
    w = f32(rng, 5, 4, 3, 3)
    with pytest.raises(ValueError, match="bias"):
        _core.PreparedConv2d(w, f32(rng, 4), (1, 1), (1, 1, 1, 1), (1, 1), 1, "auto")
    with pytest.raises(ValueError, match="stride"):
        _core.PreparedConv2d(w, None, (0, 1), (1, 1, 1, 1), (1, 1), 1, "auto")
    with pytest.raises(ValueError, match="algo"):
        _core.PreparedConv2d(w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, "fft")
    with pytest.raises(ValueError, match="weight"):
        _core.PreparedConv2d(f32(rng, 5, 4, 3), None, (1, 1), (1, 1, 1, 1), (1, 1), 1, "auto")
    p = _core.PreparedConv2d(w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, "auto")
    with pytest.raises(ValueError, match="input"):
        p.forward(f32(rng, 1, 3, 6, 6), None, False)
    with pytest.raises(ValueError, match="residual"):
        p.forward(f32(rng, 1, 4, 6, 6), f32(rng, 1, 5, 6, 7), False)
    with pytest.raises(TypeError, match="float32"):
        p.forward(np.zeros((1, 4, 6, 6)), None, False)


# ---------------------------------------------------------------- model level


def _randomise_bn(model, rng):
    """Non-trivial running statistics and affine parameters, so that folding matters."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean[...] = rng.standard_normal(m.num_features) * 0.2
            m.running_var[...] = rng.uniform(0.3, 2.0, m.num_features)
            m.weight.data[...] = rng.uniform(0.5, 1.5, m.num_features)
            m.bias.data[...] = rng.standard_normal(m.num_features) * 0.2
    return model


def _small_resnet18(rng):
    return _randomise_bn(pycnn.models.resnet18(num_classes=7), rng).eval()


def _unfused(model, x):
    with fused.disabled():
        return model(x)


def test_resnet18_fused_matches_unfused(rng):
    model = _small_resnet18(rng)
    x = f32(rng, 2, 3, 64, 48)
    y = model(x)
    ref = _unfused(model, x)
    assert_close(y, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    # and fusion really happened: every convolution holds prepared weights
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(m in fused._PREPARED for m in convs)


@needs_torch
def test_resnet18_fused_matches_pytorch(rng):
    from pycnn.bench.resnet import torch_resnet18

    model = _small_resnet18(rng)
    tm = torch_resnet18(torch, num_classes=7)
    tm.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    tm.eval()
    x = f32(rng, 2, 3, 64, 64)
    with torch.no_grad():
        expected = tm(torch.from_numpy(x)).numpy()
    y = model(x)
    assert_close(y, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_cifar_resnet_and_plain_chain_fuse(rng):
    model = _randomise_bn(pycnn.models.resnet.resnet8(in_channels=3, num_classes=5), rng).eval()
    x = f32(rng, 3, 3, 16, 16)
    assert_close(model(x), _unfused(model, x), rtol=1e-4, atol=1e-5)
    chain = _randomise_bn(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                        nn.Conv2d(8, 8, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
                                        nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4)), rng).eval()
    assert_close(chain(x), _unfused(chain, x), rtol=1e-4, atol=1e-5)


def test_residual_without_a_trailing_conv_and_with_relu_in_the_body(rng):
    x = f32(rng, 2, 6, 8, 8)
    # the body ends with a ReLU: relu(body) + x cannot go into the conv's write
    r1 = nn.Residual(nn.Sequential(nn.Conv2d(6, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU()), relu=False)
    # a projection shortcut and no final ReLU
    r2 = nn.Residual(nn.Sequential(nn.Conv2d(6, 4, 3, padding=1), nn.BatchNorm2d(4)),
                     nn.Sequential(nn.Conv2d(6, 4, 1), nn.BatchNorm2d(4)), relu=False)
    # a body of other layers
    r3 = nn.Residual(nn.Sequential(nn.Tanh(), nn.Conv2d(6, 6, 1)))
    for r in (r1, r2, r3):
        _randomise_bn(r, rng).eval()
        assert_close(r(x), _unfused(r, x), rtol=1e-4, atol=1e-5, module=repr(r))


def test_residual_shape_mismatch_still_raises_the_residual_error(rng):
    r = nn.Residual(nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6))).eval()
    with pytest.raises(ValueError, match="projection shortcut"):
        r(f32(rng, 1, 4, 5, 5))


def test_eval_forward_saves_nothing_for_backward(rng):
    block = nn.BasicBlock(4, 4).eval()
    y = block(f32(rng, 1, 4, 6, 6))
    with pytest.raises(RuntimeError, match="eval mode"):
        block.backward(np.ones_like(y))


def test_training_mode_is_not_fused(rng):
    model = _small_resnet18(rng).train()
    x = f32(rng, 2, 3, 32, 32)
    y = model(x)
    assert not any(m in fused._PREPARED for m in model.modules())
    ref = _unfused(model, x)  # batch statistics in both, running stats updated twice alike
    assert_close(y, ref, rtol=1e-5, atol=1e-5)


def test_bn_in_training_mode_after_an_eval_conv_is_not_folded(rng):
    chain = _randomise_bn(nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU()), rng)
    chain[0].eval()  # the conv is in eval mode, the BN normalises with batch statistics
    x = f32(rng, 4, 3, 7, 7)
    mean, var = chain[1].running_mean.copy(), chain[1].running_var.copy()
    y = chain(x)
    chain[1].running_mean[...], chain[1].running_var[...] = mean, var
    assert_close(y, _unfused(chain, x), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- staleness


def _block(rng):
    return _randomise_bn(nn.BasicBlock(8, 16, stride=2), rng).eval()


def _check(block, x):
    # Folding reorders the float32 arithmetic: errors scale with the outputs' magnitude.
    ref = _unfused(block, x)
    assert_close(block(x), ref, rtol=1e-4, atol=2e-5 * np.abs(ref).max())


def test_rebuilt_after_an_optimiser_step(rng):
    block, x = _block(rng), f32(rng, 2, 8, 10, 10)
    _check(block, x)
    opt = optim.SGD(block.parameters(), lr=0.5)
    for p in block.parameters():
        p.grad[...] = rng.standard_normal(p.shape).astype(np.float32)
    opt.step()
    _check(block, x)
    adam = optim.Adam(block.parameters(), lr=0.1)
    adam.step()
    _check(block, x)


def test_rebuilt_after_load_state_dict_and_data_assignment(rng):
    block, x = _block(rng), f32(rng, 2, 8, 10, 10)
    _check(block, x)
    other = _block(np.random.default_rng(7))
    block.load_state_dict(other.state_dict())
    _check(block, x)
    np.testing.assert_allclose(block(x), other(x), rtol=1e-6, atol=1e-6)
    block.conv1.weight.data = f32(rng, *block.conv1.weight.shape)
    _check(block, x)
    block.bn2.bias = nn.Parameter(f32(rng, 16))
    _check(block, x)
    # a sub-module's own load_state_dict
    block.bn1.load_state_dict(_block(np.random.default_rng(9)).bn1.state_dict())
    _check(block, x)


def test_rebuilt_after_buffer_and_hyper_parameter_changes(rng):
    block, x = _block(rng), f32(rng, 2, 8, 10, 10)
    _check(block, x)
    block.bn1.running_var = np.full(16, 4.0, np.float32)  # reassigned buffer
    _check(block, x)
    block.bn1.eps = 0.5
    _check(block, x)
    block.bn2.reset_running_stats()
    _check(block, x)
    block.bn2.reset_parameters()
    _check(block, x)
    block.conv2.reset_parameters()
    _check(block, x)
    block.conv2.algo = "im2col"
    _check(block, x)


def test_in_place_edits_are_picked_up_by_eval(rng):
    block, x = _block(rng), f32(rng, 2, 8, 10, 10)
    before = block(x)
    block.conv1.weight.data *= 2  # cannot be seen: documented
    block.bn2.running_mean += 1
    block.eval()  # ... and calling eval() again discards what was prepared
    after = block(x)
    assert not np.allclose(before, after)
    _check(block, x)


def test_mode_switches_and_threads(rng):
    block, x = _block(rng), f32(rng, 1, 8, 10, 10)
    y = block(x)
    block.train()
    block(f32(rng, 4, 8, 10, 10))  # updates running statistics
    block.eval()
    _check(block, x)
    assert not np.allclose(block(x), y)
    previous = pycnn.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            pycnn.set_num_threads(n)
            results.append(block(x))
        for r in results[1:]:
            np.testing.assert_array_equal(r, results[0])  # same kernels, same order of sums
    finally:
        pycnn.set_num_threads(previous)


def test_summary_sees_every_layer_in_eval_mode(rng):
    model = _small_resnet18(rng)
    rows = pycnn.summary(model, (3, 32, 32), print_fn=None).rows
    names = {r.name for r in rows}
    assert {"layer1.0.bn1", "layer1.0.conv2", "layer4.1.bn2", "bn1"} <= names


def test_prepared_weights_are_freed_with_the_model(rng):
    import gc

    model = _small_resnet18(rng)
    model(f32(rng, 1, 3, 32, 32))
    held = len(fused._PREPARED)
    assert held >= 20
    del model
    gc.collect()
    assert len(fused._PREPARED) <= held - 20


def test_fold_batch_norm_matches_the_definition(rng):
    bn = _randomise_bn(nn.BatchNorm2d(5), rng).eval()
    w, b = f32(rng, 5, 3, 3, 3), f32(rng, 5)
    wf, bf = fused.fold_batch_norm(w, b, bn)
    x = f32(rng, 2, 3, 6, 6)
    expected = bn(F.conv2d(x, w, b))
    assert_close(F.conv2d(x, wf, bf), expected, rtol=1e-5, atol=1e-5)
    bn_plain = nn.BatchNorm2d(5, affine=False).eval()
    bn_plain.running_var[...] = 4.0
    wf, bf = fused.fold_batch_norm(w, None, bn_plain)
    assert_close(wf, w / np.sqrt(4.0 + 1e-5), rtol=1e-6)
    assert_close(bf, np.zeros(5), atol=0)


def test_python_overhead_benchmark_script_runs(tmp_path):
    """benchmarks/python_overhead.py (Python between the kernels of an eval forward) still runs; no timing."""
    out = run_benchmark_script("python_overhead.py", ["--rounds", "1", "--size", "32", "--threads", "1"], tmp_path)
    for line in ("whole forward", "outside the C++ calls", "Python alone, warm caches", "caches thrashed per conv"):
        assert line in out, out
