"""Timing: :func:`measure` runs implementations in interleaved rounds after warm-up.

Method: every implementation of a case is warmed up first (PyTorch's first
calls are several times slower than its steady state), then timed in
interleaved rounds -- one call of each implementation per round, the order
rotating -- so that the machine's drift and noise hit all of them alike. The
median over rounds is reported. Each timed call is preceded by a short pause
and, for calls under 20 ms, one untimed call: after a call, a library's idle
threads keep spinning on the cores for a while (libgomp about 10 ms,
OpenBLAS about 100 ms by default), which would slow whichever library runs
next, so the pause lets them stop and the untimed call wakes the timed
library's own threads. OpenBLAS's spin is also cut to almost nothing
(``OPENBLAS_THREAD_TIMEOUT``, set by :mod:`pycnn.bench.cli`) when NumPy is
imported after the options are read; without both measures PyTorch, which
most often ran right after the NumPy baseline, measured up to 2x slower than
it is. The NumPy baseline can be slow on large cases, so its rounds are
capped by a time budget (at least 3).

A busy machine shows as quantised times, not as a uniform slow-down: when
another process holds one of the cores, a parallel region's barrier waits
for the thread that lost its core until the scheduler gives it back, a
multiple of the kernel's time slice (4 ms ticks here, so 8, 12, 16 ms). That
was why rows of one ``bench --quick`` run read 16.00 ms for both pycnn and
NumPy (SGEMM 256^3: 16.00 ms, then 0.215 ms in the next run): the pause
before each call is not timed (``perf_counter`` brackets the call alone).
So every case also records the CPU time other processes used while it ran
(:class:`OtherLoad`), and the table prints each median's spread and flags
cases measured on a busy machine.
"""
from __future__ import annotations

import gc
import os
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

#: Calls shorter than this get an untimed call right before the timed one (see measure).
_WAKE_CALL_BELOW_S = 0.02


def _time_once(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(
    fns: Dict[str, Callable[[], object]],
    rounds: int,
    warmup_s: float = 0.3,
    min_warmup: int = 2,
    budgets_s: Optional[Dict[str, float]] = None,
    settle_s: float = 0.015,
) -> Dict[str, List[float]]:
    """Time each callable in interleaved rounds; return {impl: [seconds per round]}.

    Each callable is first warmed up for ``min_warmup`` calls and at least
    ``warmup_s`` seconds (at most 20 calls). ``budgets_s[impl]`` caps the
    rounds of a slow implementation to about that many seconds (at least 3
    rounds, or ``rounds`` if fewer). Before each timed call the thread
    sleeps ``settle_s`` (so other libraries' idle threads stop spinning) and,
    when the call takes under ``_WAKE_CALL_BELOW_S``, makes one untimed call
    (so this library's own threads are awake, as in a steady loop).
    """
    budgets_s = budgets_s or {}
    limit, warm = {}, {}
    for name, fn in fns.items():
        start = time.perf_counter()
        calls, last = 0, 0.0
        while calls < min_warmup or (time.perf_counter() - start < warmup_s and calls < 20):
            last = _time_once(fn)
            calls += 1
            if name in budgets_s and last * min_warmup > budgets_s[name]:
                break  # a very slow baseline: its warm-up already cost enough
        warm[name] = last < _WAKE_CALL_BELOW_S
        limit[name] = rounds
        if name in budgets_s and last > 0:
            limit[name] = max(min(3, rounds), min(rounds, int(budgets_s[name] / last)))
    times: Dict[str, List[float]] = {name: [] for name in fns}
    names = list(fns)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            # Rotate the order so no implementation always runs first (or right after another).
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                if len(times[name]) < limit[name]:
                    if settle_s > 0:
                        time.sleep(settle_s)
                    if warm[name]:
                        fns[name]()
                    times[name].append(_time_once(fns[name]))
    finally:
        if gc_was_enabled:
            gc.enable()
    return times


def spread(times: Sequence[float]) -> float:
    """Half the interquartile range relative to the median (0.05 = +-5%); 0 for fewer than 4 samples."""
    if len(times) < 4:
        return 0.0
    q1, _, q3 = statistics.quantiles(times, n=4)
    med = statistics.median(times)
    return (q3 - q1) / 2 / med if med > 0 else 0.0


def _cpu_seconds() -> Optional[tuple]:
    """(CPU seconds all processes ran, CPU seconds this process ran), from /proc; None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system = (int(v) for v in fields[:3])
    irq, softirq, steal = (int(v) for v in fields[5:8])
    busy = user + nice + system + irq + softirq + steal
    mine = int(own[11]) + int(own[12])  # utime, stime (fields 14 and 15 of stat)
    return busy / hz, mine / hz


class OtherLoad:
    """How busy other processes kept the machine between :meth:`start` and :meth:`stop`, in cores.

    ``cores`` is the CPU time all other processes (and the hypervisor's stolen
    time) used, divided by the wall time: 0.0 on an idle machine, 1.0 when
    another process held a whole core. None where /proc is not available.
    """

    def __init__(self) -> None:
        self.cores: Optional[float] = None
        self._t0 = 0.0
        self._cpu0: Optional[tuple] = None

    def start(self) -> None:
        self._t0, self._cpu0 = time.perf_counter(), _cpu_seconds()

    def stop(self) -> Optional[float]:
        cpu1, wall = _cpu_seconds(), time.perf_counter() - self._t0
        if self._cpu0 is None or cpu1 is None or wall <= 0:
            return None
        other = (cpu1[0] - self._cpu0[0]) - (cpu1[1] - self._cpu0[1])
        self.cores = max(0.0, other / wall)
        return self.cores
