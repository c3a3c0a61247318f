"""What makes an edit carry the object: the rendered goal, the inpainting erase goal, the
collateral budget, and the `rewrite goal` command (on the real face model)."""

import types
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from rewrite.cli import main
from rewrite.metrics.before_after import goal_fidelity
from rewrite.edit import EditSpec, Rewriter
from rewrite.edit.goals import DONOR_POOL, donor_batches
from rewrite.edit.masks import VALUE_COVERAGE, coverage, render_mask
from rewrite.metrics.firing import key_response

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

# The real model (through a module fixture, or the `goal` command's zoo name).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def session(face_model):
    return Rewriter(face_model, progress=False)


def test_the_goal_renders_as_the_pasted_object(session):
    spec = EditSpec.load(EXAMPLES / "add-sunglasses.json")
    inputs = session.prepare(spec)
    assert inputs.goal_image.shape == (1, 3, 64, 64)
    assert goal_fidelity(session.model, inputs) < 0.2       # main.6 can show the sunglasses
    coarse = EditSpec.from_json({**spec.to_json(), "layer": "main.12"})
    # At the last layer the "goal" is the image itself: reproduced exactly.
    assert goal_fidelity(session.model, session.prepare(coarse)) < 1e-3


def test_inpainting_erase_goal_comes_from_a_face_without_the_object(session):
    spec = EditSpec.load(EXAMPLES / "remove-glasses.json")
    G = session.model
    inputs = session.prepare(spec)
    values = inputs.split.values
    vres = values.shape[-1]
    region = torch.stack([coverage(render_mask(c.mask, G.resolution), vres) > VALUE_COVERAGE
                          for c in spec.context])
    outside = ~region[:, None].expand_as(values)
    assert torch.equal(inputs.goal[outside], values[outside])           # only the regions move
    assert not torch.equal(inputs.goal, values)
    # Each region's goal is some donor's values there, and that donor responds less to the
    # rule inside the region than the marked face does.
    pool = list(DONOR_POOL)
    # The donors' values as inpaint_goal renders them (batch by batch: like with like).
    values_by_batch = [G.split(G.latents(chunk), spec.layer).values for chunk in donor_batches()]
    donors = types.SimpleNamespace(values=torch.cat(values_by_batch))
    resp = key_response(G, spec.layer, inputs.D, pool)
    own = key_response(G, spec.layer, inputs.D, inputs.goal_samples)
    for i in range(len(spec.context)):
        reg = region[i]
        inside = inputs.goal[i][:, reg]
        match = [j for j in range(len(pool)) if torch.equal(donors.values[j][:, reg], inside)]
        assert match, i
        kreg = torch.nn.functional.interpolate(reg[None, None].float(), size=resp.shape[-2:],
                                               mode="area")[0, 0] > 0
        assert resp[match[0]][kreg].max() < own[i][kreg].max()


def test_the_budget_bounds_the_predicted_collateral(session):
    base = EditSpec.load(EXAMPLES / "add-sunglasses.json").to_json()
    figures = []
    for budget in (0.003, 0.01, 0.03):
        spec = EditSpec.from_json({**base, "solver": {"name": "least-collateral",
                                                      "params": {"budget": budget}}})
        d = session.compute(spec)
        assert d.collateral <= budget, (budget, d.figures())
        figures.append(d)
    # A larger budget buys a better fit of the user's example.
    assert figures[0].loss > figures[1].loss > figures[2].loss


def test_goal_command_writes_the_panel(tmp_path):
    out = tmp_path / "goal.png"
    res = CliRunner().invoke(main, ["goal", str(EXAMPLES / "add-sunglasses.json"),
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "reproduces the pasted request to" in res.output and out.is_file()
    from PIL import Image
    assert Image.open(out).size[0] > 4 * 64                                  # five tiles
    res = CliRunner().invoke(main, ["goal", str(EXAMPLES / "add-sunglasses.json"),
                                    "--out", str(tmp_path / "goal.jpg")])
    assert res.exit_code == 2 and "must end in .png" in res.output


def test_the_inpainting_goal_does_not_depend_on_the_donor_batch(session):
    """Donors are scanned in batches to bound memory: the whole pool at once picks the same
    donors (values equal to float rounding of the batched convolutions)."""
    from rewrite.edit.goals import inpaint_goal

    spec = EditSpec.load(EXAMPLES / "remove-glasses.json")
    G = session.model
    inputs = session.prepare(spec)
    region = inputs.mask[:, 0] > 0
    batched = inpaint_goal(G, spec.layer, inputs.split, region, inputs.D, batch=32)
    whole = inpaint_goal(G, spec.layer, inputs.split, region, inputs.D, batch=len(DONOR_POOL))
    assert torch.equal(batched, inputs.goal)
    scale = float(whole.abs().max())
    assert float((batched - whole).abs().max()) <= 1e-5 * scale
    assert not torch.equal(batched, inputs.split.values)
