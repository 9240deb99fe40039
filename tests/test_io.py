"""pycnn.save / pycnn.load: exact round trips, the JSON architecture, and refusing unsafe files."""
import json
import os
import pickle
import subprocess
import sys
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import pycnn
from pycnn import io, nn
from pycnn.models import fashion_mnist_cnn
from pycnn.nn.module import register_module, registered_modules


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def outputs(model, x):
    model.eval()
    return model(x)


def roundtrip(model, tmp_path, name="model.npz", **kw):
    path = tmp_path / name
    pycnn.save(model, path, **kw)
    return pycnn.load(path)


# ---------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------


def test_fashion_mnist_cnn_roundtrip_is_bitwise_exact(tmp_path):
    pycnn.manual_seed(0)
    model = fashion_mnist_cnn()
    x = rand(5, 1, 28, 28)
    loaded = roundtrip(model, tmp_path)
    assert type(loaded) is nn.Sequential and repr(loaded) == repr(model)
    np.testing.assert_array_equal(outputs(loaded, x), outputs(model, x))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[k], v)
        assert loaded.state_dict()[k].dtype == v.dtype


def test_every_layer_type_roundtrips(tmp_path):
    pycnn.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(3, 6, (3, 5), stride=(1, 2), padding=(1, 2), dilation=1, groups=3,
                  bias=False, algo="direct"),
        nn.LeakyReLU(0.2),
        nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False),
        nn.Conv2d(6, 4, 3, padding="same"),
        nn.Tanh(),
        nn.MaxPool2d((2, 2)),
        nn.AdaptiveAvgPool2d((3, None)),
        nn.Sigmoid(),
        nn.Flatten(1, -1),
        nn.Linear(4 * 3 * 3, 7, bias=False),
        nn.ReLU(),
        nn.Linear(7, 2),
    )
    x = rand(2, 3, 9, 9)
    loaded = roundtrip(model, tmp_path)
    assert repr(loaded) == repr(model)
    np.testing.assert_array_equal(outputs(loaded, x), outputs(model, x))


def test_nested_and_named_sequentials_roundtrip(tmp_path):
    pycnn.manual_seed(2)
    features = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 4, 3)), ("act", nn.ReLU())]))
    model = nn.Sequential(
        features,
        nn.Sequential(nn.Sequential(nn.MaxPool2d(2)), nn.Flatten()),
        nn.Sequential(OrderedDict([("fc", nn.Linear(4 * 3 * 3, 3))])),
    )
    loaded = roundtrip(model, tmp_path)
    assert list(loaded.state_dict()) == ["0.conv.weight", "0.conv.bias", "2.fc.weight", "2.fc.bias"]
    assert repr(loaded) == repr(model)
    x = rand(3, 1, 8, 8)
    np.testing.assert_array_equal(outputs(loaded, x), outputs(model, x))


def test_changed_sequential_is_saved_as_it_is_now(tmp_path):
    """A swapped head, appended and deleted layers: the file holds the current network."""
    pycnn.manual_seed(3)
    model = fashion_mnist_cnn()
    model[-1] = nn.Linear(128, 5)
    model.append(nn.Sigmoid())
    del model[8]  # the ReLU before the head; later layers are renumbered as PyTorch does
    loaded = roundtrip(model, tmp_path)
    assert repr(loaded) == repr(model)
    x = rand(2, 1, 28, 28)
    np.testing.assert_array_equal(outputs(loaded, x), outputs(model, x))


def test_frozen_parameters_and_mode_are_kept(tmp_path):
    pycnn.manual_seed(4)
    model = fashion_mnist_cnn()
    model[0].freeze()
    model[7].weight.requires_grad = False
    model.train()
    loaded = roundtrip(model, tmp_path)
    assert [n for n, p in loaded.named_parameters() if not p.requires_grad] == ["0.weight", "0.bias", "7.weight"]
    assert loaded.training is True
    model.eval()
    assert roundtrip(model, tmp_path, "eval.npz").training is False


@register_module
class Scale(nn.Module):
    """A custom layer with keyword-only and tuple arguments (registered above)."""

    def __init__(self, factor: float = 2.0, *, shift=(0.0,)):
        super().__init__()
        self.factor = factor
        self.shift = shift

    def forward(self, x):
        self.save_for_backward()
        return (x * self.factor + self.shift[0]).astype(np.float32)

    def backward(self, grad_output, input_grad=True):
        self.saved()
        return grad_output * self.factor if input_grad else None


