"""Damaged weights are refused on load, naming the tensor; NaN options are refused."""

import pytest
import torch
from click.testing import CliRunner

from rewrite.cli import main
from rewrite.models import load_model
from rewrite.utils.errors import CheckpointError

from ..conftest import make_tiny_dcgan


@pytest.mark.parametrize("damage, message", [
    (lambda sd: sd["main.0.weight"].view(-1).__setitem__(3, float("nan")),
     "main.0.weight has 1 non-finite value"),
    (lambda sd: sd["main.3.weight"].fill_(float("inf")), "main.3.weight has"),
    (lambda sd: sd["main.1.running_var"].__setitem__(0, -1.0),
     "main.1.running_var has negative variances"),
])
def test_damaged_checkpoints_are_refused(tmp_path, damage, message):
    G = make_tiny_dcgan()
    path = tmp_path / "good.pt"
    G.save(path)
    assert torch.equal(load_model(str(path))(G.latents([0])), G(G.latents([0])))
    with torch.no_grad():
        damage(dict(G.state_dict()))
    bad = tmp_path / "bad.pt"
    G.save(bad)
    with pytest.raises(CheckpointError, match="the weights are damaged") as e:
        load_model(str(bad))
    assert message in str(e.value)
    res = CliRunner().invoke(main, ["sample", str(bad), "--seeds", "0-3",
                                    "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and message in res.output and not (tmp_path / "x.png").exists()


def test_absurd_shapes_are_refused():
    from rewrite.models import model_from_checkpoint
    sd = dict(make_tiny_dcgan().state_dict())
    sd["main.0.weight"] = torch.zeros(0, 16, 4, 4)                  # a 0-dimensional latent
    with pytest.raises(CheckpointError, match=r"main.0.weight has no elements \(shape \(0, 16"):
        model_from_checkpoint(sd, "dcgan")


def test_nan_truncation_is_refused(tmp_path):
    res = CliRunner().invoke(main, ["sample", "--truncation", "nan", "--seeds", "0-3",
                                    "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "must be a number" in res.output
