"""Where cached files live, and the key that ties a cache entry to a model.

Usage::

    root = cache_dir()                         # $REWRITE_CACHE or ~/.cache/rewrite
    key = model_key(G)                         # weights fingerprint + sampling settings
    key = layer_key(G, "main.6")               # what main.6's keys depend on + sampling
    path = root / "samples" / key / "0-15.npy"
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .fileio import _writable_folder

if TYPE_CHECKING:
    from ..models.base import Generator


def cache_dir() -> Path:
    """The cache root: ``$REWRITE_CACHE`` or ``~/.cache/rewrite``."""
    env = os.environ.get("REWRITE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rewrite"


_WARNED: set[str] = set()


def cache_usable(what: str = "results") -> bool:
    """Whether the cache folder can be written; if not, say so once on stderr (which
    folder, why, and that ``what`` is computed but not kept) and return False. Call it
    before the work, so nothing computed is lost to a failed write."""
    root = cache_dir()
    reason = _writable_folder(root)
    if reason is None:
        return True
    if str(root) not in _WARNED:
        _WARNED.add(str(root))
        print(f"warning: the cache folder {root} cannot be written ({reason}); {what} are "
              "computed but not cached. Set REWRITE_CACHE to a writable folder",
              file=sys.stderr)
    return False


def model_key(G: "Generator") -> str:
    """The cache key of what ``G`` renders: its weight fingerprint plus its sampling
    settings (truncation, noise), so an edited or differently sampled model never
    reads another's cached statistics or samples."""
    return G.fingerprint() + G.sampling_tag()


def layer_key(G: "Generator", layer: str) -> str:
    """The cache key of ``layer``'s statistics: the fingerprint of the weights its keys
    depend on (:meth:`Generator.key_fingerprint`) plus the sampling settings. An edit of
    ``layer`` itself or of a later layer keeps the key."""
    return G.key_fingerprint(layer) + G.sampling_tag()
