"""fit's options and ready-made callbacks: validation_split, augmentation, progress bar,
EarlyStopping, ModelCheckpoint, learning-rate schedules.

Tiny synthetic problems (as in test_train.py) keep each test well under a second.
"""
import io as _io
import math
import re

import numpy as np
import pytest

import pycnn
from pycnn import data, nn, optim
from pycnn.train import (Callback, CosineDecay, EarlyStopping, History, LearningRateScheduler, ModelCheckpoint,
                         ProgressLogger, StepDecay, Trainer, fit)

from test_train import NUM_CLASSES, blobs, make, small_cnn


@pytest.fixture(scope="module")
def xy():
    return blobs(256, seed=3)


def run(xy, epochs=3, seed=0, lr=0.05, **kw):
    x, y = xy
    model, loss_fn, opt = make(seed, lr)
    kw.setdefault("verbose", 0)
    kw.setdefault("batch_size", 64)
    h = fit(model, x, y, loss_fn=loss_fn, optimizer=opt, epochs=epochs, **kw)
    return model, opt, h


class Script(Callback):
    """Overwrites a metric of the epoch logs with scripted values (runs before the callbacks after it)."""

    def __init__(self, key, values):
        self.key, self.values = key, list(values)

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


class Snapshot(Callback):
    def __init__(self):
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.trainer.model.state_dict())


# ---------------------------------------------------------------------------
# validation_split
# ---------------------------------------------------------------------------


def test_validation_split_holds_out_the_last_samples(xy):
    x, y = xy
    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = small_cnn()

        def forward(self, xb):
            (seen.append(xb.copy()) if self.training else None)
            return self.inner(xb)

        def backward(self, dy, input_grad=True):
            return self.inner.backward(dy, input_grad=input_grad)

    pycnn.manual_seed(0)
    model = Spy()
    h = fit(model, x, y, loss_fn=nn.CrossEntropyLoss(), optimizer=optim.SGD(model.parameters(), lr=0.05),
            epochs=1, batch_size=50, validation_split=0.25, verbose=0)
    trained = np.concatenate(seen)
    assert len(trained) == 192 == h.params["samples"]  # int(256 * 0.75)
    # exactly the first 192 samples were trained on (in some order) and the last 64 never
    key = lambda a: sorted(map(bytes, a.reshape(len(a), -1).view(np.uint8)))  # noqa: E731
    assert key(trained) == key(x[:192])
    from pycnn.train import evaluate

    assert h["val_accuracy"][0] == pytest.approx(evaluate(model, x[192:], y[192:])["accuracy"])


@pytest.mark.parametrize("split", [1.5, 1.0, -0.1, True, "0.1"])
def test_validation_split_errors(xy, split):
    with pytest.raises(ValueError, match="validation_split"):
        run(xy, epochs=1, validation_split=split)


def test_validation_split_and_data_exclude_each_other(xy):
    with pytest.raises(ValueError, match="not both"):
        run(xy, epochs=1, validation_split=0.2, validation_data=xy)


# ---------------------------------------------------------------------------
# Augmentation in fit
# ---------------------------------------------------------------------------


def test_transform_is_seeded_and_applied_per_batch(xy):
    aug = data.Compose([data.RandomCrop(8, padding=1), data.RandomHorizontalFlip()])
    _, _, h1 = run(xy, epochs=2, seed=1, transform=aug)
    _, _, h2 = run(xy, epochs=2, seed=1, transform=aug)
    _, _, h3 = run(xy, epochs=2, seed=1)
    assert h1["loss"] == h2["loss"]
    assert h1["loss"] != h3["loss"]
    # an int seed fixes order and augmentation together, independently of pycnn's generator
    x, y = xy
    losses = []
    for other in (11, 12):
        model, loss_fn, opt = make(0)
        pycnn.manual_seed(other)
        losses.append(fit(model, x, y, loss_fn=loss_fn, optimizer=opt, epochs=1, batch_size=64, seed=5,
                          transform=aug, verbose=0)["loss"])
    assert losses[0] == losses[1]


