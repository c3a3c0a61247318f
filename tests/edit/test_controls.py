"""The controls that fix an edit: "not here" (preserve) regions, strength, edits solved
together, the goal preview (on the real face model, as a user would use them)."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from rewrite.edit import EditSpec, Rewriter
from rewrite.edit.delta import load_deltas, save_deltas
from rewrite.utils.errors import EditError, SpecError

ROOT = Path(__file__).resolve().parents[2]
SUNGLASSES = ROOT / "examples" / "add-sunglasses.json"
CAP = ROOT / "benchmarks" / "edits" / "tune" / "add-cap.json"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def session(face_model):
    s = Rewriter(face_model, progress=False)
    yield s
    s.reset()


def _with_preserve(spec: EditSpec, regions) -> EditSpec:
    return EditSpec.from_json({**spec.to_json(),
                               "preserve": [{"sample": s, "mask": {"rect": r}}
                                            for s, r in regions]})


def test_preserved_regions_keep_their_values(session):
    """The values under a "not here" mask move at most three quarters as much as under
    the same edit without it, while the edit still moves its own goal."""
    G = session.model
    base = EditSpec.load(CAP)
    region = (112, [0, 32, 64, 64])
    spec = _with_preserve(base, [region])
    z = G.latents([region[0]])
    with torch.no_grad():
        v0 = G.split(z, base.layer).values[0, :, 8:]                       # rows under the mask
    moved = {}
    for label, s in (("without", base), ("with", spec)):
        d = session.apply(s)
        with torch.no_grad():
            moved[label] = float((G.split(z, base.layer).values[0, :, 8:] - v0).abs().mean())
        session.undo()
        assert d.loss < d.loss_before                                   # the goal still moves
    assert moved["with"] < 0.75 * moved["without"], moved


def test_preserve_is_refused_by_the_whole_model_baselines():
    spec = _with_preserve(EditSpec.load(CAP), [(112, [0, 0, 64, 24])]).to_json()
    spec["solver"] = {"name": "finetune-all", "params": {}}
    with pytest.raises(SpecError, match="the 'finetune-all' baseline does not use them"):
        EditSpec.from_json(spec)
    spec["solver"] = {"name": "finetune-layer", "params": {"steps": 5}}
    assert EditSpec.from_json(spec).preserve


def test_strength_scales_the_change_without_solving_again(session, tmp_path):
    G = session.model
    name = G.weight_name("main.6")
    w0 = G.state_dict()[name].clone()
    delta = session.apply(EditSpec.load(SUNGLASSES))
    solved = G.state_dict()[name].clone()
    assert not torch.equal(solved, w0)
    session.set_strength(0, 0.0)
    assert torch.equal(G.state_dict()[name], w0)                  # W0 bit for bit
    session.set_strength(0, 1.0)
    assert torch.equal(G.state_dict()[name], solved)              # the solved edit
    session.set_strength(0, 0.5)
    at_half = G.state_dict()[name].clone()
    half = at_half - w0
    assert torch.allclose(half, (solved - w0) / 2, atol=1e-6)
    assert session.deltas[0].strength == 0.5 and session.deltas[0].spec["strength"] == 0.5
    # Saved and read back with its strength; re-applied it gives the same weights.
    path = save_deltas(session.deltas, tmp_path / "d.safetensors", session.base_fingerprint)
    (back,), _ = load_deltas(path)
    assert back.strength == 0.5
    with pytest.raises(EditError, match="strength must be a number from 0 to 10"):
        session.set_strength(0, -1)
    with pytest.raises(EditError, match="no applied edit number 3"):
        session.set_strength(3, 1)
    session.reset()
    session.apply(back)
    assert torch.equal(G.state_dict()[name], at_half)            # the same weights, bit for bit
    session.reset()
    assert delta.strength == 1.0


def test_removing_an_edit_keeps_the_later_ones(session):
    G = session.model
    name = G.weight_name("main.6")
    w0 = G.state_dict()[name].clone()
    a, b = EditSpec.load(SUNGLASSES), EditSpec.load(CAP)
    db = session.compute(b)
    session.apply(a)
    session.apply(db)
    session.remove(0)
    assert len(session.deltas) == 1 and session.deltas[0] is db
    assert torch.allclose(G.state_dict()[name], w0 + db.changes()[name], atol=0)
    session.reset()


def _goal_reproduction(G, inputs) -> float:
    """Mean |image - goal| / |unedited - goal| over the pasted box (0: the goal exactly)."""
    from rewrite.metrics.transfer import goal_reproduction
    from rewrite.utils.images import to_unit

    with torch.no_grad():
        after = to_unit(G(G.latents(inputs.goal_samples)))
    box = inputs.image_mask[:, 0].numpy() > 0
    return float(np.mean([goal_reproduction(inputs._before[i], after[i],
                                            to_unit(inputs.target_image)[i], box[i])
                          for i in range(len(after))]))


@pytest.mark.parametrize("second", ["add-glasses", "close-mouth"])
def test_joint_solve_reproduces_both_goals_at_least_as_well_as_sequential(session, second):
    """Sunglasses then glasses (the same eyes), beard then closed mouth (neighbours): the
    second edit applied after the first spoils it; solved together, the worse-reproduced
    of the two goals is reproduced better than in sequence."""
    from rewrite.utils.images import to_unit

    G = session.model
    first = SUNGLASSES if second == "add-glasses" else ROOT / "benchmarks/edits/tune/add-beard.json"
    specs = [EditSpec.load(first),
             EditSpec.load(ROOT / "benchmarks" / "edits" / "tune" / f"{second}.json")]
    inputs = [session.prepare(s) for s in specs]
    for inp in inputs:
        with torch.no_grad():
            inp._before = to_unit(G(G.latents(inp.goal_samples)))
    # Sequential: each solved on the model the previous one left.
    for s in specs:
        session.apply(s)
    sequential = [_goal_reproduction(G, inp) for inp in inputs]
    session.reset()
    deltas = session.apply_together(copy.deepcopy(specs))
    assert [d.method for d in deltas] == ["least-collateral (together)"] * 2
    joint = [_goal_reproduction(G, inp) for inp in inputs]
    session.reset()
    assert max(joint) < max(sequential) - 0.01, (joint, sequential)
    # Each joint delta is removable on its own and keeps its own strength.
    assert all(d.low_rank is not None and d.strength == 1.0 for d in deltas)


def test_goal_preview_is_the_goal_values_rendered(session):
    G = session.model
    inputs = session.prepare(EditSpec.load(SUNGLASSES))
    with torch.no_grad():
        expected = G.resume(inputs.split.with_values(inputs.goal))
    assert torch.equal(inputs.goal_image, expected)


def test_cli_controls_end_to_end(tmp_path, face_model):
    """`not-here` adds a region (never over its input), `edit a b` solves two edits together,
    `apply --strength 0` gives back the original weights."""
    from rewrite.models import load_model

    from ..conftest import invoke

    fixed = tmp_path / "cap-fixed.json"
    res = invoke("not-here", str(CAP), "112", "0", "24", "64", "64", "--out", str(fixed))
    assert res.returncode == 0, res.stderr
    assert EditSpec.load(fixed).preserve[0].to_json() == {"sample": 112,
                                                          "mask": {"rect": [0, 24, 64, 64]}}
    res = invoke("not-here", str(fixed), "5", "0", "24", "64", "64", "--out", str(fixed))
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert len(EditSpec.load(fixed).preserve) == 1                    # the input is untouched
    out, delta = tmp_path / "both.pt", tmp_path / "both.safetensors"
    res = invoke("edit", str(SUNGLASSES), str(fixed), "--out", str(out), "--delta", str(delta))
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("least-collateral (together)") == 2
    deltas, _ = load_deltas(delta)
    assert len(deltas) == 2 and deltas[1].spec["preserve"]
    zero = tmp_path / "zero.pt"
    res = invoke("apply", "dcgan-digiface64", str(delta), "--strength", "0", "--out", str(zero))
    assert res.returncode == 0 and "at strength 0, 0" in res.stdout, res.stderr
    original = load_model("dcgan-digiface64").state_dict()
    assert all(torch.equal(t, original[n]) for n, t in load_model(str(zero)).state_dict().items())
    res = invoke("apply", "dcgan-digiface64", str(delta), "--strength", "1", "--strength", "1",
                 "--strength", "1", "--out", str(tmp_path / "x.pt"))
    assert res.returncode == 2 and "one per edit (2 in" in res.stderr


def test_method_variants_of_a_not_here_spec_can_all_run():
    """compare-methods on a spec with "not here" regions: the whole-model baselines
    drop them (they cannot use them), the layer solvers keep them."""
    from rewrite.memory.solvers import SOLVERS
    from rewrite.metrics.evaluate import method_variants

    spec = _with_preserve(EditSpec.load(CAP), [(112, [0, 32, 64, 64])])
    variants = method_variants(spec)
    assert {v.solver for v in variants} >= {"least-collateral", "finetune-all"}
    for v in variants:
        assert bool(v.preserve) == (v.solver in SOLVERS)
        EditSpec.from_json(v.to_json())                  # every variant is a valid spec
