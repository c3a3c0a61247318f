"""Layer statistics kept in memory and shared between threads: a statistics provider for
long-lived sessions (the app).

Each entry (the layer's key fingerprint with its sampling tag, layer, samples, seed) is
computed once, or read from the disk cache, and kept: a second caller asking for an
entry being computed waits for it, seeing its progress. A caller that gives up (its
callback raises, e.g. a cancelled edit) stops the computation; nothing is kept, and the
next caller computes it afresh.

Usage::

    pool = StatsPool()
    session = Rewriter(G, stats_provider=pool)       # every statistics request goes here
    pool.running()      # [{"layer": "main.6", "done": 3400, "total": 10000}]
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..models.base import Generator
from ..utils.cache import layer_key
from .layer_stats import DEFAULT_STATS_SEED, LayerStats, layer_stats


class _Pending:
    """Statistics being computed: progress, and an event set when done (or failed)."""

    def __init__(self, layer: str, total: int):
        self.layer, self.done, self.total = layer, 0, total
        self.finished = threading.Event()


class StatsPool:
    """In-memory statistics, computed once per entry (see the module's docstring).

    Args:
        on_ready: called as ``on_ready(layer, samples, seed)`` whenever an entry is
            returned (the app marks its layers ready with it).
    """

    def __init__(self, on_ready: Callable[[str, int, int], None] | None = None):
        self.on_ready = on_ready
        self._stats: dict[tuple, LayerStats] = {}
        self._pending: dict[tuple, _Pending] = {}
        self._lock = threading.Lock()

    def __call__(
        self,
        G: Generator,
        layer: str,
        samples: int,
        seed: int = DEFAULT_STATS_SEED,
        callback: Callable[[int, int], None] | None = None,
    ) -> LayerStats:
        """Statistics of ``layer`` of ``G`` (whose weights must not change meanwhile):
        kept, or computed now (``callback(done, total)`` after each batch), or being
        computed by another caller (``callback`` every 0.1 s while waiting). An exception
        from ``callback`` stops the wait or the computation."""
        stats = self._get(G, layer, samples, seed, callback)
        if self.on_ready is not None:
            self.on_ready(layer, samples, seed)
        return stats

    def _get(self, G, layer, samples, seed, callback) -> LayerStats:
        key = (layer_key(G, layer), layer, samples, seed)
        while True:
            with self._lock:
                if key in self._stats:
                    return self._stats[key]
                pending = self._pending.get(key)
                if pending is None:
                    pending = self._pending[key] = _Pending(layer, samples)
                    break
            while not pending.finished.wait(0.1):  # another caller computes it
                if callback:
                    callback(pending.done, pending.total)

        def step(done, total):
            pending.done, pending.total = done, total
            if callback:
                callback(done, total)

        try:
            stats = layer_stats(G, layer, n=samples, seed=seed, progress=False, callback=step)
            with self._lock:
                self._stats[key] = stats
            return stats
        finally:
            with self._lock:
                self._pending.pop(key, None)
            pending.finished.set()

    def running(self) -> list[dict]:
        """Statistics being computed now: layer, samples done, samples in all."""
        with self._lock:
            return [
                {"layer": p.layer, "done": p.done, "total": p.total} for p in self._pending.values()
            ]
