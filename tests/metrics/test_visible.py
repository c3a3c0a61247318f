"""Visible collateral: the image change outside the rule's band, measured by rendering."""

import copy
from pathlib import Path

import math

import pytest
import torch

from rewrite.edit import EditSpec, Rewriter
from rewrite.metrics.visible import visible_collateral

ROOT = Path(__file__).resolve().parents[2]


def _last_conv(G):
    names = [L.name for L in G.layers()]
    return names[-1]


def test_no_change_and_an_all_band_are_not_measured(tiny_dcgan):
    layer = _last_conv(tiny_dcgan)
    assert math.isnan(visible_collateral(tiny_dcgan, layer, {}, None))
    w = tiny_dcgan.weight_name(layer)
    change = {w: torch.full_like(tiny_dcgan.state_dict()[w], 0.01)}
    everything = torch.ones(tiny_dcgan.resolution, tiny_dcgan.resolution, dtype=torch.bool)
    assert math.isnan(visible_collateral(tiny_dcgan, layer, change, everything))


def test_the_tail_shortcut_agrees_with_a_full_render_and_leaves_the_model(tiny_dcgan):
    """One weight changed: only the tail is rendered; with a (zero) change to another
    parameter the whole model is rendered with the change added; both measure the same."""
    G = tiny_dcgan
    layer = _last_conv(G)
    w = G.weight_name(layer)
    before = {n: t.clone() for n, t in G.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    change = {w: 0.05 * torch.randn(G.state_dict()[w].shape, generator=g)}
    band = torch.zeros(G.resolution, G.resolution, dtype=torch.bool)
    band[: G.resolution // 2] = True
    tail = visible_collateral(G, layer, change, band, samples=range(8))
    other = next(n for n in before if n != w and before[n].is_floating_point())
    full = visible_collateral(G, layer, {**change, other: torch.zeros_like(before[other])}, band,
                              samples=range(8))
    assert tail > 0
    assert abs(tail - full) <= 1e-5 * max(tail, 1e-3)
    for n, t in G.state_dict().items():
        assert torch.equal(t, before[n]), n
    # Twice the change is seen as more change.
    double = visible_collateral(G, layer, {w: 2 * change[w]}, band, samples=range(8))
    assert double > 1.5 * tail


@pytest.mark.slow
def test_a_fine_layer_checkerboard_reads_high_where_the_layer_collateral_reads_low(face_model):
    """The same sunglasses request at main.12 (the last layer) and at main.6: the layer-space
    collateral reads about the same for both (within its budget); the visible collateral
    orders main.12's image-wide change far above main.6's."""
    session = Rewriter(face_model, progress=False)
    base = EditSpec.load(ROOT / "examples" / "add-sunglasses.json")
    got = {}
    for layer in ("main.12", "main.6"):
        spec = copy.deepcopy(base)
        spec.layer, spec.stats_samples = layer, 2000
        got[layer] = session.compute(spec)
    fine, coarse = got["main.12"], got["main.6"]
    assert fine.collateral < 2 * coarse.collateral            # blind: both near the budget
    assert fine.visible_collateral > 3 * coarse.visible_collateral
