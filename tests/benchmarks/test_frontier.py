"""The frontier of benchmarks/frontier.py: the best point among the local ones, on hand-built
points whose answer is known (no model needed)."""

import importlib.util
import math
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "frontier.py"
_spec = importlib.util.spec_from_file_location("frontier_benchmark", _PATH)
fb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fb)


def pt(silent, goal, toward, key="object transfer"):
    return {"silent change": silent, "goal reproduction": goal, key: toward}


def test_best_goal_and_transfer_among_local_points_only():
    points = [pt(0.002, 0.80, 0.01),       # local, weak
              pt(0.009, 0.45, 0.20),       # local: best transfer
              pt(0.010, 0.40, 0.05),       # at the limit counts: best goal
              pt(0.011, 0.10, 0.90),       # just over the limit: ignored however good
              pt(0.300, 0.05, 0.95)]
    f = fb.frontier(points, "object transfer")
    assert f == {"qualifying": 3, "goal": 0.40, "goal at": 2, "toward": 0.20, "toward at": 1}


def test_no_point_qualifies():
    points = [pt(0.02, 0.3, 0.5), pt(0.05, 0.1, 0.6)]
    f = fb.frontier(points, "object transfer")
    assert f == {"qualifying": 0, "goal": None, "goal at": None, "toward": None,
                 "toward at": None}
    assert fb.frontier([], "object transfer")["goal"] is None


def test_unknown_figures_never_win():
    points = [pt(None, 0.01, 0.9),                # unknown silent change: not local
              pt(float("nan"), 0.01, 0.9),
              pt(0.001, float("nan"), None, "erase removal"),
              pt(0.004, 0.6, 0.3, "erase removal")]
    f = fb.frontier(points, "erase removal")
    assert f == {"qualifying": 2, "goal": 0.6, "goal at": 3, "toward": 0.3, "toward at": 3}
    # a different limit moves the answer
    assert fb.frontier([pt(0.02, 0.3, 0.5)], "object transfer", limit=0.03)["goal"] == 0.3


def test_median_counts_a_missing_frontier_as_the_worst():
    assert fb.median_or_none([0.2, 0.4, 0.9], True) == 0.4
    assert fb.median_or_none([0.2, None, None], True) is None          # median is a miss
    assert fb.median_or_none([0.2, 0.4, None], True) == 0.4            # worst sorts last
    assert fb.median_or_none([0.2, 0.4, None], False) == 0.2           # worst sorts first
    assert fb.median_or_none([0.2, 0.4], True) == pytest.approx(0.3)
    assert fb.median_or_none([0.2, None], True) is None
    assert fb.median_or_none([], True) is None
    assert fb.winner({"a": 0.5, "b": 0.3, "c": None}) == "b"
    assert fb.winner({"a": None}) is None


def test_a_winner_inside_the_run_to_run_spread_is_a_tie():
    assert fb.winner({"a": 0.100, "b": 0.105}, margin=0.01) is None      # within the spread
    assert fb.tied({"a": 0.100, "b": 0.105, "c": None}, 0.01)
    assert fb.winner({"a": 0.100, "b": 0.150}, margin=0.01) == "a"      # clear of it
    assert not fb.tied({"a": 0.100, "b": 0.150}, 0.01)
    assert not fb.tied({"a": 0.100, "b": None}, 0.01)                   # one contender


def _result(label_figures: dict) -> dict:
    """One copy-paste edit's record: per label (project goal, instrument goal_gap)."""
    return {"set": "tune", "kind": "copy-paste", "methods": {
        label: {"frontier": {"goal": g}, "instrument": {"silent": 0.001, "goal_gap": gap}}
        for label, (g, gap) in label_figures.items()}}


def test_the_verdict_line_calls_a_difference_inside_the_spread_no_winner():
    close = [_result({"a": (0.100, 0.30), "b": (0.104, 0.40)})]
    line = fb.agreement_lines(close, ["tune"], ["a", "b"])[0]
    assert "project metrics pick **a tie**" in line and "no clear winner" in line
    clear = [_result({"a": (0.100, 0.30), "b": (0.200, 0.40)})]
    line = fb.agreement_lines(clear, ["tune"], ["a", "b"])[0]
    assert "project metrics pick **a**" in line and line.endswith("**agree**.")
    split = [_result({"a": (0.100, 0.40), "b": (0.200, 0.30)})]
    assert fb.agreement_lines(split, ["tune"], ["a", "b"])[0].endswith("**DISAGREE**.")


def test_sweep_table_names_registered_methods_and_valid_points():
    fb.check_sweeps(fb.SWEEPS)                                         # raises on a problem
    with pytest.raises(SystemExit, match="no method"):
        fb.check_sweeps({"x": ("no-such-method", 1, [{}])})
    with pytest.raises(SystemExit, match="strength"):
        fb.check_sweeps({"x": ("least-collateral", 4, [{"strength": -1.0}])})
    assert fb.point_label({"budget": 0.003}) == "budget=0.003"
    assert fb.point_label({"strength": 0.5}) == "s=0.5"
    assert math.isfinite(fb.SILENT_LIMIT) and fb.SILENT_LIMIT == 0.010


def test_reuse_solves_restores_the_session_afterwards():
    from rewrite.edit.session import Rewriter

    prepare, compute = Rewriter.prepare, Rewriter.compute
    with fb.reuse_solves():
        assert Rewriter.compute is not compute and Rewriter.prepare is not prepare
    assert Rewriter.compute is compute and Rewriter.prepare is prepare


def test_the_instrument_judges_on_the_judging_or_the_tuning_samples_only(tmp_path):
    assert fb.instrument_samples_problem(list(range(3000, 3256))) is None
    assert fb.instrument_samples_problem(list(range(2000, 2256))) is None
    assert "2000-2255" in fb.instrument_samples_problem(list(range(2000, 2100)))
    with pytest.raises(ValueError, match="tuning samples"):
        fb.run_instrument([], tmp_path, tmp_path / "edit_quality.py", list(range(10)))
