"""``example-fit``: the request re-applied on many samples, fitted in image space."""

import copy
import dataclasses
from pathlib import Path

import pytest
import torch

from rewrite.edit import EditSpec, Rewriter
from rewrite.edit.example_fit import (
    POOL,
    ExampleFitParams,
    _goals,
    _pool_roles,
    fit_samples,
    preserve_projector,
    rule_response,
)
from rewrite.edit.seamless import poisson_paste
from rewrite.metrics.evaluate import variant

ROOT = Path(__file__).resolve().parents[2]


def test_preserve_projector_removes_the_dominant_key_directions():
    g = torch.Generator().manual_seed(0)
    basis, _ = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=torch.float64))
    scales = torch.tensor([10.0, 5.0] + [0.1] * 14, dtype=torch.float64)
    keys = scales[:, None] * basis.T           # rows s_i b_i: second moment Σ s_i² b_i b_iᵀ / 16
    P = preserve_projector(keys, 0.9)            # the two big directions hold ~99.9 %
    assert torch.allclose(P, P.T, atol=1e-12) and torch.allclose(P @ P, P, atol=1e-10)
    assert float((P @ basis[:, 0]).norm()) < 1e-9 and float((P @ basis[:, 1]).norm()) < 1e-9
    assert float((P @ basis[:, 5]).norm()) > 0.999          # a quiet direction is kept
    assert torch.equal(preserve_projector(keys, 0.0), torch.eye(16, dtype=torch.float64))


@pytest.mark.slow
def test_example_fit_draws_on_its_examples_and_leaves_its_silent_samples(face_model):
    """On the beard request: the goal loss on the re-applied examples falls, and the samples
    the rule responds least to change far less than the examples do under the paste."""
    session = Rewriter(face_model, progress=False)
    spec = variant(EditSpec.load(ROOT / "benchmarks/edits/tune/add-beard.json"), "example-fit",
                   params={"steps": 40})
    spec.stats_samples = 2000
    inputs = session.prepare(spec)
    delta = session.compute(spec, inputs)
    assert delta.method == "example-fit" and delta.loss_kind == "pixel-L1"
    assert delta.loss < 0.75 * delta.loss_before
    examples, silent, keep = _pool_roles(face_model, inputs, session_params(spec))
    assert not set(examples) & set(silent) and not set(silent) & set(keep)
    assert set(examples + silent + keep) <= set(POOL)
    # The roles follow the rule's response.
    G = face_model
    with torch.no_grad():
        keys = G.split(G.latents(examples + silent), spec.layer).keys
    resp = {s: float(r) for s, r in zip(
        examples + silent,
        rule_response(G, spec.layer, keys, inputs.D, inputs.band))}
    assert min(resp[s] for s in examples) > max(resp[s] for s in silent)
    # Rendered: the examples change under the paste, the silent samples barely anywhere.
    session.apply(delta)
    try:
        with torch.no_grad():
            after = G(G.latents(examples + silent))
    finally:
        session.undo()
    with torch.no_grad():
        before = G(G.latents(examples + silent))
    change = (after - before).abs().mean(1) / 2                           # [N, R, R]
    _, alpha, (top, left) = inputs.pixel_paste
    h, w = alpha.shape
    under_paste = change[:len(examples), top:top + h, left:left + w].mean()
    silent_change = change[len(examples):].mean()
    assert silent_change < 0.35 * under_paste, (float(silent_change), float(under_paste))


def session_params(spec):
    from rewrite.edit.methods import method_params
    return method_params(spec.solver, spec.solver_params)


def test_example_fit_keeps_a_not_here_sample(face_model):
    """example-fit takes the spec's "not here" regions (the face model's default method, so
    `rewrite not-here` specs must solve with it): a sample marked "not here" changes far less
    than it does under the same edit without the mark."""
    G = face_model
    session = Rewriter(G, progress=False)
    spec = variant(EditSpec.load(ROOT / "benchmarks/edits/tune/add-beard.json"), "example-fit",
                   params={"steps": 40})
    spec.stats_samples = 2000
    plain = session.compute(spec)
    candidates = list(range(200, 264))
    with torch.no_grad():
        before = G(G.latents(candidates))
        session.apply(plain)
        after = G(G.latents(candidates))
        session.undo()
    change = (after - before).abs().mean((1, 2, 3))
    most = candidates[int(torch.argmax(change))]
    kept = spec.with_not_here(most, (0, 0, G.resolution, G.resolution))
    delta = session.compute(kept)
    with torch.no_grad():
        x = G(G.latents([most]))
        session.apply(delta)
        y = G(G.latents([most]))
        session.undo()
    assert float((y - x).abs().mean()) < 0.7 * float(change.max())


