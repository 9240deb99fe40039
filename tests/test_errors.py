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
    ("conv_algo", lambda: F.conv2d(x4(1, 3, 5, 5), W, algo="fft"), ValueError, ["algo", "'fft'"]),
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
    # --- gaps filled for the reliability issue: every op family, every rule
    # wrong ndim
    ("avgpool_input_3d", lambda: F.avg_pool2d(x4(1, 4, 4), 2), ValueError, ["(N, C, H, W)", "(1, 4, 4)"]),
    ("adaptive_input_3d", lambda: F.adaptive_avg_pool2d(x4(1, 4, 4), 2), ValueError, ["(N, C, H, W)", "(1, 4, 4)"]),
    ("adaptive_backward_dy_3d", lambda: F.adaptive_avg_pool2d_backward(x4(1, 2, 2), (1, 1, 4, 4)), ValueError,
     ["grad_output", "(1, 2, 2)"]),
    ("linear_weight_3d", lambda: F.linear(x4(2, 3), x4(2, 3, 1)), ValueError, ["weight", "(2, 3, 1)"]),
    ("conv_module_input_5d", lambda: nn.Conv2d(3, 6, 3)(x4(1, 1, 3, 8, 8)), ValueError, ["(1, 1, 3, 8, 8)"]),
    ("maxpool_module_input_2d", lambda: nn.MaxPool2d(2)(x4(4, 4)), ValueError, ["(N, C, H, W)", "(4, 4)"]),
    # channel mismatches and NHWC, through modules and backward passes
    ("conv_backward_x_channels", lambda: F.conv2d_backward(x4(1, 6, 3, 3), x4(1, 4, 5, 5), W), ValueError,
     ["(N, 3, H, W)", "(1, 4, 5, 5)"]),
    ("conv_grouped_channels", lambda: F.conv2d(x4(1, 4, 5, 5), x4(6, 3, 3, 3), groups=2), ValueError,
     ["(N, 6, H, W)", "groups=2", "(1, 4, 5, 5)"]),
    ("sequential_nhwc", lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())(x4(2, 28, 28, 1)), ValueError,
     ["(N, 1, H, W)", "(2, 28, 28, 1)"]),
    ("flatten_linear_mismatch", lambda: nn.Sequential(nn.Flatten(), nn.Linear(10, 2))(x4(2, 3, 2, 2)), ValueError,
     ["(N, 10)", "(2, 12)"]),
    # kernel larger than the (padded) input
    ("maxpool_kernel_larger", lambda: F.max_pool2d(x4(1, 1, 3, 3), 4, padding=0), ValueError,
     ["larger", "(4, 4)", "(3, 3)"]),
    ("conv_kernel_larger_strided", lambda: F.conv2d(x4(1, 3, 2, 9), W, stride=2), ValueError,
     ["larger", "(2, 9)"]),
    ("conv_empty_plane", lambda: F.conv2d(x4(1, 3, 0, 5), W), ValueError, ["larger", "(1, 3, 0, 5)"]),
    ("maxpool_empty_plane_padded", lambda: F.max_pool2d(x4(1, 1, 0, 0), 2, padding=1), ValueError,
     ["non-empty", "(1, 1, 0, 0)"]),
    ("avgpool_empty_plane_padded", lambda: F.avg_pool2d(x4(1, 1, 3, 0), 2, padding=1, count_include_pad=False),
     ValueError, ["non-empty", "(1, 1, 3, 0)"]),
    ("maxpool_backward_empty_plane", lambda: F.max_pool2d_backward(x4(1, 1, 1, 1), z((1, 1, 1, 1), np.int32),
                                                                   (1, 1, 0, 0), 2, padding=1), ValueError,
     ["non-empty", "(1, 1, 0, 0)"]),
    ("adaptive_empty_plane", lambda: F.adaptive_avg_pool2d(x4(1, 1, 0, 4), 2), ValueError,
     ["non-empty", "(1, 1, 0, 4)"]),
    # stride / dilation / kernel / padding <= 0, functional and modules
    ("maxpool_stride_0", lambda: F.max_pool2d(x4(1, 1, 4, 4), 2, stride=0), ValueError, ["stride", "0"]),
    ("maxpool_kernel_neg", lambda: F.max_pool2d(x4(1, 1, 4, 4), (2, -1)), ValueError, ["kernel_size", "(2, -1)"]),
    ("avgpool_padding_neg", lambda: F.avg_pool2d(x4(1, 1, 4, 4), 2, padding=-1), ValueError, ["padding", "-1"]),
    ("conv_dilation_neg", lambda: F.conv2d(x4(1, 3, 5, 5), W, dilation=(1, -1)), ValueError,
     ["dilation", "(1, -1)"]),
    ("conv_weight_kernel_0", lambda: F.conv2d(x4(1, 3, 5, 5), x4(6, 3, 0, 3)), ValueError,
     ["positive", "(6, 3, 0, 3)"]),
    ("conv_weight_K_0", lambda: F.conv2d(x4(1, 3, 5, 5), x4(0, 3, 3, 3)), ValueError, ["positive", "(0, 3, 3, 3)"]),
    ("Conv2d_dilation_0", lambda: nn.Conv2d(3, 4, 3, dilation=0), ValueError, ["dilation", "0"]),
    ("Conv2d_padding_neg", lambda: nn.Conv2d(3, 4, 3, padding=-1), ValueError, ["padding", "-1"]),
    ("Conv2d_groups_0", lambda: nn.Conv2d(3, 4, 3, groups=0), ValueError, ["groups", "0"]),
    ("MaxPool2d_stride_0", lambda: nn.MaxPool2d(2, stride=0), ValueError, ["stride", "0"]),
    ("AvgPool2d_kernel_neg", lambda: nn.AvgPool2d(-2), ValueError, ["kernel_size", "-2"]),
    ("conv_stride_nan", lambda: F.conv2d(x4(1, 3, 5, 5), W, stride=float("nan")), TypeError, ["stride", "nan"]),
    # groups not dividing channels
    ("conv_groups_not_dividing_out", lambda: F.conv2d(x4(1, 6, 5, 5), x4(4, 2, 3, 3), groups=3), ValueError,
     ["groups=3", "output channels", "(4, 2, 3, 3)"]),
    # dtypes that cannot be converted (the convertible ones are tested in test_functional.py)
    ("complex_weight", lambda: F.conv2d(x4(1, 3, 5, 5), W.astype(np.complex64)), TypeError,
     ["weight", "complex64"]),
    ("str_input", lambda: F.max_pool2d(np.full((1, 1, 2, 2), "a"), 2), TypeError, ["input", "<U1"]),
    ("object_module_input", lambda: nn.Linear(2, 2)(np.array([[None, 1.0]])), TypeError, ["input", "object"]),
    ("bool_labels", lambda: F.cross_entropy(x4(2, 3), np.array([True, False])), TypeError, ["labels", "bool"]),
    ("object_labels", lambda: nn.CrossEntropyLoss()(x4(2, 3), np.array([0, None])), TypeError,
     ["labels", "object"]),
    ("float_indices", lambda: F.max_pool2d_backward(x4(1, 1, 2, 2), np.zeros((1, 1, 2, 2)), (1, 1, 4, 4), 2),
     TypeError, ["indices", "float64"]),
    # sizes whose int64 products overflow: refused before anything is allocated
    ("conv_output_overflow", lambda: F.conv2d(x4(1, 1, 1, 1), x4(1, 1, 1, 1), padding=2 ** 40), OverflowError,
     ["conv2d output", "64-bit"]),
    ("conv_padded_overflow", lambda: F.conv2d(x4(1, 1, 1, 1), x4(1, 1, 1, 1), padding=2 ** 62), OverflowError,
     ["padded size", "64-bit"]),
    ("maxpool_backward_shape_overflow", lambda: F.max_pool2d_backward(x4(1, 1, 1, 1), z((1, 1, 1, 1), np.int32),
                                                                      (2 ** 40, 2 ** 40, 2, 2), 2),
     OverflowError, ["max_pool2d", "64-bit"]),
    ("adaptive_backward_shape_overflow", lambda: F.adaptive_avg_pool2d_backward(x4(1, 1, 1, 1),
                                                                                (2 ** 31, 2 ** 31, 2 ** 31, 1)),
     OverflowError, ["64-bit"]),
    ("broadcast_copy_overflow", lambda: F.relu(np.broadcast_to(np.uint8(1), (2 ** 31, 2 ** 31))),
     OverflowError, ["input", "(2147483648, 2147483648)", "64-bit"]),
    ("broadcast_copy_too_big", lambda: F.conv2d(np.broadcast_to(np.float64(0), (2 ** 20, 2 ** 20, 2 ** 10, 1)),
                                                x4(1, 1, 1, 1)), MemoryError, ["(1048576, 1048576, 1024, 1)"]),
    ("pool_plane_over_int32", lambda: F.max_pool2d_backward(x4(1, 1, 1, 1), z((1, 1, 1, 1), np.int32),
                                                            (1, 1, 2 ** 16, 2 ** 16), 2 ** 16), ValueError,
     ["65536 x 65536", "2^31"]),
    ("labels_beyond_int64", lambda: F.cross_entropy(x4(2, 3), np.array([0, 2 ** 64 - 1], np.uint64)), ValueError,
     ["18446744073709551615", "int64"]),
    ("set_num_threads_huge", lambda: pycnn.set_num_threads(2 ** 40), ValueError, ["set_num_threads", str(2 ** 40)]),
    ("set_num_threads_float", lambda: pycnn.set_num_threads(2.0), TypeError, ["int", "float"]),
    # labels out of range or of the wrong shape
    ("ce_labels_0d", lambda: F.cross_entropy(x4(1, 3), np.int64(0)), ValueError, ["(1,)", "()"]),
    ("ce_no_classes", lambda: F.cross_entropy(x4(2, 0), [0, 0]), ValueError, ["class", "(2, 0)"]),
    ("ce_backward_label_range", lambda: F.cross_entropy_backward(x4(2, 3), [0, 3]), ValueError,
     ["label 3", "[0, 3)"]),
    ("ce_module_labels_shape", lambda: nn.CrossEntropyLoss()(x4(4, 3), np.zeros((2, 2), np.int64)), ValueError,
     ["(4,)", "(2, 2)"]),
    ("mse_module_shape", lambda: nn.MSELoss()(x4(4, 3), x4(4)), ValueError, ["target", "(4, 3)", "(4,)"]),
    ("maxpool_bad_index_value", lambda: F.max_pool2d_backward(x4(1, 1, 2, 2), np.full((1, 1, 2, 2), 99, np.int32),
                                                              (1, 1, 4, 4), 2), ValueError, ["99", "16"]),
    ("maxpool_index_beyond_int32", lambda: F.max_pool2d_backward(x4(1, 1, 2, 2), np.full((1, 1, 2, 2), 2 ** 40),
                                                                 (1, 1, 4, 4), 2), ValueError, ["int32"]),
    # backward before forward, twice, after an eval forward
    ("conv_backward_before_forward", lambda: nn.Conv2d(3, 6, 3).backward(x4(1, 6, 3, 3)), RuntimeError,
     ["Conv2d", "before forward"]),
    ("sequential_backward_twice", lambda: _twice(nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU()), x4(1, 3, 5, 5)),
     RuntimeError, ["twice"]),
    ("backward_after_eval_forward", lambda: _after_eval(nn.Linear(3, 2), x4(4, 3)), RuntimeError,
     ["eval mode", ".train()"]),
    ("loss_backward_before_forward", lambda: nn.CrossEntropyLoss().backward(), RuntimeError,
     ["CrossEntropyLoss", "before forward"]),
    ("mse_backward_twice", lambda: _loss_twice(nn.MSELoss(), x4(2), x4(2)), RuntimeError, ["MSELoss", "twice"]),
    # load_state_dict: shapes, dtypes, kinds of value
    ("load_bias_shape", lambda: nn.Linear(3, 2).load_state_dict({"weight": z((2, 3)), "bias": z(3)}), ValueError,
     ["bias", "(3,)", "(2,)"]),
    ("load_transposed_weight", lambda: nn.Linear(3, 2).load_state_dict({"weight": z((3, 2)), "bias": z(2)}),
     ValueError, ["weight", "(3, 2)", "(2, 3)"]),
    ("load_complex", lambda: nn.Linear(2, 2).load_state_dict({"weight": z((2, 2), complex), "bias": z(2)}),
     ValueError, ["weight", "complex128"]),
    ("load_object_array", lambda: nn.Linear(2, 2).load_state_dict({"weight": np.array([[None, 1], [1, 1]]),
                                                                   "bias": z(2)}), ValueError, ["weight", "object"]),
    ("load_string", lambda: nn.Linear(2, 2).load_state_dict({"weight": "abc", "bias": z(2)}), ValueError,
     ["weight", "<U3"]),
    ("load_ragged", lambda: nn.Linear(2, 2).load_state_dict({"weight": [[1, 2], [3]], "bias": z(2)}), ValueError,
     ["weight", "cannot be converted"]),
    ("load_not_a_mapping", lambda: nn.Linear(2, 2).load_state_dict([z((2, 2)), z(2)]), TypeError,
     ["mapping", "list"]),
    ("load_unexpected_key", lambda: nn.Linear(2, 2).load_state_dict({"weight": z((2, 2)), "bias": z(2),
                                                                     "extra": z(1)}),
     KeyError, ["unexpected", "extra"]),
]


