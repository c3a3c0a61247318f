"""Every number a user types is bounded and typed, with the offending field named
(CLI error paths in-process through click's runner)."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rewrite.cli import main
from rewrite.edit.spec import EditSpec
from rewrite.sampling.seeds import parse_seeds
from rewrite.utils.errors import SeedSpecError, SpecError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text", ["1_0", "+3", "3-", "-1", "1e3", "٣"])
def test_seed_lists_take_plain_digits_only(text):
    with pytest.raises(SeedSpecError):
        parse_seeds(text)


@pytest.mark.parametrize("args, message", [
    (["stats", "--layer", "main.6", "--seed", "-1"], "--seed"),
    (["stats", "--layer", "main.6", "-n", "1e15"], "-n"),
    (["stats", "--layer", "main.6", "-n", "100000000000"], "-n"),
    (["sample", "--seeds", "1_0", "--out", "x.png"], "--seeds"),
    (["sample", "--seeds", "0-3", "--device", "meta", "--out", "x.png"], "unsupported device"),
])
def test_cli_numbers_are_bounded(tmp_path, args, message):
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and message in res.output, res.output


@pytest.mark.parametrize("change, field", [
    (lambda d: d["solver"].update(name="adam", params={"lr": float("inf")}), "'lr'"),
    (lambda d: d["solver"].update(name="adam", params={"lr": float("nan")}), "'lr'"),
    (lambda d: d["solver"].update(name="adam", params={"steps": 10 ** 9}), "'steps'"),
    (lambda d: d["solver"].update(params={"budget": -1}), "'budget'"),
    (lambda d: d["solver"].update(name="closed-form", params={"ridge": float("nan")}), "'ridge'"),
    (lambda d: d["stats"].update(seed=-1), "'stats.seed'"),
    (lambda d: d["stats"].update(samples=10 ** 30), "'stats.samples'"),
    (lambda d: d.update(rank=True), "'rank'"),
    (lambda d: d["copy"]["mask"].update(rect=[0, 0, float("nan"), 8]), "copy"),
    (lambda d: d["paste"]["mask"].update(rect=[0, 0, 8, True]), "paste"),
    (lambda d: d["context"][0].update(mask={"polygon": [[1, 1], [1, 1], [1, 1]]}), "context[0]"),
])
def test_spec_numbers_are_checked_and_named(change, field, face_model):
    d = json.loads((ROOT / "examples" / "add-sunglasses.json").read_text())
    change(d)
    with pytest.raises(SpecError) as e:
        EditSpec.from_json(d).validate_for(face_model)
    assert any(field in p for p in e.value.problems), e.value.problems


def test_deeply_nested_json_is_a_clear_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SpecError, match="nested too deeply|not valid JSON|must be a JSON object"):
        EditSpec.load(path)
