"""``bench --memory``: the peak RSS of one training epoch, pycnn vs PyTorch, each in a fresh process."""
from __future__ import annotations

import os
import sys
from typing import Optional

from .report import format_table


def peak_rss_mib(which: str, threads: Optional[int] = None) -> float:
    """Peak RSS (MiB) of one training epoch in a fresh process (Linux); which is 'pycnn', 'torch' or 'data'.

    The process runs :mod:`pycnn.bench.rss_probe`.
    """
    import subprocess

    threads = threads or os.cpu_count() or 1
    out = subprocess.run([sys.executable, "-m", f"{__package__}.rss_probe", which, str(threads)], check=True,
                         capture_output=True, text=True).stdout
    return int(out.split()[-1]) / 1024.0


def memory_table(threads: Optional[int] = None, include_torch: bool = True) -> str:
    """The peak-RSS comparison as a small table."""
    runs = ["data", "pycnn"] + (["torch"] if include_torch else [])
    rss = {w: peak_rss_mib(w, threads) for w in runs}
    rows = [["data only (60,000 images resident)", f"{rss['data']:.0f}", "-"]]
    for w in runs[1:]:
        rows.append([f"{w}: one training epoch", f"{rss[w]:.0f}", f"{rss[w] - rss['data']:.0f}"])
    return format_table(rows, ["peak RSS", "MiB", "over data"])
