"""Goals the generator can draw: a pasted goal re-rendered from its first layer.

A copy-paste goal on another face is the copied rectangle dropped onto that face, the source
face's skin, collar and hair around the object included; a fit to it learns to paint the
rectangle, and raters see a blotch (benchmarks/FRONTIER.md §25). Here each goal is replaced by
the closest image the generator itself draws when only its first layer's output changes: the
values of the first editable layer are optimised (Adam, L1) so the render matches the goal
inside the paste region and the example's own image outside it. What the coarse layer cannot
draw (a pale box's hard edges, a strip of another face's skin) drops out; what it can (a
beard, closed lips on the face's own skin) stays, in the example's own colours and shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..memory.directions import response_map
from ..models.base import frozen

if TYPE_CHECKING:
    from ..models.base import Generator

#: Adam steps and step size (relative to the values' std) of the projection.
STEPS = 200
LR = 0.05
#: Weight of "unchanged outside the paste region" against the goal inside it.
KEEP_WEIGHT = 3.0


def projection_layer(G: Generator) -> str:
    """The layer a goal is projected through: the generator's first editable layer."""
    return G.layers()[0].name


def project_goals(
    G: Generator,
    samples: list[int],
    goals: torch.Tensor,
    where: torch.Tensor,
    images: torch.Tensor,
    steps: int = STEPS,
) -> torch.Tensor:
    """Each goal as the generator draws it from a change of its first layer only.

    Args:
        G: the generator (not changed; its parameters' ``requires_grad`` are restored).
        samples: the goals' samples (their latents are rendered), N of them.
        goals: the goal images [N, 3, R, R] in -1..1.
        where: where each goal counts, [N, 1, R, R] in 0..1.
        images: the samples' unedited images [N, 3, R, R].
        steps: Adam steps.

    Returns:
        the projected goals [N, 3, R, R]: the render inside ``where``, the original goal
        outside it (outside, a goal does not count).
    """
    if not samples:
        return goals
    layer = projection_layer(G)
    with frozen(G):
        with torch.no_grad():
            split = G.split(G.latents(samples), layer)
        v0 = split.values.detach()
        d = torch.zeros_like(v0, requires_grad=True)
        opt = torch.optim.Adam([d], lr=LR * float(v0.std().clamp_min(1e-8)))
        goals, where, images = (t.to(v0.device) for t in (goals, where, images))
        # Values that come out of a ReLU stay non-negative.
        floor = 0.0 if bool((v0 >= 0).all()) else None
        with torch.enable_grad():
            _fit(G, split, v0, d, opt, floor, goals, where, images, steps)
        with torch.no_grad():
            img = G.resume(split.with_values(_floored(v0 + d, floor))).clamp(-1, 1)
    return goals * (1 - where) + img * where


def _fit(G, split, v0, d, opt, floor, goals, where, images, steps) -> None:
    """Adam on the change ``d`` of the first layer's values ``v0`` (see :func:`project_goals`)."""
    outside = 1 - where
    n_in = where.sum().clamp_min(1)
    n_out = outside.sum().clamp_min(1)
    for _ in range(steps):
        img = G.resume(split.with_values(_floored(v0 + d, floor)))
        inside = ((img - goals).abs().mean(1, keepdim=True) * where).sum() / n_in
        kept = ((img - images).abs().mean(1, keepdim=True) * outside).sum() / n_out
        loss = inside + KEEP_WEIGHT * kept
        opt.zero_grad()
        loss.backward()
        opt.step()


def _floored(v: torch.Tensor, floor: float | None) -> torch.Tensor:
    return v if floor is None else v.clamp_min(floor)


