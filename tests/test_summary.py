"""pycnn.summary: layers, output shapes, parameter counts (trainable and frozen) and memory."""
from collections import OrderedDict

import numpy as np
import pytest

import pycnn
from pycnn import nn
from pycnn.models import fashion_mnist_cnn


def test_fashion_mnist_cnn_summary(capsys):
    pycnn.manual_seed(0)
    model = fashion_mnist_cnn()
    s = pycnn.summary(model, (1, 28, 28))
    printed = capsys.readouterr().out
    assert printed.strip() == str(s)
    assert [(r.name, r.type, r.output_shape, r.params) for r in s.rows] == [
        ("0", "Conv2d", (None, 32, 28, 28), 320),
        ("1", "ReLU", (None, 32, 28, 28), 0),
        ("2", "MaxPool2d", (None, 32, 14, 14), 0),
        ("3", "Conv2d", (None, 64, 14, 14), 18496),
        ("4", "ReLU", (None, 64, 14, 14), 0),
        ("5", "MaxPool2d", (None, 64, 7, 7), 0),
        ("6", "Flatten", (None, 3136), 0),
        ("7", "Linear", (None, 128), 401536),
        ("8", "ReLU", (None, 128), 0),
        ("9", "Linear", (None, 10), 1290),
    ]
    assert s.total_params == s.trainable_params == 421642 and s.frozen_params == 0
    assert s.param_bytes == 421642 * 4 and s.buffer_bytes == 0
    acts = (32 * 28 * 28 * 2 + 32 * 14 * 14 + 64 * 14 * 14 * 2 + 64 * 7 * 7 * 2 + 128 * 2 + 10) * 4
    assert s.activation_bytes == acts
    for text in ("0 (Conv2d)", "(N, 32, 28, 28)", "401,536", "Total params: 421,642",
                 "Trainable params: 421,642", "Frozen params: 0", "Parameter memory: 1.61 MiB"):
        assert text in printed, text


def test_frozen_counts_and_marks():
    pycnn.manual_seed(0)
    model = fashion_mnist_cnn()
    model[0].freeze()
    model[7].bias.requires_grad = False
    s = pycnn.summary(model, (1, 28, 28), print_fn=None)
    assert s.frozen_params == 320 + 128
    assert s.trainable_params == 421642 - 448
    rows = {r.name: r for r in s.rows}
    assert rows["0"].trainable == 0 and rows["7"].trainable == 401536 - 128
    text = str(s)
    assert "320 frozen" in text and "401,536 (128 frozen)" in text and "Frozen params: 448" in text


def test_nested_containers_are_indented_with_totals():
    pycnn.manual_seed(0)
    model = nn.Sequential(OrderedDict([
        ("features", nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))),
        ("head", nn.Sequential(nn.Flatten(), nn.Linear(8 * 4 * 4, 5))),
    ]))
    s = pycnn.summary(model, (3, 8, 8), print_fn=None)
    names = [r.name for r in s.rows]
    assert names == ["features", "features.0", "features.1", "features.2", "head", "head.0", "head.1"]
    rows = {r.name: r for r in s.rows}
    assert rows["features"].params == 3 * 8 * 9 + 8 and not rows["features"].is_leaf
    assert rows["features"].output_shape == (None, 8, 4, 4)
    assert rows["head"].output_shape == (None, 5)
    assert "  features.0 (Conv2d)" in str(s)
    assert s.total_params == 224 + 128 * 5 + 5


def test_summary_restores_mode_and_keeps_outputs_unchanged():
    pycnn.manual_seed(0)
    model = fashion_mnist_cnn()
    model.train()
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    model.eval()
    before = model(x)
    model.train()
    pycnn.summary(model, (1, 28, 28), print_fn=None)
    assert model.training and all(m.training for m in model.modules())
    assert all("forward" not in m.__dict__ for m in model.modules())  # the recording hooks are gone
    model.eval()
    np.testing.assert_array_equal(model(x), before)  # fused path again, same numbers


def test_a_wrong_input_shape_names_the_layer():
    pycnn.manual_seed(0)
    model = fashion_mnist_cnn()
    with pytest.raises(ValueError, match=r"layer 7 \(Linear\) failed on an input of shape \(1, 4096\)"):
        pycnn.summary(model, (1, 32, 32), print_fn=None)
    with pytest.raises(ValueError, match="batch"):
        pycnn.summary(model, (0, 28, 28), print_fn=None)


def test_a_single_layer():
    pycnn.manual_seed(0)
    s = pycnn.summary(nn.Linear(4, 3), (4,), print_fn=None)
    assert len(s.rows) == 1 and s.rows[0].output_shape == (None, 3) and s.total_params == 15
