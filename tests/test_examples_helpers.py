"""The examples' own helpers, on tiny synthetic data (no network, no real data set, < 1 s):
the UCR .ts parser and 1-NN baseline of the time-series example, the augmentation and the
model builders of the Fashion-MNIST examples."""
from __future__ import annotations

import fashion_mnist_bn_cnn
import numpy as np
import pytest
import timeseries_conv1d as ts
from _loop import evaluate, flip_and_shift, train_epoch

import pycnn
from pycnn import nn


def test_read_ts_and_one_nn(tmp_path):
    p = tmp_path / "Toy_TRAIN.ts"
    p.write_text("# comment\n@problemName Toy\n@univariate true\n@classLabel true a b\n@data\n"
                 "1.0,2.0,3.0:a\n3.0,2.0,1.0:b\n1.5,2.5,3.5:a\n")
    x, labels = ts.read_ts(p)
    assert x.shape == (3, 3) and x.dtype == np.float32 and labels == ["a", "b", "a"]
    pred = ts.one_nn_euclidean(x[:2, None, :], np.array([0, 1]), np.array([[[1.1, 2.0, 2.9]], [[2.9, 2.1, 1.0]]]))
    assert pred.tolist() == [0, 1]
    (tmp_path / "Bad.ts").write_text("@data\n1,2:a:b\n")
    with pytest.raises(ValueError, match="univariate"):
        ts.read_ts(tmp_path / "Bad.ts")


def test_augmentation_keeps_shape_and_content(rng=np.random.default_rng(0)):
    x = rng.random((6, 1, 28, 28)).astype(np.float32)
    y = flip_and_shift(x, rng)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.allclose(flip_and_shift(x, rng, max_shift=0).sum(axis=(1, 2, 3)), x.sum(axis=(1, 2, 3)), rtol=1e-5)


def test_example_models_train_a_step():
    pycnn.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    from pycnn import optim

    for model in (fashion_mnist_bn_cnn.bn_cnn(), nn.resnet8(width=4)):
        opt = optim.Adam(model.parameters())
        loss, acc, _ = train_epoch(model, nn.CrossEntropyLoss(), opt, x, y, 8, rng, flip_and_shift)
        assert np.isfinite(loss) and 0 <= acc <= 1
        assert 0 <= evaluate(model, x, y, batch_size=8) <= 1
    fcn = ts.fcn(3, width=4)
    out = fcn(rng.standard_normal((2, 1, 50)).astype(np.float32))
    assert out.shape == (2, 3)
