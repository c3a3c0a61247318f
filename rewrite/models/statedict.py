"""Helpers every family's loader uses: unwrap a state dict, compare keys and shapes.

Usage::

    state = unwrap_state_dict(obj)                       # bare, wrapped, module.-prefixed
    problems = key_problems(state, expected_keys)        # ["missing keys: ...", ...]
    problems += shape_problems(state, {"layer1.conv.weight": (64, 64, 4, 4)})
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from ..utils.errors import CheckpointError

#: Container keys under which training scripts store a generator's state dict.
WRAPPERS = ("netG_state_dict", "netG", "generator", "G", "state_dict")


def unwrap_state_dict(obj: Any) -> dict[str, Any]:
    """The generator's state dict inside a checkpoint object.

    Accepts a bare state dict or one wrapped under a usual key (see ``WRAPPERS``);
    strips a ``module.`` prefix left by ``DataParallel``.
    """
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"expected a dict of tensors, found a {type(obj).__name__}")
    for key in WRAPPERS:
        if key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    state = {}
    for k, v in obj.items():
        if not isinstance(k, str):
            raise CheckpointError(f"state dict keys must be strings, found {k!r}")
        state[k.removeprefix("module.")] = v
    return state


def tensor_shape(t: Any) -> tuple[int, ...] | None:
    """``tuple(t.shape)`` for a tensor, None for anything else."""
    return tuple(t.shape) if isinstance(t, torch.Tensor) else None


def natural_key(key: str) -> tuple:
    """Sort key that orders ``layer2`` before ``layer10``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key))


def preview_keys(state: Mapping[str, Any], n: int = 5) -> str:
    """The first ``n`` keys, for messages."""
    keys = list(state)
    more = f", ... ({len(keys)} keys)" if len(keys) > n else ""
    return ", ".join(map(str, keys[:n])) + more if keys else "no keys"


def key_problems(
    state: Mapping[str, Any], expected: Iterable[str], optional: Iterable[str] = ()
) -> list[str]:
    """Messages naming the missing and the unexpected keys (empty when they match)."""
    expected, optional = set(expected), set(optional)
    missing = sorted(expected - set(state), key=natural_key)
    unexpected = sorted(set(state) - expected - optional, key=natural_key)
    out = []
    if missing:
        out.append("missing keys: " + ", ".join(missing))
    if unexpected:
        out.append("unexpected keys: " + ", ".join(unexpected))
    return out


def shape_problems(state: Mapping[str, Any], want: Mapping[str, tuple[int, ...]]) -> list[str]:
    """Messages naming every tensor whose shape differs from ``want``."""
    return [
        f"{name} has shape {tensor_shape(state[name])}, expected {tuple(shape)}"
        for name, shape in want.items()
        if name in state and tensor_shape(state[name]) != tuple(shape)
    ]


def majority(votes: list) -> Any:
    """The most common vote, ties going to the first one (the tensor that defines it)."""
    return max(votes, key=lambda v: (votes.count(v), v == votes[0]))


def has_matching_key(obj: Any, pattern: re.Pattern) -> bool:
    """Whether a loaded checkpoint (bare or wrapped) has a key matching ``pattern``."""
    try:
        state = unwrap_state_dict(obj)
    except CheckpointError:
        return False
    return any(pattern.match(k) for k in state)