@register_module
class Skip(nn.Module):
    """A residual container taking modules as constructor arguments, as nn.Residual does."""

    def __init__(self, body, shortcut=None, relu: bool = True):
        super().__init__()
        self.body = body
        if shortcut is None:
            self.add_module("shortcut", None)
        else:
            self.shortcut = shortcut
        self.relu = relu

    def forward(self, x):
        y = self.body(x) + (x if self.shortcut is None else self.shortcut(x))
        return np.maximum(y, 0) if self.relu else y


@register_module
class Counter(nn.Module):
    """A layer with buffers as BatchNorm has: a float running mean and a 0-d int64 counter."""

    def __init__(self, features: int):
        super().__init__()
        self.register_buffer("running_mean", np.zeros(features, np.float32))
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        self.register_buffer("scratch", np.zeros(3, np.float32), persistent=False)

    def forward(self, x):
        if self.training:
            self.running_mean += x.mean(axis=(0, 2, 3))
            self.num_batches_tracked += 1
        return x - self.running_mean[None, :, None, None]


def test_buffers_keep_their_shapes_and_dtypes(tmp_path):
    pycnn.manual_seed(12)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), Counter(3))
    model.train()
    for seed in range(3):
        model(rand(2, 1, 6, 6, seed=seed))
    loaded = roundtrip(model, tmp_path)
    sd = loaded.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.running_mean", "1.num_batches_tracked"]
    assert sd["1.num_batches_tracked"].shape == () and sd["1.num_batches_tracked"].dtype == np.int64
    assert int(sd["1.num_batches_tracked"]) == 3
    np.testing.assert_array_equal(sd["1.running_mean"], model.state_dict()["1.running_mean"])
    x = rand(2, 1, 6, 6, seed=9)
    np.testing.assert_array_equal(outputs(loaded, x), outputs(model, x))


def test_custom_and_residual_layers_roundtrip(tmp_path):
    pycnn.manual_seed(5)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        Skip(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))),
        Skip(nn.Conv2d(4, 8, 1), shortcut=nn.Conv2d(4, 8, 1, bias=False), relu=False),
        Scale(0.5, shift=(1.0,)),
        nn.Flatten(),
    )
    spec = json.loads(io.to_json(model))
    skip = spec["children"][1][1]
    assert skip["config"] == {"body": {"$child": "body"}, "shortcut": None, "relu": True}
    assert spec["children"][3][1]["config"] == {"factor": 0.5, "shift": {"$tuple": [1.0]}}
    loaded = roundtrip(model, tmp_path)
    assert list(loaded.state_dict()) == list(model.state_dict())
    assert loaded[3].shift == (1.0,) and loaded[1].shortcut is None
    x = rand(2, 2, 5, 5)
    np.testing.assert_array_equal(outputs(loaded, x), outputs(model, x))
    # A child replaced after construction is saved as it is now.
    model[2].body = nn.Conv2d(4, 8, 3, padding=1)
    loaded = roundtrip(model, tmp_path, "swapped.npz")
    assert loaded[2].body.kernel_size == (3, 3)
    np.testing.assert_array_equal(outputs(loaded, x), outputs(model, x))


def test_a_saved_resnet_loads_in_a_process_that_imported_only_pycnn(tmp_path):
    """ResNet is defined in pycnn.models and saved under its registry name "ResNet"; pycnn.load finds it."""
    pycnn.manual_seed(9)
    model = nn.resnet8(num_classes=3, width=2)  # the nn alias of pycnn.models.resnet.resnet8
    path = tmp_path / "resnet.npz"
    pycnn.save(model, path)
    assert io.to_json(model).startswith(  # what files written before the move say too
        '{"type": "ResNet", "config": {"depth": 8, "in_channels": 1, "num_classes": 3, "width": 2, '
        '"zero_init_residual": false}, "children": [["conv1", {"type": "Conv2d", ')
    x = rand(2, 1, 12, 12)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", outputs(model, x))
    code = (
        "import sys\n"
        "import numpy as np\n"
        "import pycnn\n"
        "model = pycnn.load(sys.argv[1] + '/resnet.npz')\n"
        "assert type(model).__module__ + '.' + type(model).__name__ == 'pycnn.models.resnet.ResNet'\n"
        "y = model.eval()(np.load(sys.argv[1] + '/x.npy'))\n"
        "np.testing.assert_array_equal(y, np.load(sys.argv[1] + '/y.npy'))\n"
    )
    # cwd: a temporary directory, so no stray file in the checkout can shadow a module.
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr


