"""Image batch transforms in pycnn.data: RandomCrop, RandomHorizontalFlip, Normalize, Compose."""
import numpy as np
import pytest

import pycnn
from pycnn import data


@pytest.fixture
def batch():
    return np.random.default_rng(0).random((16, 2, 6, 7), dtype=np.float32)


def test_random_crop_windows_of_the_padded_images(batch):
    crop = data.RandomCrop((6, 7), padding=2, fill=-1.0)
    out = crop(batch, rng=np.random.default_rng(1))
    assert out.shape == batch.shape and out.dtype == batch.dtype
    padded = np.pad(batch, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=-1.0)
    offsets = set()
    for i in range(len(batch)):  # each image is some window of its padded self, same for all channels
        hits = [(dy, dx) for dy in range(5) for dx in range(5)
                if np.array_equal(out[i], padded[i, :, dy:dy + 6, dx:dx + 7])]
        assert hits, i
        offsets.add(hits[0])
    assert len(offsets) > 3  # images get their own offsets
    assert not np.shares_memory(out, batch)


def test_random_crop_smaller_and_eval_mode(batch):
    crop = data.RandomCrop(4)
    out = crop(batch, rng=np.random.default_rng(0))
    assert out.shape == (16, 2, 4, 4)
    centre = crop(batch, training=False)
    np.testing.assert_array_equal(centre, batch[:, :, 1:5, 1:5])
    same = data.RandomCrop((6, 7), padding=3)
    assert same(batch, training=False) is batch  # evaluation: nothing to do
    with pytest.raises(ValueError, match="larger"):
        data.RandomCrop(9)(batch, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="N, C, H, W"):
        crop(batch[0], rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="padding"):
        data.RandomCrop(4, padding=-1)


def test_horizontal_flip(batch):
    out = data.RandomHorizontalFlip(p=1.0)(batch, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(out, batch[..., ::-1])
    np.testing.assert_array_equal(data.RandomHorizontalFlip(p=0.0)(batch, rng=np.random.default_rng(0)), batch)
    big = np.random.default_rng(0).random((2000, 1, 2, 3), dtype=np.float32)
    out = data.RandomHorizontalFlip(0.3)(big, rng=np.random.default_rng(2))
    flipped = np.array([not np.array_equal(o, b) for o, b in zip(out, big)])
    assert 0.25 < flipped.mean() < 0.35
    for o, b, f in zip(out, big, flipped):
        np.testing.assert_array_equal(o, b[..., ::-1] if f else b)
    np.testing.assert_array_equal(data.RandomHorizontalFlip(1.0)(batch, training=False), batch)
    with pytest.raises(ValueError):
        data.RandomHorizontalFlip(1.5)


def test_normalize(batch):
    norm = data.Normalize(mean=(0.5, 0.25), std=(0.5, 2.0))
    out = norm(batch)
    assert out.dtype == np.float32
    expected = (batch - np.array([0.5, 0.25])[None, :, None, None]) / np.array([0.5, 2.0])[None, :, None, None]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_array_equal(norm(batch, training=False), out)  # the same in both modes
    np.testing.assert_allclose(data.Normalize(0.2860, 0.3530)(batch), (batch - 0.2860) / 0.3530, rtol=1e-6)
    with pytest.raises(ValueError, match="3 values for input with 2 channels"):
        data.Normalize((0, 0, 0), 1)(batch)
    with pytest.raises(ValueError, match="std"):
        data.Normalize(0, 0)


def test_compose_is_reproducible_and_leaves_the_input_alone(batch):
    keep = batch.copy()
    aug = data.Compose([data.RandomCrop((6, 7), padding=1), data.RandomHorizontalFlip(), data.Normalize(0.5, 0.5)])
    a = aug(batch, rng=np.random.default_rng(7))
    b = aug(batch, rng=np.random.default_rng(7))
    c = aug(batch, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(batch, keep)
    # rng=None draws from pycnn's generator, so manual_seed makes it repeatable
    pycnn.manual_seed(3)
    d = aug(batch)
    pycnn.manual_seed(3)
    np.testing.assert_array_equal(aug(batch), d)
    # evaluation mode keeps only the deterministic step
    np.testing.assert_allclose(aug(batch, training=False), (batch - 0.5) / 0.5, rtol=1e-6)
    assert "RandomCrop" in repr(aug)
