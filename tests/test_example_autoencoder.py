"""examples/fashion_mnist_autoencoder.py: both decoders train on tiny synthetic data (< 2 s), and the
script runs end to end on a small subset of Fashion-MNIST when the data set is installed."""
from __future__ import annotations

import fashion_mnist_autoencoder as ae
import numpy as np
import pytest

import pycnn
from pycnn import data, optim


@pytest.fixture
def one_thread():
    """Tiny batches: one thread (on a machine shared with other work, waking a second thread for each of
    the hundreds of small kernel calls can cost a scheduler time slice each)."""
    old = pycnn.get_num_threads()
    pycnn.set_num_threads(1)
    yield
    pycnn.set_num_threads(old)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("decoder", ["transpose", "upsample"])
def test_autoencoder_learns_to_reconstruct(decoder, tmp_path):
    pycnn.manual_seed(0)
    rng = np.random.default_rng(0)
    # Smooth blobs (a few bright squares): structure an autoencoder can learn in a few steps.
    x = np.zeros((32, 1, 28, 28), np.float32)
    for img in x:
        for r, c in rng.integers(0, 20, (3, 2)):
            img[0, r:r + 8, c:c + 8] = 1.0
    model = ae.autoencoder(decoder, latent_channels=4)
    y = model(x)
    assert y.shape == x.shape and 0 < y.min() and y.max() < 1  # Sigmoid output
    opt = optim.Adam(model.parameters(), lr=5e-3)
    before = ae.reconstruction_mse(model, x)
    for _ in range(8):
        ae.train_epoch(model, opt, x, 8, rng)
    after = ae.reconstruction_mse(model, x)
    assert after < 0.8 * before, (before, after)
    path = ae.plot_reconstructions(model, x, str(tmp_path / "r.png"), n=4)
    if path is not None:  # matplotlib installed
        assert (tmp_path / "r.png").stat().st_size > 0


def test_autoencoder_rejects_an_unknown_decoder():
    with pytest.raises(ValueError, match="decoder must be"):
        ae.autoencoder("bicubic")


@pytest.mark.usefixtures("one_thread")
def test_autoencoder_script_on_a_fashion_mnist_subset(capsys):
    if data.find_fashion_mnist() is None:
        pytest.skip("Fashion-MNIST is not installed (sudo apt-get install dataset-fashion-mnist, or set PYCNN_DATA)")
    mse = ae.main(["--epochs", "1", "--limit", "256", "--test-limit", "200", "--batch-size", "64", "--threads", "1"])
    out = capsys.readouterr().out
    assert np.isfinite(mse) and 0 < mse < 0.5
    assert "baseline MSE" in out and "test MSE" in out
