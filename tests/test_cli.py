"""Tests for the command line, ``python -m pycnn``, run as a user runs it (subprocess).

The training run needs the real Fashion-MNIST: it skips where the data set is
absent, except in CI (``CI=true``), where that means a missing install step
and fails.
"""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from pycnn import data


# "python -m" puts the working directory first on sys.path: run outside the
# checkout, whose pycnn/ has no compiled extension when pycnn was installed
# from a wheel (as CI does), so the installed package is the one tested.
OUTSIDE = tempfile.gettempdir()


def run(*args, env=None, timeout=300):
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.pop("PYCNN_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "pycnn", *args], cwd=OUTSIDE,
        capture_output=True, text=True, stdin=subprocess.DEVNULL, env=full_env, timeout=timeout,
    )


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_fashion_mnist():
    if data.find_fashion_mnist() is None:
        reason = ("Fashion-MNIST is not installed (sudo apt-get install dataset-fashion-mnist, "
                  "or set PYCNN_DATA)")
        if _in_ci():
            pytest.fail("CI=true but " + reason)
        pytest.skip(reason)


def test_help():
    r = run("--help")
    assert r.returncode == 0, r.stderr
    for command in ("train", "evaluate", "predict", "export", "info", "bench"):
        assert command in r.stdout
    assert r.stderr == ""


def test_train_help_lists_every_option():
    r = run("train", "--help")
    assert r.returncode == 0, r.stderr
    for option in ("--epochs", "--batch-size", "--lr", "--momentum", "--threads", "--data", "--seed", "--limit",
                   "--model", "--optimizer", "--weight-decay", "--schedule", "--augment", "--validation-split",
                   "--patience", "--save", "--plots", "--distributed", "fashion_mnist_cnn"):
        assert option in r.stdout, option
    assert "default: 2" in r.stdout  # epochs


@pytest.mark.parametrize("command, words", [
    ("evaluate", ("MODEL", "classification report", "--plots", "--data")),
    ("predict", ("MODEL", "IMAGE", "Pillow", "--top", "--invert")),
])
def test_command_help(command, words):
    r = run(command, "--help")
    assert r.returncode == 0, r.stderr
    for w in words:
        assert w in r.stdout, w


def test_no_command_prints_usage():
    r = run()
    assert r.returncode == 2
    assert "usage:" in r.stderr and "train" in r.stderr


def test_info():
    import pycnn

    r = run("info")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"pycnn {pycnn.__version__}")
    assert pycnn.show_config.__doc__  # info prints show_config() first, then more:
    for line in ("threads:", "optional:", "presets:", "optimisers:  sgd"):
        assert line in r.stdout, line
    from pycnn.models import PRESETS

    presets_line = next(l for l in r.stdout.splitlines() if "presets:" in l)
    assert all(name in presets_line for name in PRESETS), presets_line


