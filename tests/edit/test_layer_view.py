"""One goal build asks the generator through one LayerView: the layer's info once, no batch
of samples split or rendered twice, and the inputs bit-identical to a build that shares
nothing (on a tiny random DCGAN: a copy-paste with context and "not here" rows, an erase
with the inpainting goal)."""

import collections
import dataclasses
import sys

import pytest
import torch

from rewrite.edit import EditSpec
from rewrite.edit import goals as goals_module
from rewrite.edit.goals import DONOR_POOL, build_inputs, donor_batches, region_keys
from rewrite.edit.layer_stats import layer_stats
from rewrite.edit.layer_view import LayerView

LAYER = "main.6"  # tiny DCGAN: keys 8x8 (4 px a cell), values 16x16 (2 px a cell)

COPY_PASTE = {
    "version": 1, "model": "tiny", "layer": LAYER, "kind": "copy-paste", "rank": 2,
    "copy": {"sample": 3, "mask": {"rect": [4, 8, 28, 16]}},
    "paste": {"sample": 5, "mask": {"rect": [4, 12, 28, 20]}},
    "context": [{"sample": s, "mask": {"rect": [0, 8, 32, 24]}} for s in (7, 5, 9)],
    "preserve": [{"sample": 11, "mask": {"rect": [0, 24, 32, 32]}}],
}
ERASE = {
    "version": 1, "model": "tiny", "layer": LAYER, "kind": "erase", "rank": 2,
    "erase": {"units": 2, "goal": "inpaint"},
    "context": [{"sample": s, "mask": {"rect": [0, 0, 32, 12]}} for s in (2, 4, 6)],
}
SPECS = {"copy-paste": COPY_PASTE, "erase": ERASE}


@pytest.fixture
def model_and_stats(tiny_dcgan):
    return tiny_dcgan, layer_stats(tiny_dcgan, LAYER, n=64, progress=False, cache=False)


class _Calls:
    """Counts the generator calls made from outside the model's own code: ``G.layer``
    fetches, splits and full renders, each split and render by (layer, samples)."""

    def __init__(self, G, monkeypatch):
        self.layer = 0
        self.splits: collections.Counter = collections.Counter()
        self.renders: collections.Counter = collections.Counter()
        self._samples: dict[int, tuple] = {}  # id(latents) -> samples
        self._keep: list[torch.Tensor] = []   # the latents seen, so no id is reused
        layer, latents, split, forward = G.layer, G.latents, G.split, G.forward

        def counting_layer(name):
            if not sys._getframe(1).f_globals["__name__"].startswith("rewrite.models"):
                self.layer += 1
            return layer(name)

        def counting_latents(indices, seed=None):
            indices = list(indices)
            z = latents(indices, seed)
            self._samples[id(z)] = tuple(indices)
            self._keep.append(z)
            return z

        def counting_split(z, name):
            self.splits[name, self._samples[id(z)]] += 1
            return split(z, name)

        def counting_forward(z):
            self.renders[self._samples[id(z)]] += 1
            return forward(z)

        for name, fn in (("layer", counting_layer), ("latents", counting_latents),
                         ("split", counting_split), ("forward", counting_forward)):
            monkeypatch.setattr(G, name, fn)


@pytest.mark.parametrize("kind", SPECS)
def test_one_build_fetches_the_layer_once_and_splits_each_batch_once(
        model_and_stats, monkeypatch, kind):
    G, stats = model_and_stats
    spec = EditSpec.from_json(SPECS[kind])
    calls = _Calls(G, monkeypatch)
    inputs = build_inputs(G, spec, stats)
    assert calls.layer == 1
    assert all(n == 1 for n in calls.splits.values()), calls.splits
    assert all(n == 1 for n in calls.renders.values()), calls.renders
    assert {name for name, _ in calls.splits} == {LAYER}
    samples = {s for _, s in calls.splits}
    context = {(sel.sample,) for sel in spec.context}
    if kind == "copy-paste":
        # A, B (also a context sample), the other context samples, B with the "not here" one.
        assert samples == {(3,), (5,), (5, 11)} | context
        assert set(calls.renders) == {(3,), (5,)}
        assert inputs.goal_rows == 1 and inputs.goal.shape[0] == 2
    else:
        # Each context sample (its keys), all of them (the goal), each donor batch.
        donors = {tuple(chunk) for chunk in donor_batches()}
        assert samples == context | {(2, 4, 6)} | donors
        assert not calls.renders
        assert not torch.equal(inputs.goal, inputs.split.values)       # something was erased