def test_transform_sees_training_and_evaluation_batches(xy):
    calls = []

    def plain(xb):  # a plain function is an augmentation: training batches only
        calls.append(len(xb))
        return xb

    run(xy, epochs=1, transform=plain, validation_data=xy)
    assert calls == [64, 64, 64, 64]

    class Recorder(data.Transform):
        def apply(self, x, rng, training):
            calls.append((training, rng is not None))
            return x

    calls.clear()
    run(xy, epochs=1, transform=Recorder(), validation_data=(xy[0][:10], xy[1][:10]))
    assert calls == [(True, True)] * 4 + [(False, False)]


def test_normalize_applies_to_validation_too(xy):
    x, y = xy
    norm = data.Normalize(mean=0.5, std=2.0)
    model, _, h = run(xy, epochs=1, transform=norm, validation_data=xy)
    from pycnn.train import evaluate

    assert h["val_loss"][0] == pytest.approx(evaluate(model, (x - 0.5) / 2.0, y)["loss"], rel=1e-6)
    assert h["val_loss"][0] == pytest.approx(evaluate(model, x, y, transform=norm)["loss"], rel=1e-12)


# ---------------------------------------------------------------------------
# Console output
# ---------------------------------------------------------------------------


def test_progress_bar_shows_loss_accuracy_and_speed(xy, monkeypatch, capsys):
    pytest.importorskip("tqdm")
    err = _io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    run(xy, epochs=2, callbacks=[ProgressLogger(1, bar=True)], batch_size=16)
    bar = err.getvalue()
    assert "Epoch 1/2" in bar and "Epoch 2/2" in bar
    assert re.search(r"loss \d\.\d{4}, accuracy \d\.\d{4}, [\d,]+ images/s", bar), bar
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["Epoch 1/2", "Epoch 2/2"]


def test_verbose_1_without_a_terminal_prints_lines_only(xy, capsys):
    run(xy, epochs=1, verbose=1)
    captured = capsys.readouterr()
    assert captured.out.startswith("Epoch 1/1 - ") and captured.err == ""


# ---------------------------------------------------------------------------
# EarlyStopping
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("patience, values, stopped_after", [
    (0, [1.0, 0.9, 0.95, 0.5], 3),
    (2, [1.0, 0.9, 0.95, 0.96, 0.5, 0.4], 4),
    (2, [1.0, 0.9, 0.95, 0.8, 0.85, 0.86, 0.1], 6),
    (3, [1.0, 0.9, 0.8, 0.7], 4),  # never stops
])
def test_early_stopping_patience(xy, patience, values, stopped_after):
    stop = EarlyStopping("val_loss", patience=patience)
    _, _, h = run(xy, epochs=len(values), validation_data=xy,
                  callbacks=[Script("val_loss", values), stop])
    assert len(h) == stopped_after
    assert h["val_loss"] == values[:stopped_after]  # History records what the callbacks saw
    assert stop.best == min(values[:stopped_after])
    assert stop.stopped_epoch == (None if stopped_after == len(values) else stopped_after - 1)


def test_early_stopping_restores_the_best_weights(xy):
    snap = Snapshot()
    stop = EarlyStopping("val_accuracy", patience=1, restore_best_weights=True)
    model, _, h = run(xy, epochs=5, validation_data=xy,
                      callbacks=[Script("val_accuracy", [0.5, 0.9, 0.8, 0.95, 0.7]), snap, stop])
    assert stop.monitor == "val_accuracy" and stop.best == 0.9 and stop.best_epoch == 1
    assert len(h) == 3
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, snap.weights[1][k], err_msg=k)
    assert not np.array_equal(snap.weights[2]["0.weight"], snap.weights[1]["0.weight"])


def test_early_stopping_min_delta_and_missing_metric(xy):
    stop = EarlyStopping("val_loss", patience=1, min_delta=0.1)
    _, _, h = run(xy, epochs=4, validation_data=xy, callbacks=[Script("val_loss", [1.0, 0.95, 0.5, 0.45]), stop])
    assert len(h) == 2  # 0.95 is not 0.1 better than 1.0
    with pytest.raises(ValueError, match="val_loss.*validation_data or validation_split"):
        run(xy, epochs=1, callbacks=[EarlyStopping()])
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")


