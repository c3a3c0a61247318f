"""Key and value statistics of a model layer over many samples, cached on disk.

The samples are indices ``0..n-1`` of the latent stream with seed ``seed``
(default 0, a stream apart from the gallery's, so statistics do not depend on
the samples a user edits). Results are cached under
``<cache>/stats/<key fingerprint><sampling tag>/<layer>-n<n>-seed<seed>.safetensors``:
the key fingerprint covers only the weights the layer's keys depend on (those
before it, :meth:`Generator.key_fingerprint`) and the tag names settings such as
StyleGAN2's truncation. A second run is instant; an edit of the same or a later
layer reuses the entry, an edit of an earlier layer does not.

The value moments (each unit's mean and RMS, used only to rank units for erase
goals) are those of the model the entry was computed on: after an edit of the
same layer they describe its output before that edit.

Usage::

    stats = layer_stats(G, "main.6", n=10000)
    C = stats.keys.moment()                   # float64 [256, 256]
    rms = stats.values.rms()                  # float64 [128]
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ..memory.stats import SecondMoment, UnitMoments
from ..models.base import Generator
from ..utils.cache import cache_dir, cache_usable, layer_key
from ..utils.distributed import DistContext
from ..utils.errors import CacheError, OutputPathError
from ..utils.fileio import atomic_path

#: Samples used for statistics unless asked otherwise.
DEFAULT_STATS_SAMPLES = 10_000
#: Latent stream of the statistics samples.
DEFAULT_STATS_SEED = 0
#: The ``format`` field of a statistics file.
STATS_FORMAT = "rewrite.layer_stats.v1"


@dataclasses.dataclass
class LayerStats:
    """Statistics of one layer.

    Attributes:
        layer: layer name.
        n_samples: number of samples.
        seed: latent stream of the samples.
        fingerprint: the key fingerprint (:func:`rewrite.utils.cache.layer_key`) when computed.
        keys: second moment of the key vectors (every position of every sample).
        values: per-unit mean and mean square of the values.
        source: how these were obtained this time (``computed``, ``read from cache``, or
            ``recomputed: <why the cache entry was refused>``); not saved.
    """

    layer: str
    n_samples: int
    seed: int
    fingerprint: str
    keys: SecondMoment
    values: UnitMoments
    source: str = dataclasses.field(default="computed", compare=False)

    def merge(self, other: LayerStats) -> LayerStats:
        """Combine with statistics of other samples of the same layer (in place)."""
        if (other.layer, other.fingerprint) != (self.layer, self.fingerprint):
            raise ValueError("can only merge statistics of the same layer of the same model")
        self.keys.merge(other.keys)
        self.values.merge(other.values)
        self.n_samples += other.n_samples
        return self

    def save(self, path: str | Path) -> Path:
        """Write to a safetensors file atomically."""
        tensors = {f"keys.{k}": v for k, v in self.keys.state_dict().items()}
        tensors.update({f"values.{k}": v for k, v in self.values.state_dict().items()})
        tensors = {k: v.contiguous() for k, v in tensors.items()}
        meta = {
            "layer": self.layer,
            "n_samples": str(self.n_samples),
            "seed": str(self.seed),
            "fingerprint": self.fingerprint,
            "format": STATS_FORMAT,
            "sha256": _digest(tensors),
        }
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return Path(path)

    def problems(
        self, layer: str, n: int, seed: int, fingerprint: str, in_channels: int, out_channels: int
    ) -> list[str]:
        """Why these statistics do not belong to the requested entry (empty if they do):
        another layer, sample count, seed or model, wrong sizes, non-finite numbers."""
        p = []
        if (self.layer, self.n_samples, self.seed, self.fingerprint) != (
            layer,
            n,
            seed,
            fingerprint,
        ):
            p.append(
                f"it holds {self.layer} n={self.n_samples} seed={self.seed} of model "
                f"{self.fingerprint}"
            )
        if (self.keys.dim, self.values.channels) != (in_channels, out_channels):
            p.append(
                f"its sizes {self.keys.dim}/{self.values.channels} are not the layer's "
                f"{in_channels}/{out_channels}"
            )
        tensors = list(self.keys.state_dict().values()) + list(self.values.state_dict().values())
        if any(t.is_floating_point() and not torch.isfinite(t).all() for t in tensors):
            p.append("it holds NaN or infinite numbers")
        if self.keys.count < 1 or self.values.count < 1:
            p.append(f"it counts {self.keys.count} key and {self.values.count} value positions")
        if (self.values.sum_sq < 0).any():
            p.append("it holds negative sums of squares")
        return p

    @classmethod
    def load(cls, path: str | Path) -> LayerStats:
        """Read a file written by :meth:`save`.

        Raises:
            CacheError: the file is not such a file, or is damaged (the message says how:
                unreadable, checksum, metadata, tensors of another name, type or size).
        """
        try:
            return _read_stats(Path(path))
        except ValueError as e:
            raise CacheError(
                f"the statistics file {path} cannot be used: {e}. Delete it; "
                "the statistics are computed again when needed"
            ) from None

    def summary(self) -> dict:
        """Figures a person may want to see: sizes, condition number, value RMS range."""
        c = self.keys.moment()
        evals = torch.linalg.eigvalsh(c)
        rms = self.values.rms()
        return {
            "layer": self.layer,
            "samples": self.n_samples,
            "key_positions": self.keys.count,
            "key_dim": self.keys.dim,
            "condition_number": float(evals[-1] / evals[0].clamp_min(1e-300)),
            "value_units": self.values.channels,
            "value_rms_min": float(rms.min()),
            "value_rms_max": float(rms.max()),
        }


#: The tensors of a statistics file: dtype and number of axes.
_STATS_TENSORS = {
    "keys.count": (torch.int64, 0),
    "keys.sum": (torch.float64, 1),
    "keys.sum_outer": (torch.float64, 2),
    "values.count": (torch.int64, 0),
    "values.sum": (torch.float64, 1),
    "values.sum_sq": (torch.float64, 1),
}


def _meta_int(meta: dict, key: str) -> int:
    text = meta.get(key)
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{1,19}", text):
        raise ValueError(
            f"its metadata {key!r} is {text if text is None else text[:40]!r}, not a whole number"
        )
    return int(text)


def _read_stats(path: Path) -> LayerStats:
    """The statistics in ``path``; ValueError saying what is wrong with a damaged file."""
    try:
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
            # safe_open has keys() but cannot be iterated itself
            t = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as e:
        raise ValueError(f"it is not a readable safetensors file ({e})") from None
    if set(t) != set(_STATS_TENSORS):
        raise ValueError(f"it holds the tensors {sorted(t)[:8]}, not {sorted(_STATS_TENSORS)}")
    for name, (dtype, ndim) in _STATS_TENSORS.items():
        if t[name].dtype != dtype or t[name].ndim != ndim:
            raise ValueError(
                f"its tensor {name} is {t[name].dtype} {tuple(t[name].shape)}, "
                f"not {ndim}-axis {dtype}"
            )
    if meta.get("format", STATS_FORMAT) != STATS_FORMAT:
        raise ValueError(f"its format is {meta['format'][:40]!r}, not {STATS_FORMAT!r}")
    if "sha256" in meta and meta["sha256"] != _digest(t):
        raise ValueError("its content does not match the checksum written with it")
    d, c = t["keys.sum"].shape[0], t["values.sum"].shape[0]
    if t["keys.sum_outer"].shape != (d, d) or t["values.sum_sq"].shape != (c,):
        raise ValueError(
            f"its sizes do not agree: keys.sum {d}, keys.sum_outer "
            f"{tuple(t['keys.sum_outer'].shape)}, values.sum {c}, values.sum_sq "
            f"{tuple(t['values.sum_sq'].shape)}"
        )
    for key in ("layer", "fingerprint"):
        if not isinstance(meta.get(key), str):
            raise ValueError(f"its metadata has no {key!r}")
    return LayerStats(
        layer=meta["layer"],
        n_samples=_meta_int(meta, "n_samples"),
        seed=_meta_int(meta, "seed"),
        fingerprint=meta["fingerprint"],
        keys=SecondMoment.from_state_dict(
            {k[5:]: v for k, v in t.items() if k.startswith("keys.")}
        ),
        values=UnitMoments.from_state_dict(
            {k[7:]: v for k, v in t.items() if k.startswith("values.")}
        ),
    )


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors' names and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def stats_cache_path(fingerprint: str, layer: str, n: int, seed: int) -> Path:
    """Where the statistics for this model, layer, sample count and seed are cached."""
    return cache_dir() / "stats" / fingerprint / f"{layer}-n{n}-seed{seed}.safetensors"


@torch.no_grad()
def accumulate_layer_stats(
    G: Generator,
    layer: str,
    indices,
    seed: int = DEFAULT_STATS_SEED,
    batch_size: int = 100,
    progress: bool | None = None,
    fingerprint: str | None = None,
    dist: DistContext | None = None,
    callback=None,
) -> LayerStats:
    """Accumulate statistics of ``layer`` over sample ``indices`` of stream ``seed`` (no cache).

    ``callback(done, total)``, if given, is called after each batch with the samples done
    so far (this rank's); an exception it raises (e.g. to cancel) stops the work.

    With a multi-process ``dist``, each rank takes every ``world``-th batch and the
    float64 sums are added over ranks (``all_reduce``); every rank returns the total.
    """
    dist = dist or DistContext()
    info = G.layer(layer)
    keys, values = SecondMoment(info.in_channels), UnitMoments(info.out_channels)
    indices = list(indices)
    chunks = dist.my_batches(indices, batch_size)
    show = (len(chunks) > 1 if progress is None else progress) and dist.is_main
    total = sum(len(c) for c in chunks)
    desc = f"stats {layer}" + (f" (rank 0 of {dist.world})" if dist.enabled else "")
    done = 0
    with tqdm(total=total, unit="sample", desc=desc, disable=not show) as bar:
        for chunk in chunks:
            split = G.split(G.latents(chunk, seed=seed), layer)
            keys.add_feature_map(split.keys)
            values.add_feature_map(split.values)
            bar.update(len(chunk))
            done += len(chunk)
            if callback is not None:
                callback(done, total)
    if dist.enabled:
        for acc, names in ((keys, ("sum", "sum_outer")), (values, ("sum", "sum_sq"))):
            for name in names:
                setattr(acc, name, dist.all_reduce_sum(getattr(acc, name)))
            acc.count = int(dist.all_reduce_sum(torch.tensor(acc.count, dtype=torch.float64)))
    return LayerStats(layer, len(indices), seed, fingerprint or layer_key(G, layer), keys, values)


def layer_stats(
    G: Generator,
    layer: str,
    n: int = DEFAULT_STATS_SAMPLES,
    seed: int = DEFAULT_STATS_SEED,
    batch_size: int = 100,
    progress: bool | None = None,
    cache: bool = True,
    dist: DistContext | None = None,
    callback=None,
) -> LayerStats:
    """Statistics of ``layer`` over samples ``0..n-1`` of stream ``seed``, from cache if present.

    Args:
        G: the generator (its current weights define the fingerprint).
        layer: an editable layer name.
        n: number of samples.
        seed: latent stream of the samples.
        batch_size: samples per forward pass.
        progress: progress bar (None: when there is more than one batch).
        cache: read and write the on-disk cache.
        dist: shard the samples over the ranks of a ``torchrun`` run (rank 0 writes
            the cache).
        callback: ``callback(done, total)`` after each batch when computing (not called on
            a cache hit); an exception it raises stops the work and nothing is cached.
    """
    dist = dist or DistContext()
    G.layer(layer)
    if n < 1:
        raise ValueError(f"need at least one sample for statistics, got n={n}")
    fp = layer_key(G, layer)
    path = stats_cache_path(fp, layer, n, seed)
    refused = ""
    if cache and path.is_file():
        info = G.layer(layer)
        try:
            cached = _read_stats(path)
            why = cached.problems(layer, n, seed, fp, info.in_channels, info.out_channels)
        except Exception as e:  # noqa: BLE001 - unreadable: a damaged entry is never trusted
            why = [f"it cannot be read ({e})"]
        if not why:
            cached.source = "read from cache"
            return cached
        refused = "; ".join(why)
        print(
            f"warning: the cached statistics {path} were refused ({refused}); recomputing",
            file=sys.stderr,
        )
        if dist.is_main:
            path.unlink(missing_ok=True)
    keep = cache and dist.is_main and cache_usable("statistics")
    stats = accumulate_layer_stats(
        G, layer, range(n), seed, batch_size, progress, fp, dist, callback
    )
    if refused:
        stats.source = f"recomputed: the cache entry was refused ({refused})"
    if keep:
        try:
            stats.save(path)
        except OutputPathError as e:  # e.g. the disk filled up: keep the result anyway
            print(f"warning: statistics not cached: {e}", file=sys.stderr)
    return stats


def describe(stats: LayerStats) -> str:
    """A short JSON summary for the command line."""
    return json.dumps(stats.summary(), indent=2)