def relative_residual(
    drawn: torch.Tensor, goals: torch.Tensor, images: torch.Tensor, where: torch.Tensor
) -> float:
    """How far the projection stays from the goals, as a share of the way: the mean
    |drawn - goals| over ``where`` divided by the mean |images - goals| there (0 = reached,
    1 = no nearer than the unedited images). All images [N, 3, R, R], ``where`` [N, 1, R, R]."""
    where = where.to(goals)

    def gap(x: torch.Tensor) -> float:
        return float(((x.to(goals) - goals).abs().mean(1, keepdim=True) * where).sum())

    way = gap(images)
    return gap(drawn) / way if way > 0 else 0.0


def drawn_erase_goals(
    G: Generator,
    layer: str,
    samples: list[int],
    images: torch.Tensor,
    band: torch.Tensor,
    cells: torch.Tensor,
    D: torch.Tensor,
    target: float,
    steps: int = STEPS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Erase goals the generator draws: each sample as its first layer redraws it so that the
    edited layer's keys inside the band stop responding to the rule.

    The first layer's values (the latent, for the layer right after it, whose keys those
    values are) are optimised (Adam) so that ``|D k|`` at every key cell of ``cells`` falls to
    ``target`` (the response of faces without the object) while the image outside ``band``
    stays as it was; the generator, not a pasted donor, decides what is drawn where the object
    was (hair where a hat was). A prior, not a guarantee: the response can also fall with
    little visible change (benchmarks/FRONTIER.md §30: glasses become dark smudges).

    Args:
        layer: the edited layer (whose keys the rule reads).
        samples: N samples; images: their unedited images [N, 3, R, R].
        band: where the image may change, bool [R, R].
        cells: the band's key cells at ``layer``, bool [h, w].
        D: the rule's directions [r, C_in].
        target: the response the band's cells are pushed down to.

    Returns:
        (the redrawn images [N, 3, R, R] (as goals they count inside ``band`` only), the
        mean response over ``cells`` of each redrawn image's keys [N]).
    """
    names = [info.name for info in G.layers()]
    first = projection_layer(G)
    if names.index(layer) == 0:
        raise ValueError(f"{layer!r} is the first layer: no layer before it redraws its keys")
    modules = G.layer_modules(layer)
    if modules is None:
        raise ValueError(f"{type(G).__name__} cannot hook layer {layer!r} for a drawn erase goal")
    outside = 1 - band.to(images)[None, None]
    seen: list[torch.Tensor] = []
    hook = modules[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    try:
        with frozen(G):
            with torch.no_grad():
                z = G.latents(samples)
                split = G.split(z, first)
            # The layer right after the first reads the first layer's values as its keys:
            # redrawing those would quiet the rule without drawing anything, so the latent is
            # redrawn instead.
            from_latent = names.index(layer) == 1
            v0 = (z if from_latent else split.values).detach()
            floor = 0.0 if not from_latent and bool((v0 >= 0).all()) else None

            def render(d: torch.Tensor) -> torch.Tensor:
                if from_latent:
                    return G.resume(G.split(v0 + d, first))
                return G.resume(split.with_values(_floored(v0 + d, floor)))

            d = torch.zeros_like(v0, requires_grad=True)
            opt = torch.optim.Adam([d], lr=LR * float(v0.std().clamp_min(1e-8)))
            Dk = D.to(images)
            mask = cells.to(images)
            n_cells = mask.sum().clamp_min(1) * len(samples)
            n_out = outside.sum().clamp_min(1) * len(samples)
            with torch.enable_grad():
                for _ in range(steps):
                    seen.clear()
                    img = render(d)
                    resp = response_map(Dk, seen[-1])
                    over = (torch.relu(resp - target) ** 2 * mask).sum() / n_cells
                    kept = ((img - images).abs().mean(1, keepdim=True) * outside).sum() / n_out
                    loss = over / max(target, 1e-6) ** 2 + KEEP_WEIGHT * kept
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            with torch.no_grad():
                seen.clear()
                img = render(d).clamp(-1, 1)
                resp = response_map(Dk, seen[-1])
                reached = (resp * mask).sum((1, 2)) / mask.sum().clamp_min(1)
    finally:
        hook.remove()
    return img, reached
