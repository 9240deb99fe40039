"""The bench's statistics: the spread it prints next to each median and the load of other processes."""
from __future__ import annotations

import sys
import time

import pytest

from pycnn.bench.timing import OtherLoad, _cpu_seconds, spread


def test_spread_is_half_the_interquartile_range_over_the_median():
    # quantiles (exclusive method) of 1..9: q1 = 2.5, median 5, q3 = 7.5 -> (7.5 - 2.5) / 2 / 5
    assert spread([float(v) for v in range(1, 10)]) == pytest.approx(0.5)
    assert spread([2.0] * 8) == 0.0
    assert spread([1.0, 100.0, 3.0]) == 0.0  # too few samples to say


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_other_load_does_not_count_this_process():
    load = OtherLoad()
    before, t0 = _cpu_seconds(), time.perf_counter()
    load.start()
    end = time.perf_counter() + 0.5
    while time.perf_counter() < end:  # this process keeps one core busy
        pass
    cores = load.stop()
    after, wall = _cpu_seconds(), time.perf_counter() - t0
    all_cores = (after[0] - before[0]) / wall
    own_cores = (after[1] - before[1]) / wall
    # The spin really ran (clock ticks are 10 ms: 0.5 s is 50 of them); on a machine
    # shared with other busy processes it may get well under a whole core.
    assert own_cores > 0.2
    assert cores is not None and cores >= 0.0
    # The spin is left out: what remains is the machine's total minus this process.
    assert cores == pytest.approx(max(0.0, all_cores - own_cores), abs=0.1)
