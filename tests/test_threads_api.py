"""pycnn.threads(n), and NumPy's BLAS threads limited (threadpoolctl) or warned about while fit trains."""
import sys
import threading
import warnings

import numpy as np
import pytest

import pycnn
from pycnn import _blas, data, nn, optim
from pycnn.train import Callback, fit


def test_threads_sets_restores_and_nests():
    before = pycnn.get_num_threads()
    with pycnn.threads(1):
        assert pycnn.get_num_threads() == 1
        with pycnn.threads(3):
            assert pycnn.get_num_threads() == 3
        assert pycnn.get_num_threads() == 1
    assert pycnn.get_num_threads() == before


def test_threads_restores_on_error_and_checks_first():
    before = pycnn.get_num_threads()
    with pytest.raises(KeyError):
        with pycnn.threads(1):
            raise KeyError("boom")
    assert pycnn.get_num_threads() == before
    for bad, exc in ((0, ValueError), (1.5, TypeError), (10**6, ValueError)):
        with pytest.raises(exc):
            with pycnn.threads(bad):
                pass
        assert pycnn.get_num_threads() == before


def test_threads_from_several_python_threads_restore_the_count():
    before = pycnn.get_num_threads()
    errors = []
    x = np.random.default_rng(0).standard_normal((4, 2, 9, 9)).astype(np.float32)
    conv = nn.Conv2d(2, 3, 3)
    want = conv(x).copy()

    def work(n):
        try:
            for _ in range(20):
                with pycnn.threads(n):
                    np.testing.assert_allclose(conv.forward(x), want, rtol=1e-5, atol=1e-5)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(n,)) for n in (1, 2, 1, 2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert pycnn.get_num_threads() == before


def _tiny_fit(callbacks=()):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 4, 4)).astype(np.float32)
    y = rng.integers(0, 2, 16)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    fit(model, x, y, loss_fn=nn.CrossEntropyLoss(), optimizer=optim.SGD(model.parameters(), lr=0.1),
        verbose=0, callbacks=callbacks)


def test_fit_limits_numpy_blas_to_one_thread_while_training():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    if not blas or max(i["num_threads"] for i in blas) < 2:
        pytest.skip("NumPy's BLAS runs one thread here already")
    before = [i["num_threads"] for i in blas]

    class Probe(Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.inside = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

    probe = Probe()
    with pycnn.threads(2):
        _tiny_fit([probe])
    assert probe.inside == [1] * len(before)
    assert [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"] == before


def test_without_threadpoolctl_fit_warns_once_about_openblas(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # `import threadpoolctl` now raises ImportError
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    monkeypatch.setattr(_blas, "_warned", False)
    monkeypatch.setattr(_blas, "_numpy_blas_name", lambda: "scipy-openblas")
    with pycnn.threads(2):
        with pytest.warns(RuntimeWarning, match="OPENBLAS_NUM_THREADS=1"):
            _tiny_fit()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _tiny_fit()  # once per process
    monkeypatch.setattr(_blas, "_warned", False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    with pycnn.threads(2), warnings.catch_warnings():
        warnings.simplefilter("error")
        _tiny_fit()  # the advice already followed
