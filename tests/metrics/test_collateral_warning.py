"""The collateral warning: when it fires, how the strength scales it, and that the
calibrated threshold leaves the default edits alone (no model needed)."""

import math

import pytest

from rewrite.edit.delta import Delta
from rewrite.memory.solvers import LeastCollateralParams
from rewrite.metrics.before_after import COLLATERAL_WARN, collateral_warning


def delta(collateral: float, strength: float = 1.0) -> Delta:
    return Delta("main.6", "least-collateral", collateral=collateral, strength=strength)


def test_above_the_threshold_warns_once_with_the_value():
    lines = collateral_warning(delta(1.5 * COLLATERAL_WARN))
    assert len(lines) == 1
    assert lines[0].startswith("warning: predicted collateral")
    assert f"{1.5 * COLLATERAL_WARN:.3f}" in lines[0]
    assert "change visibly" in lines[0]


@pytest.mark.parametrize("factor", [0.0, 0.5, 0.99, 1.0])
def test_at_or_below_the_threshold_is_silent(factor):
    assert collateral_warning(delta(factor * COLLATERAL_WARN)) == []


@pytest.mark.parametrize("collateral, strength, warns", [
    (2.0, 1.0, True),     # 2x the threshold
    (2.0, 0.5, False),    # s² = 0.25: 0.5x the threshold
    (2.0, 0.75, True),    # s² = 0.5625: 1.125x
    (2.0, 0.7, False),    # s² = 0.49: 0.98x
    (0.5, 2.0, True),     # s² = 4: 2x
    (0.5, 1.0, False),
    (0.5, -1.5, True),    # s² = 2.25 (a negative strength reverses the edit, same collateral)
    (10.0, 0.0, False),   # strength 0 is the original model
])
def test_strength_scales_the_prediction_by_its_square(collateral, strength, warns):
    d = delta(collateral * COLLATERAL_WARN, strength)
    lines = collateral_warning(d)
    assert bool(lines) is warns
    if warns:
        assert f"{collateral * strength ** 2 * COLLATERAL_WARN:.3f}" in lines[0]


@pytest.mark.parametrize("collateral", [float("nan"), -1.0])
def test_unknown_or_meaningless_collateral_gives_no_warning(collateral):
    assert collateral_warning(delta(collateral)) == []
    assert collateral_warning(delta(collateral, strength=3.0)) == []


def test_objects_without_a_collateral_give_no_warning():
    class Bare:
        pass
    assert collateral_warning(Bare()) == []


def test_threshold_leaves_the_default_budget_alone():
    """The default solver keeps the predicted collateral within its budget; the warning
    must not fire on every default edit (the calibration put it well above)."""
    budget = LeastCollateralParams().budget
    assert math.isfinite(COLLATERAL_WARN) and COLLATERAL_WARN > budget
    assert collateral_warning(delta(budget)) == []
