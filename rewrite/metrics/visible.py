"""Visible collateral: how much an edit changes the *image* where it should not.

The solvers' ``predicted collateral`` is measured in the layer's output space
(``tr(ΔW C ΔWᵀ)/tr(W0 C W0ᵀ)``) and is blind to what the rest of the generator does
with that change: a small change at a fine layer can put a checkerboard on every
image. This module measures instead what a user sees: the edit is rendered on a fixed
set of pool samples (``VISIBLE_SAMPLES``, disjoint from the held-out judging samples
3000-3255 and from the pools the methods draw from), and the visible collateral is the
mean absolute pixel change (0-1 scale) *outside the rule's band* (the region the
context and paste marks span, :func:`rewrite.edit.goals.rule_band`), over all of them.

Only the tail of the generator after the edited layer is rendered when the edit
changes that layer's weight alone (the keys are computed once per call).
"""

from __future__ import annotations

import torch

from ..memory.gate import Gate, gated_values
from ..models.base import Generator

#: The samples the visible collateral is measured on.
VISIBLE_SAMPLES = range(820_000, 820_032)
#: Above this resolution the measurement is skipped (nan): rendering would dominate.
MAX_RESOLUTION = 256


@torch.no_grad()
def visible_collateral(
    G: Generator,
    layer: str,
    changes: dict[str, torch.Tensor],
    band: torch.Tensor | None,
    samples=VISIBLE_SAMPLES,
    batch: int = 32,
    gate: Gate | None = None,
) -> float:
    """Mean |Δpixel| (0-1) outside ``band`` over ``samples`` when ``changes`` (additive, by
    parameter name) are made to ``G``; ``G`` is left as it was.

    Args:
        layer: the edited layer (its weight is ``G.weight_name(layer)``).
        band: bool [R, R], where the rule may change the image (None: the whole image counts).
        gate: for a gated edit, where the layer weight's change applies
            (:func:`rewrite.memory.gate.gated_values`); ``changes`` must then hold that
            weight only.
    Returns:
        float; nan above :data:`MAX_RESOLUTION` or without any change.
    """
    if G.resolution > MAX_RESOLUTION or not changes:
        return float("nan")
    samples = list(samples)
    outside = (
        torch.ones(G.resolution, G.resolution, dtype=torch.bool)
        if band is None
        else ~band.bool().cpu()
    )
    if not outside.any():
        return float("nan")
    weight_name = G.weight_name(layer)
    total, count = 0.0, 0
    for s in range(0, len(samples), batch):
        z = G.latents(samples[s : s + batch])
        if set(changes) == {weight_name}:
            split = G.split(z, layer)
            f = G.layer_function(split)
            before = G.resume(split)
            change = changes[weight_name].to(f.weight)
            values = (
                f.forward(split.keys, f.weight + change)
                if gate is None
                else gated_values(f, split.keys, split.values, change, gate)
            )
            after = G.resume(split.with_values(values))
        elif gate is not None:
            raise ValueError(
                f"a gated change must change {weight_name} only, got {sorted(changes)}"
            )
        else:
            before = G(z)
            after = _render_changed(G, z, changes)
        diff = (after - before).abs().mean(1) / 2  # [N, R, R], 0-1
        total += float(diff[:, outside.to(diff.device)].sum())
        count += diff.shape[0] * int(outside.sum())
    return total / count


def _render_changed(G: Generator, z: torch.Tensor, changes: dict[str, torch.Tensor]):
    state: dict[str, torch.Tensor] = dict(G.named_parameters())
    state.update(dict(G.named_buffers()))
    saved = {n: state[n].detach().clone() for n in changes}
    try:
        for n, c in changes.items():
            state[n].add_(c.to(state[n]))
        return G(z)
    finally:
        for n, t in saved.items():
            state[n].copy_(t)
