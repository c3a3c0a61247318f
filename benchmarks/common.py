"""Helpers shared by the benchmark scripts: timing and table printing."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """Run ``fn`` once; return (seconds, result)."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def interleaved(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds of each function, run in turn ``rounds`` times (fair on a noisy machine)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(timed(fn)[0])
    return {k: statistics.median(v) for k, v in times.items()}


def table(rows: list[dict], columns: list[str]) -> str:
    """A Markdown table of ``rows`` with ``columns``."""
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
