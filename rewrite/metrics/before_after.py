"""Before/after pictures of an edit.

Usage::

    before, after = before_after(G, spec, seeds=range(100, 116))
    save_png(before_after_grid(before, after, list(range(100, 116))), "compare.png")
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..edit.delta import Delta
from ..edit.methods import METHODS
from ..edit.session import Rewriter
from ..edit.spec import EditSpec
from ..models.base import Generator
from ..sampling.generate import generate
from ..utils.images import make_grid, to_uint8, to_unit
from .transfer import goal_reproduction


def before_after(
    G: Generator,
    edit: EditSpec,
    seeds: Sequence[int],
    batch_size: int = 32,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images of ``seeds`` without and with the edit: two uint8 arrays [N, H, W, 3].

    The edit is applied to ``G`` and undone afterwards, leaving ``G`` as it was.
    """
    before, after, _, _ = before_after_solved(G, edit, seeds, batch_size, progress)
    return before, after


def before_after_solved(
    G: Generator,
    edit: EditSpec,
    seeds: Sequence[int],
    batch_size: int = 32,
    progress: bool | None = None,
    inputs=None,
) -> tuple[np.ndarray, np.ndarray, Delta, float]:
    """:func:`before_after`, and what the solve gave: ``(before, after, delta,
    reproduction)``, the last two as :func:`apply_judged` returns them (for
    :func:`solve_line`; solved from ``inputs``, :meth:`Rewriter.prepare`'s result, when
    given). ``G`` is left as it was."""
    before = generate(G, seeds, batch_size, progress)
    session = Rewriter(G, progress=progress)
    delta, reproduction = apply_judged(session, edit, inputs)
    try:
        after = generate(G, seeds, batch_size, progress)
    finally:
        session.reset()
    return before, after, delta, reproduction


def before_after_from_file(
    G: Generator,
    path: str | Path,
    seeds: Sequence[int],
    inputs,
    batch_size: int = 32,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, Delta, float]:
    """:func:`before_after_solved` with the edits of the delta file ``path`` (from ``rewrite
    edit --delta``) applied instead of a solve: ``(before, after, the file's last delta, the
    goal reproduction of the user's own example of ``inputs`` under the file's edits)``. A
    file that does not fit ``G`` is refused before anything is rendered; ``G`` is left as it
    was."""
    session = Rewriter(G, progress=progress)
    with torch.no_grad():
        unedited = G(G.latents(inputs.goal_samples))
    deltas = session.apply_delta_file(path)
    try:
        reproduction = own_goal_reproduction(G, inputs, unedited)
        after = generate(G, seeds, batch_size, progress)
    finally:
        session.reset()
    return generate(G, seeds, batch_size, progress), after, deltas[-1], reproduction


def apply_judged(session: Rewriter, spec: EditSpec, inputs=None) -> tuple[Delta, float]:
    """Solve ``spec`` (from ``inputs``, :meth:`Rewriter.prepare`'s result, when given) and
    apply it in ``session``; returns the delta and the goal reproduction of the user's own
    example after it (:func:`own_goal_reproduction`; nan when it cannot be measured).
    ``session.undo()`` takes the edit back."""
    G = session.model
    inputs = inputs if inputs is not None else session.prepare(spec)
    with torch.no_grad():
        unedited = G(G.latents(inputs.goal_samples))
    delta = session.apply(session.compute(spec, inputs))
    return delta, own_goal_reproduction(G, inputs, unedited)