def test_runs_from_the_checkout_root():
    """README's first command runs ``python -m pycnn`` where the checkout's pycnn/ shadows the install."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    if not (root / "pycnn" / "__main__.py").is_file():
        pytest.skip("not running from a checkout")
    r = subprocess.run([sys.executable, "-m", "pycnn", "info"], cwd=root, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "threads:" in r.stdout


def test_info_respects_omp_num_threads():
    r = run("info", env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert re.search(r"threads:\s+1 of", r.stdout), r.stdout


def test_missing_data_is_one_line_without_traceback(tmp_path):
    r = run("train", "--data", str(tmp_path), "--epochs", "1")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("pycnn: error: Fashion-MNIST not found in " + str(tmp_path))


def test_missing_data_without_download_names_the_package(tmp_path):
    # Run main() with every search location pointed at empty places, the
    # system directory included (it may hold the real data on this machine).
    code = (
        "import pathlib, sys, pycnn.data.fashion_mnist as d; from pycnn.__main__ import main; "
        f"d.FASHION_MNIST_SYSTEM_DIR = pathlib.Path({str(tmp_path / 'system')!r}); "
        "sys.exit(main(['train', '--no-download']))"
    )
    env = dict(os.environ, HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"), PYCNN_DATA=str(tmp_path))
    env.pop("PYCNN_DEBUG", None)
    r = subprocess.run([sys.executable, "-c", code], cwd=OUTSIDE, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, env=env, timeout=120)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "apt-get install dataset-fashion-mnist" in r.stderr
    assert str(tmp_path / "cache") in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--epochs", "0"],
        ["train", "--lr", "-0.1"],
        ["train", "--batch-size", "abc"],
        ["train", "--threads", "0"],
        ["train", "--bogus"],
        ["frobnicate"],
    ],
)
def test_bad_arguments(args):
    r = run(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "error:" in r.stderr


def test_bench_help():
    r = run("bench", "--help")
    assert r.returncode == 0, r.stderr
    assert "--quick" in r.stdout and "--threads" in r.stdout


def test_bench_runs_one_case():
    """A smoke test of the command, not a measurement (timings belong in benchmarks/)."""
    r = run("bench", "--rounds", "1", "--only", "sgemm 256x", "--no-torch")
    assert r.returncode == 0, r.stderr
    assert "sgemm 256x256x256" in r.stdout and "vs numpy" in r.stdout


@pytest.mark.slow
def test_train_quick_run_on_real_data():
    require_fashion_mnist()
    r = run("train", "--limit", "512", "--epochs", "1", "--seed", "1")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    out = r.stdout
    assert "512 train / 10,000 test images" in out
    m = re.search(
        r"^epoch 1/1  loss (\d+\.\d+)  train acc (\d+\.\d+)%  test loss (\d+\.\d+)  "
        r"test acc (\d+\.\d+)%  ([\d,]+) images/s",
        out, re.MULTILINE,
    )
    assert m, out
    loss, train_acc, test_loss, test_acc = (float(m.group(i)) for i in range(1, 5))
    assert loss > 0 and test_loss > 0
    # 4 SGD steps cannot be expected to learn much: check only that the numbers are sane.
    assert 0 <= train_acc <= 100 and 0 <= test_acc <= 100
    assert int(m.group(5).replace(",", "")) > 0
    assert re.search(r"^test accuracy \d+\.\d+% after 1 epoch;", out, re.MULTILINE), out


@pytest.mark.slow
def test_readme_example_runs():
    """The API example in README.md runs as written (it trains on real data)."""
    import pathlib

    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    if not readme.is_file():
        pytest.skip("README.md is not next to tests/ (not running from a checkout)")
    blocks = re.findall(r"^```python\n(.*?)^```", readme.read_text(), re.MULTILINE | re.DOTALL)
    assert blocks, "README.md has no python example"
    require_fashion_mnist()
    env = dict(os.environ)
    env.pop("PYCNN_DEBUG", None)
    r = subprocess.run([sys.executable, "-c", blocks[0]], cwd=OUTSIDE, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "'accuracy'" in r.stdout, r.stdout


# ---------------------------------------------------------------------------
# train --save/--plots, evaluate, predict on a small stand-in for Fashion-MNIST
# ---------------------------------------------------------------------------


def fake_images(n, rng):
    """uint8 (n, 28, 28) images whose class (0..9) is where a bright bar is, plus labels."""
    y = rng.integers(0, 10, n).astype(np.uint8)
    x = (rng.random((n, 28, 28)) * 60).astype(np.uint8)
    for i, c in enumerate(y):
        r, col = divmod(int(c), 5)
        x[i, 2 + 13 * r: 12 + 13 * r, 1 + 5 * col: 5 + 5 * col] = 230
    return x, y


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    """A directory with the four IDX files of a tiny, easy 'Fashion-MNIST' (640 train, 200 test)."""
    d = tmp_path_factory.mktemp("fake-fashion-mnist")
    rng = np.random.default_rng(0)
    for split, n in (("train", 640), ("t10k", 200)):
        x, y = fake_images(n, rng)
        data.write_idx(d / f"{split}-images-idx3-ubyte", x)
        data.write_idx(d / f"{split}-labels-idx1-ubyte", y)
    return d


@pytest.fixture(scope="module")
def trained(fake_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    r = run("train", "--data", str(fake_data), "--epochs", "2", "--batch-size", "32", "--seed", "1",
            "--save", str(out / "model.npz"), "--plots", str(out / "plots"), "--schedule", "cosine", "--quiet")
    return r, out


def test_train_save_and_plots(trained):
    r, out = trained
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stdout.splitlines()
    assert "640 train / 200 test images" in lines[0]
    assert "fashion_mnist_cnn with 421,642 parameters; SGD lr 0.05, momentum 0.9" in lines[1]
    assert re.match(r"epoch 1/2  loss \d\.\d{4}  train acc [\d.]+%  test loss \d\.\d{4}  test acc [\d.]+%  "
                    r"[\d,]+ images/s  \(\d+\.\ds\)  lr 0\.05$", lines[2]), lines[2]
    assert lines[3].startswith("epoch 2/2") and lines[3].endswith("lr 0.025")
    assert re.match(r"test accuracy [\d.]+% after 2 epochs", lines[4])
    assert (out / "model.npz").is_file() and "saved the model to" in r.stdout
    for name in ("history.png", "filters.png", "feature_maps.png", "confusion_matrix.png"):
        raw = (out / "plots" / name).read_bytes()
        assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 5000, name
    import json

    h = json.loads((out / "plots" / "history.json").read_text())
    assert h["epoch"] == [0, 1] and set(h["history"]) >= {"loss", "accuracy", "val_loss", "val_accuracy", "time"}
    import pycnn

    meta = pycnn.io.read_metadata(out / "model.npz")
    assert meta["input_shape"] == [1, 28, 28] and meta["class_names"][9] == "Ankle boot"
    assert meta["history"]["val_accuracy"] == h["history"]["val_accuracy"]


def test_evaluate_saved_model(trained, fake_data):
    r, out = trained
    assert r.returncode == 0, r.stderr
    ev = run("evaluate", str(out / "model.npz"), "--data", str(fake_data), "--plots", str(out / "ev"))
    assert ev.returncode == 0, ev.stderr
    m = re.search(r"^loss (\d+\.\d+)  accuracy (\d+\.\d+)%$", ev.stdout, re.MULTILINE)
    assert m, ev.stdout
    # the same model, the same test images: train's last test accuracy
    last = re.search(r"^epoch 2/2 .* test acc (\d+\.\d+)%", r.stdout, re.MULTILINE).group(1)
    assert m.group(2) == last
    for word in ("precision", "recall", "f1-score", "support", "T-shirt/top", "Ankle boot", "macro avg"):
        assert word in ev.stdout, word
    assert (out / "ev" / "confusion_matrix.png").is_file()


def test_predict_images(trained, fake_data, tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    r, out = trained
    assert r.returncode == 0, r.stderr
    rng = np.random.default_rng(5)
    x, y = fake_images(4, rng)
    paths = []
    for i, img in enumerate(x):
        p = tmp_path / f"img{i}.png"
        # the light-background version of the picture, twice the size: predict inverts and resizes
        PIL.fromarray(255 - img).resize((56, 56)).save(p)
        paths.append(str(p))
    pr = run("predict", str(out / "model.npz"), *paths, "--top", "2")
    assert pr.returncode == 0, pr.stderr
    lines = pr.stdout.strip().splitlines()
    assert len(lines) == 4
    for line, path in zip(lines, paths):
        assert re.match(re.escape(path) + r": [\w/ -]+ \(\d+\.\d+%\)  \[[\w/ -]+ \d+\.\d+%\]$", line), line


def test_train_with_validation_split_and_early_stopping(fake_data):
    r = run("train", "--data", str(fake_data), "--epochs", "2", "--batch-size", "64", "--validation-split", "0.25",
            "--patience", "1", "--augment", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "480 train / 200 test images" not in r.stdout  # the split happens inside fit
    assert re.search(r"^epoch 1/2 .* val loss \d\.\d{4}  val acc", r.stdout, re.MULTILINE), r.stdout
    assert "augmented" in r.stdout
    assert re.search(r"^test accuracy [\d.]+% after \d epochs?", r.stdout, re.MULTILINE)


def test_optimizer_choices_follow_pycnn_optim(fake_data):
    from pycnn import optim

    r = run("train", "--data", str(fake_data), "--epochs", "1", "--optimizer", "adam", "--limit", "64", "--quiet")
    if hasattr(optim, "Adam"):
        assert r.returncode == 0, r.stderr
        assert "Adam lr 0.001" in r.stdout
    else:
        assert r.returncode == 2 and "invalid choice: 'adam'" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["evaluate", "/nonexistent/model.npz"], "model file '/nonexistent/model.npz' not found"),
    (["predict", "/nonexistent/model.npz", "x.png"], "model file '/nonexistent/model.npz' not found"),
])
def test_evaluate_and_predict_errors(args, message):
    r = run(*args)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"pycnn: error: {message} (write one with 'python -m pycnn train --save " \
                               f"{args[1]}')"


def test_predict_bad_image_and_not_a_model(trained, tmp_path):
    r, out = trained
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    pr = run("predict", str(out / "model.npz"), str(bad))
    assert pr.returncode == 1 and pr.stderr.startswith("pycnn: error: cannot read image") and "Traceback" not in pr.stderr
    ev = run("evaluate", str(bad))
    assert ev.returncode == 1 and ev.stderr.startswith("pycnn: error: cannot load the model:")


def test_predict_without_pillow_says_how_to_get_it(monkeypatch, tmp_path):
    from pycnn.__main__ import UserError, _read_image

    monkeypatch.setitem(sys.modules, "PIL", None)  # as if Pillow were not installed
    with pytest.raises(UserError, match="pip install pillow"):
        _read_image(str(tmp_path / "x.png"), [1, 28, 28], "auto")