@pytest.mark.slow
def test_blend_own_blends_the_users_own_paste_too(face_model):
    """``blend_own`` 1 gives the user's own example the seamless blend the other examples get
    (the copied rectangle's colours pulled to its own skin at the border); 0 keeps its
    literal paste. The other examples' goals are the same either way."""
    session = Rewriter(face_model, progress=False)
    spec = EditSpec.load(ROOT / "benchmarks/edits/tune/add-glasses.json")
    spec.stats_samples = 2000
    inputs = session.prepare(spec)
    base = ExampleFitParams(examples=4, silent=2, keep=2, seamless=1.0)
    literal = fit_samples(face_model, inputs, base)
    blended = fit_samples(face_model, inputs, dataclasses.replace(base, blend_own=1))
    assert literal.samples == blended.samples
    own = 0                                                  # the user's own example leads
    assert literal.samples[own] == inputs.goal_samples[0]
    src, alpha, (top, left) = inputs.pixel_paste
    h, w = alpha.shape
    box = (slice(None), slice(top, top + h), slice(left, left + w))
    assert torch.allclose(literal.goal[own][box], src.to(literal.goal), atol=1e-6)
    expected = poisson_paste(literal.original[own : own + 1], src.to(literal.goal), top, left)
    assert torch.allclose(blended.goal[own][box], expected[0].clamp(-1, 1), atol=1e-5)
    assert float((blended.goal[own][box] - literal.goal[own][box]).abs().mean()) > 0.02
    torch.testing.assert_close(blended.goal[1:], literal.goal[1:])


@pytest.mark.slow
def test_blend_below_blends_the_glasses_and_leaves_the_beards_literal_paste(face_model):
    """``blend_below`` 0.5: the glasses' copied rectangle (the source's skin at its border,
    offset about 0.13) is blended on every example as ``seamless`` 1 with ``blend_own`` 1
    would; the beard's (the beard runs into the border, offset about 0.7) keeps the goals of
    the parameters as given."""
    session = Rewriter(face_model, progress=False)
    base = ExampleFitParams(examples=4, silent=2, keep=2)
    for name, blends in (("add-glasses", True), ("add-beard", False)):
        spec = EditSpec.load(ROOT / f"benchmarks/edits/tune/{name}.json")
        spec.stats_samples = 2000
        inputs = session.prepare(spec)
        ruled = fit_samples(face_model, inputs, dataclasses.replace(base, blend_below=0.5))
        same = dataclasses.replace(base, seamless=1.0, blend_own=1) if blends else base
        torch.testing.assert_close(ruled.goal, fit_samples(face_model, inputs, same).goal)
        other = base if blends else dataclasses.replace(base, seamless=1.0, blend_own=1)
        assert float((ruled.goal - fit_samples(face_model, inputs, other).goal).abs().max()) > 0.1


def test_project_below_projects_the_closed_mouth_and_leaves_the_glasses_literal(face_model):
    """``project_below`` 0.18 on the face model: the first layer draws the closed mouth on
    each example (the projection comes within about 0.12 of the goals), so its examples'
    goals are the projected ones; it cannot draw the glasses' frames (about 0.27), so their
    goals stay the literal paste. The user's own example is literal in both."""
    session = Rewriter(face_model, progress=False)
    base = ExampleFitParams(examples=4, silent=2, keep=2)
    for name, projects in (("close-mouth", True), ("add-glasses", False)):
        spec = EditSpec.load(ROOT / f"benchmarks/edits/tune/{name}.json")
        spec.stats_samples = 2000
        inputs = session.prepare(spec)
        literal = fit_samples(face_model, inputs, base).goal
        ruled = fit_samples(face_model, inputs, dataclasses.replace(base, project_below=0.18))
        torch.testing.assert_close(ruled.goal[0], literal[0])
        moved = float((ruled.goal[1:] - literal[1:]).abs().max())
        assert (moved > 0.1) if projects else (moved == 0.0), (name, moved)
        # projected_examples: the projected request takes more pool examples, all projected
        more = fit_samples(face_model, inputs,
                           dataclasses.replace(base, project_below=0.18, projected_examples=7))
        assert more.n_ex == (ruled.n_ex + 3 if projects else ruled.n_ex), (name, more.n_ex)
        assert more.samples[:ruled.n_ex] == ruled.samples[:ruled.n_ex]
        if projects:   # every added example's goal is drawn, not the literal paste
            pasted = _goals(face_model, inputs, more.samples[:more.n_ex],
                            more.original[:more.n_ex])[0].to(more.goal)
            drawn = (more.goal[ruled.n_ex:] - pasted[ruled.n_ex:]).abs()
            assert float(drawn.flatten(1).amax(1).min()) > 0.1, name
        else:
            assert torch.equal(more.goal, ruled.goal)


def test_an_erase_takes_erase_examples_and_a_copy_paste_examples(tiny_dcgan):
    """``erase_examples`` sizes an erase's example set only; the keep samples come after them
    in the pool's order, so the two never overlap."""
    from types import SimpleNamespace

    from rewrite.edit.example_fit import FitSampleParams

    G = tiny_dcgan
    R = G.resolution
    band = torch.zeros(R, R, dtype=torch.bool)
    band[: R // 2] = True
    c_in = G.layer("main.6").in_channels
    D = torch.ones(1, c_in) / c_in**0.5
    p = FitSampleParams(examples=5, erase_examples=9, silent=4, keep=3)
    erase = SimpleNamespace(info=G.layer("main.6"), D=D, band=band, pixel_paste=None)
    paste = SimpleNamespace(info=G.layer("main.6"), D=D, band=band, pixel_paste=object())
    ex_erase, _, keep = _pool_roles(G, erase, p)
    ex_paste, _, _ = _pool_roles(G, paste, p)
    assert (len(ex_erase), len(ex_paste)) == (9, 5)
    assert ex_erase[:5] == ex_paste and not set(ex_erase) & set(keep)