# ---------------------------------------------------------------------------
# ModelCheckpoint
# ---------------------------------------------------------------------------


def test_checkpoint_every_epoch(xy, tmp_path):
    snap = Snapshot()
    ckpt = ModelCheckpoint(tmp_path / "ckpt" / "epoch{epoch:02d}-{loss:.3f}.npz")
    model, _, h = run(xy, epochs=3, callbacks=[snap, ckpt])
    assert len(ckpt.saved) == 3
    for i, path in enumerate(ckpt.saved):
        assert re.search(rf"epoch0{i + 1}-{h['loss'][i]:.3f}\.npz$", path)
        loaded = pycnn.load(path)
        for k, v in loaded.state_dict().items():
            np.testing.assert_array_equal(v, snap.weights[i][k])


def test_checkpoint_best_only_and_weights_only(xy, tmp_path):
    snap = Snapshot()
    ckpt = ModelCheckpoint(tmp_path / "best.npz", monitor="val_loss", save_best_only=True, save_weights_only=True)
    model, _, _ = run(xy, epochs=4, validation_data=xy,
                      callbacks=[Script("val_loss", [1.0, 0.5, 0.7, 0.6]), snap, ckpt])
    assert ckpt.saved == [str(tmp_path / "best.npz")] * 2 and ckpt.best_epoch == 1
    fresh = small_cnn()
    pycnn.io.load_weights(fresh, tmp_path / "best.npz")
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(v, snap.weights[1][k])
    with pytest.raises(ValueError, match="cannot fill in filepath"):
        run(xy, epochs=1, callbacks=[ModelCheckpoint(tmp_path / "{nope}.npz")])


# ---------------------------------------------------------------------------
# Learning-rate schedules
# ---------------------------------------------------------------------------


def lrs_seen(xy, scheduler, epochs, lr=0.1):
    seen = []

    class Probe(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(self.trainer.optimizer.param_groups[0]["lr"])

    _, opt, h = run(xy, epochs=epochs, lr=lr, callbacks=[scheduler, Probe()])
    return seen, h, opt


def test_step_decay(xy):
    seen, h, opt = lrs_seen(xy, StepDecay(step_size=2, gamma=0.5), epochs=5)
    expected = [0.1, 0.1, 0.05, 0.05, 0.025]
    assert seen == pytest.approx(expected) and h["lr"] == pytest.approx(expected)
    assert opt.param_groups[0]["initial_lr"] == 0.1


def test_cosine_decay_defaults_to_the_fit_length(xy):
    seen, h, _ = lrs_seen(xy, CosineDecay(eta_min=0.001), epochs=4)
    expected = [0.001 + 0.099 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert seen == pytest.approx(expected) and h["lr"] == pytest.approx(expected)
    seen, _, _ = lrs_seen(xy, CosineDecay(T_max=2), epochs=4)
    assert seen == pytest.approx([0.1, 0.05, 0.0, 0.0])


def test_function_and_object_schedules(xy):
    seen, _, _ = lrs_seen(xy, LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr), epochs=3)
    assert seen == pytest.approx([0.1, 0.05, 0.025])

    class Halve:  # anything with step() that sets the groups' lr, as PyTorch's schedulers
        def __init__(self, opt):
            self.opt = opt

        def step(self):
            for g in self.opt.param_groups:
                g["lr"] /= 2

    x, y = xy
    model, loss_fn, opt = make(0, 0.1)
    h = fit(model, x, y, loss_fn=loss_fn, optimizer=opt, epochs=3, batch_size=64, verbose=0,
            callbacks=[LearningRateScheduler(Halve(opt))])
    assert h["lr"] == pytest.approx([0.1, 0.05, 0.025])
    with pytest.raises(ValueError, match="learning rate"):
        lrs_seen(xy, LearningRateScheduler(lambda e, lr: float("nan")), epochs=1)


def test_history_json_roundtrip(xy, tmp_path):
    _, _, h = run(xy, epochs=2, validation_data=xy)
    text = h.to_json(tmp_path / "h.json")
    for back in (History.from_json(tmp_path / "h.json"), History.from_json(text)):
        assert back.history == h.history and back.epoch == h.epoch and back.params == h.params
