"""Typos and random mutations of the example specs: either a clear error that names a
field, or a spec that validates against the model; never a traceback."""

import copy
import json
import math
import random
from pathlib import Path

import pytest

from rewrite.edit.spec import EditSpec
from rewrite.utils.errors import RewriteError, SpecError

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "examples").glob("*.json")) + sorted((ROOT / "benchmarks" / "edits").rglob("*.json"))


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(stat=d.pop("stats")), "unknown field 'stat'; did you mean 'stats'?"),
    (lambda d: d["stats"].update(samplez=5), "stats: unknown field 'samplez'; did you mean 'samples'?"),
    (lambda d: d["solver"]["params"].update(budgte=0.1), "did you mean 'budget'?"),
    (lambda d: d["solver"].update(parms={}), "solver: unknown field 'parms'; did you mean 'params'?"),
    (lambda d: d.update(version="1"), "'version' must be the integer 1, got '1'"),
    (lambda d: d["copy"].update(masc=1), "copy: unknown field 'masc'; did you mean 'mask'?"),
])
def test_typos_are_named_with_a_suggestion(change, message):
    d = json.loads((ROOT / "examples" / "add-sunglasses.json").read_text())
    change(d)
    with pytest.raises(SpecError) as e:
        EditSpec.from_json(d)
    assert any(message in p for p in e.value.problems), e.value.problems


def _paths(obj, prefix=()):
    """Every (path, value) in a JSON tree."""
    yield prefix, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


WEIRD = [None, True, -1, 0, 1e15, 10 ** 30, -0.5, float("nan"), float("inf"), "x", "", [],
         {}, [1, 2], {"a": 1}, 3.5, "1"]


def _mutate(d, rng):
    d = copy.deepcopy(d)
    paths = [p for p, _ in _paths(d) if p]
    path = rng.choice(paths)
    parent = d
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1]
    action = rng.choice(["replace", "delete", "typo"])
    if action == "delete":
        del parent[key]
    elif action == "typo" and isinstance(parent, dict):
        parent[key + rng.choice(["s", "z", "_"])] = parent.pop(key)
    else:
        parent[key] = rng.choice(WEIRD)
    return d, path


@pytest.mark.slow
def test_random_mutations_give_a_named_error_or_a_valid_spec(face_model):
    rng = random.Random(0)
    originals = [json.loads(p.read_text()) for p in SPECS]
    outcomes = {"error": 0, "valid": 0}
    for _ in range(400):
        d, path = _mutate(rng.choice(originals), rng)
        try:
            spec = EditSpec.from_json(d)
            spec.validate_for(face_model)
        except SpecError as e:
            names = {str(k) for k in path if isinstance(k, str)} | {"context", "copy", "paste"}
            text = " ".join(e.problems)
            assert any(n in text for n in names) or "version" in text, (path, e.problems)
            outcomes["error"] += 1
        except RewriteError as e:            # e.g. a mask empty at the layer
            outcomes["error"] += 1
            assert str(e), path
        else:
            outcomes["valid"] += 1
            # A spec that validates holds only finite numbers.
            for _, v in _paths(spec.to_json()):
                assert not (isinstance(v, float) and not math.isfinite(v)), (path, v)
    assert outcomes["error"] > 100 and outcomes["valid"] > 10, outcomes


HUGE = "9" * 5000            # a 5000-digit literal: past Python's 4300-digit int conversion


@pytest.mark.parametrize("old,new,field", [
    ('"rank": 4', f'"rank": {HUGE}', "'rank'"),
    ('"version": 1', f'"version": {HUGE}', "'version'"),
    ('"seed": 0', f'"seed": -{HUGE}', "'stats.seed'"),
    ('"samples": 10000', f'"samples": {HUGE}', "'stats.samples'"),
    ('"sample": 13', f'"sample": {HUGE}', "'context[1].sample'"),
    ('"rect": [8, 20, 56, 32]', f'"rect": [8, 20, {HUGE}, 32]', "'copy.mask.rect[2]'"),
    ('"params": {}', f'"params": {{"steps": {HUGE}}}', "'solver.params.steps'"),
    ('"rank": 4', f'"rank": 4, "extra": [{{"x": {HUGE}}}]', "'extra[0].x'"),
    ('"rank": 4', '"rank": 12345678901234567890', "'rank' is an integer of 20 digits"),
])
def test_integer_literals_too_wide_are_a_spec_error(tmp_path, old, new, field):
    """A 5000-digit integer anywhere made json raise ValueError ("Exceeds the limit (4300
    digits)") as a traceback; it is now a SpecError naming the field."""
    text = (ROOT / "examples" / "add-sunglasses.json").read_text()
    assert old in text
    path = tmp_path / "wide.json"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(SpecError) as e:
        EditSpec.load(path)
    assert field in str(e.value) and "integers in an edit specification lie within" in str(e.value)
    assert len(str(e.value)) < 1000                         # the number is not printed back


def test_wide_python_integers_are_a_spec_error_too():
    """The same bound on an object built in Python (the app, a delta file's spec)."""
    d = json.loads((ROOT / "examples" / "add-sunglasses.json").read_text())
    d.update(rank=10 ** 5000, strength=10 ** 400, version=-(2 ** 63))
    d["context"][0]["sample"] = 2 ** 63
    with pytest.raises(SpecError) as e:
        EditSpec.from_json(d)
    text = str(e.value)
    for name in ("'rank' is an integer of about 5001 digits", "'strength' is an integer of 401",
                 "'version'", "'context[0].sample' is an integer of 19 digits"):
        assert name in text, text
    d = json.loads((ROOT / "examples" / "add-sunglasses.json").read_text())
    d["context"][0]["sample"] = 2 ** 63 - 1                 # the bound itself parses (the
    assert EditSpec.from_json(d).context[0].sample == 2 ** 63 - 1     # model check refuses it)


def test_a_wide_integer_spec_is_a_clean_cli_error(tmp_path):
    from ..conftest import invoke

    path = tmp_path / "wide.json"
    path.write_text((ROOT / "examples" / "add-sunglasses.json").read_text()
                    .replace('"rank": 4', f'"rank": {HUGE}'))
    res = invoke("edit", str(path), "--out", str(tmp_path / "edited.pt"))
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "'rank' is an integer of 5000 digits" in res.stderr