def solve_line(
    delta: Delta, reproduction: float = float("nan"), loaded_from: str | Path | None = None
) -> str:
    """The solve summary of every command that solves an edit, one line, in this order:
    the method and layer, the loss before -> after (the layer's, or the pixels' for methods
    fitted in image space), the goal reproduction of the user's own example (when measured:
    0 = the request exactly, 1 = no closer than unedited) and the predicted collateral (when
    the method predicts one). With ``loaded_from`` (a delta file's path) the line says the
    edit was read from that file, solved when it was written, not solved now."""
    repro = f", goal reproduction {reproduction:.2f}" if np.isfinite(reproduction) else ""
    loss = "pixel loss" if getattr(delta, "loss_kind", "") == "pixel-L1" else "layer loss"
    coll = f", predicted collateral {delta.collateral:.4f}" if np.isfinite(delta.collateral) else ""
    gate = ", gated" if getattr(delta, "gate", None) is not None else ""
    other = getattr(delta, "companion", None)
    layers = delta.layer if other is None else f"{delta.layer} and {other.layer}"
    solved = "solved" if loaded_from is None else f"applied {loaded_from} (solved earlier)"
    return (
        f"{solved} with {delta.method} at {layers}{gate}: {loss} {delta.loss_before:.4f} "
        f"-> {delta.loss:.4f}{repro}{coll}"
    )


def before_after_grid(
    before: np.ndarray,
    after: np.ndarray,
    seeds: Sequence[int],
    cols: int | None = None,
    scale: int = 2,
    labels: bool = True,
) -> Image.Image:
    """Original rows above edited rows, ``cols`` samples per row pair (default up to 16)."""
    n = len(seeds)
    assert before.shape == after.shape and before.shape[0] == n
    cols = cols or min(n, 16)
    tiles, names = [], []
    for start in range(0, n, cols):
        chunk = list(range(start, min(start + cols, n)))
        pad = cols - len(chunk)
        blank = np.full_like(before[:1], 255)
        tiles += [before[i : i + 1] for i in chunk] + [blank] * pad
        names += [f"#{seeds[i]}" for i in chunk] + [""] * pad
        tiles += [after[i : i + 1] for i in chunk] + [blank] * pad
        names += [f"#{seeds[i]} edited" for i in chunk] + [""] * pad
    return make_grid(
        np.concatenate(tiles), cols=cols, labels=names if labels else None, scale=scale
    )


def goal_panel(
    G: Generator, spec: EditSpec, inputs, edited: np.ndarray | None = None, scale: int = 3
) -> Image.Image:
    """What the edit asks for, before solving, and what it got.

    Tiles (uint8, labelled): for copy-paste the copy source, the paste target, the
    pasted image (the request), the goal values rendered through the rest of the
    network (what this layer is asked to produce) and, given ``edited`` [R, R, 3]
    uint8, the paste target after the edit; for erase the first marked sample, its
    rendered goal and the edited sample. ``inputs`` is :meth:`Rewriter.prepare`'s result.
    """
    tiles, names = [], []
    with torch.no_grad():
        if spec.kind == "copy-paste":
            source = spec.copy
            assert source is not None, "a copy-paste spec has a copy selection"
            tiles.append(to_uint8(G(G.latents([source.sample]))))
            names.append(f"copy #{source.sample}")
        tiles.append(to_uint8(G(G.latents(inputs.goal_samples[:1]))))
        names.append(f"target #{inputs.goal_samples[0]}")
        if spec.kind == "copy-paste":
            tiles.append(to_uint8(inputs.target_image[:1]))
            names.append("pasted (request)")
        tiles.append(to_uint8(inputs.goal_image[:1]))
        names.append(f"goal at {spec.layer}")
    if edited is not None:
        tiles.append(edited[None])
        names.append("edited")
    return make_grid(np.concatenate(tiles), cols=len(tiles), labels=names, scale=scale)


@dataclasses.dataclass
class GoalPreview:
    """What :func:`goal_preview` shows: the panel, the goal's :func:`goal_fidelity`, the
    edit's inputs it was built from, and the edited paste target [R, R, 3] uint8 (None
    unless solved)."""

    panel: Image.Image
    fidelity: float
    inputs: object
    edited: np.ndarray | None


