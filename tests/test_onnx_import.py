"""ONNX files into pycnn networks (pycnn.onnx.importer): PyTorch exports checked against PyTorch, hand-built
graphs against ONNX's reference evaluator, and every refusal's message."""
import io
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import pycnn  # noqa: E402
from pycnn import nn  # noqa: E402
from pycnn.onnx.importer import InvalidOnnxError, UnsupportedOnnxError, load  # noqa: E402


def rel_err(a, b):
    return float(np.abs(np.asarray(a, np.float64) - b).max() / max(np.abs(b).max(), 1e-30))


def model_bytes(nodes, inputs, outputs, initializers=(), opset=17, name="g"):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


def fin(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def empty_tensor(name, dims):
    """A float tensor declaring ``dims`` and holding no values (helper.make_tensor would refuse to make it)."""
    t = TensorProto()
    t.name, t.data_type = name, TensorProto.FLOAT
    t.dims.extend(dims)
    return t


def reference(data, feeds):
    return ReferenceEvaluator(onnx.load_model_from_string(data)).run(None, feeds)


# ---------------------------------------------------------------------------
# PyTorch -> ONNX -> pycnn
# ---------------------------------------------------------------------------

def torch_modules():
    """torch, and a builder of torchvision's ResNet-18 module tree (torchvision need not be installed)."""
    torch = pytest.importorskip("torch")
    from pycnn.bench.resnet import torch_resnet18

    return torch, lambda num_classes: torch_resnet18(torch, num_classes=num_classes)


def export(torch, module, example, dynamo, **kw):
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), f, dynamo=dynamo, **kw)
    return f.getvalue()


def exporters():
    """The TorchScript exporter always; the default (dynamo) one when onnxscript is installed."""
    out = [pytest.param(False, id="torchscript")]
    try:
        import onnxscript  # noqa: F401
        out.append(pytest.param(True, id="dynamo"))
    except ImportError:
        out.append(pytest.param(True, id="dynamo", marks=pytest.mark.skip(reason="onnxscript is not installed")))
    return out


def randomise_batchnorm(torch, module, seed):
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(c, generator=g) - 0.5)


