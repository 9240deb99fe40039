"""pycnn.onnx.export: every layer and preset, checked by running the written file.

Each exported model must pass ``onnx.checker.check_model(full_check=True)``
and give pycnn's own eval-mode output, within a relative error of 1e-5
(largest difference over the largest output magnitude), in two independent
runtimes: ONNX Runtime and onnx's reference evaluator (NumPy), at batch
sizes 1 and 3 (the batch dimension is symbolic). The expected values are
pycnn's forward, which the other test files check against the NumPy oracle
and PyTorch.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx.reference import ReferenceEvaluator  # noqa: E402

import pycnn  # noqa: E402
from pycnn import nn  # noqa: E402
from pycnn.models import PRESETS  # noqa: E402
from pycnn.onnx import export  # noqa: E402
from pycnn.onnx.exporter import UnsupportedModuleError  # noqa: E402

RTOL = 1e-5


def _randomise_batch_norms(model):
    """Running statistics and affine parameters far from the defaults, so a BatchNorm exported wrong shows."""
    rng = np.random.default_rng(1)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) and m.track_running_stats:
            m.running_mean[:] = rng.normal(0, 0.5, m.num_features)
            m.running_var[:] = rng.uniform(0.3, 2.0, m.num_features)
            if m.weight is not None:
                m.weight.data[:] = rng.uniform(0.5, 1.5, m.num_features)
                m.bias.data[:] = rng.normal(0, 0.3, m.num_features)
    model.eval()  # (the in-place writes: drop what eval mode prepared)


def _rel_err(got, want):
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))


def check_export(model, tmp_path, input_shape=None, opset=17, batches=(1, 3), reference=True, **kwargs):
    """Export, check, and compare both runtimes with pycnn at each batch size; returns the ModelProto."""
    path = tmp_path / "model.onnx"
    proto = export(model, path, input_shape, opset=opset, **kwargs)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert [o.domain for o in proto.opset_import] == [""] and proto.opset_import[0].version == opset
    shapes = ([tuple(s[1:]) for s in model.input_shapes] if input_shape is None
              else [tuple(s) for s in input_shape] if isinstance(input_shape[0], (tuple, list))
              else [tuple(input_shape)])
    names = [i.name for i in proto.graph.input]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    evaluator = ReferenceEvaluator(proto) if reference and _reference_can_run(model) else None
    training = model.training
    rng = np.random.default_rng(0)
    for n in batches:
        xs = [rng.standard_normal((n,) + s).astype(np.float32) for s in shapes]
        model.eval()
        want = model(*xs)
        model.train(training)
        want = list(want) if isinstance(want, tuple) else [want]
        feeds = dict(zip(names, xs))
        runs = [("onnxruntime", session.run(None, feeds))]
        if evaluator is not None:
            runs.append(("reference", evaluator.run(None, feeds)))
        for runtime, got in runs:
            assert len(got) == len(want)
            for g, w in zip(got, want):
                assert g.shape == w.shape, (runtime, n)
                assert _rel_err(g, w) < RTOL, (runtime, n, _rel_err(g, w))
    return proto


def _reference_can_run(model):
    # onnx.reference's ConvTranspose does not implement group > 1 (it fails reshaping the weight):
    # ONNX Runtime alone checks those.
    return not any(isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d)) and m.groups > 1
                   for m in model.modules())


def _ops(proto):
    return [n.op_type for n in proto.graph.node]


# ---------------------------------------------------------------------------------------------- presets
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_exports(name, tmp_path):
    pycnn.manual_seed(0)
    model = PRESETS[name]()
    _randomise_batch_norms(model)
    # resnet18 at 32x32 (its layout is the same at any size); the others at their 28x28 Fashion-MNIST input.
    shape = (3, 32, 32) if name == "resnet18" else (1, 28, 28)
    proto = check_export(model, tmp_path, shape, reference=name != "resnet18")
    graph_in, graph_out = proto.graph.input[0], proto.graph.output[0]
    assert graph_in.type.tensor_type.shape.dim[0].dim_param == "N"
    assert graph_out.type.tensor_type.shape.dim[0].dim_param == "N"
    # Weights are initializers, once each; dropout leaves no node.
    assert sum(int(np.prod(t.dims)) for t in proto.graph.initializer) >= sum(p.data.size for p in model.parameters())
    assert "Dropout" not in _ops(proto)


def test_resnet18_reference_evaluator_agrees(tmp_path):
    # ONNX Runtime ran it above; the NumPy reference evaluator on one small batch.
    pycnn.manual_seed(0)
    model = PRESETS["resnet18"](num_classes=5)
    _randomise_batch_norms(model)
    check_export(model, tmp_path, (3, 32, 32), batches=(1,))


# ---------------------------------------------------------------------------------------------- layers
LAYERS_2D = {
    "conv_strided_dilated_grouped": (lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1),
                                                       groups=2, bias=False), (4, 9, 8)),
    "conv_same_even_kernel": (lambda: nn.Conv2d(3, 5, 4, padding="same", dilation=2), (3, 9, 7)),
    "conv_valid": (lambda: nn.Conv2d(3, 4, (2, 3), padding="valid"), (3, 6, 7)),
    "conv_depthwise": (lambda: nn.Conv2d(4, 8, 3, padding=1, groups=4), (4, 5, 5)),
    "conv1d": (lambda: nn.Conv1d(4, 6, 3, stride=2, padding=3, dilation=2, groups=2), (4, 17)),
    "conv1d_same": (lambda: nn.Conv1d(3, 4, 4, padding="same", bias=False), (3, 11)),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0),
                                                    output_padding=(1, 2), groups=2), (4, 5, 4)),
    "conv_transpose2d_dilated": (lambda: nn.ConvTranspose2d(3, 2, 3, stride=1, padding=1, dilation=2,
                                                            output_padding=1, bias=False), (3, 4, 5)),
    "conv_transpose2d_output_padding_past_padding": (lambda: nn.ConvTranspose2d(2, 3, 2, stride=1, padding=(0, 1),
                                                                                dilation=3, output_padding=2),
                                                     (2, 4, 5)),
    "conv_transpose1d": (lambda: nn.ConvTranspose1d(4, 2, 4, stride=3, padding=1, output_padding=2, groups=2),
                         (4, 7)),
    "batch_norm2d": (lambda: nn.BatchNorm2d(3, eps=1e-3), (3, 4, 5)),
    "batch_norm2d_not_affine": (lambda: nn.BatchNorm2d(3, affine=False), (3, 4, 5)),
    "batch_norm1d_dense": (lambda: nn.BatchNorm1d(6), (6,)),
    "batch_norm1d_sequence": (lambda: nn.BatchNorm1d(3, eps=0.1), (3, 10)),
    "relu": (nn.ReLU, (3, 4, 5)),
    "leaky_relu": (lambda: nn.LeakyReLU(0.2), (3, 4, 5)),
    "elu": (lambda: nn.ELU(0.7), (3, 4, 5)),
    "gelu": (nn.GELU, (3, 4, 5)),
    "gelu_tanh": (lambda: nn.GELU("tanh"), (3, 4, 5)),
    "sigmoid": (nn.Sigmoid, (2, 7)),
    "tanh": (nn.Tanh, (2, 7)),
    "softmax_channels": (lambda: nn.Softmax(dim=1), (5, 3, 2)),
    "softmax_last": (lambda: nn.Softmax(dim=-1), (3, 6)),
    "softmax_legacy_dim": (nn.Softmax, (4, 3)),  # dim=None on 3-D input: axis 0, the batch
    "max_pool2d": (lambda: nn.MaxPool2d(3, stride=2, padding=1), (2, 9, 8)),
    "max_pool2d_rectangular": (lambda: nn.MaxPool2d((2, 3), stride=(1, 2)), (2, 6, 9)),
    "max_pool1d": (lambda: nn.MaxPool1d(3, stride=2, padding=1), (2, 10)),
    "avg_pool2d_pad_counted": (lambda: nn.AvgPool2d(3, stride=2, padding=1), (2, 7, 8)),
    "avg_pool2d_pad_not_counted": (lambda: nn.AvgPool2d((3, 2), stride=(2, 1), padding=(1, 1),
                                                        count_include_pad=False), (2, 7, 8)),
    "avg_pool1d": (lambda: nn.AvgPool1d(4, stride=3, padding=2, count_include_pad=False), (2, 13)),
    "adaptive_avg_pool2d_global": (lambda: nn.AdaptiveAvgPool2d(1), (3, 5, 7)),
    "adaptive_avg_pool2d_divisible": (lambda: nn.AdaptiveAvgPool2d((2, None)), (3, 8, 6)),
    "adaptive_avg_pool1d": (lambda: nn.AdaptiveAvgPool1d(4), (3, 12)),
    "upsample_nearest_factor": (lambda: nn.Upsample(scale_factor=2), (2, 3, 4)),
    "upsample_nearest_size": (lambda: nn.Upsample(size=(7, 10)), (2, 4, 3)),
    "upsample_nearest_downsize": (lambda: nn.Upsample(size=(3, 2)), (2, 7, 5)),
    "upsample_nearest_exact": (lambda: nn.Upsample(size=(7, 5), mode="nearest-exact"), (2, 4, 3)),
    "upsample_bilinear": (lambda: nn.Upsample(scale_factor=1.5, mode="bilinear"), (2, 4, 5)),
    "upsample_bilinear_align_corners": (lambda: nn.Upsample(size=(9, 6), mode="bilinear", align_corners=True),
                                        (2, 4, 5)),
    "upsample_bilinear_recomputed": (lambda: nn.Upsample(scale_factor=(1.7, 2.3), mode="bilinear",
                                                         recompute_scale_factor=True), (2, 4, 5)),
    # Factors whose output sizes are rounded down: ONNX Runtime's half-pixel map would differ from pycnn's.
    "upsample_nearest_rounded_factor": (lambda: nn.Upsample(scale_factor=1.7), (2, 3, 5)),
    "upsample_nearest_exact_rounded_factor": (lambda: nn.Upsample(scale_factor=1.3, mode="nearest-exact"), (2, 3, 5)),
    "upsample_bilinear_rounded_factors": (lambda: nn.Upsample(scale_factor=(0.7, 1.3), mode="bilinear"), (2, 8, 6)),
    "upsample_linear_rounded_factor": (lambda: nn.Upsample(scale_factor=1.3, mode="linear"), (2, 6)),
    "upsample_linear": (lambda: nn.Upsample(scale_factor=2.5, mode="linear"), (3, 6)),
    "upsample_nearest_1d": (lambda: nn.Upsample(size=11), (3, 4)),
    "linear": (lambda: nn.Linear(7, 5), (7,)),
    "linear_no_bias": (lambda: nn.Linear(7, 3, bias=False), (7,)),
    "flatten": (nn.Flatten, (2, 3, 4)),
    "flatten_trailing": (lambda: nn.Flatten(start_dim=2), (2, 3, 4)),
    "flatten_middle": (lambda: nn.Flatten(1, 2), (2, 3, 4)),
    "dropout_alone": (lambda: nn.Dropout(0.5), (3, 4)),
    "dropout2d_in_sequence": (lambda: nn.Sequential(nn.Conv2d(2, 3, 1), nn.Dropout2d(0.3), nn.ReLU()), (2, 4, 4)),
    "residual_projection": (lambda: nn.Residual(nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=1),
                                                              nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1)),
                                                nn.Conv2d(2, 4, 1, stride=2), relu=False), (2, 6, 6)),
    "basic_block": (lambda: nn.BasicBlock(3, 5, stride=2), (3, 7, 7)),
    # video (N, C, T, H, W)
    "conv3d": (lambda: nn.Conv3d(4, 6, (3, 2, 3), stride=(1, 2, 1), padding=(1, 0, 2), dilation=(2, 1, 1),
                                 groups=2), (4, 6, 7, 5)),
    "conv3d_same": (lambda: nn.Conv3d(2, 3, (2, 3, 3), padding="same", bias=False), (2, 4, 5, 6)),
    "conv2plus1d": (lambda: nn.Conv2Plus1d(3, 4, stride=(2, 1, 2)), (3, 5, 6, 7)),
    "batch_norm3d": (lambda: nn.BatchNorm3d(3, eps=1e-3), (3, 2, 4, 5)),
    "max_pool3d": (lambda: nn.MaxPool3d((2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)), (2, 4, 7, 6)),
    "max_pool3d_ceil": (lambda: nn.MaxPool3d(2, stride=2, ceil_mode=True), (2, 5, 7, 6)),
    "avg_pool3d_ceil": (lambda: nn.AvgPool3d((1, 3, 3), stride=2, padding=(0, 1, 1), ceil_mode=True), (2, 5, 8, 7)),
    "max_pool3d_dilated": (lambda: nn.MaxPool3d(2, stride=1, dilation=(1, 2, 2)), (2, 3, 6, 7)),
    "avg_pool3d_pad_not_counted": (lambda: nn.AvgPool3d(3, stride=2, padding=1, count_include_pad=False),
                                   (2, 5, 7, 6)),
    "adaptive_avg_pool3d_global": (lambda: nn.AdaptiveAvgPool3d(1), (3, 4, 5, 6)),
    "adaptive_avg_pool3d_divisible": (lambda: nn.AdaptiveAvgPool3d((2, None, 3)), (3, 4, 5, 6)),
    "dropout3d_in_sequence": (lambda: nn.Sequential(nn.Conv3d(2, 3, 1), nn.Dropout3d(0.3), nn.ReLU()), (2, 3, 4, 4)),
}


@pytest.mark.parametrize("name", sorted(LAYERS_2D))
def test_every_layer_exports(name, tmp_path):
    make, shape = LAYERS_2D[name]
    pycnn.manual_seed(0)
    model = make()
    _randomise_batch_norms(model)
    proto = check_export(model, tmp_path, shape)
    if name.startswith("dropout"):
        assert "Dropout" not in _ops(proto)


def test_every_layer_class_has_a_converter():
    from pycnn.nn.registry import registered_modules
    from pycnn.onnx.exporter import converter_for

    classes = {getattr(nn, n) for n in nn.__all__ if isinstance(getattr(nn, n), type)} | set(registered_modules().values())
    # (other test files register layers of their own: pycnn's only)
    layers = {c for c in classes if issubclass(c, nn.Module) and c.__module__.startswith("pycnn.")}
    layers -= {nn.CrossEntropyLoss, nn.MSELoss, nn.Module}
    assert {c.__name__ for c in layers if converter_for(c) is None} == set()


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_at_opset_20_is_one_node(approximate, tmp_path):
    proto = check_export(nn.GELU(approximate), tmp_path, (3, 5), opset=20)
    assert _ops(proto) == ["Gelu"]


def test_adaptive_pool_with_uneven_windows_is_refused(tmp_path):
    with pytest.raises(UnsupportedModuleError, match="AdaptiveAvgPool2d.*multiple of output_size"):
        export(nn.Sequential(nn.AdaptiveAvgPool2d(3)), tmp_path / "m.onnx", (2, 8, 8))
    assert not (tmp_path / "m.onnx").exists()


# ---------------------------------------------------------------------------------------------- graphs
def test_graph_with_several_inputs_outputs_and_shared_layers(tmp_path):
    pycnn.manual_seed(0)
    a, b = nn.Input((3, 8, 8)), nn.Input((3, 8, 8))
    shared = nn.Conv2d(3, 4, 3, padding=1)  # one layer called on both inputs: its weights are written once
    fa, fb = nn.ReLU()(shared(a)), shared(b)
    total = nn.Add()([fa, fb, fa])
    gated = nn.Multiply()([fa, nn.Sigmoid()(fb)])
    cat = nn.Concat(dim=1)([total, gated, fb])
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 3))
    model = nn.Model([a, b], [head(cat), gated, fa])
    proto = check_export(model, tmp_path, output_names=["logits", "gated", "features"])
    assert [o.name for o in proto.graph.output] == ["logits", "gated", "features"]
    assert [i.name for i in proto.graph.input] == ["input_0", "input_1"]
    weights = [t.name for t in proto.graph.initializer]
    assert sum(name.startswith("conv2d_0.weight") for name in weights) == 1


def test_graph_output_that_is_an_input_or_repeated(tmp_path):
    x = nn.Input((4,))
    y = nn.Tanh()(x)
    model = nn.Model(x, [y, x, y, nn.Dropout()(x)])
    proto = check_export(model, tmp_path)
    assert len(proto.graph.output) == 4


def test_nested_graph(tmp_path):
    pycnn.manual_seed(0)
    u = nn.Input((2, 6))
    inner = nn.Model(u, [nn.Conv1d(2, 3, 3, padding=1)(u), nn.ReLU()(u)])
    x = nn.Input((2, 6))
    p, q = inner(x)
    a, b = nn.Input((3,)), nn.Input((3,))
    pair = nn.Model([a, b], nn.Multiply()([a, b]))  # two inputs, called with one list
    z = nn.Flatten()(nn.AdaptiveAvgPool1d(1)(p))
    model = nn.Model(x, [nn.Concat(1)([p, q, inner(x)[1]]), pair([z, z])])
    check_export(model, tmp_path)


def test_fixed_batch(tmp_path):
    pycnn.manual_seed(0)
    proto = check_export(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()), tmp_path, (1, 5, 5), batches=(1,),
                         dynamic_batch=False)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1


# ---------------------------------------------------------------------------------------------- errors, modes
class Scale(nn.Module):
    def forward(self, x):
        return x * 2


class OwnConv(nn.Conv2d):
    def forward(self, x):
        return super().forward(x) * 2


def test_unsupported_module_is_named(tmp_path):
    with pytest.raises(UnsupportedModuleError, match="no ONNX translation for Scale"):
        export(nn.Sequential(nn.ReLU(), Scale()), tmp_path / "m.onnx", (3,))
    # A subclass that computes something else is not exported as its base class.
    with pytest.raises(UnsupportedModuleError, match="OwnConv"):
        export(OwnConv(1, 1, 1), tmp_path / "m.onnx", (1, 3, 3))


def test_batch_norm_without_running_statistics_is_refused(tmp_path):
    with pytest.raises(UnsupportedModuleError, match="track_running_stats=False"):
        export(nn.BatchNorm2d(2, track_running_stats=False), tmp_path / "m.onnx", (2, 3, 3))


def test_bad_arguments(tmp_path):
    model = nn.ReLU()
    with pytest.raises(TypeError, match="input_shape is required"):
        export(model, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="input_shape"):
        export(model, tmp_path / "m.onnx", (3, 0))
    with pytest.raises(ValueError, match="opset must be an int from 17"):
        export(model, tmp_path / "m.onnx", (3,), opset=13)
    with pytest.raises(TypeError, match="nn.Module"):
        export(object(), tmp_path / "m.onnx", (3,))
    with pytest.raises(ValueError, match="output name 'input'"):
        export(model, tmp_path / "m.onnx", (3,), output_names=["input"])


def test_mode_restored(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5))
    model.train()
    model[1].eval()  # a frozen BatchNorm in a training model: the mixed modes come back as they were
    running_mean = model[1].running_mean.copy()
    export(model, tmp_path / "m.onnx", (1, 5, 5))
    assert [m.training for m in model.modules()] == [True, True, False, True]
    np.testing.assert_array_equal(model[1].running_mean, running_mean)
    model.eval()
    export(model, None, (1, 5, 5))
    assert not any(m.training for m in model.modules())


def test_import_is_lazy_and_names_the_extra():
    code = ("import sys, pycnn; pycnn.onnx; assert 'onnx' not in sys.modules, 'imported onnx';"
            "assert sorted(pycnn.onnx.__all__) == ['export', 'load'] and 'export' in dir(pycnn.onnx);"
            "sys.modules['onnx'] = None\n"
            "try:\n    pycnn.onnx.export\nexcept ImportError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert 'pip install "pycnn[onnx]"' in r.stdout


# ---------------------------------------------------------------------------------------------- command line
def run_cli(*args):
    """``python -m pycnn ARGS`` as a user runs it (outside the checkout, as tests/test_cli.py does)."""
    env = {k: v for k, v in os.environ.items() if k != "PYCNN_DEBUG"}
    return subprocess.run([sys.executable, "-m", "pycnn", *args], cwd=tempfile.gettempdir(), capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, env=env, timeout=300)


def _ort_matches_pycnn(path, model, shape):
    x = np.random.default_rng(0).standard_normal((3,) + shape).astype(np.float32)
    (got,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    model.eval()
    assert _rel_err(got, model(x)) < RTOL


def test_cli_export_reads_the_recorded_input_shape(tmp_path):
    pycnn.manual_seed(0)
    model = PRESETS["fashion_mnist_bn_cnn"]()
    _randomise_batch_norms(model)
    pycnn.save(model, tmp_path / "model.npz", metadata={"input_shape": [1, 28, 28]})
    r = run_cli("export", str(tmp_path / "model.npz"), str(tmp_path / "model.onnx"))
    assert r.returncode == 0, r.stderr
    assert "input (N, 1, 28, 28), opset 17" in r.stdout
    onnx.checker.check_model(str(tmp_path / "model.onnx"), full_check=True)
    _ort_matches_pycnn(tmp_path / "model.onnx", model, (1, 28, 28))


def test_cli_export_input_shape_option_and_graph(tmp_path):
    pycnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    pycnn.save(model, tmp_path / "seq.npz")
    r = run_cli("export", str(tmp_path / "seq.npz"), str(tmp_path / "seq.onnx"))
    assert r.returncode == 1 and r.stderr.startswith("pycnn: error:") and "--input-shape" in r.stderr
    r = run_cli("export", str(tmp_path / "seq.npz"), str(tmp_path / "seq.onnx"), "--input-shape", "3,9,9",
                "--opset", "20")
    assert r.returncode == 0, r.stderr
    assert "Gelu" in [n.op_type for n in onnx.load(str(tmp_path / "seq.onnx")).graph.node]
    _ort_matches_pycnn(tmp_path / "seq.onnx", model, (3, 9, 9))
    # A graph knows its inputs' shapes.
    x = nn.Input((2, 5))
    graph = nn.Model(x, nn.Conv1d(2, 3, 3)(x))
    pycnn.save(graph, tmp_path / "graph.npz")
    r = run_cli("export", str(tmp_path / "graph.npz"), str(tmp_path / "graph.onnx"))
    assert r.returncode == 0, r.stderr
    _ort_matches_pycnn(tmp_path / "graph.onnx", graph, (2, 5))


@pytest.mark.parametrize("args, status, message", [
    (["--input-shape", "3,x"], 2, "expected positive sizes separated by commas"),
    (["--opset", "9"], 1, "opset must be an int from 17"),
])
def test_cli_export_errors(tmp_path, args, status, message):
    pycnn.save(nn.ReLU(), tmp_path / "m.npz")
    r = run_cli("export", str(tmp_path / "m.npz"), str(tmp_path / "m.onnx"), "--input-shape", "3", *args)
    assert r.returncode == status and message in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "m.onnx").exists()
    r = run_cli("export", str(tmp_path / "missing.npz"), str(tmp_path / "m.onnx"))
    assert r.returncode == 1 and "not found" in r.stderr


def test_broadcasting_merge_exports(tmp_path):
    # squeeze-and-excitation: (N, C, H, W) * (N, C, 1, 1), and a broadcast Add; ONNX's Mul and Add broadcast alike
    pycnn.manual_seed(0)
    x = nn.Input((4, 5, 6))
    s = nn.Sigmoid()(nn.Conv2d(4, 4, 1)(nn.AdaptiveAvgPool2d(1)(x)))
    y = nn.Add()([nn.Multiply()([x, s]), nn.Conv2d(4, 4, 1)(s)])
    proto = check_export(nn.Model(x, y), tmp_path)
    assert {"Mul", "Add"} <= set(_ops(proto))
