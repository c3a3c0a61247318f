"""Decisions the CLI used to make itself now live in the library, once: which sampling
settings a command renders with (option > spec > model), the "not here" change of a spec,
and the solve summary `goal` and `compare` print."""

import json
import types

import numpy as np
import pytest

from rewrite.edit.spec import EditSpec
from rewrite.metrics.before_after import erase_goal_note, goal_report, solve_line
from rewrite.sampling.settings import chosen_sampling, use_sampling

from ..conftest import ROOT, invoke, make_tiny_dcgan

EXAMPLES = ROOT / "examples"


# -- option > spec > model ----------------------------------------------------------

def test_an_option_given_wins_over_the_spec_even_at_its_default_value():
    spec = {"truncation": 0.5, "class": 2}
    assert chosen_sampling(spec) == spec
    assert chosen_sampling(spec, truncation=1.0) == {"truncation": 1.0, "class": 2}
    assert chosen_sampling(spec, class_index=0) == {"truncation": 0.5, "class": 0}
    assert chosen_sampling(None) == {}
    assert chosen_sampling(None, truncation=0.7) == {"truncation": 0.7}


def test_use_sampling_refuses_with_the_models_own_check(tiny_dcgan):
    from rewrite.utils.errors import RewriteError

    with pytest.raises(RewriteError, match="not class-conditional"):
        use_sampling(tiny_dcgan, class_index=1)
    with pytest.raises(RewriteError, match="has no truncation"):
        use_sampling(tiny_dcgan, {"truncation": 0.5})
    with pytest.raises(RewriteError, match="StyleGAN2"):
        use_sampling(tiny_dcgan, noise="random")
    assert use_sampling(tiny_dcgan, truncation=1.0, noise="const") == {"truncation": 1.0}


@pytest.fixture
def truncated_spec(tmp_path, fixtures_dir):
    """A spec on the tiny StyleGAN2 fixture that records truncation 0.5."""
    spec = {"version": 1, "name": "tiny", "model": str(fixtures_dir / "stylegan2_rosinality_tiny64.pt"),
            "layer": "convs.3", "kind": "copy-paste", "stats": {"samples": 1000},
            "copy": {"sample": 1, "mask": {"rect": [16, 16, 32, 32]}},
            "paste": {"sample": 2, "mask": {"rect": [32, 32, 48, 48]}},
            "context": [{"sample": 3, "mask": {"rect": [16, 16, 48, 32]}}],
            "sampling": {"truncation": 0.5}}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture
def seen(monkeypatch):
    """Replaces the solve of `compare` by a stand-in that records the model's truncation
    and returns blank pictures and fixed figures."""
    record = {}

    def stand_in(G, spec, seeds, batch_size=32, progress=None, inputs=None):
        record["truncation"], record["model"] = G.sampling.truncation, spec.model
        record["seeds"] = list(seeds)
        blank = np.zeros((len(seeds), G.resolution, G.resolution, 3), np.uint8)
        delta = types.SimpleNamespace(method="least-collateral", layer=spec.layer,
                                      loss_before=1.0, loss=0.25, collateral=0.005)
        return blank, blank, delta, 0.4

    monkeypatch.setattr("rewrite.metrics.before_after.before_after_solved", stand_in)
    return record


@pytest.mark.parametrize("flags,truncation", [([], 0.5), (["--truncation", "1"], 1.0),
                                              (["--truncation", "0.7"], 0.7)])
def test_compare_renders_with_the_option_else_the_spec(truncated_spec, seen, tmp_path, flags,
                                                       truncation):
    """An explicit --truncation 1 overrides the spec's 0.5 (it was taken as "not given")."""
    res = invoke("compare", str(truncated_spec), "--seeds", "0-1", "--out",
                 str(tmp_path / "c.png"), *flags)
    assert res.returncode == 0, res.stderr
    assert seen["truncation"] == truncation
    assert res.stdout.index("solved with least-collateral") < res.stdout.index("wrote")


def test_compare_takes_the_model_from_the_spec_or_from_model(truncated_spec, seen, tmp_path,
                                                             tiny_dcgan):
    """`compare SPEC.json` (the model named in the spec) and `compare MODEL SPEC.json` (MODEL
    instead, like --model): here MODEL is a DCGAN, which has no layer convs.3."""
    out = str(tmp_path / "c.png")
    model = json.loads(truncated_spec.read_text())["model"]
    assert invoke("compare", model, str(truncated_spec), "--out", out).returncode == 0
    ckpt = tmp_path / "dcgan.pt"
    tiny_dcgan.save(ckpt)
    res = invoke("compare", str(ckpt), str(truncated_spec), "--out", out)
    assert res.returncode == 2 and "unknown layer 'convs.3'" in res.stderr, res.stderr
    res = invoke("compare", str(truncated_spec), "--model", str(ckpt), "--out", out)
    assert res.returncode == 2 and "unknown layer 'convs.3'" in res.stderr, res.stderr
    res = invoke("compare", model, str(truncated_spec), "--model", str(ckpt), "--out", out)
    assert res.returncode == 2 and "disagree" in res.stderr, res.stderr


# -- "not here" -------------------------------------------------------------------