@pytest.mark.parametrize("dynamo", exporters())
def test_resnet18_from_pytorch_matches_and_fine_tunes(dynamo):
    torch, ResNet18 = torch_modules()
    torch.manual_seed(0)
    tm = ResNet18(10)
    randomise_batchnorm(torch, tm, 1)
    tm.eval()
    data = export(torch, tm, torch.zeros(1, 3, 32, 32), dynamo)
    model = load(data)
    assert isinstance(model, nn.Model)  # skip connections: a graph
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)  # another batch size
    with torch.no_grad():
        expected = tm(torch.from_numpy(x)).numpy()
    assert rel_err(model(x), expected) < 1e-5
    # Fine-tunable: an ordinary pycnn network.
    n_params = sum(p.data.size for p in model.parameters())
    assert n_params == sum(p.numel() for p in tm.parameters()) - sum(  # BatchNorm folded into the convolutions
        m.weight.numel() + m.bias.numel() for m in tm.modules() if isinstance(m, torch.nn.BatchNorm2d)) + sum(
        m.out_channels for m in tm.modules() if isinstance(m, torch.nn.Conv2d))
    y = np.arange(3) % 10
    before = model.state_dict()["linear_0.weight"].copy()
    model.train()
    history = pycnn.train.fit(model, x, y, epochs=1, batch_size=3, loss_fn=nn.CrossEntropyLoss(),
                        optimizer=pycnn.optim.SGD(model.parameters(), lr=0.01), verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.array_equal(model.state_dict()["linear_0.weight"], before)


def test_small_cnn_with_every_supported_op_matches_pytorch():
    torch, _ = torch_modules()
    tnn, tF = torch.nn, torch.nn.functional

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv = tnn.Conv2d(3, 8, 3, padding=1)
            self.bn = tnn.BatchNorm2d(8)
            self.grouped = tnn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4)
            self.up = tnn.ConvTranspose2d(8, 4, 2, stride=2)
            self.branch = tnn.Conv2d(8, 4, 1)
            self.pool = tnn.MaxPool2d(2)
            self.avg = tnn.AvgPool2d(3, stride=1, padding=1)
            self.bn2 = tnn.BatchNorm2d(8)  # after a Concat: no exporter folds it into a convolution
            self.w = tnn.Parameter(torch.randn(8, 12) * 0.3)  # MatMul + Add: a Linear
            self.b = tnn.Parameter(torch.randn(12) * 0.3)
            self.fc = tnn.Linear(12, 5)

        def forward(self, x):
            a = torch.relu(self.bn(self.conv(x)))                  # 8 x 8 x 8
            b = tF.leaky_relu(self.grouped(a), 0.1)                # 8 x 8 x 8
            c = tF.elu(self.up(self.pool(b)))                      # 4 x 8 x 8: down, then up
            d = torch.sigmoid(self.branch(a)) * torch.tanh(c)      # Mul of two values
            e = self.bn2(torch.cat([self.avg(d), c], dim=1))       # 8 x 8 x 8
            e = tF.interpolate(e, scale_factor=2, mode="bilinear", align_corners=False)
            e = tF.interpolate(e, scale_factor=0.5, mode="nearest")
            e = tF.adaptive_avg_pool2d(e, 1) + e.mean(dim=(2, 3), keepdim=True)
            f = tF.dropout(torch.flatten(e, 1), 0.5, self.training)
            h = tF.gelu(f @ self.w + self.b)
            return torch.softmax(self.fc(h), dim=1)

    torch.manual_seed(0)
    net = Net()
    randomise_batchnorm(torch, net, 2)
    net.eval()
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    for opset in (17, 13):  # GELU as the erf subgraph (before opset 20); Softmax's axis rule from 13
        data = export(torch, net, torch.zeros(1, 3, 8, 8), False, opset_version=opset)
        ops = {n.op_type for n in onnx.load_model_from_string(data).graph.node}
        assert {"Conv", "BatchNormalization", "ConvTranspose", "LeakyRelu", "Elu", "Sigmoid", "Tanh", "Mul",
                "Concat", "AveragePool", "MaxPool", "Resize", "Erf", "MatMul", "Gemm", "Softmax",
                "GlobalAveragePool", "ReduceMean"} <= ops, ops
        model = load(data)
        assert rel_err(model(x), expected) < 1e-5
        kinds = {type(m).__name__ for m in model.modules()}
        assert {"GELU", "Multiply", "Concat", "Add", "Upsample", "ConvTranspose2d", "BatchNorm2d"} <= kinds, kinds


def test_chain_from_pytorch_is_sequential_and_conv1d():
    torch, _ = torch_modules()
    tnn = torch.nn
    torch.manual_seed(3)
    net = tnn.Sequential(tnn.Conv1d(2, 4, 3, stride=2, padding=1), tnn.BatchNorm1d(4), tnn.ReLU(),
                         tnn.MaxPool1d(2), tnn.Flatten(), tnn.Dropout(0.3), tnn.Linear(24, 3), tnn.Tanh())
    randomise_batchnorm(torch, net, 4)
    net.eval()
    x = np.random.default_rng(2).standard_normal((4, 2, 24)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    data = export(torch, net, torch.zeros(1, 2, 24), False, do_constant_folding=False)
    model = load(data)
    assert isinstance(model, nn.Sequential)
    assert [type(m).__name__ for m in model] == ["Conv1d", "BatchNorm1d", "ReLU", "MaxPool1d", "Flatten", "Linear",
                                                 "Tanh"]
    assert rel_err(model(x), expected) < 1e-5


# ---------------------------------------------------------------------------
# hand-built graphs, checked against onnx's reference evaluator
# ---------------------------------------------------------------------------

def test_branches_with_concat_and_two_outputs(tmp_path):
    rng = np.random.default_rng(5)
    w1 = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((2, 3, 1, 1)).astype(np.float32)
    b2 = rng.standard_normal(2).astype(np.float32)
    wl = rng.standard_normal((6 * 5 * 5, 7)).astype(np.float32)
    bl = rng.standard_normal(7).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="c1", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "w2", "b2"], ["b"], name="c2"),
        helper.make_node("Relu", ["a"], ["ra"], name="r"),
        helper.make_node("Concat", ["ra", "b"], ["cat"], name="cat", axis=1),
        helper.make_node("Flatten", ["cat"], ["flat"], name="flat"),
        helper.make_node("MatMul", ["flat", "wl"], ["mm"], name="mm"),
        helper.make_node("Add", ["mm", "bl"], ["logits"], name="bias"),
        helper.make_node("Sigmoid", ["b"], ["side"], name="sig"),
    ]
    data = model_bytes(nodes, [fin("x", [1, 3, 5, 5])], [fin("logits", [1, 7]), fin("side", [1, 2, 5, 5])],
                       [init("w1", w1), init("w2", w2), init("b2", b2), init("wl", wl), init("bl", bl)])
    model = load(data)
    assert isinstance(model, nn.Model)
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 1  # MatMul + Add
    x = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)
    logits, side = model(x)
    ref_logits, ref_side = reference(data, {"x": x})
    assert rel_err(logits, ref_logits) < 1e-5 and rel_err(side, ref_side) < 1e-5
    # An imported network is an ordinary one: pycnn's own file format keeps it, bitwise.
    path = tmp_path / "imported.npz"
    pycnn.save(model, path)
    again = pycnn.load(path)
    for a, b in zip(again(x), (logits, side)):
        np.testing.assert_array_equal(a, b)


