"""fit / evaluate / predict on data sources (DataLoader, generators, factories), fit's metrics, input dtypes.

Every result on a data source is compared with the same computation on
in-memory arrays, and every metric with scikit-learn (or, without it, with
pycnn.metrics, which tests/test_metrics.py checks against scikit-learn).
"""
import warnings
from pathlib import Path

import numpy as np
import pytest

import pycnn
from pycnn import data, metrics, nn, optim
from pycnn.train import evaluate, fit, predict, predict_outputs
from test_train import NUM_CLASSES, blobs, small_cnn


def make(lr=0.05):
    pycnn.manual_seed(0)
    model = small_cnn()
    return model, dict(loss_fn=nn.CrossEntropyLoss(), optimizer=optim.SGD(model.parameters(), lr=lr, momentum=0.9))


def weights(model):
    return [p.data.copy() for p in model.parameters()]


@pytest.fixture(scope="module")
def xy():
    return blobs(96, seed=3)


def test_fit_on_dataloader_equals_fit_on_arrays(xy):
    x, y = xy
    m1, kw1 = make()
    h1 = fit(m1, x, y, batch_size=16, shuffle=False, epochs=2, verbose=0, **kw1)
    m2, kw2 = make()
    h2 = fit(m2, data.DataLoader(x, y, batch_size=16, shuffle=False), epochs=2, verbose=0, **kw2)
    for a, b in zip(weights(m1), weights(m2)):
        np.testing.assert_array_equal(a, b)
    assert h1.history["loss"] == h2.history["loss"]
    assert h1.history["accuracy"] == h2.history["accuracy"]


def test_fit_streams_batches_from_disk_through_a_factory(xy, tmp_path):
    x, y = xy
    for i in range(0, len(x), 16):  # one .npz file per batch, as a data set too large for memory would be
        np.savez(tmp_path / f"batch{i // 16:03d}.npz", x=x[i:i + 16], y=y[i:i + 16])

    def batches_from_disk():
        for path in sorted(tmp_path.glob("batch*.npz")):
            with np.load(path) as f:
                yield f["x"], f["y"]

    m1, kw1 = make()
    fit(m1, x, y, batch_size=16, shuffle=False, epochs=3, verbose=0, **kw1)
    m2, kw2 = make()
    h = fit(m2, batches_from_disk, epochs=3, verbose=0, validation_data=batches_from_disk, **kw2)
    for a, b in zip(weights(m1), weights(m2)):
        np.testing.assert_array_equal(a, b)
    assert len(h.history["val_loss"]) == 3
    assert h.history["val_loss"][-1] == pytest.approx(evaluate(m1, x, y)["loss"], rel=1e-6)


def test_one_shot_generator_trains_one_epoch_and_is_refused_for_more(xy):
    x, y = xy
    m1, kw1 = make()
    fit(m1, x, y, batch_size=32, shuffle=False, verbose=0, **kw1)
    m2, kw2 = make()
    fit(m2, ((x[i:i + 32], y[i:i + 32]) for i in range(0, 96, 32)), verbose=0, **kw2)
    for a, b in zip(weights(m1), weights(m2)):
        np.testing.assert_array_equal(a, b)
    gen = ((x[i:i + 32], y[i:i + 32]) for i in range(0, 96, 32))
    with pytest.raises(ValueError, match=r"one-shot iterator.*read 2 times.*lambda"):
        fit(m2, gen, epochs=2, verbose=0, **kw2)
    with pytest.raises(ValueError, match="one-shot"):
        fit(m2, x, y, epochs=2, validation_data=iter([(x, y)]), verbose=0, **kw2)


