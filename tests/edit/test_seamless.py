"""Seamless pasting (:func:`rewrite.edit.seamless.poisson_paste`) and its use in the goals of
the image-space fits."""

import math

import pytest
import torch

from rewrite.edit.seamless import poisson_paste


def _images(n=3, size=16, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("top,left", [(4, 5), (0, 0), (0, 6)])   # inside; on two image edges
def test_a_flat_patch_takes_the_images_own_flat_colour(top, left):
    """Another face's flat skin pasted on a flat face: nothing of the source's colour stays."""
    x = torch.full((2, 3, 16, 16), 0.2)
    x[1] = -0.4
    out = poisson_paste(x, torch.full((3, 8, 10), 0.9), top, left)
    assert torch.allclose(out[0], torch.full_like(out[0], 0.2), atol=1e-5)
    assert torch.allclose(out[1], torch.full_like(out[1], -0.4), atol=1e-5)


def test_the_sources_colour_offset_is_dropped_and_its_gradients_kept():
    """A pattern on a lifted background (an object on another face's skin), pasted on a flat
    face: the background comes out at the face's level, the pattern keeps its contrast."""
    x = torch.full((1, 3, 16, 16), -0.3)
    src = torch.full((3, 8, 10), 0.5)
    src[:, 3:5, 4:6] = 1.0                       # a small square away from the border
    out = poisson_paste(x, src, 4, 3)[0]
    assert float((out[:, 3:5, 4:6] - out[:, 0:2, 0:2]).mean()) > 0.35   # of its 0.5
    assert float((out[:, 0] + 0.3).abs().max()) < 0.1   # the border row follows the image
    assert float(out.mean()) < 0.0               # no block of the source's lighter skin


def test_each_image_gets_its_own_border():
    x = _images(2)
    src = torch.zeros(3, 6, 6)
    out = poisson_paste(x, src, 5, 5)
    assert not torch.allclose(out[0], out[1])
    corner = x[:, :, 4, 5]                       # the pixel above the paste's top-left
    assert torch.all((out[:, :, 0, 0] - corner).abs() < (src[:, 0, 0] - corner).abs() + 1e-6)


def test_a_paste_outside_the_image_or_over_all_of_it_is_refused():
    x = _images(1)
    with pytest.raises(ValueError, match="leaves"):
        poisson_paste(x, torch.zeros(3, 8, 8), 10, 0)
    with pytest.raises(ValueError, match="no border"):
        poisson_paste(x, torch.zeros(3, 16, 16), 0, 0)


def test_fit_goals_blend_the_examples_but_not_the_users_own():
    """``seamless`` mixes the blend into the examples' goals after the user's own ones, which
    keep the literal paste; 0 gives the literal paste everywhere."""
    from types import SimpleNamespace

    from rewrite.edit.example_fit import _goals

    x = torch.full((3, 3, 16, 16), -0.5)
    src = torch.full((3, 6, 8), 0.7)
    alpha = torch.ones(6, 8)
    inputs = SimpleNamespace(pixel_paste=(src, alpha, (2, 4)))
    G = SimpleNamespace(resolution=16)
    literal, where = _goals(G, inputs, [0, 1, 2], x, 0.0, 1)
    half, _ = _goals(G, inputs, [0, 1, 2], x, 0.5, 1)
    box = (slice(None), slice(2, 8), slice(4, 12))
    assert torch.allclose(literal[(slice(None), *box)], torch.tensor(0.7))
    assert torch.equal(half[0], literal[0])                      # the user's own example
    assert torch.allclose(half[1][box], torch.tensor(0.1), atol=1e-5)   # (0.7 + -0.5) / 2
    assert torch.equal(half[:, :, 9:], x[:, :, 9:]) and float(where[:, :, 2:8, 4:12].min()) == 1


def test_the_object_matte_keeps_what_differs_from_the_typical_face():
    from rewrite.edit.seamless import object_matte

    typical = torch.zeros(3, 10, 10)
    src = typical.clone()
    src[:, 3:7, 2:8] = -0.9                      # a dark object on skin like the typical face's
    src[:, 0, :] += 0.1                          # a slightly different skin tone: not the object
    m = object_matte(src, typical, 0.4)
    assert float(m[4:6, 3:7].min()) == 1.0       # the object's inside
    assert float(m[0, :].max()) == 0.0 and float(m[9, :].max()) == 0.0
    with pytest.raises(ValueError, match="threshold"):
        object_matte(src, typical, 0.0)


def test_fit_goals_with_a_matte_paste_only_the_object():
    from types import SimpleNamespace

    from rewrite.edit.example_fit import _goals

    x = torch.full((3, 3, 16, 16), -0.2)
    x[2] = 0.2
    src = torch.full((3, 6, 8), -0.1)            # the source face's skin ...
    src[:, 2:5, 1:7] = -0.9                      # ... around a dark object
    inputs = SimpleNamespace(pixel_paste=(src, torch.ones(6, 8), (2, 4)))
    goal, _ = _goals(SimpleNamespace(resolution=16), inputs, [0, 1, 2], x, 0.0, 1, 0.4)
    assert torch.allclose(goal[0, :, 2:8, 4:12], src)            # the user's own: literal
    for i in (1, 2):
        assert torch.allclose(goal[i, :, 5, 6:10], torch.tensor(-0.9))     # the object
        assert torch.allclose(goal[i, :, 2, 4:12], x[i, :, 2, 4:12])       # its own skin


def test_the_feather_fades_the_paste_inside_its_border_but_not_on_the_images_edge():
    from rewrite.edit.seamless import feather_ramp

    r = feather_ramp(6, 8, 0, 4, 16, 2)          # the top side lies on the image's edge
    assert torch.allclose(r[:, 0], torch.tensor([1 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3]))
    assert torch.allclose(r[5, 1:7], torch.tensor(1 / 3))       # the bottom row: 1 px in
    assert torch.allclose(r[4, 2:6], torch.tensor(2 / 3))       # 2 px in
    assert float(r[0, 3]) == 1.0 and float(r[3, 3]) == 1.0      # top row: no border there
    assert torch.equal(feather_ramp(6, 8, 2, 4, 16, 0), torch.ones(6, 8))


def test_fit_goals_with_a_feather_keep_the_inside_and_blend_the_edge():
    from types import SimpleNamespace

    from rewrite.edit.example_fit import _goals

    x = torch.full((2, 3, 16, 16), -0.5)
    src = torch.full((3, 6, 8), 0.7)
    inputs = SimpleNamespace(pixel_paste=(src, torch.ones(6, 8), (2, 4)))
    G = SimpleNamespace(resolution=16)
    sharp, where = _goals(G, inputs, [0, 1], x, 0.0, 1)
    soft, where_soft = _goals(G, inputs, [0, 1], x, 0.0, 1, 0.0, 1)
    assert torch.equal(where, where_soft)                         # the fit's region stays
    assert torch.allclose(soft[:, :, 3:7, 5:11], torch.tensor(0.7))          # the inside
    assert torch.allclose(soft[:, :, 2, 4:12], torch.tensor(0.1))            # (0.7 - 0.5) / 2
    assert torch.allclose(sharp[:, :, 2, 4:12], torch.tensor(0.7))


def test_the_border_offset_reads_the_colour_step_across_the_pastes_border():
    from rewrite.edit.seamless import border_offset

    image = torch.full((3, 16, 16), 0.2)
    skin = torch.full((3, 6, 8), 0.3)            # the source's skin: a small step all round
    skin[:, 2:4, 2:6] = -0.9                     # a dark object inside it, off the border
    assert border_offset(skin, image, 4, 4) == pytest.approx(0.1, abs=1e-6)
    beard = torch.full((3, 6, 8), 0.3)
    beard[:, 3:, :] = -0.8                       # an object running into the border
    # Top row +0.1 (8 px), bottom row -1.0 (8 px), sides 3 px each at +0.1 and at -1.0.
    assert border_offset(beard, image, 4, 4) == pytest.approx(abs((11 * 0.1 - 11 * 1.0) / 22), abs=1e-6)
    # A side on the image's edge has no pair: the rectangle at the top-left corner reads two.
    assert border_offset(skin, image, 0, 0) == pytest.approx(0.1, abs=1e-6)
    # A paste over the whole image has no border to compare: NaN.
    assert math.isnan(border_offset(torch.zeros(3, 16, 16), image, 0, 0))


def test_blend_below_blends_a_paste_with_a_small_border_offset_only():
    from types import SimpleNamespace

    from rewrite.edit.example_fit import blends_by_offset

    own = torch.full((3, 16, 16), 0.2)
    close = SimpleNamespace(pixel_paste=(torch.full((3, 6, 8), 0.3), torch.ones(6, 8), (4, 4)))
    far = SimpleNamespace(pixel_paste=(torch.full((3, 6, 8), -0.6), torch.ones(6, 8), (4, 4)))
    assert blends_by_offset(close, own, 0.5) and not blends_by_offset(far, own, 0.5)
    assert not blends_by_offset(SimpleNamespace(pixel_paste=None), own, 0.5)   # an erase
