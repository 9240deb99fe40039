"""data.moving_fashion_mnist (shapes, determinism, labels that need motion) and viz.plot_clips on
synthetic items, and examples/fashion_mnist_video.py's quick mode on the real data set when installed."""
from __future__ import annotations

import numpy as np
import pytest

from pycnn import data, viz
from pycnn.data import MOVING_FASHION_MNIST_CLASSES, moving_fashion_mnist


@pytest.fixture
def items():
    """Ten random 28x28 items, one per Fashion-MNIST label, no pixel zero (so each is found whole)."""
    rng = np.random.default_rng(0)
    return rng.integers(1, 256, size=(10, 1, 28, 28)).astype(np.float32) / 255, np.arange(10)


def test_clips_shapes_dtypes_and_whole_items(items):
    x, y = items
    clips, labels = moving_fashion_mnist(x, y, 50, frames=6, size=36, seed=1)
    assert clips.shape == (50, 1, 6, 36, 36) and clips.dtype == np.float32
    assert labels.shape == (50,) and labels.dtype == np.int64
    assert set(labels) <= set(range(len(MOVING_FASHION_MNIST_CLASSES))) and len(MOVING_FASHION_MNIST_CLASSES) == 6
    # every frame holds one item, whole (its 784 non-zero pixels, nothing else) and unscaled
    assert ((clips != 0).sum(axis=(3, 4)) == 28 * 28).all()
    sums = clips.sum(axis=(3, 4), dtype=np.float64)[:, 0]
    assert np.allclose(sums, sums[:, :1])
    assert np.isin(np.round(sums[:, 0], 3), np.round(x.sum(axis=(1, 2, 3), dtype=np.float64), 3)).all()


def test_clips_are_deterministic_by_seed(items):
    x, y = items
    a, la = moving_fashion_mnist(x, y, 20, seed=7)
    b, lb = moving_fashion_mnist(x, y, 20, seed=7)
    c, _ = moving_fashion_mnist(x, y, 20, seed=8)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(a, c)


def test_groups_follow_the_items(items):
    x, y = items
    for label, group in ((0, 0), (5, 1), (7, 1), (1, 2), (8, 2), (6, 0)):
        _, labels = moving_fashion_mnist(x[label:label + 1], y[label:label + 1], 30, seed=2)
        assert set(labels // 2) == {group}
        assert set(labels % 2) == {0, 1}  # both directions


def test_labels_need_motion(items):
    x, y = items
    # One item: every clip shows the same picture, so only the motion separates its two classes ...
    clips, labels = moving_fashion_mnist(x[:1], y[:1], 400, seed=3)
    firsts = {}
    for clip, label in zip(clips, labels):
        firsts.setdefault(clip[0, 0].tobytes(), set()).add(int(label))
    # ... and the very same first frame starts clips of both classes.
    assert any(len(s) == 2 for s in firsts.values())
    # The direction is the sign of the turn between successive displacements of the item
    # (y grows downwards: a positive cross product turns clockwise on screen).
    clips, labels = moving_fashion_mnist(x, y, 60, size=60, degrees_per_frame=(30, 40), seed=4)
    mass = clips[:, 0] != 0
    rows, cols = np.arange(60)[:, None], np.arange(60)[None, :]
    n = mass.sum(axis=(2, 3))
    centre = np.stack([(mass * cols).sum(axis=(2, 3)) / n, (mass * rows).sum(axis=(2, 3)) / n], axis=-1)
    d = np.diff(centre, axis=1)
    turn = (d[:, :-1, 0] * d[:, 1:, 1] - d[:, :-1, 1] * d[:, 1:, 0]).sum(axis=1)
    np.testing.assert_array_equal(np.where(turn > 0, 0, 1), labels % 2)


def test_bad_arguments_raise(items):
    x, y = items
    with pytest.raises(ValueError, match="no room"):
        moving_fashion_mnist(x, y, 4, size=30)
    with pytest.raises(ValueError, match="frames"):
        moving_fashion_mnist(x, y, 4, frames=1)
    with pytest.raises(ValueError, match="labels"):
        moving_fashion_mnist(x, y[:3], 4)
    with pytest.raises(ValueError, match="0-9"):
        moving_fashion_mnist(x, y + 1, 4)
    with pytest.raises(ValueError, match="images"):
        moving_fashion_mnist(x[:, 0, 0], y, 4)
    with pytest.raises(ValueError, match="degrees_per_frame"):
        moving_fashion_mnist(x, y, 4, degrees_per_frame=(10, 180))
    with pytest.raises(ValueError, match="radius"):
        moving_fashion_mnist(x, y, 4, radius=7)


def test_plot_clips(items, tmp_path):
    pytest.importorskip("matplotlib")
    x, y = items
    clips, labels = moving_fashion_mnist(x, y, 3, frames=4, seed=5)
    path = viz.plot_clips(clips, tmp_path / "sub" / "clips.png", labels, MOVING_FASHION_MNIST_CLASSES)
    assert path.stat().st_size > 0
    with pytest.raises(ValueError, match="expected clips"):
        viz.plot_clips(clips[0, 0], tmp_path / "x.png")


def test_video_example_quick_mode(tmp_path, capsys):
    if data.find_fashion_mnist() is None:
        pytest.skip("Fashion-MNIST is not installed (sudo apt-get install dataset-fashion-mnist, or set PYCNN_DATA)")
    import fashion_mnist_video as example

    plot = tmp_path / "clips.png"
    results = example.main(["--quick", "--threads", "1", "--plot", str(plot)])
    out = capsys.readouterr().out
    assert set(results) == {"3-D CNN", "single-frame 2-D CNN"}
    assert all(0.0 <= acc <= 1.0 for acc in results.values())
    assert "test accuracy, 3-D CNN" in out and "test accuracy, single-frame 2-D CNN" in out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "needs matplotlib" in out
    else:
        assert plot.stat().st_size > 0


def test_video_networks_take_clips_and_frames():
    import fashion_mnist_video as example

    clips = np.zeros((2, 1, 8, 40, 40), np.float32)
    assert example.video_cnn(6, 4)(clips).shape == (2, 6)
    assert example.frame_cnn(6, 4)(clips[:, :, 0]).shape == (2, 6)
