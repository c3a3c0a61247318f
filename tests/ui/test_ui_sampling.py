"""The app on a class-conditional model started at a class and truncation: the specs it
applies and saves record those settings, and a spec made with other settings is refused
with the flags that would fit it."""

import json
import time
from pathlib import Path

from fastapi.testclient import TestClient

from rewrite.edit import EditSpec
from rewrite.ui.server import create_app
from rewrite.ui.state import AppState

CONDITIONAL = Path(__file__).resolve().parents[1] / "fixtures" / "nvlabs" / \
    "stylegan2ada_cond_tiny32.pkl"
SPEC = {"version": 1, "layer": "b16.conv1", "kind": "copy-paste", "rank": 1,
        "stats": {"samples": 100},
        "copy": {"sample": 1, "mask": {"rect": [8, 8, 16, 16]}},
        "paste": {"sample": 2, "mask": {"rect": [16, 16, 24, 24]}},
        "context": [{"sample": 3, "mask": {"rect": [8, 8, 24, 16]}}]}


def test_the_apps_specs_carry_its_sampling(tmp_path, monkeypatch):
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cache"))
    state = AppState(str(CONDITIONAL), tmp_path / "ws", stats_samples=100)
    state.model.set_sampling(class_index=2, truncation=0.7)
    client = TestClient(create_app(state), base_url="http://127.0.0.1:8000")

    assert client.get("/api/info").json()["sampling"] == {"class": 2, "truncation": 0.7}
    assert client.put("/api/specs/mine", json=SPEC).status_code == 200
    saved = EditSpec.load(tmp_path / "ws" / "specs" / "mine.json")
    assert saved.sampling == {"class": 2, "truncation": 0.7}

    other = client.post("/api/apply", json={**SPEC, "sampling": {"class": 1}})
    assert other.status_code == 422
    assert "start the app with --class 1" in json.dumps(other.json())
    assert "under Samples" in json.dumps(other.json())

    assert client.post("/api/apply", json=SPEC).status_code == 202
    deadline = time.time() + 120
    while (job := client.get("/api/job").json())["state"] == "running":
        assert time.time() < deadline
        time.sleep(0.1)
    assert job["state"] == "done", job
    delta = state.session.deltas[-1]
    assert delta.spec["sampling"] == {"class": 2, "truncation": 0.7}
    assert state.model.sampling_settings() == {"class": 2, "truncation": 0.7}
    # The same spec solved by the library (as `rewrite edit` would) gives the same weights.
    from rewrite.edit import Rewriter
    from rewrite.models import load_model
    G = load_model(str(CONDITIONAL))
    d = Rewriter(G, progress=False).compute(EditSpec.from_json(delta.spec))
    assert G.sampling_settings() == {"class": 0, "truncation": 1.0}
    assert d.low_rank.lam.shape == delta.low_rank.lam.shape
    assert float((d.low_rank.lam - delta.low_rank.lam).abs().max()) <= \
        1e-4 * float(delta.low_rank.lam.abs().max())


def test_the_page_changes_class_and_truncation(tmp_path, monkeypatch):
    """POST /api/sampling: both models (edited and original) render the new class, the
    applied edits stay, new specs record it; settings the model cannot take are a 422."""
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cache"))
    state = AppState(str(CONDITIONAL), tmp_path / "ws", stats_samples=100)
    client = TestClient(create_app(state), base_url="http://127.0.0.1:8000")
    info = client.get("/api/info").json()
    assert info["sampling"] == {} and info["sampling_options"] == {"truncation": True,
                                                                   "classes": 3}
    before = client.get("/api/sample/4.png?edited=0").content
    res = client.post("/api/sampling", json={"class": 1, "truncation": 0.8})
    assert res.status_code == 200 and res.json()["sampling"] == {"truncation": 0.8, "class": 1}
    assert client.get("/api/sample/4.png?edited=0").content != before
    assert client.get("/api/sample/4.png?edited=1").content == \
        client.get("/api/sample/4.png?edited=0").content           # no edit applied yet
    assert state.original.sampling_settings() == {"truncation": 0.8, "class": 1}
    assert client.put("/api/specs/now", json=SPEC).status_code == 200
    assert EditSpec.load(tmp_path / "ws" / "specs" / "now.json").sampling == \
        {"truncation": 0.8, "class": 1}
    bad = client.post("/api/sampling", json={"class": 3})
    assert bad.status_code == 422 and "out of range" in bad.json()["detail"]
    assert client.post("/api/sampling", json={"truncation": 1.5}).status_code == 422
    assert client.get("/api/info").json()["sampling"] == {"truncation": 0.8, "class": 1}
