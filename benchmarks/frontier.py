"""The frontier benchmark: locality/efficacy CURVES of every edit method, and the best each
method reaches while staying local.

A single operating point says little: a method that is quieter and does less has only
moved along its trade-off curve. This script sweeps each method's operating point (the
default solver's collateral ``budget``, or the edit ``strength`` ``s`` of ``W0 + s·ΔW``,
see :mod:`rewrite.edit.spec`) on every edit of ``benchmarks/edits/tune/`` and
``benchmarks/edits/test/``, measures every point on held-out samples with
:func:`rewrite.metrics.evaluate.compare_methods` (the project's own metrics, not
reimplemented here), and reports each method's FRONTIER: the best it does at silent
change <= 0.010.

Seeds: the default, ``--seeds 3000-3255``, are the judging samples, **for reporting only**.
Choices (a method, a default, an operating point, a sweep) are made with
``--seeds 2000-2255`` on the tune set (``--sets tune``); the test set is never used to
choose anything.

Usage::

    python benchmarks/frontier.py                                   # every edit, every method
    python benchmarks/frontier.py --sets tune --seeds 2000-2255     # for choosing
    python benchmarks/frontier.py --edits add-beard --seeds 3000-3063 --methods "least-collateral r4"
    python benchmarks/frontier.py --instrument                      # + ../shared/tools/edit_quality.py
    make bench-frontier

The sweep is the module-level dict :data:`SWEEPS`: method label -> (method name in
:data:`rewrite.edit.methods.METHODS`, rank or None, operating points). An operating point
is a dict of solver parameters plus, optionally, ``"strength"``. A new method is one line
there; ``--methods LABEL ...`` selects labels. A method is skipped for an edit whose kind
is not in ``METHODS[name].kinds``.

What each number means (the definitions are in :mod:`rewrite.metrics.evaluate`'s
docstring; every point is measured against the firing regions of the edit's own spec, so
all points of an edit are judged on the same places):

* ``silent change`` (x axis; lower = more local): mean absolute pixel change (0-1) on the
  held-out samples where the rule does not fire at all. The frontier's limit is
  ``SILENT_LIMIT`` = 0.010.
* ``goal reproduction`` (lower = better): on the user's own example, the distance to the
  requested image inside the goal box, as a fraction of the unedited distance (0 = the
  request reproduced, 1 = no closer than doing nothing).
* ``structure transfer`` (copy-paste; higher = better): on the firing held-out samples, the
  share of the copied object's structure (its band-pass, :mod:`rewrite.metrics.structure`)
  drawn into the box aligned to the object (mean over the firing samples); a wash, a blur or
  a fade scores at most 0. It replaced ``object transfer`` (still in ``points.json``), which
  needs the whole patch to beat a flat one and read about 0 on edits whose object shows by
  eye (benchmarks/FRONTIER.md §11). ``erase removal`` (erase; higher = better) is how much
  the firing region moved toward its surroundings.
* ``matched efficacy``: the fraction of the 16 best-matched held-out samples that moved
  toward the request; ``predicted collateral``: the solver's predicted collateral of the
  SOLVED change (strength 1; at strength ``s`` the predicted collateral is ``s²`` times it);
  ``seconds``: the solve's time (a strength sweep solves once and rescales, so its later
  points repeat the first point's solve time; ``wall seconds`` is this script's time per
  point, solve included where it happened: see :func:`reuse_solves`). A point whose solve
  fails is kept with its error (points.json, table.md's every-point list) and never
  qualifies.

Outputs under ``--out`` (default ``outputs/frontier``):

* ``<set>-<edit>.png``: two panels against silent change (log axis, dashed line at 0.010):
  goal reproduction, and object transfer or erase removal; one line per method, markers
  labelled with the operating point;
* ``points.json``: every point's metrics (NaN written as null);
* ``table.md``: (a) per edit and method the frontier, the best goal reproduction (lowest)
  and the best transfer or removal (highest) among the points with silent change <= 0.010,
  each with its operating point, or "none" if no point qualifies; (b) per set, side by
  side, per method: the median over edits of those frontier figures (an edit without a
  qualifying point counts as the worst, so a median that falls on it reads "none") and how
  many edits reach goal reproduction <= 0.35 at silent change <= 0.010; (c) every point.

With ``--instrument`` the outside instrument ``../shared/tools/edit_quality.py`` (see its
docstring: ``silent``, ``goal_gap``, ``toward_object``, ``toward_structure``) is run, from
the project root with this Python, on the same samples as the project's metrics: on the
judging samples 3000-3255 as it is, on the tuning samples 2000-2255 with its sample list
pointed there (``benchmarks/instrument_on_tuning.py``; so a tuning comparison hears both
measures before anything is chosen), on no other seeds; on each edit and method at the method's frontier operating point (the point of
the best goal reproduction; where none qualifies, the quietest point, marked "quietest").
Those variant specs are written to ``OUT/specs/``, the instrument's output to
``OUT/instrument/``; its figures go beside the project's in table.md, with one line per set
saying whether the project's metrics and the instrument pick the same winner: the lowest
median goal reproduction at silent change <= 0.010 against the lowest median ``goal_gap``
at instrument ``silent`` <= 0.010, over the set's copy-paste edits (the instrument has no
goal figure for erase); a runner-up within ``RUN_SPREAD`` (0.01, the run-to-run spread of
those medians) makes it a tie, and the line says there is no clear winner.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import table  # noqa: E402
from instrument_on_tuning import TUNING_SAMPLES, load_instrument  # noqa: E402

from rewrite.edit import EditSpec  # noqa: E402
from rewrite.edit.methods import METHODS, method_param_problems  # noqa: E402
from rewrite.edit.session import Rewriter  # noqa: E402
from rewrite.edit.spec import MAX_STRENGTH  # noqa: E402
from rewrite.metrics.evaluate import compare_methods, variant  # noqa: E402
from rewrite.sampling.seeds import parse_seeds  # noqa: E402

#: The frontier's locality limit on ``silent change``.
SILENT_LIMIT = 0.010
#: The run-to-run spread of a median goal reproduction over the tuning edits (the default's
#: own medians moved by up to 0.01 between identical runs, benchmarks/FRONTIER.md §12): two
#: methods whose medians differ by less are a tie, and the verdict line says so.
RUN_SPREAD = 0.01
#: The goal-reproduction target of the summary's count (issue 27's "done when").
GOAL_TARGET = 0.35
EDITS_DIR = ROOT / "benchmarks" / "edits"
SETS = ("tune", "test")
INSTRUMENT = ROOT.parent / "shared" / "tools" / "edit_quality.py"

#: Method label -> (method name in METHODS, rank or None for the method's own, operating
#: points). An operating point is solver parameters plus, optionally, "strength".
SWEEPS: dict[str, tuple[str, int | None, list[dict]]] = {
    "least-collateral r4": ("least-collateral", 4,
                            [{"budget": b} for b in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)]),
    "closed-form+refine r1": ("closed-form+refine", 1,
                              [{"strength": s} for s in (0.25, 0.5, 1.0, 1.5)]),
    "finetune-layer": ("finetune-layer", None,
                       [{"strength": s} for s in (0.1, 0.25, 0.5, 1.0)]),
    "example-fit": ("example-fit", None, [{"strength": s} for s in (0.5, 0.75, 1.0, 1.5)]),
    # Candidates for the default's operating point (chosen on the tune set, seeds 2000-2255).
    "example-fit cw=50": ("example-fit", None, [{"collateral_weight": 50.0, "strength": s}
                                               for s in (0.75, 1.0)]),
    "example-fit cw=100": ("example-fit", None, [{"collateral_weight": 100.0, "strength": s}
                                                 for s in (0.75, 1.0)]),
    "example-fit cw=200": ("example-fit", None, [{"collateral_weight": 200.0, "strength": s}
                                                 for s in (1.0, 1.25)]),
    # The gate's selectivity (quantile of the examples' band cells it stays shut on) and the
    # strength of the change behind it.
    "gated": ("gated", None, [{"strength": s} for s in (0.5, 0.75, 1.0, 1.5)]),
    "gated q=0.3": ("gated", None, [{"quantile": 0.3, "strength": s} for s in (0.5, 1.0)]),
    "gated q=0.7": ("gated", None, [{"quantile": 0.7, "strength": s} for s in (0.5, 1.0, 1.5)]),
    # The kept share: fixed at 0.75 (the default before the budget), or chosen per edit by
    # the silent change on calibration samples (rewrite/edit/calibrate.py; default: budget
    # 0.008, share at most 1.25).
    "gated fixed": ("gated", None, [{"silent_budget": 0.0, "strength": s}
                                    for s in (0.5, 0.75, 1.0, 1.5)]),
    "gated sb=0.006 m=2": ("gated", None, [{"silent_budget": 0.006, "max_scale": 2.0,
                                            "strength": 1.0}]),
    "gated sb=0.008 m=1.25": ("gated", None, [{"silent_budget": 0.008, "max_scale": 1.25,
                                               "strength": 1.0}]),
    "gated sb=0.008 m=2": ("gated", None, [{"silent_budget": 0.008, "max_scale": 2.0,
                                            "strength": s} for s in (0.75, 1.0, 1.25)]),
    "gated sb=0.008 m=1.5": ("gated", None, [{"silent_budget": 0.008, "max_scale": 1.5,
                                              "strength": 1.0}]),
    # With the share calibrated: a less selective gate, more examples.
    "gated q=0.3 s1": ("gated", None, [{"quantile": 0.3, "strength": 1.0}]),
    "gated ex=24": ("gated", None, [{"examples": 24, "strength": 1.0}]),
    "gated ex=24 q=0.3": ("gated", None, [{"examples": 24, "quantile": 0.3, "strength": 1.0}]),
    # A sharper gate (its ramp a tenth of the read-out's spread instead of a quarter).
    "gated soft=0.1": ("gated", None, [{"softness": 0.1, "strength": 1.0}]),
    "gated soft=0.1 q=0.3": ("gated", None, [{"softness": 0.1, "quantile": 0.3,
                                              "strength": 1.0}]),
    # Half the Adam steps at twice the step size (the Apply time is the fit's).
    "gated steps=50": ("gated", None, [{"steps": 50, "lr": 0.1, "strength": 1.0}]),
    # Lighter image-space preserve terms (the share's calibration keeps the silent change).
    "gated kw=1 sw=1": ("gated", None, [{"keep_weight": 1.0, "silent_weight": 1.0,
                                         "strength": 1.0}]),
    # Twice the silent samples (kept whole by the fit, negatives of the gate).
    "gated silent=32": ("gated", None, [{"silent": 32, "strength": 1.0}]),
    # Two layers at once: the edit's layer and the one before it (after it at main.3); its
    # silent budget (default 0.007) against gated's 0.008 and a smaller one.
    "gated-pair": ("gated-pair", None, [{"strength": s} for s in (0.5, 0.75, 1.0)]),
    "gated-pair sb=0.008": ("gated-pair", None, [{"silent_budget": 0.008, "strength": s}
                                                 for s in (0.5, 0.75, 1.0)]),
    "gated-pair sb=0.006": ("gated-pair", None, [{"silent_budget": 0.006, "strength": 1.0}]),
    "gated sb=0.007": ("gated", None, [{"silent_budget": 0.007, "strength": s} for s in (0.5, 0.75, 1.0)]),
    "gated-pair seamless": ("gated-pair", None, [{"seamless": 1.0, "strength": s} for s in (0.5, 0.75, 1.0)]),
    "gated-pair seamless=0.5": ("gated-pair", None, [{"seamless": 0.5, "strength": 1.0}]),
    "gated-pair seamless own": ("gated-pair", None, [{"seamless": 1.0, "blend_own": 1, "strength": s}
                                                     for s in (0.5, 0.75, 1.0)]),
    "gated-pair seamless m=2": ("gated-pair", None, [{"seamless": 1.0, "max_scale": 2.0,
                                                      "strength": 1.0}]),
    "gated-pair matte=0.4": ("gated-pair", None, [{"matte": 0.4, "strength": 1.0}]),
    "gated-pair matte=0.3": ("gated-pair", None, [{"matte": 0.3, "strength": 1.0}]),
    "gated-pair quad leak=0.003": ("gated-pair", None, [{"quadratic": 1, "leak": 0.003,
                                                         "strength": 1.0}]),
    "gated-pair quad leak=0.001": ("gated-pair", None, [{"quadratic": 1, "leak": 0.001,
                                                         "strength": 1.0}]),
    "gated-pair quad leak=0.01": ("gated-pair", None, [{"quadratic": 1, "leak": 0.01,
                                                        "strength": 1.0}]),
    "gated-pair leak=0.003": ("gated-pair", None, [{"leak": 0.003, "strength": 1.0}]),
    "gated-pair face": ("gated-pair", None, [{"face_gate": 1.0, "strength": 1.0}]),
    "gated-pair face q=0.3": ("gated-pair", None, [{"face_gate": 1.0, "quantile": 0.3,
                                                    "strength": 1.0}]),
    "gated-pair face q=0.3 m=2": ("gated-pair", None, [{"face_gate": 1.0, "quantile": 0.3,
                                                        "max_scale": 2.0, "strength": 1.0}]),
    "gated-pair face sweep": ("gated-pair", None, [{"face_gate": 1.0, "strength": s}
                                                   for s in (0.5, 0.75, 1.0)]),
    "gated-pair m=2": ("gated-pair", None, [{"max_scale": 2.0, "strength": s}
                                            for s in (0.5, 0.75, 1.0)]),
    "gated face sweep": ("gated", None, [{"silent_budget": 0.007, "face_gate": 1.0, "strength": s}
                                         for s in (0.5, 0.75, 1.0)]),
    "gated-pair face=0.8": ("gated-pair", None, [{"face_gate": 0.8, "strength": 1.0}]),
    "gated-pair face m=1": ("gated-pair", None, [{"face_gate": 1.0, "max_scale": 1.0,
                                                  "strength": 1.0}]),
    "gated-pair face q=0.3 m=1": ("gated-pair", None, [{"face_gate": 1.0, "quantile": 0.3,
                                                        "max_scale": 1.0, "strength": 1.0}]),
    "gated-pair ex=48": ("gated-pair", None, [{"examples": 48, "strength": 1.0}]),
    "gated-pair kr=16": ("gated-pair", None, [{"key_rank": 16, "strength": 1.0}]),
    "gated-pair kr=64": ("gated-pair", None, [{"key_rank": 64, "strength": 1.0}]),
    # The spec layer's gate spread to the cells beside an open one (§26).
    "gated-pair spread=1": ("gated-pair", None, [{"gate_spread": 1, "strength": s}
                                                 for s in (0.5, 0.75, 1.0)]),
    # Every example's paste faded into its own face over 3 px inside the border (§27).
    "gated-pair feather=3": ("gated-pair", None, [{"feather": 3, "strength": s}
                                                  for s in (0.5, 0.75, 1.0)]),
    # The paste blended (own too) where its border's colour offset is below 0.5 (§28).
    "gated-pair blend<0.5": ("gated-pair", None, [{"blend_below": 0.5, "strength": s}
                                                  for s in (0.5, 0.75, 1.0)]),
    # The other examples' goals re-rendered through the first layer (§29).
    "gated-pair project": ("gated-pair", None, [{"project": 1, "strength": s}
                                                for s in (0.5, 0.75, 1.0)]),
    # Projected only where the projection comes within 0.18 of the goals (§29).
    "gated-pair project<0.18": ("gated-pair", None, [{"project_below": 0.18, "strength": s}
                                                     for s in (0.5, 0.75, 1.0)]),
    "gated-pair project own": ("gated-pair", None, [{"project": 1, "blend_own": 1, "strength": s}
                                                    for s in (0.5, 0.75, 1.0)]),
    # An erase's examples redrawn by the first layer until the rule stops responding (§30).
    "gated-pair erase-drawn": ("gated-pair", None, [{"erase_drawn": 1, "strength": s}
                                                    for s in (0.5, 0.75, 1.0)]),
    # The same with 48 examples (§30; 48 alone: "gated-pair ex=48").
    "gated-pair erase-drawn ex=48": ("gated-pair", None, [{"erase_drawn": 1, "examples": 48,
                                                           "strength": s} for s in (0.75, 1.0)]),
    # 48 examples for the projected requests only (§31); the others as "gated-pair project<0.18".
    "gated-pair project<0.18 pex=48": ("gated-pair", None, [{"project_below": 0.18,
                                                             "projected_examples": 48,
                                                             "strength": 1.0}]),
    # The projected requests on the gate's own example count again (§34; the default since §31
    # takes 48 there: "gated-pair project<0.18" is the default now).
    "gated-pair pex=0": ("gated-pair", None, [{"projected_examples": 0, "strength": 1.0}]),
}


# --- The frontier: pure functions (tests/benchmarks/test_frontier.py) ------------------------


def toward_key(kind: str) -> str:
    """The efficacy figure of an edit kind: ``structure transfer`` or ``erase removal``."""
    return "structure transfer" if kind == "copy-paste" else "erase removal"


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def frontier(points: list[dict], toward: str, limit: float = SILENT_LIMIT) -> dict:
    """The best of ``points`` (metric dicts) among those with ``silent change`` <= ``limit``.

    Returns ``{"qualifying": n, "goal": lowest goal reproduction, "goal at": its index,
    "toward": highest ``toward`` figure, "toward at": its index}``; a figure and its index
    are None when no qualifying point has it (a point with an unknown silent change never
    qualifies; NaN figures are ignored). Ties keep the first point."""
    ok = [i for i, p in enumerate(points)
          if _finite(p.get("silent change")) and p["silent change"] <= limit]
    out = {"qualifying": len(ok), "goal": None, "goal at": None, "toward": None,
           "toward at": None}
    for i in ok:
        g, t = points[i].get("goal reproduction"), points[i].get(toward)
        if _finite(g) and (out["goal"] is None or g < out["goal"]):
            out["goal"], out["goal at"] = float(g), i
        if _finite(t) and (out["toward"] is None or t > out["toward"]):
            out["toward"], out["toward at"] = float(t), i
    return out


def median_or_none(values: list, lower_is_better: bool) -> float | None:
    """The median of ``values`` where None (no qualifying point) counts as the worst value;
    None when the median is (or averages in) a worst value, or there are no values."""
    if not values:
        return None
    worst = math.inf if lower_is_better else -math.inf
    v = sorted(worst if x is None else float(x) for x in values)
    n = len(v)
    m = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    return m if math.isfinite(m) else None


def winner(medians: dict[str, float | None], margin: float = 0.0) -> str | None:
    """The label with the lowest median; None if no label has one, or if another label's
    median is within ``margin`` of it (a tie: nothing to choose by)."""
    have = {k: v for k, v in medians.items() if v is not None}
    if not have:
        return None
    best = min(have, key=have.get)
    if any(k != best and v - have[best] <= margin for k, v in have.items()):
        return None
    return best


def tied(medians: dict[str, float | None], margin: float) -> bool:
    """Whether the two lowest medians of ``medians`` (None ignored) lie within ``margin``."""
    v = sorted(x for x in medians.values() if x is not None)
    return len(v) > 1 and v[1] - v[0] <= margin


# --- Sweeping ------------------------------------------------------------------------------


def point_label(point: dict) -> str:
    """``budget=0.003``, ``s=0.5``: an operating point in tables and plots."""
    return " ".join(f"s={v:g}" if k == "strength" else
                    (f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}")
                    for k, v in point.items()) or "defaults"


def point_spec(spec: EditSpec, solver: str, rank: int | None, point: dict) -> EditSpec:
    """``spec`` solved by ``solver`` at ``rank`` at the operating point ``point``."""
    params = {k: v for k, v in point.items() if k != "strength"}
    s = variant(spec, solver, rank, params)
    s.strength = float(point.get("strength", 1.0))
    return s


def check_sweeps(sweeps: dict) -> None:
    """Every sweep names a registered method, known parameters and a valid strength."""
    problems = []
    for label, (name, rank, points) in sweeps.items():
        if name not in METHODS:
            problems.append(f"{label}: no method {name!r}; registered: {', '.join(METHODS)}")
            continue
        for point in points:
            params = {k: v for k, v in point.items() if k != "strength"}
            problems += [f"{label}: {p}" for p in method_param_problems(name, params)]
            s = point.get("strength", 1.0)
            if not (_finite(s) and 0 <= s <= MAX_STRENGTH):
                problems.append(f"{label}: strength {s!r} is not in 0-{MAX_STRENGTH:g}")
    if problems:
        raise SystemExit("bad sweep table:\n  " + "\n  ".join(problems))


@contextlib.contextmanager
def reuse_solves():
    """While active, ``Rewriter.prepare`` and ``Rewriter.compute`` remember their results
    for a spec (its ``strength`` left out), so that

    * a spec that differs from one already solved only in its strength reuses that solve
      (``W0 + s·ΔW`` rescales the same ``ΔW``; the solve never reads the strength): a
      strength sweep costs one solve;
    * the edit's own inputs (statistics, directions: an eigendecomposition), which
      ``compare_methods`` prepares again on every call to judge the firing regions, are
      built once per edit.

    Only for specs prepared and solved on the unedited model, as ``compare_methods`` does
    (it undoes each edit); leave the context between edits."""
    original_prepare, original_compute = Rewriter.prepare, Rewriter.compute
    inputs_memo, delta_memo = {}, {}

    def key(self, spec):
        js = spec.to_json()
        js.pop("strength", None)
        return id(self.model), json.dumps(js, sort_keys=True)

    def prepare(self, spec):
        k = key(self, spec)
        if k not in inputs_memo:
            inputs_memo[k] = original_prepare(self, spec)
        return inputs_memo[k]

    def compute(self, spec, inputs=None):
        k = key(self, spec)
        if k not in delta_memo:
            delta_memo[k] = original_compute(self, spec, inputs)
        return dataclasses.replace(delta_memo[k], strength=spec.strength, spec=spec.to_json())

    Rewriter.prepare, Rewriter.compute = prepare, compute
    try:
        yield
    finally:
        Rewriter.prepare, Rewriter.compute = original_prepare, original_compute


def edit_paths(sets: list[str], names: list[str] | None) -> list[tuple[str, Path]]:
    """(set, spec path) of every edit of ``sets``, or only those named ``names``."""
    found = [(s, p) for s in sets for p in sorted((EDITS_DIR / s).glob("*.json"))]
    if names:
        missing = set(names) - {p.stem for _, p in found}
        if missing:
            raise SystemExit(f"no edit {', '.join(sorted(missing))} in benchmarks/edits/"
                             f"{{{','.join(sets)}}}; there are "
                             f"{', '.join(p.stem for _, p in found) or 'none'}")
        found = [(s, p) for s, p in found if p.stem in names]
    return found


def _clean(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _fmt(v, nd: int = 3) -> str:
    return "none" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


# --- Plot ----------------------------------------------------------------------------------


def plot_edit(path: Path, title: str, kind: str, curves: dict[str, list[dict]]) -> None:
    """Two panels against silent change: goal reproduction, transfer or removal."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tk = toward_key(kind)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    floor = 1e-4                                    # log axis: a zero change sits here
    for ax, key in zip(axes, ("goal reproduction", tk)):
        for label, pts in curves.items():
            xs = [math.nan if p["metrics"].get("silent change") is None
                  else max(p["metrics"]["silent change"], floor) for p in pts]
            ys = [p["metrics"].get(key) for p in pts]
            ys = [math.nan if y is None else y for y in ys]
            line, = ax.plot(xs, ys, marker="o", label=label)
            for x, y, p in zip(xs, ys, pts):
                if math.isfinite(x) and math.isfinite(y):
                    ax.annotate(point_label(p["point"]), (x, y), fontsize=6,
                                xytext=(3, 3), textcoords="offset points",
                                color=line.get_color())
        ax.axvline(SILENT_LIMIT, ls="--", color="grey", lw=1)
        if key == "goal reproduction":
            ax.axhline(GOAL_TARGET, ls=":", color="grey", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("silent change (mean |Δpixel| on samples where the rule never fires)")
        ax.set_ylabel(key + (" (lower is better)" if key == "goal reproduction"
                             else " (higher is better)"))
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- The instrument ------------------------------------------------------------------------


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-")


JUDGING_SAMPLES = list(range(3000, 3256))


def instrument_samples_problem(seeds: list[int]) -> str | None:
    """Why the instrument cannot judge on ``seeds`` (it runs on the judging or the tuning
    samples only), or None."""
    if list(seeds) in (JUDGING_SAMPLES, TUNING_SAMPLES):
        return None
    return ("--instrument runs on the judging samples 3000-3255 or the tuning samples "
            "2000-2255 only; pass --seeds 3000-3255 or 2000-2255")


def run_instrument(
    specs: list[Path], out: Path, instrument: Path, seeds: list[int] | None = None
) -> dict[str, dict]:
    """Run the outside instrument on ``specs``; its result per spec name. On the judging
    samples (``seeds`` None or 3000-3255) as its own process; on the tuning samples in this
    one, its sample list pointed there (``instrument_on_tuning.load_instrument``)."""
    if seeds is not None and list(seeds) != JUDGING_SAMPLES:
        problem = instrument_samples_problem(seeds)
        if problem:
            raise ValueError(problem)
        eq = load_instrument(instrument)
        print(f"instrument on the tuning samples: {len(specs)} spec(s)", file=sys.stderr,
              flush=True)
        return {(json.loads(p.read_text()).get("name") or p.stem): eq.run_spec(p, out, "api")
                for p in specs}
    cmd = [sys.executable, str(instrument), *map(str, specs), "--out", str(out)]
    print("$ " + shlex.join(cmd), file=sys.stderr, flush=True)
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        print(f"instrument failed (exit {res.returncode}):\n{res.stderr[-3000:]}",
              file=sys.stderr, flush=True)
    found = {}
    for spec in specs:
        name = json.loads(spec.read_text()).get("name") or spec.stem
        f = out / f"{name}.json"
        if f.is_file():
            found[name] = json.loads(f.read_text())
    return found


# --- Tables --------------------------------------------------------------------------------

INSTRUMENT_KEYS = ("silent", "goal_gap", "toward_object", "toward_structure")


def edit_rows(results: list[dict], instrumented: bool) -> tuple[list[dict], list[str]]:
    """Table (a): one row per edit and method."""
    cols = ["set", "edit", "method", "points <= 0.010", "best goal reproduction", "goal at",
            "best transfer / removal", "transfer at"]
    if instrumented:
        cols += ["instrument at", *[f"i. {k}" for k in INSTRUMENT_KEYS]]
    rows = []
    for r in results:
        for label, m in r["methods"].items():
            f, pts = m["frontier"], m["points"]
            row = {"set": r["set"], "edit": r["edit"], "method": label,
                   "points <= 0.010": f"{f['qualifying']}/{len(pts)}",
                   "best goal reproduction": _fmt(f["goal"]),
                   "goal at": "none" if f["goal at"] is None else point_label(pts[f["goal at"]]["point"]),
                   "best transfer / removal": _fmt(f["toward"]) + ("" if f["toward"] is None
                                                                    else f" ({m['toward key'].split()[-1]})"),
                   "transfer at": "none" if f["toward at"] is None
                   else point_label(pts[f["toward at"]]["point"])}
            if instrumented:
                ins = m.get("instrument") or {}
                row["instrument at"] = ins.get("at", "not run")
                for k in INSTRUMENT_KEYS:
                    row[f"i. {k}"] = _fmt(_clean(ins.get(k)), 4 if k == "silent" else 3)
            rows.append(row)
    return rows, cols


def summary(results: list[dict], sets: list[str], labels: list[str]) -> dict:
    """Per set and method: medians over edits of the frontier figures, and the counts."""
    out = {}
    for s in sets:
        for label in labels:
            ms = [(r, r["methods"][label]) for r in results
                  if r["set"] == s and label in r["methods"]]
            if not ms:
                continue
            fr = [m["frontier"] for _, m in ms]
            cp = [m["frontier"]["toward"] for r, m in ms if r["kind"] == "copy-paste"]
            er = [m["frontier"]["toward"] for r, m in ms if r["kind"] == "erase"]
            out[(s, label)] = {
                "edits": len(ms),
                "median goal": median_or_none([f["goal"] for f in fr], True),
                "median transfer": median_or_none(cp, False),
                "median removal": median_or_none(er, False),
                "transfer edits": len(cp), "removal edits": len(er),
                "local": sum(f["qualifying"] > 0 for f in fr),
                "reach": sum(f["goal"] is not None and f["goal"] <= GOAL_TARGET for f in fr),
            }
    return out


def summary_table(summ: dict, sets: list[str], labels: list[str]) -> str:
    present = [s for s in sets if any(k[0] == s for k in summ)]
    cols = ["method"]
    for s in present:
        cols += [f"{s}: median goal repr.", f"{s}: median transfer", f"{s}: median removal",
                 f"{s}: goal <= {GOAL_TARGET} (of edits)", f"{s}: any point <= 0.010"]
    rows = []
    for label in labels:
        row = {"method": label}
        for s in present:
            d = summ.get((s, label))
            if d is None:
                continue
            row[f"{s}: median goal repr."] = _fmt(d["median goal"])
            row[f"{s}: median transfer"] = (_fmt(d["median transfer"]) + f" (n={d['transfer edits']})"
                                            if d["transfer edits"] else "–")
            row[f"{s}: median removal"] = (_fmt(d["median removal"]) + f" (n={d['removal edits']})"
                                           if d["removal edits"] else "–")
            row[f"{s}: goal <= {GOAL_TARGET} (of edits)"] = f"{d['reach']}/{d['edits']}"
            row[f"{s}: any point <= 0.010"] = f"{d['local']}/{d['edits']}"
        rows.append(row)
    return table(rows, cols)


def agreement_lines(results: list[dict], sets: list[str], labels: list[str]) -> list[str]:
    """Per set: do the project's metrics and the instrument pick the same winner?"""
    lines = []
    for s in sets:
        proj, inst = {}, {}
        n = 0
        for label in labels:
            ms = [r["methods"][label] for r in results if r["set"] == s and r["kind"] == "copy-paste"
                  and label in r["methods"] and r["methods"][label].get("instrument")]
            if not ms:
                continue
            n = max(n, len(ms))
            proj[label] = median_or_none([m["frontier"]["goal"] for m in ms], True)
            gaps = []
            for m in ms:
                ins = m["instrument"]
                ok = (_finite(ins.get("silent")) and ins["silent"] <= SILENT_LIMIT
                      and _finite(ins.get("goal_gap")))
                gaps.append(ins["goal_gap"] if ok else None)
            inst[label] = median_or_none(gaps, True)
        if not proj:
            continue
        a, b = winner(proj, RUN_SPREAD), winner(inst, RUN_SPREAD)
        verdict = ("agree" if a is not None and a == b else
                   f"no clear winner (the best medians lie within the run-to-run spread, "
                   f"{RUN_SPREAD:g})" if tied(proj, RUN_SPREAD) or tied(inst, RUN_SPREAD) else
                   "cannot tell (a side has no method at silent <= 0.010)" if a is None or b is None
                   else "DISAGREE")
        med = lambda d: ", ".join(f"{k} {_fmt(v)}" for k, v in d.items())     # noqa: E731
        pick = lambda w, d: w or ("a tie" if tied(d, RUN_SPREAD) else "none")  # noqa: E731
        lines.append(f"- **{s}** ({n} copy-paste edits): project metrics pick **{pick(a, proj)}** "
                     f"(median goal reproduction at silent change <= 0.010: {med(proj)}); the "
                     f"instrument picks **{pick(b, inst)}** (median goal_gap at its silent <= "
                     f"0.010: {med(inst)}): **{verdict}**.")
    return lines


def points_table(results: list[dict]) -> str:
    cols = ["set", "edit", "method", "point", "silent change", "goal reproduction",
            "transfer / removal", "matched efficacy", "predicted collateral", "wall seconds"]
    rows = []
    for r in results:
        for label, m in r["methods"].items():
            for p in m["points"]:
                mt = p["metrics"]
                rows.append({"set": r["set"], "edit": r["edit"], "method": label,
                             "point": point_label(p["point"]),
                             **{k: _fmt(mt.get(k), 4) for k in ("silent change", "goal reproduction",
                                                                 "matched efficacy",
                                                                 "predicted collateral")},
                             "transfer / removal": _fmt(mt.get(m["toward key"]), 4)
                             + (f" (failed: {p['error']})" if p.get("error") else ""),
                             "wall seconds": f"{p['wall seconds']:.1f}"})
    return table(rows, cols)


# --- Main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="3000-3255",
                    help="held-out samples (default 3000-3255, the judging samples: for "
                         "reporting only; choose with --seeds 2000-2255 --sets tune)")
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS,
                    help="edit sets under benchmarks/edits/ (default: tune test)")
    ap.add_argument("--edits", nargs="+", help="edit names (file stems; default: all)")
    ap.add_argument("--methods", nargs="+", metavar="LABEL",
                    help=f"method labels of the sweep table (default: all: {', '.join(SWEEPS)})")
    ap.add_argument("--out", default=str(ROOT / "outputs" / "frontier"))
    ap.add_argument("--instrument", action="store_true",
                    help="also run ../shared/tools/edit_quality.py at each frontier point")
    ap.add_argument("--instrument-path", default=str(INSTRUMENT), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    from tqdm import tqdm

    from rewrite import load_model

    seeds = parse_seeds(args.seeds)
    labels = args.methods or list(SWEEPS)
    unknown = [m for m in labels if m not in SWEEPS]
    if unknown:
        raise SystemExit(f"no method {', '.join(map(repr, unknown))} in the sweep table; "
                         f"there are {', '.join(map(repr, SWEEPS))}")
    sweeps = {k: SWEEPS[k] for k in labels}
    check_sweeps(sweeps)
    instrument = Path(args.instrument_path)
    if args.instrument and not instrument.is_file():
        raise SystemExit(f"--instrument: {instrument} not found")
    if args.instrument and instrument_samples_problem(seeds):
        raise SystemExit(instrument_samples_problem(seeds))
    edits = edit_paths(args.sets, args.edits)
    if not edits:
        raise SystemExit(f"no edits in benchmarks/edits/{{{','.join(args.sets)}}}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    specs = [(s, p, EditSpec.load(p)) for s, p in edits]
    jobs = [(i, label) for i, (_, _, spec) in enumerate(specs) for label, (name, _, _)
            in sweeps.items() if spec.kind in METHODS[name].kinds]
    total = sum(len(sweeps[label][2]) for _, label in jobs)

    models: dict[str, object] = {}
    results, t0 = [], time.perf_counter()
    bar = tqdm(total=total, desc="frontier points", unit="point")
    for i, (set_name, path, spec) in enumerate(specs):
        if spec.model not in models:
            models[spec.model] = load_model(spec.model)
        G = models[spec.model]
        r = {"set": set_name, "edit": spec.name or path.stem, "path": str(path.relative_to(ROOT)),
             "kind": spec.kind, "layer": spec.layer, "seeds": args.seeds, "methods": {}}
        with reuse_solves():
            for label in [lab for j, lab in jobs if j == i]:
                name, rank, ops = sweeps[label]
                tk = toward_key(spec.kind)
                pts = []
                for op in ops:
                    bar.set_description(f"{r['edit']} · {label} · {point_label(op)}")
                    v = point_spec(spec, name, rank, op)
                    t = time.perf_counter()
                    # The edit's own spec defines the firing regions: every point is judged
                    # on the same places.
                    try:
                        ev = compare_methods(G, spec, seeds, [v], progress=False)[0]
                        got = {"label": ev.label,
                               "metrics": {k: _clean(x) for k, x in ev.metrics.items()}}
                    except Exception as e:            # a failed solve is a point, not the end
                        got = {"label": label, "metrics": {},
                               "error": f"{type(e).__name__}: {e}"}
                        tqdm.write(f"{r['edit']} · {label} · {point_label(op)} failed: "
                                   f"{got['error']}", file=sys.stderr)
                    pts.append({"point": dict(op), **got, "spec": v.to_json(),
                                "wall seconds": time.perf_counter() - t})
                    bar.update(1)
                r["methods"][label] = {"solver": name, "rank": rank, "toward key": tk,
                                       "points": pts,
                                       "frontier": frontier([p["metrics"] for p in pts], tk)}
        plot_edit(out / f"{set_name}-{r['edit']}.png",
                  f"{set_name}/{r['edit']} ({spec.kind} at {spec.layer}); held-out seeds "
                  f"{args.seeds}; dashed: silent change {SILENT_LIMIT:.3f}; dotted: goal "
                  f"reproduction {GOAL_TARGET}",
                  spec.kind, {lab: m["points"] for lab, m in r["methods"].items()})
        results.append(r)
        (out / "points.json").write_text(json.dumps(results, indent=1) + "\n")
    bar.close()
    solve_time = time.perf_counter() - t0

    if args.instrument:
        spec_dir, ins_dir = out / "specs", out / "instrument"
        spec_dir.mkdir(exist_ok=True)
        ins_dir.mkdir(exist_ok=True)
        for r in results:
            written = {}
            for label, m in r["methods"].items():
                f, pts = m["frontier"], m["points"]
                at = f["goal at"]
                where = None
                if at is None:                         # no local point: the quietest one
                    known = [j for j, p in enumerate(pts)
                             if _finite(p["metrics"].get("silent change"))]
                    at = min(known, key=lambda j: pts[j]["metrics"]["silent change"]) \
                        if known else None
                    where = "quietest"
                if at is None:
                    continue
                js = dict(pts[at]["spec"])
                js["name"] = f"{r['edit']}--{slug(label)}--{slug(point_label(pts[at]['point']))}"
                p = spec_dir / f"{js['name']}.json"
                p.write_text(json.dumps(js, indent=1) + "\n")
                written[label] = (p, js["name"], point_label(pts[at]["point"]) +
                                  (f" ({where})" if where else ""))
            got = run_instrument([p for p, _, _ in written.values()], ins_dir, instrument,
                                 seeds)
            for label, (p, name, at_label) in written.items():
                ins = got.get(name)
                r["methods"][label]["instrument"] = (
                    {"at": at_label, "spec": str(p.relative_to(out)),
                     **{k: ins.get(k) for k in INSTRUMENT_KEYS}} if ins else
                    {"at": at_label + " (failed)"})
        (out / "points.json").write_text(json.dumps(results, indent=1) + "\n")

    rows, cols = edit_rows(results, args.instrument)
    summ = summary(results, args.sets, labels)
    n_points = sum(len(m["points"]) for r in results for m in r["methods"].values())
    text = [f"# Frontier: {len(results)} edit(s), {n_points} points, held-out seeds {args.seeds}",
            "",
            f"Command: `{shlex.join([Path(sys.executable).name, 'benchmarks/frontier.py', *sys.argv[1:]])}`; "
            f"{solve_time:.0f} s for the points. Definitions: benchmarks/frontier.py's docstring "
            f"and rewrite/metrics/evaluate.py's. "
            + ("These seeds are the judging samples: report with them, never choose with them."
               if set(seeds) & set(range(3000, 3256)) else ""),
            "",
            f"## (a) Frontier per edit and method (among points with silent change <= {SILENT_LIMIT:.3f})",
            "",
            table(rows, cols),
            "",
            "## (b) Per set: medians over edits of the frontier figures "
            "(an edit without a qualifying point counts as the worst)",
            "",
            summary_table(summ, args.sets, labels)]
    if args.instrument:
        text += ["", "Which method wins (project metrics against the outside instrument):", "",
                 *(agreement_lines(results, args.sets, labels) or ["- no copy-paste edit measured"])]
    text += ["", "## (c) Every point", "", points_table(results), ""]
    (out / "table.md").write_text("\n".join(text))
    print("\n".join(text[:text.index("## (c) Every point")]))
    print(f"wrote {out}/table.md, points.json and {len(results)} plot(s) "
          f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