def goal_preview(
    session: Rewriter, spec: EditSpec, solved: bool = False, inputs=None
) -> GoalPreview:
    """The goal preview of ``rewrite goal`` and of the app: :func:`goal_panel` and
    :func:`goal_fidelity` of ``spec`` on ``session``'s model.

    With ``solved``, ``spec`` is the last edit applied in ``session``: the goal is built
    and shown on the model before that edit (:meth:`Rewriter.without_last_edit`), and the
    panel ends with the paste target as the model renders it with the edit. ``inputs``:
    :meth:`Rewriter.prepare`'s result for ``spec`` on that model, when at hand. The
    session's model is left as it was.
    """
    G = session.model
    before = session.without_last_edit if solved else contextlib.nullcontext
    with before():
        inputs = inputs if inputs is not None else session.prepare(spec)
        fidelity = goal_fidelity(G, inputs)
    edited = generate(G, inputs.goal_samples[:1], progress=False)[0] if solved else None
    with before():
        panel = goal_panel(G, spec, inputs, edited)
    return GoalPreview(panel, fidelity, inputs, edited)


#: A rendered goal farther than this from the request (goal reproduction) cannot show it.
GOAL_FIDELITY_WARN = 0.5
#: A solve by a budgeted method (least-collateral) that keeps more than this share of the goal
#: loss was held back by its collateral budget.
HELD_BACK = 0.8


def goal_notes(spec: EditSpec, fidelity: float, delta=None) -> list[str]:
    """What a user should know about a goal before (and after) solving: one line each.

    ``fidelity`` is :func:`goal_fidelity`; ``delta`` the solved edit, if any.
    """
    notes = []
    if not np.isnan(fidelity):
        notes.append(
            f"the goal at {spec.layer} reproduces the pasted request to {fidelity:.2f} "
            "of the unedited distance (0 = exactly)"
        )
        if fidelity > GOAL_FIDELITY_WARN:
            notes.append(
                f"warning: the goal at {spec.layer} does not show the pasted object "
                "well; an edit of this layer cannot show it either. Try a finer layer "
                "(rewrite suggest-layer) or align the boxes to the layer's cells"
            )
    budgeted = delta is not None and delta.method in METHODS and METHODS[delta.method].budgeted
    if budgeted and delta.loss > HELD_BACK * delta.loss_before:
        notes.append(
            "note: the collateral budget held this edit back (the rule's context is "
            "common, so a strong edit would change many images). Make the context "
            "more specific, raise the strength (the slider from 'local' to 'strong' "
            "in the app, 'strength' in the spec) or the solver's 'budget', or try "
            "the 'example-fit' solver, which fits the object itself"
        )
    return notes


def erase_goal_note(spec: EditSpec) -> str:
    """The reproduction note of an erase edit: its goal is defined at the layer, and the
    goal rendered is the request itself, so it reproduces the request exactly; what is
    left to judge is whether the rendered goal shows the object gone."""
    how = (
        "inpainted from the most similar samples without the object"
        if spec.erase_goal == "inpaint"
        else f"with its {spec.erase_units} most active units zeroed"
    )
    return (
        f"the goal at {spec.layer} is the erase request itself (the marked region {how}, "
        f"rendered through the rest of the network), so it reproduces the request exactly; "
        f"check that the 'goal at {spec.layer}' tile shows the object gone"
    )


def goal_report(
    spec: EditSpec, fidelity: float, delta: Delta | None = None, reproduction: float = float("nan")
) -> list[str]:
    """The lines ``rewrite goal`` prints before naming its picture, in this order: the
    solve line (:func:`solve_line`, when ``delta`` is given), the reproduction note (the
    copy-paste goal's ``fidelity`` from :func:`goal_fidelity`, or
    :func:`erase_goal_note`), then :func:`goal_notes`' warnings."""
    lines = [solve_line(delta, reproduction)] if delta is not None else []
    if spec.kind == "erase":
        lines.append(erase_goal_note(spec))
    return lines + goal_notes(spec, fidelity, delta)


