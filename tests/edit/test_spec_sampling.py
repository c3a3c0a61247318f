"""An edit spec's ``sampling`` (truncation, class): statistics, goals and evaluation use the
settings the user saw the samples with, the model's own settings come back afterwards, and
settings a model cannot take are clear errors."""

from pathlib import Path

import pytest
import torch

from rewrite.edit import EditSpec, Rewriter
from rewrite.models import load_model
from rewrite.utils.errors import SpecError

CONDITIONAL = Path(__file__).resolve().parents[1] / "fixtures" / "nvlabs" / \
    "stylegan2ada_cond_tiny32.pkl"


def _spec(model: str, sampling=None, **extra) -> EditSpec:
    q = 8
    obj = {"version": 1, "model": model, "layer": "b16.conv1", "kind": "copy-paste", "rank": 1,
           "stats": {"samples": 100},
           "copy": {"sample": 1, "mask": {"rect": [q, q, 2 * q, 2 * q]}},
           "paste": {"sample": 2, "mask": {"rect": [2 * q, 2 * q, 3 * q, 3 * q]}},
           "context": [{"sample": 3, "mask": {"rect": [q, q, 3 * q, 2 * q]}}], **extra}
    if sampling is not None:
        obj["sampling"] = sampling
    return EditSpec.from_json(obj)


@pytest.fixture
def G(tmp_path, monkeypatch):
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cache"))
    return load_model(str(CONDITIONAL))


def test_goals_and_statistics_use_the_specs_class_and_truncation(G):
    session = Rewriter(G, progress=False)
    spec = _spec(str(CONDITIONAL), {"class": 2, "truncation": 0.7})
    assert EditSpec.from_json(spec.to_json()).sampling == {"class": 2, "truncation": 0.7}
    inputs = session.prepare(spec)
    assert G.sampling_settings() == {"truncation": 1.0, "class": 0}      # restored
    G.set_sampling(class_index=2, truncation=0.7)
    with torch.no_grad():
        want = G.split(G.latents(inputs.goal_samples), spec.layer).values
        stats_there = session.stats(_spec(str(CONDITIONAL)))               # no sampling: as set
    G.set_sampling(class_index=0, truncation=1.0)
    assert torch.equal(inputs.split.values, want)
    assert torch.equal(session.stats(spec).keys.moment(), stats_there.keys.moment())
    plain = session.prepare(_spec(str(CONDITIONAL)))
    assert not torch.allclose(plain.split.values, inputs.split.values)
    assert not torch.allclose(session.stats(_spec(str(CONDITIONAL))).keys.moment(),
                              stats_there.keys.moment())


def test_the_edit_solved_under_a_class_differs_and_the_settings_come_back(G):
    session = Rewriter(G, progress=False)
    d2 = session.compute(_spec(str(CONDITIONAL), {"class": 2}))
    d0 = session.compute(_spec(str(CONDITIONAL)))
    assert d2.spec["sampling"] == {"class": 2}
    assert not torch.allclose(d2.low_rank.lam, d0.low_rank.lam)
    with pytest.raises(RuntimeError):
        with G.using_sampling({"class": 1}):
            assert G.sampling.class_index == 1
            raise RuntimeError("inside")
    assert G.sampling.class_index == 0


@pytest.mark.parametrize("sampling, message", [
    ({"class": 3}, "'sampling.class' 3 is out of range: this model has 3 classes"),
    ({"colour": 1}, "sampling: unknown field 'colour'"),
    ({"truncation": 1.5}, "'sampling.truncation' must be a number in [0, 1]"),
    ({"class": -1}, "'sampling.class' must be a class number >= 0")])
def test_settings_the_model_cannot_take_are_named(G, sampling, message):
    with pytest.raises(SpecError) as err:
        Rewriter(G, progress=False).prepare(_spec(str(CONDITIONAL), sampling))
    assert message in str(err.value)


def test_a_family_without_the_option_refuses_it(tiny_dcgan):
    spec = EditSpec.from_json({"version": 1, "model": "x", "layer": "main.3", "kind": "erase",
                               "context": [{"sample": 1, "mask": {"rect": [0, 0, 16, 16]}}],
                               "sampling": {"truncation": 0.5, "class": 1}})
    with pytest.raises(SpecError) as err:
        spec.validate_for(tiny_dcgan)
    assert "a dcgan model has no truncation" in str(err.value)
    assert "this dcgan model is not class-conditional" in str(err.value)