def test_with_not_here_adds_one_region_and_leaves_the_spec_alone():
    spec = EditSpec.load(EXAMPLES / "add-sunglasses.json")
    before = spec.to_json()
    new = spec.with_not_here(112, (0, 24.5, 64, 64))
    assert spec.to_json() == before
    assert len(new.preserve) == len(spec.preserve) + 1
    assert new.preserve[-1].to_json() == {"sample": 112, "mask": {"rect": [0, 24.5, 64, 64]}}
    again = new.with_not_here(7, (1, 2, 3, 4))
    assert [p.sample for p in again.preserve][-2:] == [112, 7]


def test_not_here_command_writes_the_library_change(tmp_path, tiny_dcgan):
    ckpt = tmp_path / "tiny.pt"
    tiny_dcgan.save(ckpt)
    spec = {"version": 1, "model": str(ckpt), "layer": "main.6", "kind": "erase",
            "stats": {"samples": 100}, "erase": {"units": 2},
            "context": [{"sample": 1, "mask": {"rect": [0, 0, 16, 16]}}]}
    src = tmp_path / "s.json"
    src.write_text(json.dumps(spec))
    out = tmp_path / "fixed.json"
    res = invoke("not-here", str(src), "5", "0", "0", "8", "8", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert EditSpec.load(out).to_json() == \
        EditSpec.load(src).with_not_here(5, (0, 0, 8, 8)).to_json()


# -- the solve summary ---------------------------------------------------------------

def _delta(**kw):
    return types.SimpleNamespace(**{"method": "least-collateral", "layer": "main.6",
                                    "loss_before": 1.0, "loss": 0.2, "collateral": 0.004, **kw})


def test_solve_line_names_method_loss_reproduction_collateral_in_order():
    line = solve_line(_delta(), 0.31)
    parts = ["least-collateral", "1.0000 -> 0.2000", "goal reproduction 0.31",
             "predicted collateral 0.0040"]
    where = [line.index(p) for p in parts]
    assert where == sorted(where), line
    assert "reproduction" not in solve_line(_delta(), float("nan"))


def test_goal_report_order_and_the_erase_reproduction_note():
    paste = EditSpec.load(EXAMPLES / "add-sunglasses.json")
    erase = EditSpec.load(EXAMPLES / "remove-glasses.json")
    lines = goal_report(paste, 0.3, _delta(), 0.2)
    assert lines[0].startswith("solved with") and "reproduces the pasted request" in lines[1]
    lines = goal_report(erase, float("nan"), _delta(), 0.2)
    assert lines[0].startswith("solved with") and lines[1] == erase_goal_note(erase)
    assert "erase request" in lines[1] and "inpainted" in lines[1]
    assert goal_report(erase, float("nan"))[0] == erase_goal_note(erase)     # --no-solve


def test_goal_command_prints_solve_note_then_wrote_for_an_erase(tmp_path, tiny_dcgan):
    """The real `goal` on a tiny erase edit: the solve line, then the erase reproduction
    note, and "wrote ..." last (the note used to be missing for erase edits)."""
    ckpt = tmp_path / "tiny.pt"
    tiny_dcgan.save(ckpt)
    spec = {"version": 1, "model": str(ckpt), "layer": "main.6", "kind": "erase",
            "stats": {"samples": 200}, "erase": {"units": 2, "goal": "zero-units"},
            "context": [{"sample": 1, "mask": {"rect": [0, 0, 16, 16]}}]}
    path = tmp_path / "erase.json"
    path.write_text(json.dumps(spec))
    env = {"REWRITE_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "goal.png"
    res = invoke("goal", str(path), "--out", str(out), env=env)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    solved = next(i for i, ln in enumerate(lines) if ln.startswith("solved with"))
    note = lines.index(erase_goal_note(EditSpec.load(path)))
    assert solved < note < len(lines) - 1 and lines[-1] == f"wrote {out}", lines
    res = invoke("goal", str(path), "--out", str(out), "--no-solve", env=env)
    lines = res.stdout.strip().splitlines()
    assert res.returncode == 0 and not any(ln.startswith("solved") for ln in lines)
    assert lines[-2:] == [erase_goal_note(EditSpec.load(path)), f"wrote {out}"], lines


def test_compare_matched_shows_the_samples_the_rule_responds_to_most(truncated_spec, seen,
                                                                      tmp_path):
    """--matched N renders the N of --seeds with the strongest response to the rule's
    directions (ranked here from the keys, independently of `match`), best first; more than
    --seeds holds is refused before anything is loaded."""
    import torch

    from rewrite.edit import Rewriter
    from rewrite.models import load_model

    res = invoke("compare", str(truncated_spec), "--seeds", "0-11", "--matched", "3",
                 "--out", str(tmp_path / "c.png"))
    assert res.returncode == 0, res.stderr
    assert "3 best-matched samples" in res.stdout
    spec = EditSpec.load(truncated_spec)
    G = load_model(spec.model)
    G.set_sampling(truncation=0.5)
    D = Rewriter(G, progress=False).prepare(spec).D.float()
    with torch.no_grad():
        keys = G.split(G.latents(list(range(12))), spec.layer).keys
    peak = torch.einsum("rc,nchw->nrhw", D, keys).norm(dim=1).flatten(1).amax(1)
    assert seen["seeds"] == torch.argsort(peak, descending=True, stable=True)[:3].tolist()
    res = invoke("compare", str(truncated_spec), "--seeds", "0-3", "--matched", "5",
                 "--out", str(tmp_path / "d.png"))
    assert res.returncode == 2 and "--matched 5" in res.stderr, res.stderr
    assert not (tmp_path / "d.png").exists()
