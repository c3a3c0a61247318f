"""The sampling of a generator as one frozen value (rewrite.models.sampling): its defaults,
what each family takes, the cache tag, and the one setter (the class included)."""

import dataclasses
from pathlib import Path

import pytest
import torch

from rewrite.models import load_model
from rewrite.models.proggan import ProGANConfig, ProGANGenerator
from rewrite.models.sampling import (
    DEFAULT_SAMPLING,
    Sampling,
    from_settings,
    non_default,
)
from rewrite.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from rewrite.sampling.settings import use_sampling
from rewrite.utils.errors import RewriteError

NVLABS = Path(__file__).resolve().parents[1] / "fixtures" / "nvlabs"


@pytest.fixture
def models(tiny_dcgan):
    """One model of each family, the NVIDIA ones class-conditional (3 classes) and not."""
    return {
        "dcgan": tiny_dcgan,
        "proggan": ProGANGenerator(ProGANConfig(z_dim=8, channels=(8, 8, 8, 8))),
        "stylegan2": StyleGAN2Generator(StyleGAN2Config(8, 8, 1, (8, 8))),
        "stylegan2-ada": load_model(str(NVLABS / "stylegan2ada_orig_tiny32.pkl")),
        "stylegan2-ada-cond": load_model(str(NVLABS / "stylegan2ada_cond_tiny32.pkl")),
        "stylegan3-cond": load_model(str(NVLABS / "stylegan3t_cond_tiny32.pkl")),
    }


