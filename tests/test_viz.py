"""pycnn.viz writes non-trivial PNG files; matplotlib stays optional and lazily imported."""
import subprocess
import sys

import numpy as np
import pytest

import pycnn
from pycnn import metrics
from pycnn.models import fashion_mnist_cnn

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path, min_width=200, min_height=150):
    """The file is a PNG of a reasonable size whose pixels are not all one colour."""
    image = pytest.importorskip("matplotlib.image")
    raw = path.read_bytes()
    assert raw[:8] == PNG_SIGNATURE, path
    assert len(raw) > 5000, (path, len(raw))
    pixels = image.imread(path)
    h, w = pixels.shape[:2]
    assert h >= min_height and w >= min_width, (path, pixels.shape)
    rgb = pixels[..., :3]
    assert rgb.std() > 0.05, path  # drawn, not blank
    assert len(np.unique(rgb.reshape(-1, 3).round(2), axis=0)) > 10, path
    return pixels


@pytest.fixture(scope="module")
def model():
    pycnn.manual_seed(0)
    return fashion_mnist_cnn()


def test_plot_history(tmp_path):
    pytest.importorskip("matplotlib")
    from pycnn import viz
    from pycnn.train import History

    h = History()
    h.history = {"loss": [1.2, 0.7, 0.5], "accuracy": [0.6, 0.75, 0.8], "val_loss": [0.9, 0.6, 0.55],
                 "val_accuracy": [0.7, 0.78, 0.8], "time": [1.0, 1.0, 1.0], "lr": [0.1, 0.05, 0.01]}
    h.epoch = [0, 1, 2]
    path = viz.plot_history(h, tmp_path / "sub" / "history.png")
    assert path == tmp_path / "sub" / "history.png"
    pixels = check_png(path)
    assert pixels.shape[1] > 2 * pixels.shape[0]  # three panels side by side
    h.to_json(tmp_path / "h.json")
    check_png(viz.plot_history(tmp_path / "h.json", tmp_path / "from_json.png"))
    check_png(viz.plot_history({"loss": [1.0]}, tmp_path / "one.png"))
    with pytest.raises(ValueError, match="nothing to plot"):
        viz.plot_history({"time": [1.0]}, tmp_path / "none.png")


def test_plot_filters(tmp_path, model):
    pytest.importorskip("matplotlib")
    from pycnn import nn, viz

    check_png(viz.plot_filters(model, tmp_path / "filters.png"))
    rgb = nn.Conv2d(3, 8, 5)
    check_png(viz.plot_filters(rgb, tmp_path / "rgb.png"), min_width=100, min_height=100)
    with pytest.raises(ValueError, match="no convolution"):
        viz.plot_filters(nn.Sequential(nn.Linear(2, 2)), tmp_path / "x.png")


def test_plot_feature_maps(tmp_path, model):
    pytest.importorskip("matplotlib")
    from pycnn import viz

    x = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    model.train()
    pixels = check_png(viz.plot_feature_maps(model, x, tmp_path / "maps.png", max_channels=8))
    assert model.training  # mode restored
    assert pixels.shape[0] > 250  # input row + one row per conv layer
    with pytest.raises(ValueError, match="one input"):
        viz.plot_feature_maps(model, np.zeros((2, 1, 28, 28), np.float32), tmp_path / "x.png")


def test_plot_confusion_matrix(tmp_path):
    pytest.importorskip("matplotlib")
    from pycnn import viz
    from pycnn.data import FASHION_MNIST_CLASSES

    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 400)
    p = np.where(rng.random(400) < 0.7, y, rng.integers(0, 10, 400))
    cm = metrics.confusion_matrix(y, p)
    check_png(viz.plot_confusion_matrix(cm, tmp_path / "cm.png", class_names=FASHION_MNIST_CLASSES))
    check_png(viz.plot_confusion_matrix(cm, tmp_path / "cm_norm.png", normalize=True))
    with pytest.raises(ValueError, match="square"):
        viz.plot_confusion_matrix(np.zeros((2, 3)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="class names"):
        viz.plot_confusion_matrix(cm, tmp_path / "x.png", class_names=["a"])


def test_matplotlib_is_optional_and_lazy(tmp_path):
    """import pycnn (and pycnn.viz) does not load matplotlib; without it, a plot says how to get it."""
    code = (
        "import sys\n"
        "import pycnn, pycnn.viz, pycnn.train, pycnn.metrics, pycnn.io\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported eagerly'\n"
        "assert 'tqdm' not in sys.modules\n"
        "sys.modules['matplotlib'] = None  # as if it were not installed\n"
        "try:\n"
        "    pycnn.viz.plot_history({'loss': [1.0]}, 'never.png')\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    # cwd: a temporary directory, so no stray file in the checkout can shadow a module.
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert 'pip install "pycnn[viz]"' in r.stdout
