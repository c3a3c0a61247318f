"""Feasibility before solving: the separation figures on synthetic keys, the keys a spec
gives on a tiny random DCGAN, and one run on the real model with a tuning-set spec."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from rewrite.edit.layer_stats import accumulate_layer_stats, layer_stats
from rewrite.edit.spec import EditSpec, Selection
from rewrite.metrics.advisor import LayerAdvice, advice_summary
from rewrite.metrics.feasibility import (
    NO,
    PARTLY,
    SEPARATES,
    UNKNOWN,
    Feasibility,
    auc_score,
    feasibility,
    rule_keys,
    separation,
    verdict_for,
)

TUNE = Path(__file__).resolve().parents[2] / "benchmarks" / "edits" / "tune"


def _keys(n_samples: int, per_sample: int, dim: int, shift: torch.Tensor | float, seed: int,
          first: int = 0):
    """Keys [n_samples * per_sample, dim] ~ N(shift, I) and the sample of each row."""
    gen = torch.Generator().manual_seed(seed)
    k = torch.randn(n_samples * per_sample, dim, generator=gen) + shift
    return k, [first + i // per_sample for i in range(k.shape[0])]


def test_auc_counts_pairs_and_ties():
    assert auc_score(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 1.0
    assert auc_score(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 3.0])) == 0.0
    assert auc_score(torch.tensor([1.0]), torch.tensor([1.0, 1.0])) == 0.5
    assert auc_score(torch.tensor([1.0, 3.0]), torch.tensor([2.0])) == 0.5


def test_clearly_different_keys_separate():
    shift = torch.zeros(64)
    shift[:8] = 1.5                                    # apart along 8 of 64 dimensions
    ctx, cg = _keys(6, 12, 64, shift, seed=0)
    out, og = _keys(40, 50, 64, 0.0, seed=1, first=100)
    sep = separation(ctx, out, None, cg, og, rank=4)
    assert sep.auc > 0.97 and sep.coverage > 0.6, sep
    assert sep.context_share > 3 * sep.outside_share, sep
    assert verdict_for(sep.auc, sep.coverage)[0] == SEPARATES


def test_identical_distributions_do_not_separate():
    ctx, cg = _keys(6, 12, 64, 0.0, seed=2)
    out, og = _keys(40, 50, 64, 0.0, seed=3, first=100)
    sep = separation(ctx, out, None, cg, og, rank=4)
    assert abs(sep.auc - 0.5) < 0.1, sep
    assert sep.coverage < 0.1, sep
    verdict, message = verdict_for(sep.auc, sep.coverage)
    assert verdict == NO and "colour change, not the object" in message


def test_figures_are_held_out_not_fitted():
    # 20 context keys in 256 dimensions: any discriminant fitted on them separates them
    # perfectly; held out, keys from the same distribution as the rest score ~0.5.
    ctx, cg = _keys(4, 5, 256, 0.0, seed=4)
    out, og = _keys(30, 20, 256, 0.0, seed=5, first=100)
    assert abs(separation(ctx, out, None, cg, og).auc - 0.5) < 0.12


def test_whitening_by_the_layer_moment_finds_a_quiet_direction():
    # Context and outside differ only along a direction whose variance is tiny next to
    # the others: in raw units it is buried, whitened by the layer's moment it stands out.
    scale = torch.ones(32) * 10.0
    scale[0] = 1.0
    shift = torch.zeros(32)
    shift[0] = 3.0
    ctx, cg = _keys(6, 10, 32, 0.0, seed=6)
    out, og = _keys(30, 20, 32, 0.0, seed=7, first=100)
    ctx, out = ctx * scale + shift, out * scale
    moment = torch.diag(scale.double() ** 2)
    whitened = separation(ctx, out, moment, cg, og)
    assert whitened.auc > 0.93, whitened
    assert separation(ctx, out, None, cg, og).auc < 0.7


def test_too_few_keys_give_unknown():
    ctx, cg = _keys(1, 2, 16, 0.0, seed=8)
    out, og = _keys(10, 10, 16, 0.0, seed=9, first=100)
    sep = separation(ctx[:1], out, None, cg[:1], og)
    assert math.isnan(sep.auc)
    assert verdict_for(sep.auc, sep.coverage)[0] == UNKNOWN


def test_verdict_thresholds_order():
    assert verdict_for(0.99, 0.9)[0] == SEPARATES
    assert verdict_for(0.99, 0.1)[0] == PARTLY            # separates on average, not at the tail
    assert verdict_for(0.88, 0.9)[0] == PARTLY
    assert verdict_for(0.7, 0.9)[0] == NO


def _tiny_spec(layer: str = "main.6") -> EditSpec:
    return EditSpec.from_json({
        "format": "rewrite.edit", "version": 1, "model": "tiny", "layer": layer,
        "kind": "copy-paste", "rank": 2, "direction": "zca",
        "copy": {"sample": 1, "mask": {"rect": [8, 0, 24, 8]}},
        "paste": {"sample": 2, "mask": {"rect": [8, 0, 24, 8]}},
        "context": [{"sample": s, "mask": {"rect": [8, 0, 24, 8]}} for s in (2, 3, 4, 5)]})


def test_rule_keys_take_the_context_cells_and_everything_outside_the_grown_box(tiny_dcgan):
    G, spec = tiny_dcgan, _tiny_spec()
    moment = accumulate_layer_stats(G, "main.6", range(40), progress=False).keys.moment()
    keys = rule_keys(G, spec, moment, pool=range(810_000, 810_020))
    # Key grid 8x8 on 32 px: the rect covers key cells rows 0-1, columns 2-5 (8 per face);
    # grown by one cell the box spans rows 0-2, columns 1-6 (18 cells), 46 lie outside.
    assert keys.context.shape == (4 * 8, G.layer("main.6").in_channels)
    assert keys.context_groups == [s for s in (2, 3, 4, 5) for _ in range(8)]
    own = [g for g in keys.outside_groups if g < 100]
    assert own == [s for s in (2, 3, 4, 5) for _ in range(46)]
    pool = sorted({g for g in keys.outside_groups if g >= 810_000})
    assert len(pool) == 10 and keys.outside.shape[0] == 4 * 46 + 10 * 64
    # A "not here" region joins the outside keys.
    spec.preserve = [Selection(7, {"rect": [0, 16, 32, 32]})]
    more = rule_keys(G, spec, moment, pool=range(810_000, 810_020))
    assert more.outside.shape[0] == keys.outside.shape[0] + 32 and 7 in more.outside_groups


def test_feasibility_reports_unknown_for_a_region_without_key_cells(tiny_dcgan):
    spec = _tiny_spec("main.0")                          # 1x1 key grid: the rect covers none
    stats = accumulate_layer_stats(tiny_dcgan, "main.0", range(20), progress=False)
    f = feasibility(tiny_dcgan, spec, stats)
    assert f.verdict == UNKNOWN and "covers no key cell" in f.message
    assert not f.does_not_separate and "unknown" in f.line()


def test_advice_warns_when_the_best_layer_does_not_separate():
    f = Feasibility("main.6", 0.6, 0.02, 0.1, 0.05, 72, 2000, 4, *verdict_for(0.6, 0.02))
    advice = [LayerAdvice("main.6", 0.5, 0.01, 0.5, 8, 12, "trial edit: ...", f)]
    lines = advice_summary(advice, "main.6")
    assert any("expect a colour change, not the object" in line for line in lines)


@pytest.mark.slow
def test_feasibility_on_the_real_model_with_a_tuning_spec(face_model):
    spec = EditSpec.load(TUNE / "add-beard.json")
    spec.stats_samples = 2000
    f = feasibility(face_model, spec, layer_stats(face_model, spec.layer, n=2000))
    assert 0.0 <= f.auc <= 1.0 and 0.0 <= f.coverage <= 1.0, f
    assert 0.0 <= f.outside_share <= f.context_share <= 1.0, f
    assert f.verdict in (SEPARATES, PARTLY, NO) and f.context_keys > 0 and f.outside_keys > 1000
    assert f.line().startswith(f"feasibility at {spec.layer}: {f.verdict}")