def _twice(model, x):
    model(x)
    dy = np.ones(model(x).shape, np.float32)
    model.backward(dy)
    model.backward(dy)


def _after_eval(model, x):
    model.eval()
    y = model(x)
    model.backward(np.ones(y.shape, np.float32))


def _loss_twice(loss_fn, a, b):
    loss_fn(a, b)
    loss_fn.backward()
    loss_fn.backward()


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


# ---------------------------------------------------------------------------
# Awkward inputs that are not errors: they must give the documented result.
# ---------------------------------------------------------------------------

def _net():
    pycnn.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.Tanh(), nn.AvgPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 2 * 2, 5))


LAYOUTS = {
    "sliced": lambda b: b[::2, :, 1:9, 2:10],
    "negative_stride": lambda b: b[::-2, :, 8:0:-1, 9:1:-1],
    "transposed": lambda b: b[::2, :, :8, :8].transpose(0, 1, 3, 2),
    "fortran": lambda b: np.asfortranarray(b[::2, :, :8, :8]),
    "float64": lambda b: b[::2, :, :8, :8].astype(np.float64),
    "int16": lambda b: (b[::2, :, :8, :8] * 10).astype(np.int16),
    "bool": lambda b: b[::2, :, :8, :8] > 0,
    "big_endian": lambda b: b[::2, :, :8, :8].astype(">f4"),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_modules_take_any_layout_and_real_dtype_like_a_contiguous_float32_copy(layout):
    """Non-contiguous, negative-stride and other-dtype inputs and gradients through a whole network."""
    base = np.random.default_rng(1).standard_normal((8, 3, 10, 11)).astype(np.float32)
    x = LAYOUTS[layout](base)
    xc = np.ascontiguousarray(x, dtype=np.float32)
    assert xc.shape == (4, 3, 8, 8)
    x_before = np.array(x, copy=True)
    results = []
    for inp in (x, xc):
        model = _net()
        out = model(inp)
        dy = np.ones((5, 4), np.float32)[:, ::-1].T  # a non-contiguous gradient too
        dx = model.backward(dy)
        results.append([out, dx] + [p.grad.copy() for p in model.parameters()])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b, err_msg=layout)
    np.testing.assert_array_equal(x, x_before)  # the caller's array is never written


