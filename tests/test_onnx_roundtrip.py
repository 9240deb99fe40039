"""pycnn -> ONNX -> pycnn: every layer case and preset of the export tests, exported and loaded back.

What comes back computes what went out, bitwise, except where noted; the
exports that use ONNX constructs the importer does not read (docs/onnx.md
lists them) are refused with UnsupportedOnnxError naming the node.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")  # test_onnx_export (imported below) needs it

import pycnn  # noqa: E402
import pycnn.onnx  # noqa: E402
from pycnn.models import PRESETS  # noqa: E402
from pycnn.onnx.importer import UnsupportedOnnxError  # noqa: E402
from test_onnx_export import LAYERS_2D, _randomise_batch_norms  # noqa: E402

# Exports the importer refuses, and why (each is also in docs/onnx.md's Import section).
NOT_READ_BACK = {
    "dropout_alone": "a graph without a node (the output is the input)",
    "flatten_middle": "Reshape to other than (batch, -1)",
    "flatten_trailing": "Reshape to other than (batch, -1)",
    "gelu_tanh": "the tanh formula before opset 20 (Gelu nodes from opset 20 are read)",
    "softmax_legacy_dim": "a softmax over the batch axis",
    "conv_transpose2d_dilated": "output_padding exported as a crop of the full transposed convolution",
    "conv_transpose2d_output_padding_past_padding": "output_padding exported as a crop and a Pad",
    "upsample_bilinear": "an interpolation written as constant matrices (MatMul)",
    "upsample_bilinear_rounded_factors": "an interpolation written as constant matrices (MatMul)",
    "upsample_nearest_exact_rounded_factor": "an interpolation written as constant matrices (MatMul)",
    "upsample_linear_rounded_factor": "an interpolation written as constant matrices (MatMul)",
    "upsample_bilinear_align_corners": "Resize to sizes computed from Shape",
    "upsample_bilinear_recomputed": "Resize to sizes computed from Shape",
    "upsample_nearest_1d": "Resize to sizes computed from Shape",
    "upsample_nearest_downsize": "Resize to sizes computed from Shape",
    "upsample_nearest_exact": "Resize to sizes computed from Shape",
    "upsample_nearest_size": "Resize to sizes computed from Shape",
}
# Read back equal to rounding, not bitwise: eval-mode BatchNorm is folded into the convolution inside a
# Residual (pycnn.nn.fused) but not in the nn.Model the import builds; ONNX stores eps as a float32.
CLOSE_ONLY = {"basic_block", "residual_projection", "batch_norm1d_sequence"}


def _round_trip(model, shape):
    model.eval()
    proto = pycnn.onnx.export(model, None, shape)
    back = pycnn.onnx.load(proto.SerializeToString())
    x = np.random.default_rng(1).standard_normal((3,) + tuple(shape)).astype(np.float32)
    return model(x), back(x), back


@pytest.mark.parametrize("name", sorted(LAYERS_2D))
def test_every_layer_reads_back(name):
    make, shape = LAYERS_2D[name]
    pycnn.manual_seed(0)
    model = make()
    _randomise_batch_norms(model)
    if name in NOT_READ_BACK:
        with pytest.raises(UnsupportedOnnxError, match="node '|graph output"):  # names what it refuses
            _round_trip(model, shape)
        return
    want, got, back = _round_trip(model, shape)
    assert got.shape == want.shape
    if name in CLOSE_ONLY:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * float(np.abs(want).max()))
    else:
        np.testing.assert_array_equal(got, want)
    assert not back.training


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_reads_back(name):
    pycnn.manual_seed(0)
    model = PRESETS[name]()
    _randomise_batch_norms(model)
    shape = (3, 32, 32) if name == "resnet18" else (1, 28, 28)
    want, got, back = _round_trip(model, shape)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))
    # the same parameters, count for count (BatchNorm stays a layer of its own)
    assert sum(p.data.size for p in back.parameters()) == sum(p.data.size for p in model.parameters())


def test_broadcasting_merges_read_back():
    pycnn.manual_seed(0)
    from pycnn import nn
    x = nn.Input((4, 5, 6))
    s = nn.Sigmoid()(nn.Conv2d(4, 4, 1)(nn.AdaptiveAvgPool2d(1)(x)))
    model = nn.Model(x, nn.Add()([nn.Multiply()([x, s]), nn.Conv2d(4, 4, 1)(s)]))
    want, got, back = _round_trip(model, (4, 5, 6))
    np.testing.assert_array_equal(got, want)


def test_broadcast_that_would_blow_up_is_refused_before_it_runs():
    import onnx
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 2048, 1, 2048, 1])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 1, 2048, 1, 2048])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("Relu", ["a"], ["ra"]), helper.make_node("Relu", ["b"], ["rb"]),
                               helper.make_node("Mul", ["ra", "rb"], ["y"], name="outer")], "g", [a, b], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ValueError, match="outer"):
        pycnn.onnx.load(model.SerializeToString())