def test_defaults_and_immutability():
    s = Sampling()
    assert s == DEFAULT_SAMPLING
    assert (s.truncation, s.cutoff, s.noise, s.class_index) == (1.0, None, "const", 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.truncation = 0.5  # type: ignore[misc]
    t = s.replace(truncation=0.5, class_index=2)
    assert (s.truncation, t.truncation, t.class_index) == (1.0, 0.5, 2)
    assert t.changes_from(s) == {"truncation": 0.5, "class_index": 2}
    assert s.changes_from(s) == {}
    with pytest.raises(TypeError):
        s.replace(colour=1)


def test_a_specs_form():
    assert from_settings({"truncation": 0.7, "class": 3}) == {"truncation": 0.7, "class_index": 3}
    assert from_settings(None) == {}
    with pytest.raises(RewriteError, match="unknown setting"):
        from_settings({"colour": 1})
    assert non_default({"truncation": 1.0, "class": 0}) == {}
    assert non_default({"truncation": 0.5, "class": 0}) == {"truncation": 0.5}


def test_each_family_declares_the_fields_it_reads(models):
    declared = {name: (G.sampling_fields, G.noise_modes) for name, G in models.items()}
    assert declared == {
        "dcgan": (frozenset(), ("const",)),
        "proggan": (frozenset(), ("const",)),
        "stylegan2": ({"truncation", "noise"}, ("const", "random")),
        "stylegan2-ada": ({"truncation", "cutoff", "noise", "class_index"},
                          ("const", "random", "none")),
        "stylegan2-ada-cond": ({"truncation", "cutoff", "noise", "class_index"},
                               ("const", "random", "none")),
        "stylegan3-cond": ({"truncation", "cutoff", "class_index"},
                           ("const", "random", "none")),
    }
    # What a spec records: the class only where the model has classes.
    settings = {name: G.sampling_settings() for name, G in models.items()}
    assert settings == {
        "dcgan": {},
        "proggan": {},
        "stylegan2": {"truncation": 1.0},
        "stylegan2-ada": {"truncation": 1.0},
        "stylegan2-ada-cond": {"truncation": 1.0, "class": 0},
        "stylegan3-cond": {"truncation": 1.0, "class": 0},
    }
    for G in models.values():
        assert G.sampling == DEFAULT_SAMPLING and G.sampling_changes() == {}


@pytest.mark.parametrize("name", ["dcgan", "proggan"])
def test_families_without_options_take_only_the_defaults(models, name):
    G = models[name]
    G.set_sampling(truncation=1.0, noise="const", cutoff=None)  # the defaults: fine
    for changes, message in [
        ({"truncation": 0.5}, f"'sampling.truncation' 0.5: a {name} model has no truncation"),
        ({"noise": "random"}, f"noise options apply to StyleGAN2 models; this is a {name} model"),
        ({"cutoff": 4}, f"truncation cutoff 4: a {name} model has no cutoff"),
        ({"class_index": 0}, f"'sampling.class': this {name} model is not class-conditional"),
    ]:
        with pytest.raises(RewriteError, match=message):
            G.set_sampling(**changes)
    assert G.sampling == DEFAULT_SAMPLING


def test_the_stylegan_families_check_their_own_options(models):
    with pytest.raises(RewriteError, match="a stylegan2 model has no cutoff"):
        models["stylegan2"].set_sampling(cutoff=4)
    with pytest.raises(RewriteError, match="noise must be 'const' or 'random', got 'none'"):
        models["stylegan2"].set_sampling(noise="none")
    ada = models["stylegan2-ada"]
    with pytest.raises(RewriteError, match="noise must be 'const', 'random' or 'none', got 'x'"):
        ada.set_sampling(noise="x")
    with pytest.raises(RewriteError, match="not class-conditional"):
        ada.set_sampling(class_index=1)
    with pytest.raises(RewriteError, match=r"'sampling.class' 3 is out of range: this model "
                                           r"has 3 classes \(0..2\)"):
        models["stylegan2-ada-cond"].set_sampling(class_index=3)
    with pytest.raises(RewriteError, match="unknown sampling settings"):
        ada.set_sampling(colour=1)
    # A refused change changes nothing, also the fields given with it.
    with pytest.raises(RewriteError):
        ada.set_sampling(truncation=0.5, noise="x")
    assert ada.sampling == DEFAULT_SAMPLING


def test_the_tag_names_the_settings_the_model_reads(models):
    """The cache tags of every family, as they were when each family derived its own."""
    sg2, ada, cond, sg3 = (models[k] for k in ("stylegan2", "stylegan2-ada",
                                               "stylegan2-ada-cond", "stylegan3-cond"))
    assert [G.sampling_tag() for G in models.values()] == ["", "", "", "", "-class0", "-class0"]
    sg2.set_sampling(truncation=0.7, noise="random")
    assert sg2.sampling_tag() == "-t0.7-noise-random"
    ada.set_sampling(truncation=0.5, cutoff=4, noise="none")
    assert ada.sampling_tag() == "-t0.5c4-noise-none"
    ada.set_sampling(truncation=1.0)
    assert ada.sampling_tag() == "-noise-none"  # no cutoff without truncation
    cond.set_sampling(class_index=2, truncation=0.8)
    assert cond.sampling_tag() == "-t0.8-class2"
    # stylegan3 has no noise inputs: any mode is taken, none is in the tag.
    sg3.set_sampling(noise="random", truncation=0.7, cutoff=2, class_index=1)
    assert sg3.sampling_tag() == "-t0.7c2-class1"
    assert sg3.sampling_settings() == {"truncation": 0.7, "class": 1}
    assert sg3.sampling_changes() == {"truncation": 0.7, "class": 1}


def test_the_class_is_set_through_the_one_setter(models):
    G = models["stylegan2-ada-cond"]
    z = G.latents([0])
    with torch.no_grad():
        class0 = G(z)
        G.set_sampling(class_index=1)
        assert G.sampling == Sampling(class_index=1)
        assert G.sampling_settings() == {"truncation": 1.0, "class": 1}
        assert not torch.equal(G(z), class0)
        with pytest.raises(AttributeError):
            G.sampling = Sampling()  # read-only: set_sampling replaces it
        # A spec's form and the command-line options go through the same setter.
        with G.using_sampling({"class": 2, "truncation": 0.5}):
            assert G.sampling == Sampling(truncation=0.5, class_index=2)
        assert G.sampling == Sampling(class_index=1)
        assert use_sampling(G, {"class": 0}, truncation=0.7, noise="random") == {
            "class": 0, "truncation": 0.7}
        assert G.sampling == Sampling(truncation=0.7, noise="random")


def test_the_truncation_is_read_from_the_sampling(models):
    G = models["stylegan2-ada"]
    z = G.latents(range(2))
    with torch.no_grad():
        full = G.broadcast_latents(z)
        G.set_sampling(truncation=0.5, cutoff=2)
        cut = G.broadcast_latents(z)
    assert torch.equal(cut[:, 2:], full[:, 2:])
    assert torch.allclose(cut[:, :2], G.mapping.w_avg.lerp(full[:, :2], 0.5))