def test_same_upper_padding_and_gemm_alpha_beta():
    rng = np.random.default_rng(6)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    wg = rng.standard_normal((3 * 4 * 4, 4)).astype(np.float32)  # transB=0: (in, out)
    c = rng.standard_normal(4).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="c", auto_pad="SAME_UPPER"),
        helper.make_node("AveragePool", ["a"], ["p"], name="p", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["p", "shape"], ["f"], name="reshape"),
        helper.make_node("Gemm", ["f", "wg", "c"], ["y"], name="gemm", alpha=0.5, beta=2.0),
    ]
    data = model_bytes(nodes, [fin("x", ["N", 2, 8, 8])], [fin("y", ["N", 4])],
                       [init("w", w), init("wg", wg), init("c", c), init("shape", np.array([-1, 48], np.int64))])
    model = load(data)
    assert isinstance(model, nn.Sequential)
    x = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
    assert rel_err(model(x), reference(data, {"x": x})[0]) < 1e-5


def test_initializer_shared_by_several_nodes():
    """Exporters share identical tensors between nodes (through Identity, too); each layer gets its copy,
    and the copies count against max_elements."""
    w = np.random.default_rng(9).standard_normal((2, 2, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], name="c1"),
             helper.make_node("Identity", ["w"], ["w_again"], name="same"),
             helper.make_node("Conv", ["a", "w_again"], ["b"], name="c2"),
             helper.make_node("Conv", ["b", "w"], ["y"], name="c3")]
    data = model_bytes(nodes, [fin("x", [1, 2, 3, 3])], [fin("y", [1, 2, 3, 3])], [init("w", w)])
    model = load(data)
    assert [type(m).__name__ for m in model] == ["Conv2d"] * 3
    x = np.random.default_rng(10).standard_normal((2, 2, 3, 3)).astype(np.float32)
    assert rel_err(model(x), reference(data, {"x": x})[0]) < 1e-5
    # Three readers of 4 elements: 12 elements to build, beyond max_elements=10 (the file declares only 4).
    with pytest.raises(InvalidOnnxError, match=r"'c3' \(Conv\): Conv2d.*more than the weights the file's nodes read "
                                               r"\(12 elements.*capped at max_elements=10"):
        load(data, max_elements=10)


def external_gemm(**external_data):
    """A model computing x @ w, its weight w (4, 6) stored in an external file."""
    t = empty_tensor("w", [4, 6])
    t.data_location = TensorProto.EXTERNAL
    for k, v in external_data.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    return model_bytes([helper.make_node("Gemm", ["x", "w"], ["y"], name="g")], [fin("x", [1, 4])],
                       [fin("y", [1, 6])], [t])


