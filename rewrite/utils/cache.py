"""Where cached files live, and the key that ties a cache entry to a model.

Usage::

    root = cache_dir()                         # $REWRITE_CACHE or ~/.cache/rewrite
    key = model_key(G)                         # weights fingerprint + sampling settings
    path = root / "samples" / key / "0-15.npy"
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..models.base import Generator


def cache_dir() -> Path:
    """The cache root: ``$REWRITE_CACHE`` or ``~/.cache/rewrite``."""
    env = os.environ.get("REWRITE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rewrite"


def model_key(G: "Generator") -> str:
    """The cache key of what ``G`` renders: its weight fingerprint plus its sampling
    settings (truncation, noise), so an edited or differently sampled model never
    reads another's cached statistics or samples."""
    return G.fingerprint() + G.sampling_tag()
