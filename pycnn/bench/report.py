"""Formatting of the benchmark tables: milliseconds, GFLOP/s, speed-up ratios, aligned columns."""
from __future__ import annotations

from typing import List, Optional


def format_ms(t: Optional[float]) -> str:
    """Seconds as milliseconds, with fewer decimals the longer they are; ``-`` for None."""
    return "-" if t is None else (f"{t * 1e3:.3f}" if t < 0.01 else f"{t * 1e3:.2f}" if t < 1 else f"{t * 1e3:.0f}")


def format_gflops(flops: float, t: Optional[float]) -> str:
    """The rate of ``flops`` in ``t`` seconds; empty when either is missing (memory-bound cases)."""
    return "" if (t is None or not flops) else f"{flops / t / 1e9:.1f}"


def format_ratio(a: Optional[float], b: Optional[float]) -> str:
    """``a / b`` as ``1.23x``; ``-`` when either is missing."""
    return "-" if (a is None or b is None) else f"{a / b:.2f}x"


def format_table(rows: List[List[str]], header: List[str]) -> str:
    """Aligned columns under ``header`` and a rule: the first left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

    def fmt(r: List[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])
