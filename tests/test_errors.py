"""Bad input through the public API: the right exception type, and a message that quotes the
offending shapes or values (so the user can see what went wrong without a debugger).

Every case is a row of the table: (id, call, exception type, fragments the message must contain).
"""
from __future__ import annotations

import numpy as np
import pytest

import pycnn
from pycnn import functional as F
from pycnn import nn, optim

z = np.zeros


def x4(*shape):
    return np.zeros(shape, np.float32)


def _load_mismatch():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(36, 2))
    sd = model.state_dict()
    sd["0.weight"] = np.zeros((4, 1, 5, 5))
    model.load_state_dict(sd)


def _load_missing():
    nn.Sequential(nn.Linear(3, 2)).load_state_dict({"0.weight": np.zeros((2, 3)), "1.bias": np.zeros(2)})


W = x4(6, 3, 3, 3)

CASES = [
    # --- convolution: arrays (checked by the C++ layer, messages quote shapes)
    ("conv_input_3d", lambda: F.conv2d(x4(3, 8, 8), W), ValueError, ["(N, C, H, W)", "(3, 8, 8)"]),
    ("conv_weight_3d", lambda: F.conv2d(x4(1, 3, 8, 8), x4(6, 3, 3)), ValueError, ["weight", "(6, 3, 3)"]),
    ("conv_channel_mismatch", lambda: F.conv2d(x4(2, 4, 8, 8), W), ValueError, ["(2, 4, 8, 8)", "(6, 3, 3, 3)"]),
    ("conv_nhwc_input", lambda: F.conv2d(x4(2, 8, 8, 3), W), ValueError, ["(2, 8, 8, 3)", "(6, 3, 3, 3)"]),
    ("conv_nhwc_module", lambda: nn.Conv2d(3, 6, 3)(x4(2, 28, 28, 3)), ValueError, ["(2, 28, 28, 3)"]),
    ("conv_kernel_larger", lambda: F.conv2d(x4(1, 3, 2, 2), W), ValueError, ["larger", "(3, 3)", "(2, 2)"]),
    ("conv_kernel_larger_dilated", lambda: F.conv2d(x4(1, 3, 6, 6), W, dilation=3), ValueError,
     ["larger", "dilation (3, 3)"]),
    ("conv_bias_shape", lambda: F.conv2d(x4(1, 3, 5, 5), W, bias=z(5)), ValueError, ["bias", "(6,)", "(5,)"]),
    ("conv_groups_not_dividing", lambda: F.conv2d(x4(1, 6, 5, 5), x4(4, 3, 3, 3), groups=4), ValueError,
     ["groups=4", "(1, 6, 5, 5)"]),
    ("conv_backward_dy_shape", lambda: F.conv2d_backward(x4(1, 6, 4, 4), x4(1, 3, 5, 5), W), ValueError,
     ["grad_output", "(1, 6, 3, 3)", "(1, 6, 4, 4)"]),
    ("conv_grad_weight_shape", lambda: F.conv2d_backward(x4(1, 6, 3, 3), x4(1, 3, 5, 5), W,
                                                         grad_weight=x4(6, 3, 2, 2)), ValueError,
     ["grad_weight", "(6, 3, 3, 3)", "(6, 3, 2, 2)"]),
    # --- convolution: hyper-parameters (checked in Python, messages name the argument)
    ("conv_stride_0", lambda: F.conv2d(x4(1, 3, 5, 5), W, stride=0), ValueError, ["stride", "0"]),
    ("conv_stride_neg", lambda: F.conv2d(x4(1, 3, 5, 5), W, stride=(1, -2)), ValueError, ["stride", "(1, -2)"]),
    ("conv_stride_float", lambda: F.conv2d(x4(1, 3, 5, 5), W, stride=1.5), TypeError, ["stride", "1.5"]),
    ("conv_stride_bool", lambda: F.conv2d(x4(1, 3, 5, 5), W, stride=True), TypeError, ["stride", "True"]),
    ("conv_dilation_0", lambda: F.conv2d(x4(1, 3, 5, 5), W, dilation=0), ValueError, ["dilation", "0"]),
    ("conv_padding_neg", lambda: F.conv2d(x4(1, 3, 5, 5), W, padding=-1), ValueError, ["padding", "-1"]),
    ("conv_padding_str", lambda: F.conv2d(x4(1, 3, 5, 5), W, padding="full"), ValueError, ["'full'", "same"]),
    ("conv_padding_triple", lambda: F.conv2d(x4(1, 3, 5, 5), W, padding=(1, 1, 1)), ValueError,
     ["padding", "(1, 1, 1)"]),
    ("conv_same_strided", lambda: F.conv2d(x4(1, 3, 5, 5), W, padding="same", stride=2), ValueError,
     ["same", "strided"]),
    ("conv_groups_0", lambda: F.conv2d(x4(1, 3, 5, 5), W, groups=0), ValueError, ["groups", "0"]),
    ("conv_algo", lambda: F.conv2d(x4(1, 3, 5, 5), W, algo="winograd"), ValueError, ["algo", "'winograd'"]),
    # --- layer constructors
    ("Conv2d_in_channels_0", lambda: nn.Conv2d(0, 4, 3), ValueError, ["in_channels", "0"]),
    ("Conv2d_kernel_0", lambda: nn.Conv2d(3, 4, 0), ValueError, ["kernel_size", "0"]),
    ("Conv2d_kernel_3d", lambda: nn.Conv2d(3, 4, (3, 3, 3)), ValueError, ["kernel_size", "(3, 3, 3)"]),
    ("Conv2d_stride_0", lambda: nn.Conv2d(3, 4, 3, stride=0), ValueError, ["stride", "0"]),
    ("Conv2d_groups_in", lambda: nn.Conv2d(6, 4, 3, groups=4), ValueError, ["in_channels", "groups=4"]),
    ("Conv2d_groups_out", lambda: nn.Conv2d(6, 4, 3, groups=3), ValueError, ["out_channels", "groups=3"]),
    ("Conv2d_same_strided", lambda: nn.Conv2d(3, 4, 3, stride=2, padding="same"), ValueError, ["same", "strided"]),
    ("Conv2d_channels_float", lambda: nn.Conv2d(3.0, 4, 3), TypeError, ["in_channels", "3.0"]),
    ("Conv2d_algo", lambda: nn.Conv2d(3, 4, 3, algo="fft"), ValueError, ["algo", "'fft'"]),
    ("Linear_features_0", lambda: nn.Linear(0, 3), ValueError, ["in_features", "0"]),
    ("Linear_features_bool", lambda: nn.Linear(True, 3), TypeError, ["in_features", "True"]),
    ("MaxPool2d_kernel_0", lambda: nn.MaxPool2d(0), ValueError, ["kernel_size", "0"]),
    ("MaxPool2d_padding", lambda: nn.MaxPool2d(2, padding=2), ValueError, ["padding", "half"]),
    ("AvgPool2d_stride_neg", lambda: nn.AvgPool2d(2, stride=-1), ValueError, ["stride", "-1"]),
    ("Adaptive_0", lambda: nn.AdaptiveAvgPool2d((0, 2)), ValueError, ["output_size", "0"]),
    ("LeakyReLU_slope", lambda: nn.LeakyReLU("0.1"), TypeError, ["negative_slope", "'0.1'"]),
    ("CrossEntropy_none", lambda: nn.CrossEntropyLoss(reduction="none"), ValueError, ["reduction", "'none'"]),
    # --- pooling arrays
    ("pool_input_3d", lambda: F.max_pool2d(x4(1, 4, 4), 2), ValueError, ["(N, C, H, W)", "(1, 4, 4)"]),
    ("pool_kernel_larger", lambda: F.avg_pool2d(x4(1, 1, 2, 2), 3), ValueError, ["(3, 3)", "(2, 2)"]),
    ("pool_padding_over_half", lambda: F.max_pool2d(x4(1, 1, 8, 8), 2, padding=2), ValueError,
     ["padding", "(2, 2)", "kernel_size (2, 2)"]),
    ("pool_backward_dy_shape", lambda: F.avg_pool2d_backward(x4(1, 1, 3, 3), (1, 1, 8, 8), 2), ValueError,
     ["(1, 1, 4, 4)", "(1, 1, 3, 3)"]),
    ("maxpool_indices_shape", lambda: F.max_pool2d_backward(x4(1, 1, 4, 4), z((1, 1, 3, 3), np.int32),
                                                             (1, 1, 8, 8), 2), ValueError,
     ["indices", "(1, 1, 4, 4)", "(1, 1, 3, 3)"]),
    ("maxpool_indices_float", lambda: F.max_pool2d_backward(x4(1, 1, 4, 4), z((1, 1, 4, 4)), (1, 1, 8, 8), 2),
     TypeError, ["indices", "float64"]),
    ("adaptive_output_0", lambda: F.adaptive_avg_pool2d(x4(1, 1, 4, 4), 0), ValueError, ["output_size", "0"]),
    ("adaptive_negative_shape", lambda: F.adaptive_avg_pool2d_backward(x4(1, 1, 2, 2), (1, 1, -4, 4)),
     ValueError, ["negative", "(1, 1, -4, 4)"]),
    ("conv_stride_beyond_int64", lambda: F.conv2d(x4(1, 3, 5, 5), W, stride=2 ** 63), OverflowError,
     ["stride", "64-bit"]),
    ("conv_dilation_span_overflow", lambda: F.conv2d(x4(1, 3, 5, 5), x4(6, 3, 2, 2), dilation=2 ** 63 - 1),
     OverflowError, ["64-bit"]),
    ("pool_huge_padding", lambda: F.max_pool2d(x4(1, 1, 8, 8), 2, padding=2 ** 62), ValueError,
     ["padding", str(2 ** 62)]),
    ("pool_shape_overflow", lambda: F.avg_pool2d_backward(x4(1, 1, 1, 1), (2 ** 40, 2 ** 40, 2, 2), 2),
     OverflowError, ["64-bit"]),
    # --- linear, activations, losses
    ("linear_in_mismatch", lambda: F.linear(x4(2, 5), x4(3, 4)), ValueError, ["(2, 5)", "(3, 4)"]),
    ("linear_module_mismatch", lambda: nn.Linear(4, 3)(x4(2, 5)), ValueError, ["(N, 4)", "(2, 5)"]),
    ("linear_input_4d", lambda: F.linear(x4(2, 1, 2, 2), x4(3, 4)), ValueError, ["(2, 1, 2, 2)"]),
    ("linear_bias_shape", lambda: F.linear(x4(2, 4), x4(3, 4), z(4)), ValueError, ["bias", "(3,)", "(4,)"]),
    ("relu_backward_shape", lambda: F.relu_backward(x4(2, 3), x4(3, 2)), ValueError, ["(3, 2)", "(2, 3)"]),
    ("mse_shape", lambda: F.mse_loss(x4(2, 3), x4(3, 2)), ValueError, ["target", "(2, 3)", "(3, 2)"]),
    ("ce_label_too_big", lambda: F.cross_entropy(x4(3, 5), [0, 5, 1]), ValueError, ["label 5", "index 1", "[0, 5)"]),
    ("ce_label_negative", lambda: F.cross_entropy(x4(3, 5), [0, 1, -1]), ValueError, ["label -1", "[0, 5)"]),
    ("ce_labels_shape", lambda: F.cross_entropy(x4(3, 5), [0, 1, 2, 3]), ValueError, ["(3,)", "(3, 5)", "(4,)"]),
    ("ce_labels_2d", lambda: F.cross_entropy(x4(3, 5), z((3, 1), np.int64)), ValueError, ["(3, 1)"]),
    ("ce_labels_float", lambda: F.cross_entropy(x4(3, 5), np.array([0.0, 1.0, 2.0])), TypeError,
     ["labels", "float64"]),
    ("ce_logits_1d", lambda: F.cross_entropy(x4(5), [1]), ValueError, ["(N, classes)", "(5,)"]),
    ("ce_module_label", lambda: nn.CrossEntropyLoss()(x4(2, 3), np.array([3, 0])), ValueError, ["label 3"]),
    ("ce_backward_scale", lambda: F.cross_entropy_backward(x4(2, 3), [0, 1], scale="x"), TypeError, ["scale"]),
    # --- dtypes
    ("complex_input", lambda: F.conv2d(np.zeros((1, 3, 5, 5), np.complex64), W), TypeError,
     ["input", "complex64"]),
    ("object_weight", lambda: F.linear(x4(1, 2), np.array([[None, 1]])), TypeError, ["weight", "object"]),
    ("ragged_list", lambda: F.relu([[1, 2], [3]]), TypeError, ["input"]),
    # --- optimiser and state dict
    ("sgd_shape", lambda: F.sgd_step(x4(3), x4(4), None, 0.1), ValueError, ["(3,)", "(4,)"]),
    ("sgd_grad_aliases_param", lambda: (lambda p: F.sgd_step(p, p, None, 0.1))(x4(3)), ValueError, ["share memory"]),
    ("SGD_lr", lambda: optim.SGD([nn.Parameter(z(2))], lr=-1), ValueError, ["Invalid learning rate: -1"]),
    ("load_shape_mismatch", _load_mismatch, ValueError, ["0.weight", "(4, 1, 5, 5)", "(4, 1, 3, 3)"]),
    ("load_missing_unexpected", _load_missing, KeyError, ["0.bias", "1.bias"]),
    ("set_num_threads_0", lambda: pycnn.set_num_threads(0), ValueError, ["n >= 1", "0"]),
]


@pytest.mark.parametrize("call,exc,fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_with_informative_message(call, exc, fragments):
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    missing = [f for f in fragments if f not in msg]
    assert not missing, f"message {msg!r} lacks {missing}"


def test_errors_leave_parameter_grads_untouched():
    # A shape error in backward must not have accumulated half a gradient first.
    conv = nn.Conv2d(3, 4, 3)
    conv(x4(2, 3, 6, 6))
    with pytest.raises(ValueError):
        conv.backward(x4(2, 4, 5, 5))
    assert not conv.weight.grad.any() and not conv.bias.grad.any()