def test_load_leaves_the_random_generator_alone(tmp_path):
    pycnn.manual_seed(6)
    model = fashion_mnist_cnn()
    pycnn.save(model, tmp_path / "m.npz")
    pycnn.manual_seed(7)
    expected = pycnn._random.generator().random(3)
    pycnn.manual_seed(7)
    pycnn.load(tmp_path / "m.npz")
    io.from_json(io.to_json(model))
    np.testing.assert_array_equal(pycnn._random.generator().random(3), expected)


def test_json_and_weights_alone(tmp_path):
    pycnn.manual_seed(8)
    model = fashion_mnist_cnn(num_classes=4)
    fresh = io.from_json(io.to_json(model, indent=1))
    assert repr(fresh) == repr(model)
    assert fresh[-1].out_features == 4
    io.save_weights(model, tmp_path / "w.npz")
    io.load_weights(fresh, tmp_path / "w.npz")
    x = rand(2, 1, 28, 28)
    np.testing.assert_array_equal(outputs(fresh, x), outputs(model, x))
    # a weights-only file is a plain npz of the state dict (np.load reads it without pickle)
    with np.load(tmp_path / "w.npz", allow_pickle=False) as z:
        assert sorted(z.files) == sorted(model.state_dict())
    # and pycnn.load says what it is
    with pytest.raises(ValueError, match="load_weights"):
        pycnn.load(tmp_path / "w.npz")
    # a full model file also gives its weights to load_weights
    pycnn.save(model, tmp_path / "m.npz")
    io.load_weights(fresh, tmp_path / "m.npz")


def test_file_layout_and_metadata(tmp_path):
    pycnn.manual_seed(9)
    model = fashion_mnist_cnn()
    path = tmp_path / "model.pycnn"  # written exactly where asked, no suffix added
    pycnn.save(model, path, metadata={"input_shape": [1, 28, 28], "note": "hi"})
    assert path.is_file() and not list(tmp_path.glob("*.tmp*"))
    assert io.read_metadata(path) == {"input_shape": [1, 28, 28], "note": "hi"}
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names[0] == "__pycnn__.npy" and "0.weight.npy" in names
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["__pycnn__"].tobytes())
    assert meta["format"] == io.FORMAT and meta["format_version"] == io.FORMAT_VERSION
    assert meta["architecture"]["type"] == "Sequential"
    conv = meta["architecture"]["children"][0][1]
    assert conv == {"type": "Conv2d", "children": [], "config": {
        "in_channels": 1, "out_channels": 32, "kernel_size": 3, "stride": 1, "padding": 1, "dilation": 1,
        "groups": 1, "bias": True, "algo": "auto"}}
    with pytest.raises(TypeError, match="JSON"):
        pycnn.save(model, tmp_path / "bad.npz", metadata={"f": print})
    assert not (tmp_path / "bad.npz").exists()


# ---------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------


def write_zip(path, entries):
    """An .npz whose members are (name, array, allow_pickle)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, array, allow_pickle in entries:
            with zf.open(name + ".npy", "w") as f:
                np.lib.format.write_array(f, array, allow_pickle=allow_pickle)


def meta_array(architecture, **extra):
    meta = {"format": io.FORMAT, "format_version": 1, "architecture": architecture, **extra}
    return np.frombuffer(json.dumps(meta).encode(), np.uint8)


class Boom:
    """Unpickling this would run code."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_pickled_object_in_the_file_is_refused(tmp_path, monkeypatch):
    pycnn.manual_seed(10)
    model = nn.Sequential(nn.Linear(2, 2))
    arch = json.loads(io.to_json(model))
    evil = np.empty(1, dtype=object)
    evil[0] = Boom()
    path = tmp_path / "evil.npz"
    write_zip(path, [("__pycnn__", meta_array(arch), False), ("0.weight", evil, True),
                     ("0.bias", np.zeros(2, np.float32), False)])
    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    with pytest.raises(ValueError, match="refusing to load.*pickled"):
        pycnn.load(path)
    with pytest.raises(ValueError, match="refusing to load.*pickled"):
        io.load_weights(model, path)
    assert called == []  # nothing was unpickled


