"""The Rewriter session on the real face model with the example edits."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from rewrite.edit import Delta, EditSpec, LowRank, Rewriter, load_deltas
from rewrite.edit.masks import coverage, render_mask
from rewrite.utils.errors import DeltaFileError, EditError, SpecError
from rewrite.metrics.firing import firing_mask, key_response, quantile_threshold
from rewrite.models import load_model
from rewrite.sampling.generate import generate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HELD_OUT = list(range(1000, 1032))

# The real model.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    """A private copy of the face model (sessions edit it in place)."""
    return load_model("dcgan-digiface64")


@pytest.fixture(scope="module")
def sunglasses():
    return EditSpec.load(EXAMPLES / "add-sunglasses.json")


@pytest.fixture(scope="module")
def session_result(model, sunglasses):
    """The example edit applied once; the model is reset afterwards."""
    session = Rewriter(model, progress=False)
    before_weights = {k: v.clone() for k, v in model.state_dict().items()}
    before = generate(model, HELD_OUT).astype(np.float64) / 255
    paste_before = generate(model, [sunglasses.paste.sample]).astype(np.float64) / 255
    inputs = session.prepare(sunglasses)
    delta = session.apply(sunglasses)
    after = generate(model, HELD_OUT).astype(np.float64) / 255
    paste_after = generate(model, [sunglasses.paste.sample]).astype(np.float64) / 255
    edited_weights = {k: v.clone() for k, v in model.state_dict().items()}
    session.reset()
    return dict(session=session, inputs=inputs, delta=delta, before=before, after=after,
                paste_before=paste_before, paste_after=paste_after,
                before_weights=before_weights, edited_weights=edited_weights)


def sunglasses_rank() -> int:
    import json
    return json.loads((EXAMPLES / "add-sunglasses.json").read_text())["rank"]


def test_loss_drops_by_a_clear_margin(session_result):
    d = session_result["delta"]
    assert d.loss < 0.6 * d.loss_before, d.figures()
    assert d.low_rank is not None and d.low_rank.D.shape == (sunglasses_rank(), 256)


def test_paste_region_of_the_target_changes(session_result, sunglasses):
    diff = np.abs(session_result["paste_after"] - session_result["paste_before"]).mean(-1)[0]
    box = render_mask(sunglasses.paste.mask, 64) > 0
    assert diff[box].mean() > 0.08
    assert diff[box].mean() > 2 * diff[~box].mean()


def test_rank1_update_is_more_local_than_finetuning_the_layer(model, sunglasses, session_result):
    """The paper's central claim, measured on 32 held-out samples."""
    D = session_result["inputs"].D
    resp = key_response(model, sunglasses.layer, D, HELD_OUT)
    fire = firing_mask(resp, quantile_threshold(resp), model.resolution).numpy()
    assert 0 < fire.mean() < 0.5
    ours = np.abs(session_result["after"] - session_result["before"]).mean(-1)

    baseline = copy.deepcopy(sunglasses)
    baseline.solver, baseline.solver_params = "finetune-layer", {}
    session = Rewriter(model, progress=False)
    d = session.apply(baseline)
    theirs = np.abs(generate(model, HELD_OUT) / 255 - session_result["before"]).mean(-1)
    session.reset()
    assert d.loss < d.loss_before
    outside_ours, outside_theirs = ours[~fire].mean(), theirs[~fire].mean()
    assert outside_ours < outside_theirs, (outside_ours, outside_theirs)
    # ...at comparable efficacy: the rule still changes the firing regions.
    assert ours[fire].mean() > outside_ours * 2


def test_same_spec_gives_bit_identical_weights(model, sunglasses, session_result):
    session = Rewriter(model, progress=False)
    session.apply(sunglasses)
    for name, t in model.state_dict().items():
        assert torch.equal(t, session_result["edited_weights"][name]), name
    session.reset()


def test_undo_and_reset_restore_exact_weights(model, sunglasses, session_result):
    orig = session_result["before_weights"]
    session = Rewriter(model, progress=False)
    d1 = session.apply(sunglasses)
    after_one = {k: v.clone() for k, v in model.state_dict().items()}
    session.apply(d1)                                  # the same delta twice: a stronger edit
    assert not torch.equal(model.main[6].weight, after_one["main.6.weight"])
    assert session.undo() is d1
    assert all(torch.equal(model.state_dict()[k], after_one[k]) for k in orig)
    session.undo()
    assert session.undo() is None
    assert all(torch.equal(model.state_dict()[k], orig[k]) for k in orig)
    session.apply(d1)
    session.apply(d1)
    session.reset()
    assert all(torch.equal(model.state_dict()[k], orig[k]) for k in orig)
    assert session.deltas == []


