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


def fixture_path(name: str):
    """Path of a shared reference fixture: $REWRITE_FIXTURES, ../shared/fixtures next to the
    checkout, or next to the checkout this one was cloned from. None if not found."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    places = [Path(os.environ["REWRITE_FIXTURES"])] if os.environ.get("REWRITE_FIXTURES") else []
    places.append(root.parent / "shared" / "fixtures")
    try:
        origin = subprocess.run(["git", "-C", str(root), "config", "remote.origin.url"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        if origin and Path(origin).is_dir():
            places.append(Path(origin).resolve().parent / "shared" / "fixtures")
    except OSError:
        pass
    for place in places:
        if (place / name).is_file():
            return place / name
    return None


def fixture_spec(family: str, layer: str) -> dict | None:
    """A copy-paste edit spec (JSON form) on a shared tiny fixture model, or None without it."""
    name = {"stylegan2": "stylegan2_rosinality_tiny64.pt",
            "proggan": "proggan_netdissect_tiny64.pth",
            "stylegan2-ada": "stylegan2ada_tiny64.pkl",
            "stylegan3": "stylegan3t_tiny64.pkl"}[family]
    path = fixture_path(name)
    if path is None:
        return None
    return {"version": 1, "name": f"{family}-tiny64 {layer}", "model": str(path), "layer": layer,
            "kind": "copy-paste", "stats": {"samples": 1000},
            "copy": {"sample": 1, "mask": {"rect": [16, 16, 32, 32]}},
            "paste": {"sample": 2, "mask": {"rect": [32, 32, 48, 48]}},
            "context": [{"sample": 3, "mask": {"rect": [16, 16, 48, 32]}},
                        {"sample": 4, "mask": {"rect": [0, 32, 32, 64]}}]}