def test_external_data_inside_the_folder_loads(tmp_path):
    w = np.random.default_rng(7).standard_normal((4, 6)).astype(np.float32)
    (tmp_path / "weights.bin").write_bytes(b"\0" * 16 + w.tobytes())
    data = external_gemm(location="weights.bin", offset="16", length=str(w.nbytes))
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(load(path)(x), x @ w, rtol=1e-6)
    with pytest.raises(InvalidOnnxError, match="only for a model loaded from a path"):
        load(data)


def test_nhwc_leading_transpose_refused_or_dropped():
    rng = np.random.default_rng(8)
    w = rng.standard_normal((2, 3, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Transpose", ["x"], ["t"], name="to_nchw", perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t", "w"], ["y"], name="c")]
    data = model_bytes(nodes, [fin("x", [1, 5, 6, 3])], [fin("y", [1, 2, 5, 6])], [init("w", w)])
    with pytest.raises(UnsupportedOnnxError, match=r"'to_nchw' \(Transpose\).*NHWC.*drop_input_transpose=True"):
        load(data)
    model = load(data, drop_input_transpose=True)
    x_nhwc = rng.standard_normal((2, 5, 6, 3)).astype(np.float32)
    assert rel_err(model(x_nhwc.transpose(0, 3, 1, 2)), reference(data, {"x": x_nhwc})[0]) < 1e-5


# ---------------------------------------------------------------------------
# refusals
# ---------------------------------------------------------------------------

def conv_graph(**attrs):
    w = np.ones((4, 2, 3, 3), np.float32)
    return model_bytes([helper.make_node("Conv", ["x", "w"], ["y"], name="the_conv", **attrs)],
                       [fin("x", [1, 2, 8, 8])], [fin("y", [1, 4, 8, 8])], [init("w", w)])


@pytest.mark.parametrize("attrs, error, message", [
    (dict(pads=[1, 1, 0, 0]), UnsupportedOnnxError, r"'the_conv' \(Conv\).*asymmetric padding"),
    (dict(auto_pad="SAME_UPPER", strides=[2, 2]), UnsupportedOnnxError, "asymmetric padding.*SAME_UPPER"),
    (dict(strides=[-1, 1]), InvalidOnnxError, r"^<bytes>: node 'the_conv' \(Conv\).*strides=\[-1, 1\] is out of range"),
    (dict(kernel_shape=[10**9, 3]), InvalidOnnxError, "kernel_shape.*out of range"),
    (dict(group=3), InvalidOnnxError, "group=3 does not divide the 2 input channels"),
    (dict(dilations=[1, 1, 1]), InvalidOnnxError, "dilations must hold 2 integers"),
])
def test_absurd_attributes_refused(attrs, error, message):
    with pytest.raises(error, match=message):
        load(conv_graph(**attrs))


@pytest.mark.parametrize("node, message", [
    (helper.make_node("Cos", ["x"], ["y"], name="odd"), r"node 'odd' \(Cos\): pycnn does not import this operator"),
    (helper.make_node("Transpose", ["x"], ["y"], name="tr", perm=[0, 1, 3, 2]), r"'tr' \(Transpose\).*perm"),
    (helper.make_node("Resize", ["x", "", "s"], ["y"], name="rs", mode="cubic"), r"'rs' \(Resize\).*mode='cubic'"),
    (helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=0), r"'sm' \(Softmax\).*batch axis"),
    (helper.make_node("Flatten", ["x"], ["y"], name="fl", axis=2), r"'fl' \(Flatten\).*axis=2"),
    (helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
     r"'mp' \(MaxPool\).*ceil_mode=1"),
    (helper.make_node("Add", ["x", "s"], ["y"], name="plus"), r"'plus' \(Add\).*input 1 \('s'\) is a constant"),
    (helper.make_node("Relu", ["x"], ["y"], name="custom", domain="com.example"), "domain 'com.example'"),
    (helper.make_node("Relu", ["x"], ["y"], name="r", fancy=1), r"'r' \(Relu\): attribute 'fancy' is not one"),
    (helper.make_node("Reshape", ["x", "shape"], ["y"], name="rs"), r"'rs' \(Reshape\).*only as Flatten"),
])
def test_unsupported_ops_name_the_node(node, message):
    data = model_bytes([node], [fin("x", [1, 2, 8, 8])], [fin("y", None)],
                       [init("s", np.array([1, 1, 2, 2], np.float32)), init("shape", np.array([2, 8, 16]))])
    with pytest.raises(UnsupportedOnnxError, match=message):
        load(data)


