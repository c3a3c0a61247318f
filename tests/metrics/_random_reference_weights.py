"""Regenerate the random FID-Inception and VGG16 weights behind the shared fixtures
``fid_inception_reference.npz`` and ``lpips_vgg_reference.npz``, by the deterministic
recipe of ``shared/fixtures/README.md`` (SplitMix64 seeded from sha256 of a tag), and
check them against the checksums stored in each npz."""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

import numpy as np
import pytest
import torch

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(seed: int, n: int) -> np.ndarray:
    """The first ``n`` SplitMix64 outputs for ``seed`` (uint64, arithmetic mod 2^64)."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def uniform(tag: str, n: int) -> np.ndarray:
    """``u(tag, n)``: n float64 values in [-1, 1), exact."""
    k = int.from_bytes(hashlib.sha256(tag.encode("utf-8")).digest()[:8], "little")
    return (splitmix64(k, n) >> np.uint64(40)).astype(np.float64) * 2.0 ** -23 - 1.0


def _tensor(seed: str, key: str, shape, offset: float, scale: float) -> torch.Tensor:
    n = int(np.prod(shape))
    v = uniform(f"{seed}/{key}", n)
    return torch.from_numpy((offset + scale * v).astype(np.float32).reshape(shape))


def _shapes(ref) -> list[tuple[str, tuple[int, ...]]]:
    return [(str(k), tuple(int(s) for s in row if s >= 0))
            for k, row in zip(ref["state_keys"], ref["state_shapes"])]


def inception_state(ref) -> "OrderedDict[str, torch.Tensor]":
    """The random pytorch-fid Inception state dict (566 keys, the real file's order)."""
    seed = str(ref["seed"])
    out = OrderedDict()
    for key, shape in _shapes(ref):
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(0, dtype=torch.int64)
            continue
        if key.endswith("conv.weight"):
            o, i, kh, kw = shape
            params = 0.0, math.sqrt(6.0 / (i * kh * kw))
        elif key == "fc.weight":
            params = 0.0, 1.0 / math.sqrt(2048.0)
        else:
            params = {"bn.weight": (1.0, 0.25), "bn.bias": (0.0, 0.1),
                      "bn.running_mean": (0.0, 0.1), "bn.running_var": (1.0, 0.5),
                      "fc.bias": (0.0, 0.01)}[".".join(key.split(".")[-2:])]
        out[key] = _tensor(seed, key, shape, *params)
    return out


def vgg_state(ref) -> "OrderedDict[str, torch.Tensor]":
    """The random VGG16 ``features.*`` state dict (26 keys)."""
    seed = str(ref["seed"])
    out = OrderedDict()
    for key, shape in _shapes(ref):
        if key.endswith("weight"):
            params = 0.0, math.sqrt(6.0 / (shape[1] * 9))
        else:
            params = 0.0, 0.05
        out[key] = _tensor(seed, key, shape, *params)
    return out


def state_sha256(state) -> str:
    """sha256 over ``key + '\\n' + little-endian raw bytes`` per key, in order."""
    h = hashlib.sha256()
    for key, t in state.items():
        h.update(key.encode() + b"\n")
        h.update(t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes())
    return h.hexdigest()


#: The tolerance of the reference comparisons (relative to each tensor's largest value).
REL = 1e-4


def rel_err(got, ref) -> float:
    """max |got - ref| relative to max |ref| (shapes must agree)."""
    got = got.detach().numpy() if torch.is_tensor(got) else np.asarray(got)
    ref = np.asarray(ref)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    return float(np.abs(got.astype(np.float64) - ref).max() / np.abs(ref).max())


def reference(fixtures_dir, name: str) -> dict:
    """The arrays of shared fixture ``name``; skips the test when it is absent."""
    path = fixtures_dir / name
    if not path.is_file():
        pytest.skip(f"{path.name} not in the shared fixtures")
    return dict(np.load(path))
