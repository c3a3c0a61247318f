"""Applying a gated edit to a model: the layer's values wrapped, its weight left alone.

A gated :class:`~rewrite.edit.delta.Delta` (``gate`` set) holds the layer weight's change
``ΔW`` and the :class:`~rewrite.memory.gate.Gate` on the layer's keys; while applied, every
forward pass gives the layer the gated values of :func:`~rewrite.memory.gate.gated_values`
for the change ``s·ΔW`` (``s`` the edit's strength; at the keys, the method's choice:
``v0 + tail(lin(k, W) + lin(g(k)·k, s·ΔW)) − f(k, W)``), through
:meth:`~rewrite.models.base.Generator.wrap_values`. A delta with a ``companion``
(``gated-pair``) wraps the companion's layer the same way, at the delta's strength.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import torch

from ..memory.gate import Gate, gated_values
from ..models.base import Generator, Split
from ..utils.errors import EditError
from .delta import Delta


def gated_problem(G: Generator, delta: Delta) -> str | None:
    """Why the gated ``delta`` cannot be applied to ``G``, or None."""
    assert delta.gate is not None
    names = [i.name for i in G.layers()]
    if delta.layer not in names:
        return (
            f"this {G.family} model has no layer {delta.layer!r} (its layers: {', '.join(names)})"
        )
    info = G.layer(delta.layer)
    weight_name = G.weight_name(delta.layer)
    if set(delta.dense) != {weight_name} or delta.low_rank is not None:
        return f"a gated edit of {delta.layer} must change {weight_name} only"
    why = delta.gate.problem(info.in_channels)
    if why:
        return why
    cells = delta.gate.face_cells
    grid = (info.key_resolution, info.key_resolution)
    if cells is not None and tuple(cells.shape) != grid:
        return (
            f"its gate per image reads a {tuple(cells.shape)} grid of key cells; "
            f"{delta.layer}'s keys are {grid}"
        )
    weight = dict(G.named_parameters())[weight_name]
    change = delta.dense[weight_name]
    if tuple(change.shape) != tuple(weight.shape):
        return (
            f"its change to {weight_name} has shape {tuple(change.shape)}, "
            f"the model's is {tuple(weight.shape)}"
        )
    if not torch.isfinite(change).all():
        return f"its change to {weight_name} is not finite"
    if delta.companion is not None:
        other = delta.companion
        if other.gate is None or other.companion is not None:
            return "its companion must be a gated change of one other layer"
        if other.layer == delta.layer:
            return f"its companion changes the same layer {delta.layer}"
        why = gated_problem(G, other)
        if why:
            return f"its companion on {other.layer}: {why}"
    return None


def gate_tag(delta: Delta) -> str:
    """A name for what the gated ``delta`` does at its strength (for fingerprints)."""
    assert delta.gate is not None
    h = hashlib.sha256(delta.layer.encode())
    h.update(delta.gate.u.detach().cpu().float().contiguous().numpy().tobytes())
    if delta.gate.A is not None:
        h.update(delta.gate.A.detach().cpu().float().contiguous().numpy().tobytes())
    if delta.gate.face_D is not None and delta.gate.face_cells is not None:
        h.update(delta.gate.face_D.detach().cpu().float().contiguous().numpy().tobytes())
        h.update(delta.gate.face_cells.detach().cpu().contiguous().numpy().tobytes())
        h.update(repr((float(delta.gate.face_b), float(delta.gate.face_tau))).encode())
    h.update(
        repr(
            (float(delta.gate.b), float(delta.gate.tau), delta.gate.at, float(delta.strength))
        ).encode()
    )
    for name in sorted(delta.dense):
        h.update(delta.dense[name].detach().cpu().float().contiguous().numpy().tobytes())
    if delta.companion is not None:
        h.update(gate_tag(delta.companion).encode())
    return "gated:" + h.hexdigest()[:16]


def apply_gated(G: Generator, delta: Delta) -> Callable[[], None]:
    """Wrap ``G``'s layer so it follows the gated ``delta``; returns ``remove()``.

    Strength 0 wraps nothing (the model stays exactly as it was). EditError when the delta
    does not fit ``G`` or the family cannot wrap the layer; then nothing changed.
    """
    why = gated_problem(G, delta)
    if why:
        raise EditError(f"the gated edit of {delta.layer} cannot be applied: {why}")
    if delta.strength == 0:
        return lambda: None
    parts = [delta] if delta.companion is None else [delta, delta.companion]
    removes: list[Callable[[], None]] = []

    def remove() -> None:
        for r in reversed(removes):
            r()

    try:
        for part in parts:  # the companion at the edit's strength
            assert part.gate is not None
            change = part.dense[G.weight_name(part.layer)] * delta.strength
            tag = gate_tag(part) + ("" if part is delta else f"@{delta.strength!r}")
            removes.append(
                G.wrap_values(part.layer, GatedValues(G, part.layer, change, part.gate), tag)
            )
    except BaseException:
        remove()  # all or nothing
        raise
    return remove


class GatedValues:
    """``(keys, values) -> values`` of a layer under a gated change (for
    :meth:`~rewrite.models.base.Generator.wrap_values`): an object, so that a deep copy of
    the model computes with the copy's weights."""

    def __init__(self, G: Generator, layer: str, change: torch.Tensor, gate: Gate):
        self.G, self.layer, self.change, self.gate = G, layer, change, gate

    def __call__(self, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        f = self.G.layer_function(Split(self.layer, keys, values))
        return gated_values(f, keys, values, self.change.to(f.weight), self.gate)