def test_hostile_graphs_refused():
    w = init("w", np.ones((2, 2, 1, 1), np.float32))
    cases = [
        ([helper.make_node("Relu", ["y"], ["z"], name="a"), helper.make_node("Relu", ["z"], ["y"], name="b")],
         "has a cycle"),
        ([helper.make_node("Relu", ["nowhere"], ["y"], name="a")], "reads 'nowhere', which no graph input"),
        ([helper.make_node("Relu", ["x"], ["y"], name="a"), helper.make_node("Relu", ["x"], ["y"], name="b")],
         "'y' is defined twice"),
        ([helper.make_node("Conv", ["x"], ["y"], name="c")], r"'c' \(Conv\) lacks input 1"),
        ([helper.make_node("Relu", ["x"], [], name="silent")], r"'silent' \(Relu\) has no output"),
    ]
    for nodes, message in cases:
        with pytest.raises(InvalidOnnxError, match=message):
            load(model_bytes(nodes, [fin("x", [1, 2, 4, 4])], [fin("y", None)], [w]))


def test_oversized_and_lying_tensors_refused_before_allocation():
    # Declares 10^12 floats and holds none: refused by the element count alone.
    huge = empty_tensor("w", [10**6, 10**6])
    data = model_bytes([helper.make_node("Gemm", ["x", "w"], ["y"], name="g")], [fin("x", [1, 4])],
                       [fin("y", None)], [huge])
    with pytest.raises(InvalidOnnxError, match=r"declare 1,000,000,000,000 elements, more than max_elements"):
        load(data)
    # Within the budget but shorter than declared.
    short = empty_tensor("w", [4, 6])
    short.raw_data = np.zeros(6, np.float32).tobytes()
    data = model_bytes([helper.make_node("Gemm", ["x", "w"], ["y"], name="g")], [fin("x", [1, 4])],
                       [fin("y", None)], [short])
    with pytest.raises(InvalidOnnxError, match=r"declares shape \[4, 6\] \(96 bytes.*holds 24 bytes"):
        load(data)
    with pytest.raises(InvalidOnnxError, match="more than max_elements=10"):
        load(conv_graph(), max_elements=10)
    with pytest.raises(InvalidOnnxError, match="more than max_bytes=100"):
        load(conv_graph(), max_bytes=100)
    with pytest.raises(InvalidOnnxError, match="not an ONNX model"):
        load(b"\xff\xff\xff garbage")



@pytest.mark.parametrize("node, inputs", [
    # padding a 1x1 plane by 2^14 on each side: 2^30 outputs per channel
    (helper.make_node("Conv", ["x", "w"], ["y"], name="blowup", pads=[1 << 14] * 4), []),
    (helper.make_node("ConvTranspose", ["x", "wt"], ["y"], name="blowup", strides=[1 << 14, 1 << 14]), []),
    (helper.make_node("Resize", ["x", "", "s"], ["y"], name="blowup", mode="nearest",
                      coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
     [init("s", np.array([1, 1, 1 << 14, 1 << 14], np.float32))]),
])
def test_layers_blowing_up_activations_refused_before_building(node, inputs):
    data = model_bytes([node], [fin("x", [1, 2, 2, 2])], [fin("y", None)],
                       [init("w", np.ones((2, 2, 1, 1), np.float32)), init("wt", np.ones((2, 2, 1, 1), np.float32))]
                       + inputs)
    with pytest.raises(InvalidOnnxError, match=r"'blowup' .*its output would hold [\d,]+ elements per sample"):
        load(data)
    with pytest.raises(InvalidOnnxError, match="absurd sizes"):
        load(model_bytes([helper.make_node("Relu", ["x"], ["y"])], [fin("x", [1, 1 << 14, 1 << 14, 4])],
                         [fin("y", None)]))


@pytest.mark.parametrize("extra, message", [
    (dict(length="8"), "declares 96 bytes but its external data gives offset 0, length 8"),
    (dict(offset="40"), "holds 96 bytes, fewer than offset 40 \\+ 96"),
    (dict(offset="x"), "not integers"),
])
def test_external_data_that_does_not_fit_refused(tmp_path, extra, message):
    (tmp_path / "weights.bin").write_bytes(b"\0" * 96)
    (tmp_path / "m.onnx").write_bytes(external_gemm(location="weights.bin", **extra))
    with pytest.raises(InvalidOnnxError, match=message):
        load(tmp_path / "m.onnx")


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin"])
def test_external_data_outside_the_folder_refused(tmp_path, location):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 96)
    data = external_gemm(location=location)
    d = tmp_path / "model"
    d.mkdir()
    (d / "m.onnx").write_bytes(data)
    with pytest.raises(InvalidOnnxError, match="outside the model's folder"):
        load(d / "m.onnx")