#: Predicted collateral (``Delta.collateral`` times strength²) above which samples where the
#: rule does not fire are expected to change visibly. Calibrated by
#: ``python benchmarks/collateral_benchmark.py`` (8 edits x 9 methods, held-out seeds
#: 2000-2255): the log-log least-squares fit, silent change ≈ 0.127 · collateral^0.49
#: (Spearman 0.94), crosses a mean absolute change of 0.02 (about 5 of 255 grey levels,
#: where side-by-side grids start to show changed faces) at 0.022, rounded to 0.02. The
#: default budget (0.01) stays below it; erase edits at main.3 change a little more for
#: the same prediction (their fit crosses 0.02 at 0.014).
COLLATERAL_WARN = 0.02


#: Visible collateral (``Delta.visible_collateral`` times strength: mean |Δpixel| outside the
#: rule's band) above which images visibly change where the rule does not apply: the same
#: level of about 5 of 255 grey levels as :data:`COLLATERAL_WARN`'s calibration.
VISIBLE_WARN = 0.02


def visible_at_strength(delta) -> float:
    """The visible collateral of ``delta`` at its strength: the measured figure (strength 1)
    times the strength, a first-order estimate (the image is not linear in the weights)."""
    v = getattr(delta, "visible_collateral", float("nan"))
    return v * getattr(delta, "strength", 1.0)


def collateral_at_strength(delta) -> float:
    """The predicted collateral of ``delta`` at its strength: ``Delta.collateral`` (strength
    1) times strength², exact for the layer-space figure (tr(sΔW C sΔWᵀ) = s² tr(ΔW C ΔWᵀ));
    nan when unknown."""
    c = getattr(delta, "collateral", float("nan"))
    return c * getattr(delta, "strength", 1.0) ** 2


def collateral_warning(delta) -> list[str]:
    """Warning lines when ``delta``'s predicted collateral (layer space) or its visible
    collateral (image space) says that images where the rule does not fire will change
    visibly (empty list otherwise, or when unknown)."""
    out = []
    c = collateral_at_strength(delta)
    if c > COLLATERAL_WARN:
        out.append(
            f"warning: predicted collateral {c:.3f} is above {COLLATERAL_WARN:g}: images "
            "where the rule does not fire are expected to change visibly. Lower the "
            'strength, mark the false positives as "not here", or lower the solver\'s '
            "budget"
        )
    v = visible_at_strength(delta)
    if v > VISIBLE_WARN:
        out.append(
            f"warning: visible change outside the rule's region {v:.3f} (mean pixel "
            f"change on fixed samples) is above {VISIBLE_WARN:g}: other parts of the "
            "images change visibly. Move the strength toward 'local', or edit a "
            "coarser layer"
        )
    return out


@torch.no_grad()
def own_goal_reproduction(G: Generator, inputs, unedited: torch.Tensor) -> float:
    """Goal reproduction of the user's own example after an edit: the edited model's
    images of the goal samples against the request, relative to ``unedited`` (the same
    samples before the edit, [N, 3, R, R] in [-1, 1]); mean over the samples. 0 = the
    request exactly, 1 = no closer than unedited (see :func:`goal_reproduction`)."""
    after = to_unit(G(G.latents(inputs.goal_samples)))
    before, goal = to_unit(unedited), to_unit(inputs.target_image)
    box = inputs.image_mask[:, 0].cpu().numpy() > 0
    vals = [goal_reproduction(before[i], after[i], goal[i], box[i]) for i in range(len(after))]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def goal_fidelity(G: Generator, inputs) -> float:
    """How well the layer's goal, rendered through the rest of the network, shows the
    pasted request on the paste target: ``goal_reproduction`` of the rendered goal
    (0 = the request exactly, 1 = no closer than the unedited image). A value near 1
    means no edit of this layer can show the object: the layer is too coarse, or the
    box is misaligned to its cells. nan for erase edits (their goal is defined at the layer).
    """
    if inputs.units is not None:
        return float("nan")
    with torch.no_grad():
        unedited = G(G.latents(inputs.goal_samples[:1]))
    box = inputs.image_mask[0, 0].cpu().numpy() > 0
    return goal_reproduction(
        to_unit(unedited)[0],
        to_unit(inputs.goal_image[:1])[0],
        to_unit(inputs.target_image[:1])[0],
        box,
    )