def test_zero_size_batch_through_modules_and_losses():
    model = _net()
    x = np.zeros((0, 3, 8, 8), np.float32)
    out = model(x)
    assert out.shape == (0, 5) and out.dtype == np.float32
    loss_fn = nn.CrossEntropyLoss()
    assert np.isnan(loss_fn(out, np.zeros(0, np.int64)))  # the mean of nothing, as PyTorch
    dx = model.backward(loss_fn.backward())
    assert dx.shape == x.shape
    assert all(not p.grad.any() for p in model.parameters())
    assert pycnn.train.predict_outputs(model, x).shape == (0, 5)
    assert pycnn.train.predict(model, x).shape == (0,)  # class labels
    mse = nn.MSELoss()
    assert np.isnan(mse(out, np.zeros((0, 5), np.float32)))
    assert mse.backward().shape == (0, 5)
    opt = pycnn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = [p.data.copy() for p in model.parameters()]
    opt.step()  # zero gradients: the weights stay
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, b)


SPECIAL = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}


@pytest.mark.parametrize("value", sorted(SPECIAL))
def test_nan_and_inf_propagate_through_every_op_without_crashing(value):
    v = SPECIAL[value]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    x[1, 2, 3, 3] = v
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    for algo in ("im2col", "direct"):
        y = F.conv2d(x, w, padding=1, algo=algo, relu=True)
        assert np.isfinite(y[0]).all()  # the other image is untouched
        assert not np.isfinite(y[1]).all() or value == "-inf"  # relu may turn -inf into 0
        F.conv2d_backward(y, x, w, padding=1, algo=algo)
    yp, idx = F.max_pool2d(x, 2, return_indices=True)
    assert yp[1, 2, 1, 1] == v or (np.isnan(v) and np.isnan(yp[1, 2, 1, 1])) or value == "-inf"
    F.max_pool2d_backward(yp, idx, x.shape, 2)
    ya = F.avg_pool2d(x, 3, 1, 1)
    assert not np.isfinite(ya[1, 2]).all()
    F.avg_pool2d_backward(ya, x.shape, 3, 1, 1)
    F.adaptive_avg_pool2d_backward(F.adaptive_avg_pool2d(x, 2), x.shape)
    for name in ("relu", "sigmoid", "tanh"):
        yy = getattr(F, name)(x)
        assert np.isnan(yy).any() == np.isnan(v)
        getattr(F, name + "_backward")(x, yy)
    z = x.reshape(2, -1)
    yl = F.linear(z, rng.standard_normal((5, z.shape[1])).astype(np.float32))
    assert np.isfinite(yl[0]).all() and not np.isfinite(yl[1]).all()
    F.linear_backward(yl, z, np.ones((5, z.shape[1]), np.float32))
    loss, probs = F.cross_entropy_forward(yl, [0, 1])
    assert not np.isfinite(loss)
    F.cross_entropy_backward(probs, [0, 1])
    assert not np.isfinite(F.mse_loss(z, np.zeros_like(z)))
    F.mse_loss_backward(z, np.zeros_like(z))
    p = np.ones(3, np.float32)
    F.sgd_step(p, np.array([v, 1, 1], np.float32), None, 0.1)
    assert not np.isfinite(p[0]) and np.isfinite(p[1:]).all()
