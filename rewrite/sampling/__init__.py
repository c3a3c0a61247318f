"""Sampling: batched generation, rendered-sample cache, resumable bulk sampling, seed lists.

``generate`` and ``batches`` are re-exported for ``from rewrite.sampling import generate``.
"""

from .generate import batches, generate

__all__ = ["batches", "generate"]