def test_symlinked_external_data_escaping_the_folder_refused(tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 96)
    d = tmp_path / "model"
    d.mkdir()
    os.symlink(tmp_path / "secret.bin", d / "w.bin")
    (d / "m.onnx").write_bytes(external_gemm(location="w.bin"))
    with pytest.raises(InvalidOnnxError, match="outside the model's folder"):
        load(d / "m.onnx")


# ---------------------------------------------------------------------------
# python -m pycnn evaluate / predict with an .onnx file
# ---------------------------------------------------------------------------

def run_cli(*args):
    env = dict(os.environ)
    env.pop("PYCNN_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "pycnn", *args], cwd=tempfile.gettempdir(), capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, env=env, timeout=300)


def fashion_onnx(tmp_path):
    """A linear classifier of 28x28 grey images whose class is where a bright bar is (as tests/test_cli.py's
    stand-in data): weights +1 on each class's bar."""
    w = np.zeros((10, 1, 28, 28), np.float32)
    for c in range(10):
        r, col = divmod(c, 5)
        w[c, 0, 2 + 13 * r: 12 + 13 * r, 1 + 5 * col: 5 + 5 * col] = 1.0 / 40
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w"], ["y"], name="fc", transB=1)]
    data = model_bytes(nodes, [fin("x", [1, 1, 28, 28])], [fin("y", [1, 10])], [init("w", w.reshape(10, -1))])
    path = tmp_path / "bars.onnx"
    path.write_bytes(data)
    return path


def test_cli_evaluate_and_predict_onnx(tmp_path):
    from pycnn import data as D
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 50).astype(np.uint8)
    x = (rng.random((50, 28, 28)) * 60).astype(np.uint8)
    for i, c in enumerate(y):
        r, col = divmod(int(c), 5)
        x[i, 2 + 13 * r: 12 + 13 * r, 1 + 5 * col: 5 + 5 * col] = 230
    d = tmp_path / "data"
    d.mkdir()
    for split in ("train", "t10k"):
        D.write_idx(d / f"{split}-images-idx3-ubyte", x)
        D.write_idx(d / f"{split}-labels-idx1-ubyte", y)
    model = fashion_onnx(tmp_path)
    ev = run_cli("evaluate", str(model), "--data", str(d))
    assert ev.returncode == 0, ev.stderr
    assert "accuracy 100.00%" in ev.stdout
    pytest.importorskip("PIL")
    from PIL import Image
    img = np.zeros((28, 28), np.uint8)
    img[15:25, 11:15] = 255  # class 7's bar: row 1, column 2
    Image.fromarray(img).save(tmp_path / "seven.png")
    pr = run_cli("predict", str(model), str(tmp_path / "seven.png"), "--top", "1", "--invert", "no")
    assert pr.returncode == 0, pr.stderr
    assert pr.stdout.startswith(f"{tmp_path / 'seven.png'}: {D.FASHION_MNIST_CLASSES[7]}")


def test_cli_unsupported_onnx_is_one_line(tmp_path):
    data = model_bytes([helper.make_node("Cos", ["x"], ["y"], name="odd")], [fin("x", [1, 1, 28, 28])],
                       [fin("y", None)])
    (tmp_path / "bad.onnx").write_bytes(data)
    r = run_cli("evaluate", str(tmp_path / "bad.onnx"))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "pycnn: error: cannot load the model" in r.stderr and "'odd' (Cos)" in r.stderr