def test_evaluate_and_predict_on_data_sources_equal_arrays(xy):
    x, y = xy
    model, _ = make()
    loader = data.DataLoader(x, y, batch_size=20, shuffle=False)
    want = evaluate(model, x, y)
    got = evaluate(model, loader)
    assert got["accuracy"] == want["accuracy"]
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-6)
    expected = predict_outputs(model, x)
    np.testing.assert_allclose(predict_outputs(model, loader), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(predict_outputs(model, (x[i:i + 7] for i in range(0, 96, 7))), expected,
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(predict(model, lambda: iter(loader)), predict(model, x))


def test_fit_records_metrics_for_training_and_validation():
    pytest.importorskip("sklearn")
    from sklearn.metrics import f1_score, precision_score, recall_score, top_k_accuracy_score

    (x, y), (xv, yv) = blobs(96, seed=3), blobs(64, seed=4)
    seen = {}

    def my_metric(y_true, outputs):
        seen["shapes"] = (y_true.shape, outputs.shape)
        return float(np.mean(y_true))

    # lr=0: the weights never move, so the training metrics (taken while training) are those of the
    # final model on the training data, which an independent pass reproduces.
    model, kw = make(lr=0.0)
    h = fit(model, x, y, epochs=2, verbose=0, validation_data=(xv, yv),
            metrics=["precision", "recall", "f1", "top2_accuracy", my_metric, ("mean_y", my_metric)], **kw)
    for prefix, (xs, ys) in (("", (x, y)), ("val_", (xv, yv))):
        out = predict_outputs(model, xs)
        pred = out.argmax(1)
        expected = {"precision": precision_score(ys, pred, average="macro", zero_division=0),
                    "recall": recall_score(ys, pred, average="macro", zero_division=0),
                    "f1": f1_score(ys, pred, average="macro", zero_division=0),
                    "top2_accuracy": top_k_accuracy_score(ys, out, k=2, labels=np.arange(NUM_CLASSES)),
                    "my_metric": float(np.mean(ys)), "mean_y": float(np.mean(ys))}
        for name, value in expected.items():
            assert len(h.history[prefix + name]) == 2
            assert h.history[prefix + name][-1] == pytest.approx(value, abs=1e-12), prefix + name
    assert seen["shapes"] == ((64,), (64, NUM_CLASSES))


def test_top_k_accuracy_score_matches_sklearn():
    pytest.importorskip("sklearn")
    from sklearn.metrics import top_k_accuracy_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 200)
    scores = rng.integers(0, 4, (200, 6)).astype(np.float32)  # many ties
    for k in (1, 2, 3, 5):
        assert metrics.top_k_accuracy_score(y, scores, k=k) == pytest.approx(
            top_k_accuracy_score(y, scores, k=k, labels=np.arange(6)))
    assert metrics.top_k_accuracy_score(y, scores, k=9) == 1.0


@pytest.mark.parametrize("bad, message", [
    (["f2"], "unknown metric 'f2'"),
    ("f1", "must be a list"),
    ([lambda y, o: 0.0], r"no name.*\('name', f\)"),
    (["f1", "f1"], "distinct"),
])
def test_bad_metrics_are_refused(xy, bad, message):
    x, y = xy
    model, kw = make()
    with pytest.raises((TypeError, ValueError), match=message):
        fit(model, x, y, metrics=bad, verbose=0, **kw)


def test_data_source_misuse_names_the_fix(xy):
    x, y = xy
    model, kw = make()
    loader = data.DataLoader(x, y, batch_size=16)
    with pytest.raises(ValueError, match="pass y=None"):
        fit(model, loader, y, verbose=0, **kw)
    with pytest.raises(ValueError, match=r"y is None.*DataLoader"):
        fit(model, x, None, verbose=0, **kw)
    with pytest.raises(TypeError, match=r"first argument is the model.*fit\(model, loader"):
        fit(loader, None, verbose=0, **kw)
    with pytest.raises(ValueError, match="validation_split needs arrays"):
        fit(model, loader, validation_split=0.2, verbose=0, **kw)
    with pytest.raises(TypeError, match=r"batch 0 must be a pair \(x, y\)"):
        fit(model, lambda: iter([x]), verbose=0, **kw)
    with pytest.raises(ValueError, match="yielded no batch"):
        fit(model, lambda: iter([]), verbose=0, **kw)
    with pytest.raises(ValueError, match="pass y=None"):
        evaluate(model, loader, y)


def test_uint8_inputs_warn_once_per_model_unless_trained_on_them(xy):
    x, y = xy
    images = np.clip(x * 255, 0, 255).astype(np.uint8)
    model, kw = make()
    with pytest.warns(UserWarning, match=r"uint8 with values up to \d+.*/ 255"):
        predict(model, images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predict(model, images)  # once per model
        predict(model, x)  # float32: meant as given
        predict(model, images.astype(np.float64).tolist())  # a list converts like np.asarray
        trained_on_bytes, kw2 = make()
        fit(trained_on_bytes, images, y, verbose=0, **kw2)
        evaluate(trained_on_bytes, images, y)  # trained on 0-255: the values are what it expects
    # The documented conversion: float64 and lists are rounded to float32, integers converted unscaled.
    np.testing.assert_array_equal(predict_outputs(model, x.astype(np.float64)), predict_outputs(model, x))
    np.testing.assert_array_equal(predict_outputs(model, x.tolist()), predict_outputs(model, x))
    np.testing.assert_array_equal(predict_outputs(model, images), predict_outputs(model, images.astype(np.float32)))


def test_transfer_learning_snippet_unfreezes_the_dense_layers():
    """docs/training.md: after freeze() and a new head, model[7:].unfreeze() makes the dense layers trainable."""
    from pycnn.models import fashion_mnist_cnn

    model = fashion_mnist_cnn()
    model.freeze()
    model[-1] = nn.Linear(128, 5)
    model[7:].unfreeze()
    assert isinstance(model[7], nn.Linear) and model[7].in_features == 3136
    for i, layer in enumerate(model):
        for p in layer.parameters():
            assert p.requires_grad == (i >= 7), i
    assert "model[7:].unfreeze()" in (Path(__file__).resolve().parent.parent / "docs" / "training.md").read_text()


def test_load_of_a_file_that_is_not_a_model_says_so(tmp_path):
    import zipfile

    script = tmp_path / "train.py"
    script.write_text("import pycnn\nprint('hello')\n")
    with pytest.raises(ValueError, match=r"train\.py: not a pycnn model file: pycnn\.save writes a \.npz") as e:
        pycnn.load(script)
    assert "pickle" not in str(e.value)
    torch_like = tmp_path / "model.pt"  # torch.save's layout, built without torch
    with zipfile.ZipFile(torch_like, "w") as zf:
        zf.writestr("model/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("model/version", "3\n")
    with pytest.raises(ValueError, match=r"not a pycnn model file: it is a PyTorch file.*torch\.load"):
        pycnn.load(torch_like)


def test_cli_version_patience_and_error_formats_match_the_readme(tmp_path):
    from test_cli import run

    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"pycnn {pycnn.__version__}", r
    r = run("train", "--patience", "2", "--data", str(tmp_path))
    assert r.returncode == 1
    assert r.stderr.strip() == ("pycnn: error: --patience stops on the validation loss, and without "
                                "--validation-split that is the test set (the model would be selected on its "
                                "test score); add --validation-split 0.1")
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "`pycnn: error:` and exit with status 1" in " ".join(readme.split())
    r = run("train", "--epochs", "0")
    assert r.returncode == 2
    assert r.stderr.splitlines()[0].startswith("usage: python -m pycnn train")
    assert r.stderr.splitlines()[-1].startswith("python -m pycnn train: error: argument --epochs")
    assert "python -m pycnn COMMAND: error: ...` and exits with status 2" in " ".join(readme.split())
