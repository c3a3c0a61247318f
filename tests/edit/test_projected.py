"""Goals re-rendered through the generator's first layer (:mod:`rewrite.edit.projected`)."""

from types import SimpleNamespace

import pytest
import torch

from rewrite.edit.projected import project_goals, projection_layer


def _setting(G, samples):
    R = G.resolution
    with torch.no_grad():
        split = G.split(G.latents(samples), projection_layer(G))
        images = G.resume(split)
    where = torch.zeros(len(samples), 1, R, R)
    where[:, :, R // 4 : 3 * R // 4, R // 4 : 3 * R // 4] = 1
    return split, images, where


def _two_goals(G, samples):
    """(images, where, drawable, fine): a goal the first layer can draw (its values changed
    at four cells) and a pixel checkerboard, each inside ``where`` on the unedited images."""
    split, images, where = _setting(G, samples)
    v = split.values.clone()
    noise = torch.randn(v[:, :, 1:3, 1:3].shape, generator=torch.Generator().manual_seed(1))
    v[:, :, 1:3, 1:3] += 3 * v.std() * noise
    with torch.no_grad():
        drawable = images * (1 - where) + G.resume(split.with_values(v)) * where
    R = G.resolution
    checker = ((torch.arange(R)[:, None] + torch.arange(R)[None]) % 2).float() * 2 - 1
    fine = images * (1 - where) + checker.expand(len(samples), 3, R, R) * where
    return images, where, drawable, fine


def _goal_error(a, b, where):
    return float(((a - b).abs().mean(1, keepdim=True) * where).sum() / where.sum())


def test_a_goal_the_first_layer_can_draw_is_reached_and_a_pixel_checkerboard_is_not(tiny_dcgan):
    """The projection is a prior: a change the first layer makes is reproduced most of the way,
    a pattern finer than anything the generator draws from there is left out."""
    G = tiny_dcgan
    samples = [0, 1, 2]
    images, where, drawable, fine = _two_goals(G, samples)
    out = project_goals(G, samples, drawable, where, images)
    assert _goal_error(out, drawable, where) < 0.6 * _goal_error(images, drawable, where)
    out = project_goals(G, samples, fine, where, images)
    assert _goal_error(out, fine, where) > 0.95 * _goal_error(images, fine, where)


def test_the_projection_leaves_the_generator_as_it_was(tiny_dcgan):
    G = tiny_dcgan
    before = {k: t.clone() for k, t in G.state_dict().items()}
    flags = {k: t.requires_grad for k, t in G.named_parameters()}
    split, images, where = _setting(G, [4, 5])
    project_goals(G, [4, 5], images.flip(-1), where, images)
    assert all(torch.equal(before[k], t) for k, t in G.state_dict().items())
    assert flags == {k: t.requires_grad for k, t in G.named_parameters()}


def test_fit_goals_project_the_examples_but_not_the_users_own(tiny_dcgan):
    """``project`` re-renders the goals after the user's own, which keep the literal paste."""
    from rewrite.edit.example_fit import FitSampleParams, _goals, projected_goals

    G = tiny_dcgan
    samples = [0, 1, 2]
    _, images, _ = _setting(G, samples)
    src = torch.full((3, 6, 8), 0.7)
    inputs = SimpleNamespace(pixel_paste=(src, torch.ones(6, 8), (8, 12)))
    literal, where = _goals(G, inputs, samples, images, 0.0, 1)
    projected, done = projected_goals(G, samples, literal, where, images, 1,
                                      FitSampleParams(project=1))
    assert done
    box = (slice(None), slice(8, 14), slice(12, 20))
    assert torch.equal(projected[0], literal[0])                 # the user's own example
    for i in (1, 2):   # a flat 0.7 box is not what the generator draws: the goal moves off it
        assert float((projected[i][box] - 0.7).abs().mean()) > 0.1


def test_project_below_projects_a_goal_the_generator_reaches_and_pastes_one_it_cannot(
    tiny_dcgan,
):
    from rewrite.edit.example_fit import FitSampleParams, projected_goals
    from rewrite.edit.projected import relative_residual

    G = tiny_dcgan
    samples = [0, 1, 2]
    images, where, drawable, fine = _two_goals(G, samples)
    p = FitSampleParams(project_below=0.8)
    near, projected_near = projected_goals(G, samples, drawable, where, images, 1, p)
    far, projected_far = projected_goals(G, samples, fine, where, images, 1, p)
    assert projected_near and not projected_far
    assert not torch.equal(near[1:], drawable[1:]) and torch.equal(near[0], drawable[0])
    assert torch.equal(far, fine)                  # out of reach: pasted as given
    assert relative_residual(images, fine, images, where) == 1.0
    assert relative_residual(fine, fine, images, where) == 0.0


def _erase_setting(G, samples, layer="main.6"):
    """(images, band [R, R] (the upper half), its key cells [h, w] at ``layer``, D [1, C_in],
    the band's mean response to D)."""
    R = G.resolution
    with torch.no_grad():
        split = G.split(G.latents(samples), layer)
        images = G.resume(split)
    band = torch.zeros(R, R, dtype=torch.bool)
    band[: R // 2] = True
    h = split.keys.shape[-1]
    cells = torch.zeros(h, h, dtype=torch.bool)
    cells[: h // 2] = True
    D = torch.randn(1, split.keys.shape[1], generator=torch.Generator().manual_seed(3))
    D = D / D.norm()
    resp = torch.einsum("rc,nchw->nrhw", D, split.keys).norm(dim=1)
    return images, band, cells, D, float(resp[:, cells].mean())


def test_a_drawn_erase_goal_quiets_the_rule_in_the_band_and_holds_the_rest(
    tiny_dcgan, monkeypatch
):
    """The first layer redraws each sample so the band's keys respond to the rule at most about
    the target; the keep term holds the image outside the band (less change there than the
    same redraw without it)."""
    import rewrite.edit.projected as projected

    G = tiny_dcgan
    samples = [0, 1, 2, 3]
    images, band, cells, D, before = _erase_setting(G, samples)
    target = 0.3 * before

    def outside_change():
        drawn, reached = projected.drawn_erase_goals(
            G, "main.6", samples, images, band, cells, D, target
        )
        assert float(reached.mean()) < 0.6 * before
        return float((drawn - images).abs().mean(1)[:, ~band].mean())

    held = outside_change()
    monkeypatch.setattr(projected, "KEEP_WEIGHT", 0.0)
    assert held < 0.8 * outside_change()


def test_a_drawn_erase_goal_cannot_hook_the_first_layer(tiny_dcgan):
    """The first layer's keys are the latent: nothing upstream redraws them."""
    from rewrite.edit.projected import drawn_erase_goals

    G = tiny_dcgan
    images, band, cells, D, _ = _erase_setting(G, [0])
    with pytest.raises(ValueError, match="first layer"):
        drawn_erase_goals(G, "main.0", [0], images, band, cells[:1, :1], D[:, :8], 0.1)


def test_a_drawn_erase_goal_at_the_second_layer_redraws_from_the_latent(tiny_dcgan):
    """At the layer whose keys are the first layer's values, the latent is redrawn: the band's
    response falls there too, and the generator is left as it was."""
    from rewrite.edit.projected import drawn_erase_goals

    G = tiny_dcgan
    before_state = {k: t.clone() for k, t in G.state_dict().items()}
    samples = [0, 1, 2, 3]
    images, band, cells, D, before = _erase_setting(G, samples, "main.3")
    _, reached = drawn_erase_goals(G, "main.3", samples, images, band, cells, D, 0.3 * before)
    assert float(reached.mean()) < 0.6 * before
    assert all(torch.equal(before_state[k], t) for k, t in G.state_dict().items())


def test_fit_samples_refuses_a_drawn_erase_where_the_layer_cannot_be_hooked(tiny_dcgan,
                                                                             monkeypatch):
    """A family without layer modules (every one but DCGAN) gets a clear EditError naming the
    parameter before any sample is drawn, not a ValueError from inside the solve."""
    from rewrite.edit.example_fit import FitSampleParams, fit_samples
    from rewrite.utils.errors import EditError

    G = tiny_dcgan
    monkeypatch.setattr(G, "layer_modules", lambda layer: None)
    inputs = SimpleNamespace(info=G.layer("main.6"), pixel_paste=None)
    with pytest.raises(EditError, match="erase_drawn"):
        fit_samples(G, inputs, FitSampleParams(erase_drawn=1))
