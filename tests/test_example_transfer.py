"""examples/fashion_mnist_transfer.py: the class split and relabelling, and the script's quick mode end to end
on the installed Fashion-MNIST (pretrain on five classes, fine-tune a new head on the other five)."""
from __future__ import annotations

import re

import fashion_mnist_transfer as ft
import numpy as np
import pytest

from test_train import fashion_mnist_or_skip


def test_select_picks_and_renumbers_classes():
    y = np.array([5, 0, 7, 5, 9, 7, 5, 2])
    x = np.arange(len(y)) * 10
    xs, ys = ft.select(x, y, (5, 7, 9))
    np.testing.assert_array_equal(xs, [0, 20, 30, 40, 50, 60])
    np.testing.assert_array_equal(ys, [0, 1, 0, 2, 1, 0])
    xs, ys = ft.select(x, y, (5, 7), per_class=2, rng=np.random.default_rng(0))
    assert sorted(ys.tolist()) == [0, 0, 1, 1] and set(xs // 10) <= {0, 2, 3, 5, 6}
    with pytest.raises(ValueError, match="has only 1 images"):
        ft.select(x, y, (9,), per_class=2, rng=np.random.default_rng(0))


@pytest.mark.slow
def test_transfer_script_quick_mode(capsys):
    fashion_mnist_or_skip()
    results = ft.main(["--quick"])
    out = capsys.readouterr().out
    printed = dict(re.findall(r"^  (fine-tuned head, frozen backbone|the same network from scratch)"
                              r".*: test accuracy ([0-9.]+)", out, re.M))
    assert set(printed) == {"fine-tuned head, frozen backbone", "the same network from scratch"}, out
    assert float(printed["fine-tuned head, frozen backbone"]) == pytest.approx(results["finetune"], abs=1e-4)
    assert float(printed["the same network from scratch"]) == pytest.approx(results["scratch"], abs=1e-4)
    assert set(results) == {"finetune", "scratch"}  # quick mode leaves the third variant out
    assert all(0.0 <= a <= 1.0 for a in results.values())
    assert results["finetune"] > 0.3  # five classes: chance is 0.2; the frozen features carry information
