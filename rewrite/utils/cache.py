"""Where cached files live, and the key that ties a cache entry to a model.

Usage::

    root = cache_dir()                         # $REWRITE_CACHE or ~/.cache/rewrite
    key = model_key(G)                         # weights fingerprint + sampling settings
    key = layer_key(G, "main.6")               # what main.6's keys depend on + sampling
    path = root / "samples" / key / "0-15.npy"
    arr = read_cached_array(path, np.uint8, (16, 64, 64, 3))   # ValueError: refuse, recompute
"""

from __future__ import annotations

import os
import sys
import tokenize
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import CacheError
from .fileio import _writable_folder

if TYPE_CHECKING:
    from ..models.base import Generator


def cache_dir() -> Path:
    """The cache root: ``$REWRITE_CACHE`` or ``~/.cache/rewrite``."""
    env = os.environ.get("REWRITE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rewrite"


def _how_to_fix() -> str:
    env = os.environ.get("REWRITE_CACHE")
    if env:
        return (
            f"REWRITE_CACHE is set to {env!r}: point it at a writable folder (it is "
            "created if missing), or unset it to use ~/.cache/rewrite"
        )
    return "set REWRITE_CACHE to a writable folder"


def writable_cache_folder(
    folder: Path | None = None, what: str = "write to the cache", hint: str = ""
) -> Path:
    """``folder`` (default: the cache root), created, for work that must store a file in
    the cache (a fetched model); unlike :func:`cache_usable` there is no going on without.

    Raises:
        CacheError: the folder cannot be made or written (``REWRITE_CACHE`` names a file, a
            read-only place, ...), naming the variable and the fix; ``hint`` is added.
    """
    root = cache_dir()
    folder = root if folder is None else folder
    reason = _writable_folder(folder)
    if reason is None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            reason = f"{e.strerror or e}"
    if reason is not None:
        raise CacheError(
            f"cannot {what}: the cache folder {root} cannot be written "
            f"({reason}); {_how_to_fix()}{hint}"
        )
    return folder


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
        print(
            f"warning: the cache folder {root} cannot be written ({reason}); {what} are "
            f"computed but not cached. To keep them, {_how_to_fix()}",
            file=sys.stderr,
        )
    return False


def model_key(G: Generator) -> str:
    """The cache key of what ``G`` renders: its weight fingerprint plus its sampling
    settings (:meth:`Generator.sampling_tag`: truncation, class, noise), so an edited or
    differently sampled model never reads another's cached statistics or samples."""
    return G.fingerprint() + G.sampling_tag()


def layer_key(G: Generator, layer: str) -> str:
    """The cache key of ``layer``'s statistics: the fingerprint of the weights its keys
    depend on (:meth:`Generator.key_fingerprint`) plus the sampling settings. An edit of
    ``layer`` itself or of a later layer keeps the key."""
    return G.key_fingerprint(layer) + G.sampling_tag()


def read_cached_array(path: str | os.PathLike, dtype, shape: tuple[int, ...]) -> np.ndarray:
    """The array in the ``.npy`` cache entry ``path``, if it holds ``dtype`` values of
    ``shape`` (finite ones, for floats). The header is checked before any value is read,
    so a file declaring another shape (terabytes, say) is refused without allocating it.

    Raises:
        ValueError: what the file holds instead, or why it cannot be read; the caller
            refuses the entry and computes it again.
    """
    fmt = np.lib.format
    with open(path, "rb") as f:
        version = fmt.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"it cannot be read (.npy format version {version})")
        try:
            got_shape, _, got_dtype = (
                fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            )(f)
        except (SyntaxError, tokenize.TokenError, TypeError) as e:
            # numpy parses the header as a Python literal: damage there surfaces as these.
            raise ValueError(f"its .npy header cannot be read ({type(e).__name__})") from None
        if got_dtype != np.dtype(dtype) or got_shape != tuple(shape):
            raise ValueError(
                f"it holds {got_dtype} {got_shape}, not {np.dtype(dtype)} {tuple(shape)}"
            )
        f.seek(0)
        try:
            arr = np.load(f, allow_pickle=False)
        except (ValueError, EOFError) as e:
            raise ValueError(f"it cannot be read ({e})") from None
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("it holds NaN or infinite values")
    return arr