def test_export_round_trip(model, sunglasses, session_result, tmp_path):
    session = Rewriter(model, progress=False)
    session.apply(session_result["delta"])
    ckpt, delta_path = tmp_path / "edited.pt", tmp_path / "edit.safetensors"
    session.export_checkpoint(ckpt)
    session.export_deltas(delta_path)
    z = model.latents(range(8))
    with torch.no_grad():
        edited_images = model(z)
    session.reset()
    fresh = load_model(str(ckpt))
    with torch.no_grad():
        assert torch.equal(fresh(z), edited_images)
    # The delta file is small and re-applies to the original model exactly.
    assert delta_path.stat().st_size < 100_000
    again = Rewriter(load_model("dcgan-digiface64"))
    deltas = again.apply_delta_file(delta_path)
    assert len(deltas) == 1 and deltas[0].spec == sunglasses.to_json()
    for name, t in again.model.state_dict().items():
        assert torch.equal(t, session_result["edited_weights"][name]), name
    # ...but not to a model it was not made for.
    with pytest.raises(DeltaFileError, match="was made for a model with fingerprint"):
        again.apply_delta_file(delta_path)


def test_nan_in_delta_file_is_refused(session_result, tmp_path, model):
    session = Rewriter(model, progress=False)
    session.apply(session_result["delta"])
    path = tmp_path / "edit.safetensors"
    session.export_deltas(path)
    session.reset()
    from safetensors import safe_open
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata()
    tensors = load_file(str(path))
    tensors["edit.0.lambda"][0, 0, 0, 0] = float("nan")
    save_file(tensors, str(path), metadata=meta)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(DeltaFileError, match="NaN or infinite"):
        Rewriter(model).apply_delta_file(path)
    assert all(torch.equal(model.state_dict()[k], before[k]) for k in before)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DeltaFileError, match="not a readable delta file"):
        load_deltas(path)


def test_failed_edits_leave_weights_unchanged(model, sunglasses):
    session = Rewriter(model, progress=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    too_high = copy.deepcopy(sunglasses)
    too_high.rank, too_high.direction = 200, "zca"      # more than the context's distinct keys
    with pytest.raises(EditError, match="rank 200 is larger than the number of distinct"):
        session.apply(too_high)
    bad_layer = copy.deepcopy(sunglasses)
    bad_layer.layer = "main.5"
    with pytest.raises(SpecError, match="unknown layer 'main.5'"):
        session.apply(bad_layer)
    nan = Delta("main.6", "hand-made", low_rank=LowRank(
        "main.6.weight", torch.full((128, 4, 4, 1), float("nan")), torch.ones(1, 256) / 16, 0, 1))
    with pytest.raises(EditError, match="not finite"):
        session.apply(nan)
    wrong = Delta("main.6", "hand-made", dense={"main.6.weight": torch.zeros(3)})
    with pytest.raises(EditError, match="has shape"):
        session.apply(wrong)
    assert all(torch.equal(model.state_dict()[k], before[k]) for k in before)
    assert session.deltas == []


def test_erase_example(model):
    spec = EditSpec.load(EXAMPLES / "remove-glasses.json")
    session = Rewriter(model, progress=False)
    zeroed = copy.deepcopy(spec)
    zeroed.erase_goal = "zero-units"    # the default inpainting goal: tests/test_edit_quality.py
    inputs = session.prepare(zeroed)
    assert len(inputs.units) == spec.erase_units
    # The goal zeroes the chosen units inside the marked regions only.
    assert (inputs.goal[:, inputs.units][inputs.mask.expand(-1, len(inputs.units), -1, -1) > 0]
            == 0).all()
    outside = inputs.mask.expand_as(inputs.goal) == 0
    assert torch.equal(inputs.goal[outside], inputs.split.values[outside])
    # The example as shipped changes the marked regions more than the rest (the regions are
    # half of each face, and the rank-4 rule also reaches the other half: 1.8x here).
    samples = [c.sample for c in spec.context]
    before = generate(model, samples).astype(float)
    d = session.apply(spec)
    after = generate(model, samples).astype(float)
    session.reset()
    assert d.loss < 0.8 * d.loss_before
    region = np.stack([coverage(render_mask(c.mask, 64), 64).numpy() > 0 for c in spec.context])
    change = np.abs(after - before).mean(-1)
    assert change[region].mean() > 1.5 * change[~region].mean()


def test_baselines_run(model, sunglasses):
    session = Rewriter(model, progress=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ft = copy.deepcopy(sunglasses)
    ft.solver, ft.solver_params = "finetune-all", {"steps": 20}
    d = session.apply(ft)
    assert d.loss < d.loss_before and d.loss_kind == "pixel-L1"
    assert len(d.dense) > 5                              # every weight moved
    session.reset()
    erase = EditSpec.load(EXAMPLES / "remove-glasses.json")
    erase.solver = "dissect-erase"
    d = session.apply(erase)
    layer_units = d.units
    bn = model.main[4]
    assert (bn.weight[layer_units] == 0).all() and (bn.bias[layer_units] == 0).all()
    z = model.latents([5])
    with torch.no_grad():
        assert (model.split(z, "main.3").values[:, layer_units] == 0).all()
    session.reset()
    assert all(torch.equal(model.state_dict()[k], before[k]) for k in before)
