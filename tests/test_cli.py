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
    for command in ("train", "info", "bench"):
        assert command in r.stdout
    assert r.stderr == ""


def test_train_help_lists_every_option():
    r = run("train", "--help")
    assert r.returncode == 0, r.stderr
    for option in ("--epochs", "--batch-size", "--lr", "--momentum", "--threads", "--data", "--seed", "--limit"):
        assert option in r.stdout, option
    assert "default: 2" in r.stdout  # epochs


def test_no_command_prints_usage():
    r = run()
    assert r.returncode == 2
    assert "usage:" in r.stderr and "train" in r.stderr


def test_info():
    import pycnn

    r = run("info")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"pycnn {pycnn.__version__}")
    assert "threads:" in r.stdout


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
        "import pathlib, sys, pycnn.data as d; from pycnn.__main__ import main; "
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