class _Unshared(LayerView):
    """A view that remembers nothing: every call goes to the generator, as before views."""

    def latents(self, samples):
        return self.G.latents(list(samples))

    def split(self, samples, keep=True):
        return self.G.split(self.G.latents(list(samples)), self.layer)

    def images(self, samples):
        return self.G(self.G.latents(list(samples)))


def _same(x, y) -> bool:
    if torch.is_tensor(x):
        return torch.is_tensor(y) and x.dtype == y.dtype and torch.equal(x, y)
    if isinstance(x, (tuple, list)):
        return type(x) is type(y) and len(x) == len(y) and all(map(_same, x, y))
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    return x == y


@pytest.mark.parametrize("kind", SPECS)
def test_the_inputs_equal_those_of_a_build_that_shares_nothing(
        model_and_stats, monkeypatch, kind):
    G, stats = model_and_stats
    spec = EditSpec.from_json(SPECS[kind])
    shared = build_inputs(G, spec, stats)
    with monkeypatch.context() as m:
        m.setattr(goals_module, "LayerView", _Unshared)
        m.setattr(goals_module, "DONOR_KEEP_BYTES", 0)       # the donors rendered again
        fresh = build_inputs(G, spec, stats)
    for field in dataclasses.fields(shared):
        a, b = getattr(shared, field.name), getattr(fresh, field.name)
        if field.name == "split":
            a, b = (a.layer, a.keys, a.values, a.extras), (b.layer, b.keys, b.values, b.extras)
        assert _same(a, b), field.name
    # And the goal's pieces are what the generator gives for them directly.
    with torch.no_grad():
        direct = G.split(G.latents(shared.goal_samples), LAYER)
    assert torch.equal(shared.split.values[: len(shared.goal_samples)], direct.values)


def test_kept_donors_pick_the_same_values_as_donors_rendered_again(tiny_dcgan, monkeypatch):
    G = tiny_dcgan
    spec = EditSpec.from_json(ERASE)
    view = LayerView(G, LAYER)
    split = view.split([2, 4, 6])
    region = torch.zeros(3, 16, 16, dtype=torch.bool)
    region[0, :6], region[1, 2:8, 4:12], region[2, 10:] = True, True, True
    D = torch.linalg.qr(torch.randn(8, 2, generator=torch.Generator().manual_seed(0),
                                    dtype=torch.float64))[0].T
    pool = DONOR_POOL[:96]
    kept = goals_module.inpaint_goal(G, spec.layer, split, region, D, pool, view=view)
    with monkeypatch.context() as m:
        m.setattr(goals_module, "DONOR_KEEP_BYTES", 0)
        again = goals_module.inpaint_goal(G, spec.layer, split, region, D, pool)
    assert torch.equal(kept, again) and not torch.equal(kept, split.values)


def test_a_view_of_another_layer_or_model_is_refused(tiny_dcgan):
    from ..conftest import make_tiny_dcgan

    spec = EditSpec.from_json(ERASE)
    with pytest.raises(ValueError, match=r"view is of layer 'main\.3'"):
        region_keys(tiny_dcgan, LAYER, spec.context, view=LayerView(tiny_dcgan, "main.3"))
    with pytest.raises(ValueError, match="another model"):
        region_keys(tiny_dcgan, LAYER, spec.context, view=LayerView(make_tiny_dcgan(), LAYER))
    view = LayerView(tiny_dcgan, LAYER)
    keys = region_keys(tiny_dcgan, LAYER, spec.context, view=view)
    assert torch.equal(keys, region_keys(tiny_dcgan, LAYER, spec.context))
    assert view.split([2]) is view.split([2]) and view.split([2]) is not view.split([2, 4])