def test_a_pickle_file_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Boom()))
    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    with pytest.raises(ValueError, match="refusing to load.*pickled"):
        pycnn.load(path)
    assert called == []


@pytest.mark.parametrize("arch, match", [
    ({"type": "system", "config": {"command": "echo hi"}}, "unknown layer type 'system'"),
    ({"type": "os.system"}, "unknown layer type"),
    ({"type": "Linear", "config": {"in_features": 2, "out_features": 2, "evil": 1}}, "no constructor argument"),
    ({"type": "Linear", "config": {"in_features": {"$eval": "1"}, "out_features": 2}}, "unknown or malformed tag"),
    ({"type": "Linear", "config": {"in_features": "x", "out_features": 2}}, "cannot construct Linear"),
    ({"type": "Sequential", "children": [["0", {"type": "Boom"}]]}, "unknown layer type 'Boom'"),
    ({"type": "Sequential", "children": "nope"}, "children must be"),
    ("Sequential", "expected a layer"),
])
def test_architectures_naming_anything_else_are_refused(tmp_path, arch, match):
    path = tmp_path / "m.npz"
    write_zip(path, [("__pycnn__", meta_array(arch), False)])
    with pytest.raises(ValueError, match=match):
        pycnn.load(path)


def test_other_bad_files(tmp_path):
    pycnn.manual_seed(11)
    model = nn.Sequential(nn.Linear(3, 2))
    arch = json.loads(io.to_json(model))
    p = tmp_path / "new.npz"
    write_zip(p, [("__pycnn__", meta_array(arch, format_version=99), False)])
    with pytest.raises(ValueError, match="upgrade pycnn"):
        pycnn.load(p)
    p = tmp_path / "shape.npz"
    write_zip(p, [("__pycnn__", meta_array(arch), False), ("0.weight", np.zeros((2, 4), np.float32), False),
                  ("0.bias", np.zeros(2, np.float32), False)])
    with pytest.raises(ValueError, match="do not fit"):
        pycnn.load(p)
    p = tmp_path / "text.npz"
    p.write_text("not a zip")
    with pytest.raises(ValueError):
        pycnn.load(p)
    p = tmp_path / "single.npy"
    np.save(p, np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        pycnn.load(p)
    with pytest.raises(FileNotFoundError):
        pycnn.load(tmp_path / "missing.npz")


def test_saving_unregistered_layers_fails_clearly(tmp_path):
    class Mine(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="not a registered layer.*register_module"):
        pycnn.save(nn.Sequential(nn.ReLU(), Mine()), tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()

    class WithArray(nn.Module):
        def __init__(self, table):
            super().__init__()

    register_module(WithArray, name="test_io.WithArray")
    with pytest.raises(TypeError, match="cannot be saved as JSON"):
        pycnn.save(WithArray(np.zeros(3)), tmp_path / "m.npz")


def test_registry():
    reg = registered_modules()
    for name in ("Sequential", "Conv2d", "Linear", "Flatten", "ReLU", "LeakyReLU", "Sigmoid", "Tanh",
                 "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"):
        assert reg[name] is getattr(nn, name), name
    assert not any(name.startswith("_") for name in reg)  # private bases are not constructible
    assert reg["Scale"] is Scale

    class Scale2(nn.Module):
        pass

    with pytest.raises(ValueError, match="already taken"):
        register_module(Scale2, name="Scale")
    with pytest.raises(TypeError):
        register_module(int)


def test_get_config_records_constructor_arguments():
    conv = nn.Conv2d(1, 2, 3, padding=(1, 0))
    assert conv.get_config() == {"in_channels": 1, "out_channels": 2, "kernel_size": 3, "stride": 1,
                                 "padding": (1, 0), "dilation": 1, "groups": 1, "bias": True, "algo": "auto"}
    assert nn.MaxPool2d(2).get_config() == {"kernel_size": 2, "stride": None, "padding": 0}
    assert nn.AvgPool2d(3, count_include_pad=False).get_config()["count_include_pad"] is False
    assert nn.ReLU().get_config() == {}
    rebuilt = type(conv)(**conv.get_config())
    assert repr(rebuilt) == repr(conv)
