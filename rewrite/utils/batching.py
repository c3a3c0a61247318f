"""Splitting a list of sample indices into batches (used by sampling and by the ranks of a
distributed run alike)."""

from __future__ import annotations

from collections.abc import Sequence


def batches(indices: Sequence[int], batch_size: int) -> list[list[int]]:
    """Split ``indices`` into consecutive lists of at most ``batch_size``."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    idx = list(indices)
    return [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]
