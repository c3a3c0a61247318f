"""The app answers only to its own host names, refuses state changes from other sites and
counts body bytes, chunked or not (DNS rebinding, cross-site posts, oversize uploads)."""

import pytest
from fastapi.testclient import TestClient

from rewrite.ui.guard import host_name
from rewrite.ui.server import MAX_BODY, create_app
from rewrite.ui.state import AppState


@pytest.fixture(scope="module")
def client(tmp_path_factory, face_model):
    state = AppState("dcgan-digiface64", tmp_path_factory.mktemp("ws"), stats_samples=500)
    return TestClient(create_app(state), base_url="http://127.0.0.1:8000")


def test_host_names_parse():
    assert host_name("127.0.0.1:8000") == "127.0.0.1"
    assert host_name("[::1]:8000") == "::1" and host_name("LocalHost") == "localhost"


def test_a_foreign_host_is_refused(client):
    assert client.get("/api/info").status_code == 200
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example"):
        res = client.get("/api/info", headers={"host": host})
        assert res.status_code == 400 and "unknown host" in res.json()["detail"]
    assert client.post("/api/reset", headers={"host": "evil.example"}).status_code == 400


def test_state_changes_from_another_site_are_refused(client):
    for origin in ("http://evil.example", "null"):
        res = client.post("/api/reset", headers={"origin": origin})
        assert res.status_code == 403, res.text
    # The page's own origin, and tools that send none, may.
    assert client.post("/api/reset", headers={"origin": "http://127.0.0.1:8000"}).status_code == 200
    assert client.post("/api/reset").status_code == 200
    # Reading stays open to the page's own origin only through the host check.
    assert client.get("/api/info", headers={"origin": "http://evil.example"}).status_code == 200


def test_a_chunked_oversize_body_is_refused(client):
    def chunks():
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"x" * 65536

    res = client.post("/api/heatmap", content=chunks(),
                      headers={"content-type": "application/json"})
    assert res.status_code == 413
    ok = client.post("/api/heatmap", json={"layer": "main.6", "context": [
        {"sample": 9, "mask": {"rect": [16, 24, 56, 32]}}], "samples": [1]})
    assert ok.status_code == 200, ok.text


def test_unbounded_work_is_refused(client):
    import json
    from pathlib import Path
    spec = json.loads((Path(__file__).resolve().parents[2] / "examples" /
                       "add-sunglasses.json").read_text())
    for change, field in ((dict(solver={"name": "adam", "params": {"steps": 10 ** 9}}), "'steps'"),
                          (dict(stats={"samples": 10 ** 6}), "'stats.samples'")):
        res = client.post("/api/apply", json={**spec, **change})
        assert res.status_code == 422 and field in res.text, res.text
