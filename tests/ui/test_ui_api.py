"""The app's JSON API with FastAPI's test client, on the real face model."""

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from rewrite.edit.masks import encode_png
from rewrite.models import load_model
from rewrite.ui.server import MAX_BODY, create_app
from rewrite.ui.state import AppState

EXAMPLE = json.loads((Path(__file__).resolve().parents[2] / "examples" /
                      "add-sunglasses.json").read_text())
EYES = {"rect": [16, 24, 56, 32]}


@pytest.fixture
def app_state(tmp_path, face_model):
    return AppState("dcgan-digiface64", tmp_path / "ws", stats_samples=500)


@pytest.fixture
def client(app_state):
    return TestClient(create_app(app_state), base_url="http://127.0.0.1:8000")


def _png(resp) -> np.ndarray:
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(resp.content)).convert("RGB"))


def _spec(**over):
    spec = {**EXAMPLE, "stats": {"samples": 500, "seed": 0}}
    spec.update(over)
    return spec


def _wait(client, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        job = client.get("/api/job").json()
        if job["state"] != "running":
            return job
        time.sleep(0.1)
    raise AssertionError("edit did not finish")


def test_info_page_and_samples(client):
    info = client.get("/api/info").json()
    assert info["model"] == "dcgan-digiface64" and info["resolution"] == 64
    assert [L["name"] for L in info["layers"]][2] == "main.6"
    assert "closed-form+refine" in info["solvers"]
    page = client.get("/")
    assert page.status_code == 200 and "js/main.js" in page.text
    assert client.get("/js/main.js").status_code == 200
    img = _png(client.get("/api/sample/5.png"))
    assert img.shape == (64, 64, 3)
    want = load_model("dcgan-digiface64")
    from rewrite.sampling.generate import generate
    assert np.array_equal(img, generate(want, [5], progress=False)[0])
    for bad in ("/api/sample/-1.png", "/api/sample/1000000.png", "/api/sample/abc.png"):
        assert client.get(bad).status_code == 422, bad


def test_heatmap(client):
    body = {"layer": "main.6", "context": [{"sample": 9, "mask": EYES},
                                           {"sample": 13, "mask": EYES}], "samples": [9, 13, 1]}
    res = client.post("/api/heatmap", json=body)
    assert res.status_code == 200, res.text
    maps = res.json()["samples"]
    assert [m["sample"] for m in maps] == [9, 13, 1] and len(maps[0]["heat"]) == 8
    heat = np.array(maps[0]["heat"])
    assert heat.min() >= 0 and heat.max() <= 1 and heat[3].mean() > heat[7].mean()
    bad = [({**body, "layer": "main.7"}, "unknown layer"),
           ({**body, "context": []}, ""),
           ({**body, "context": [{"sample": 9, "mask": {"png": encode_png(np.ones((32, 32)))}}]},
            "32x32"),
           ({**body, "context": [{"sample": 9, "mask": {"rect": [1, 1, 2, 2]}}]}, "empty"),
           ({**body, "samples": [-4]}, ""),
           ({**body, "rank": 0}, ""),
           ({"layer": "main.6"}, "")]
    for req, needle in bad:
        r = client.post("/api/heatmap", json=req)
        assert r.status_code == 422, (req, r.text)
        assert needle in r.text
    big = client.post("/api/heatmap", content=b"x" * (MAX_BODY + 1),
                      headers={"content-type": "application/json"})
    assert big.status_code == 413


def test_apply_undo_reset_and_concurrency(client, app_state):
    before = _png(client.get("/api/sample/101.png"))
    res = client.post("/api/apply", json=_spec())
    assert res.status_code == 202, res.text
    second = client.post("/api/apply", json=_spec())             # while the first one runs
    assert second.status_code == 409 and "already running" in second.json()["detail"]
    # A render during the edit sees the model before or after it, never half.
    during = _png(client.get("/api/sample/101.png"))
    job = _wait(client)
    assert job["state"] == "done" and job["edits"] == 1, job
    after = _png(client.get("/api/sample/101.png"))
    assert np.abs(after.astype(int) - before).mean() > 1
    assert np.array_equal(during, before) or np.array_equal(during, after)
    assert np.array_equal(_png(client.get("/api/sample/101.png?edited=false")), before)
    # A bad request afterwards loses nothing.
    assert client.post("/api/apply", json={"version": 1}).status_code == 422
    assert client.get("/api/info").json()["edits"][0]["method"] == "least-collateral"
    assert client.post("/api/undo").json()["edits"] == 0
    assert np.array_equal(_png(client.get("/api/sample/101.png")), before)
    assert client.post("/api/undo").status_code == 409
    client.post("/api/apply", json=_spec())
    _wait(client)
    assert client.post("/api/reset").json()["edits"] == 0
    assert np.array_equal(_png(client.get("/api/sample/101.png")), before)


def test_invalid_specs_are_422_with_every_problem(client):
    r = client.post("/api/apply", json=_spec(rank=0, direction="pca"))
    assert r.status_code == 422
    assert len(r.json()["problems"]) == 2
    bad = _spec(layer="main.8")
    bad["copy"] = {"sample": -2, "mask": EYES}
    r = client.post("/api/apply", json=bad)
    assert r.status_code == 422
    problems = r.json()["problems"]
    assert any("main.8" in p for p in problems) and any("sample -2" in p for p in problems)
    assert client.post("/api/apply", json=_spec(version=9)).status_code == 422
    assert client.post("/api/apply", content=b"{not json",
                       headers={"content-type": "application/json"}).status_code == 422
    assert client.get("/api/job").json()["state"] == "idle"


def test_specs_live_in_the_workspace_under_safe_names(client, app_state):
    assert client.put("/api/specs/sunglasses-1", json=_spec()).status_code == 200
    assert (app_state.workspace / "specs" / "sunglasses-1.json").is_file()
    assert client.get("/api/specs").json() == ["sunglasses-1"]
    assert client.get("/api/specs/sunglasses-1").json()["layer"] == "main.6"
    assert client.get("/api/specs/nothing").status_code == 404
    for name in ("..", "..%2F..%2Fetc%2Fpasswd", ".hidden", "a" * 70, "x%00y"):
        r = client.get(f"/api/specs/{name}")
        assert r.status_code in (400, 404), (name, r.status_code)
        assert client.put(f"/api/specs/{name}", json=_spec()).status_code in (400, 404, 405)
    assert client.put("/api/specs/bad", json=_spec(layer="nope")).status_code == 422
    assert sorted(p.name for p in (app_state.workspace / "specs").iterdir()) == ["sunglasses-1.json"]


def test_exports(client, tmp_path):
    assert client.get("/api/export/delta").status_code == 409
    client.post("/api/apply", json=_spec())
    _wait(client)
    ckpt = client.get("/api/export/checkpoint")
    assert ckpt.status_code == 200
    (tmp_path / "edited.pt").write_bytes(ckpt.content)
    edited = load_model(str(tmp_path / "edited.pt"))
    assert edited.fingerprint() != load_model("dcgan-digiface64").fingerprint()
    delta = client.get("/api/export/delta")
    assert delta.status_code == 200 and len(delta.content) < 100_000


def test_openapi_schema_fuzz_has_no_server_errors(app_state):
    """schemathesis against the OpenAPI schema, a bounded number of cases per operation."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    app = create_app(app_state, hosts=("testserver", "localhost", "127.0.0.1"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures, calls = [], []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith("/api/apply"):
            continue            # starts real edits; covered above

        @settings(max_examples=15, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            resp = case.call()
            calls.append((operation.path, resp.status_code))
            if resp.status_code >= 500:
                failures.append((operation.path, resp.status_code, resp.text[:200]))

        check()
    assert not failures, failures
    assert len({path for path, _ in calls}) >= 10 and len(calls) > 50, calls
