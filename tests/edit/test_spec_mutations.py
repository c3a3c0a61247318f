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
