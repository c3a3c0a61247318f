"""Choosing the kept share of a fitted change by its silent change (rewrite/edit/calibrate.py):
the silent samples are the evaluation's, the bisection finds the largest share within the
budget, and ``gated`` with a budget keeps the calibration samples' silent change within it."""

import math
from pathlib import Path

import pytest
import torch

from rewrite.edit import EditSpec, Rewriter
from rewrite.edit.calibrate import CLOSE, calibrate_share, silent_splits
from rewrite.memory.gate import gated_values
from rewrite.metrics.evaluate import variant
from rewrite.metrics.firing import firing_mask, key_response, quantile_threshold

ROOT = Path(__file__).resolve().parents[2]
LAYER = "main.6"


def _directions(c_in: int, r: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(c_in, r, generator=g, dtype=torch.float64))
    return q.T.contiguous()


@pytest.mark.parametrize("rank", [1, 3])
def test_silent_samples_are_those_the_evaluation_calls_silent(tiny_dcgan, rank):
    """The same samples as metrics.firing's route (key_response, the 99th percentile, the
    firing mask): no cell fires on them."""
    G = tiny_dcgan
    samples = list(range(500, 564))
    D = _directions(G.layer(LAYER).in_channels, rank)
    resp = key_response(G, LAYER, D, samples)
    fire = firing_mask(resp, quantile_threshold(resp), G.resolution)
    want = [s for s, f in zip(samples, fire, strict=True) if not bool(f.any())]
    assert 0 < len(want) < len(samples)
    splits = silent_splits(G, LAYER, D, samples, batch=16)
    got_keys = torch.cat([s.keys for s in splits])
    with torch.no_grad():
        want_keys = G.split(G.latents(want), LAYER).keys
    assert got_keys.shape == want_keys.shape
    assert torch.allclose(got_keys, want_keys)


class _Identity:
    """A generator whose tail returns the layer's values (so the image change is the values'
    change): enough for calibrate_share."""

    def resume(self, split):
        return split.values


def _splits(n: int, seed: int):
    from rewrite.models.base import Split

    g = torch.Generator().manual_seed(seed)
    values = torch.rand(n, 3, 4, 4, generator=g) * 0.5
    return [Split("x", torch.zeros(n, 1, 1, 1), values)]


@pytest.mark.parametrize("power", [1.0, 1.5, 0.7, 3.0])
@pytest.mark.parametrize("budget,slope", [(0.01, 0.05), (0.003, 0.02), (0.02, 0.013)])
def test_the_share_is_the_largest_within_the_budget(budget, slope, power):
    """With a silent change ``slope · share**power`` (proportional, or bending either way),
    the chosen share keeps it within the budget and close to the largest share that does."""
    splits = _splits(8, seed=1)
    renders = []

    def values_for(split, share):  # a change of 2·c in [-1, 1] units: c on the 0-1 scale
        renders.append(share)
        return split.values + 2 * slope * share**power

    max_share = 2.0
    c = calibrate_share(_Identity(), splits, values_for, budget, max_share)
    largest = min(max_share, (budget / slope) ** (1 / power))
    assert c.silent <= budget * (1 + 1e-6)
    assert math.isclose(c.silent, slope * c.share**power, rel_tol=1e-4)
    assert c.share <= largest * (1 + 1e-6)
    assert c.share >= largest * (0.9 if power != 1.0 else CLOSE ** (1 / power))
    assert len(renders) <= 8                           # a few renders, not a search
    assert c.silent_samples == 8 and c.budget == budget


def test_a_change_within_the_budget_at_the_largest_share_keeps_it():
    splits = _splits(4, seed=2)
    c = calibrate_share(_Identity(), splits, lambda s, k: s.values + 0.001 * k, 0.01, 1.5)
    assert c.share == 1.5 and c.silent <= 0.01


def test_no_silent_sample_keeps_the_largest_share():
    c = calibrate_share(_Identity(), [], lambda s, k: s.values, 0.01, 1.25)
    assert c.share == 1.25 and math.isnan(c.silent) and c.silent_samples == 0


@pytest.mark.slow
def test_gated_with_a_budget_keeps_the_silent_change_within_it(face_model):
    """On the beard request (a short fit): with a budget, the kept change's silent change on
    the calibration samples is within it, and a smaller budget keeps a smaller change."""
    G = face_model
    session = Rewriter(G, progress=False)
    base = {"steps": 20, "examples": 6, "silent": 8, "keep": 4, "max_scale": 4.0}
    spec = variant(
        EditSpec.load(ROOT / "benchmarks/edits/tune/add-beard.json"),
        "gated",
        params={**base, "silent_budget": 0.004},
    )
    spec.stats_samples = 2000
    inputs = session.prepare(spec)
    loose = session.compute(spec, inputs)
    spec.solver_params = {**base, "silent_budget": 0.002}
    tight = session.compute(spec, inputs)
    w = G.weight_name(LAYER)
    assert 0 < tight.dense[w].norm() < loose.dense[w].norm()
    for delta, budget in ((loose, 0.004), (tight, 0.002)):
        total, n = 0.0, 0
        for split in silent_splits(G, LAYER, inputs.D):
            with torch.no_grad():
                f = G.layer_function(split)
                after = G.resume(
                    split.with_values(
                        gated_values(
                            f, split.keys, split.values, delta.dense[w].to(f.weight), delta.gate
                        )
                    )
                )
                before = G.resume(split)
            total += float(
                ((after.clamp(-1, 1) - before.clamp(-1, 1)).abs() / 2).mean((1, 2, 3)).sum()
            )
            n += split.keys.shape[0]
        assert 0 < total / n <= budget * (1 + 1e-4), (total / n, budget)


def test_the_kept_share_note_reads_the_delta_and_is_empty_without_a_share():
    from rewrite.edit import Delta
    from rewrite.edit.calibrate import kept_share_note

    assert kept_share_note(Delta("main.6", "least-collateral")) == ""
    d = Delta("main.6", "gated", kept_share=0.8123, silent_change=0.00781)
    assert kept_share_note(d) == (
        "kept 0.81 of the fitted change: its silent change on calibration faces 0.0078")
    d.silent_change = float("nan")
    assert kept_share_note(d) == "kept 0.81 of the fitted change"
