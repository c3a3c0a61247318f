"""The app's OpenAPI document describes the edit spec (masks, "not here" regions, strength,
solver parameters), generated from the one spec schema; specs that break it get a 4xx with a
message from the spec parser, never a server error."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from fastapi.testclient import TestClient

from rewrite.edit.methods import METHODS, PARAM_LIMITS
from rewrite.edit.schema import spec_schema
from rewrite.ui.server import MAX_APP_STATS, SPEC_REF, create_app, spec_components
from rewrite.ui.state import AppState, Job

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
#: The endpoints whose JSON body is an edit specification.
SPEC_ENDPOINTS = [("/api/apply", "post"), ("/api/goal", "post"), ("/api/specs/{name}", "put")]


@pytest.fixture(scope="module")
def app_state(tmp_path_factory):
    return AppState("dcgan-digiface64", tmp_path_factory.mktemp("ws"), stats_samples=500)


@pytest.fixture(scope="module")
def doc(app_state):
    client = TestClient(create_app(app_state), base_url="http://127.0.0.1:8000")
    res = client.get("/openapi.json")
    assert res.status_code == 200
    return res.json()


def _validator(doc) -> jsonschema.Draft202012Validator:
    """A validator of the spec as the OpenAPI document publishes it (references resolved
    inside the document, as a client resolves them)."""
    return jsonschema.Draft202012Validator({"$ref": SPEC_REF, "components": doc["components"]})


@pytest.mark.slow
def test_openapi_publishes_the_spec_schema(doc, app_state):
    schemas = doc["components"]["schemas"]
    for path, method in SPEC_ENDPOINTS:
        body = doc["paths"][path][method]["requestBody"]
        assert body["required"] and body["content"]["application/json"]["schema"] == {
            "$ref": SPEC_REF}, (path, body)
    saved = doc["paths"]["/api/specs/{name}"]["get"]["responses"]["200"]
    assert saved["content"]["application/json"]["schema"] == {"$ref": SPEC_REF}

    spec = schemas["EditSpec"]
    # Generated from the one schema (no second copy): the same fields, the same rules.
    assert set(spec["properties"]) == set(spec_schema()["properties"])
    assert spec_components(app_state.model_name, [L.name for L in app_state.model.layers()]) \
        == {k: v for k, v in schemas.items() if k.startswith("EditSpec")}
    props = spec["properties"]
    for field in ("copy", "paste", "context", "preserve", "preserve_weight", "strength",
                  "solver", "stats", "erase", "sampling", "rank", "direction"):
        assert field in props, field
    assert "not here" in props["preserve"]["description"].lower()
    assert props["preserve"]["items"] == {"$ref": "#/components/schemas/EditSpec_selection"}
    assert (props["strength"]["minimum"], props["strength"]["maximum"]) == (0, 10.0)
    assert props["stats"]["properties"]["samples"]["maximum"] == MAX_APP_STATS
    assert props["stats"]["properties"]["seed"]["maximum"] == 2 ** 32 - 1
    assert props["layer"]["enum"] == [L.name for L in app_state.model.layers()]
    assert "model" not in spec["required"] and {"version", "layer", "kind"} <= set(spec["required"])
    # Masks: a rectangle, a polygon or a PNG data URL, in the spec and in a heat map's context.
    mask = schemas["EditSpec_mask"]
    assert [next(iter(m["required"])) for m in mask["oneOf"]] == ["rect", "polygon", "png"]
    assert schemas["MaskedSample"]["properties"]["mask"] == {
        "$ref": "#/components/schemas/EditSpec_mask"}
    # Each solver's parameters, with their limits.
    for name in METHODS:
        params = schemas["EditSpec_params-" + name.replace("+", "_")]
        assert params["additionalProperties"] is False
        for key, limit in PARAM_LIMITS.items():
            if key in params["properties"]:
                assert params["properties"][key]["maximum"] == limit, (name, key)
    assert schemas["EditSpec_params-least-collateral"]["properties"]["budget"]["type"] == "number"
    assert "$defs" not in json.dumps(doc)
    # The document's schema takes the shipped examples and refuses broken ones.
    validator = _validator(doc)
    for path in EXAMPLES:
        obj = json.loads(path.read_text())
        obj["stats"] = {"samples": 500, "seed": 0}
        assert validator.is_valid(obj), (path, [e.message for e in validator.iter_errors(obj)])
    example = json.loads(EXAMPLES[0].read_text())
    assert not validator.is_valid({**example, "strength": 11})
    assert not validator.is_valid({**example, "layer": "main.7"})
    assert not validator.is_valid({**example, "stats": {"samples": MAX_APP_STATS + 1}})
    assert not validator.is_valid({**example, "solver": {"name": "adam", "params": {"steps": -1}}})


@pytest.mark.slow
def test_broken_specs_get_a_4xx_with_a_message(app_state):
    client = TestClient(create_app(app_state), base_url="http://127.0.0.1:8000")
    example = json.loads((ROOT / "examples" / "add-sunglasses.json").read_text())
    bodies = [b"", b"{", b"[]", b'"spec"', b"null", b"[" * 50_000 + b"]" * 50_000,
              b'{"version": 1, "rank": ' + b"7" * 5000 + b"}", b"\xff\xfe",
              json.dumps({**example, "strength": -1}).encode(),
              json.dumps({**example, "stats": {"samples": 10 ** 6}}).encode(),
              json.dumps({**example, "preserve": [{"sample": 3}]}).encode(),
              json.dumps({**example, "solver": {"name": "adam", "params": {"lr": "fast"}}}).encode()]
    for path, method in SPEC_ENDPOINTS:
        url = path.replace("{name}", "broken")
        for body in bodies:
            res = client.request(method, url, content=body,
                                 headers={"content-type": "application/json"})
            assert res.status_code == 422, (url, body[:60], res.status_code, res.text[:200])
            assert res.json()["problems"] and res.json()["detail"], res.text
    assert client.get("/api/job").json()["state"] == "idle"
    assert client.get("/api/specs").json() == []


@pytest.mark.slow
def test_fuzzed_specs_never_get_a_server_error(app_state, monkeypatch):
    """schemathesis generates bodies from the published schema (valid ones) and against it
    (invalid ones) for every endpoint that takes a spec. An invalid spec must be refused
    with a 4xx and a message; a valid one reaches the app (whose edit, goal and save are
    replaced by a check of the spec against the model, so nothing runs for minutes)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode

    reached = []

    def check_only(spec, *args):
        spec.validate_for(app_state.model)
        reached.append(spec)
        return Job(state="running") if not args else {}

    monkeypatch.setattr(app_state, "start_apply", check_only)
    monkeypatch.setattr(app_state, "goal", check_only)
    app = create_app(app_state, hosts=("testserver", "localhost", "127.0.0.1"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    server_errors, calls = [], []
    for path, method in SPEC_ENDPOINTS:
        operation = schema[path][method.upper()]
        for mode in (GenerationMode.NEGATIVE, GenerationMode.POSITIVE):

            @settings(max_examples=40, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case):
                resp = case.call()
                calls.append((path, mode.value, resp.status_code))
                if resp.status_code >= 500:
                    server_errors.append((path, case.body, resp.status_code, resp.text[:300]))
                elif resp.status_code >= 400:
                    assert resp.json().get("detail"), resp.text

            check()
    assert not server_errors, server_errors[:3]
    assert len({path for path, _, _ in calls}) == 3 and len(calls) >= 200, calls
    # What the published schema refuses, the app refuses.
    assert all(400 <= code < 500 for _, mode, code in calls if mode == "negative"), calls


@pytest.mark.slow
def test_the_app_refuses_what_its_published_schema_refuses(app_state, doc, monkeypatch):
    """Random edits of a valid spec (the fields the parser checks): a spec the published
    schema refuses gets a 422 with the parser's problems; one it takes reaches the app.
    Sampling settings are left alone: the app takes those equal to its own, which change
    while it runs (``/api/sampling``)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.edit.test_spec_schema import _FIELDS, _VALUES, _with

    monkeypatch.setattr(app_state, "goal", lambda spec, solved: {"layer": spec.layer})
    client = TestClient(create_app(app_state), base_url="http://127.0.0.1:8000")
    validator = _validator(doc)
    example = json.loads((ROOT / "examples" / "add-sunglasses.json").read_text())
    example["stats"] = {"samples": 500, "seed": 0}
    seen = {True: 0, False: 0}

    fields = [f for f in _FIELDS if not f.startswith("sampling")]

    @settings(max_examples=300, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(edits=st.lists(st.tuples(st.sampled_from(fields), _VALUES), max_size=3))
    def check(edits):
        obj = json.loads(json.dumps(example))
        for field, value in edits:
            if "." in field and not isinstance(obj.get(field.split(".")[0], {}), dict):
                continue
            obj = _with(obj, field, value)
        res = client.post("/api/goal", json=obj)
        valid = validator.is_valid(obj)
        seen[valid] += 1
        if valid:
            assert res.status_code == 200, (obj, res.text)
        else:
            assert res.status_code == 422 and res.json()["problems"], (
                edits, [e.message for e in validator.iter_errors(obj)], res.text)

    check()
    assert seen[True] >= 5 and seen[False] >= 100, seen
