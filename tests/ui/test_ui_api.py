"""The app's JSON API with FastAPI's test client, on the real face model."""

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
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


def _wait(client, timeout=600):
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

        @settings(max_examples=15, deadline=None, database=None, derandomize=True,
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


# -- applied edits: strength and removal ------------------------------------------------------
CAP = json.loads((Path(__file__).resolve().parents[2] / "benchmarks" / "edits" / "tune" /
                  "add-cap.json").read_text())


def _apply(client, spec):
    res = client.post("/api/apply", json=spec)
    assert res.status_code == 202, res.text
    job = _wait(client)
    assert job["state"] == "done", job
    return job


def _bytes(client, sample, edited=True):
    res = client.get(f"/api/sample/{sample}.png?edited={str(edited).lower()}")
    assert res.status_code == 200
    return res.content


def test_strength_reweights_and_remove_keeps_the_others(client):
    original = _bytes(client, 101, edited=False)
    assert client.get("/api/edits").json() == []
    _apply(client, _spec())
    only_glasses = _bytes(client, 101)
    assert only_glasses != original
    _apply(client, {**CAP, "stats": {"samples": 500, "seed": 0}})
    both = _bytes(client, 101)
    edits = client.get("/api/edits").json()
    assert [(e["index"], e["name"], e["kind"], e["layer"], e["method"], e["strength"])
            for e in edits] == [
        (0, "add-sunglasses", "copy-paste", "main.6", "least-collateral", 1.0),
        (1, "add-cap", "copy-paste", "main.6", "least-collateral", 1.0)]
    c1 = edits[1]["collateral"]
    assert c1 > 0
    # Strength 0 on the cap: the image of the sunglasses alone, bit for bit (no new solve).
    res = client.post("/api/edits/1/strength", json={"strength": 0})
    assert res.status_code == 200, res.text
    assert res.json()["edit"]["strength"] == 0 and res.json()["edit"]["collateral"] == 0
    assert _bytes(client, 101) == only_glasses
    # Back to 1: the image of both edits again; 0.5 is in between (neither).
    client.post("/api/edits/1/strength", json={"strength": 1})
    assert _bytes(client, 101) == both
    half = client.post("/api/edits/1/strength", json={"strength": 0.5}).json()
    assert half["edits"][1]["strength"] == 0.5 and half["version"] > 0
    assert _bytes(client, 101) not in (both, only_glasses)
    # The predicted collateral scales with s², and its warning follows the threshold.
    from rewrite.metrics.before_after import COLLATERAL_WARN
    strong = client.post("/api/edits/1/strength", json={"strength": 2}).json()["edit"]
    assert strong["collateral"] == pytest.approx(4 * c1, rel=1e-6)
    assert bool(strong["warnings"]) == (strong["collateral"] > COLLATERAL_WARN)
    # Both edits at strength 0: the original model.
    client.post("/api/edits/0/strength", json={"strength": 0})
    client.post("/api/edits/1/strength", json={"strength": 0})
    assert _bytes(client, 101) == original
    # Bad requests change nothing.
    for index, body, code in [(2, {"strength": 1}, 404), (-1, {"strength": 1}, 404),
                              (0, {"strength": -0.1}, 422), (0, {"strength": 11}, 422),
                              (0, {"strength": "x"}, 422), (0, {}, 422)]:
        assert client.post(f"/api/edits/{index}/strength", json=body).status_code == code, \
            (index, body)
    assert [e["strength"] for e in client.get("/api/edits").json()] == [0, 0]
    # Remove the sunglasses (the first edit): the cap stays, at its strength.
    client.post("/api/edits/1/strength", json={"strength": 1})
    res = client.delete("/api/edits/0")
    assert res.status_code == 200, res.text
    assert [e["name"] for e in res.json()["edits"]] == ["add-cap"]
    only_cap = _bytes(client, 101)
    assert only_cap not in (original, both, only_glasses)
    assert client.delete("/api/edits/1").status_code == 404
    assert client.delete("/api/edits/0").json()["edits"] == []
    assert _bytes(client, 101) == original
    assert client.get("/api/job").json()["edits"] == 0


def test_history_changes_wait_for_a_running_edit(client):
    _apply(client, _spec())
    assert client.post("/api/apply", json=_spec()).status_code == 202
    # While the second edit runs, the applied edits stay as they are.
    for resp in (client.post("/api/edits/0/strength", json={"strength": 0}),
                 client.delete("/api/edits/0"), client.post("/api/undo"),
                 client.post("/api/goal?solved=1", json=_spec())):
        assert resp.status_code == 409, resp.text
        assert "running" in resp.json()["detail"]
    assert _wait(client)["edits"] == 2
    assert [e["strength"] for e in client.get("/api/edits").json()] == [1, 1]


# -- goal preview ----------------------------------------------------------------------------
def test_goal_preview_before_and_after_solving(client):
    res = client.post("/api/goal", json=_spec())
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["png"].startswith("data:image/png;base64,") and body["layer"] == "main.6"
    import base64
    panel = Image.open(io.BytesIO(base64.b64decode(body["png"].split(",", 1)[1])))
    assert panel.width > 3 * panel.height        # copy, target, pasted request, goal
    assert 0 <= body["fidelity"] < 0.5 and body["edited"] is False
    assert any("reproduces the pasted request" in n for n in body["notes"])
    assert not any(n.startswith("warning") for n in body["notes"])
    # Before the solve, the layer's feasibility for this rule (issue: feasibility first).
    assert body["notes"][0].startswith("feasibility at main.6: ")
    assert any(v in body["notes"][0] for v in ("separates", "partly", "does not separate"))
    assert client.get("/api/job").json()["state"] == "idle"          # nothing was solved
    assert client.get("/api/edits").json() == []
    # A box misaligned to main.3's 16-pixel cells: the layer cannot show it, said before a solve.
    coarse = _spec(layer="main.3", copy={"sample": 32, "mask": {"rect": [24, 20, 40, 36]}},
                   paste={"sample": 9, "mask": {"rect": [26, 22, 42, 38]}},
                   context=[{"sample": 9, "mask": {"rect": [0, 0, 64, 64]}}])
    body = client.post("/api/goal", json=coarse).json()
    assert body["fidelity"] > 0.5
    assert any(n.startswith("warning: the goal at main.3 does not show") for n in body["notes"])
    # The solved panel needs this spec applied last; then it ends with the edited target.
    assert client.post("/api/goal?solved=1", json=_spec()).status_code == 409
    _apply(client, _spec())
    after = _bytes(client, 9)
    res = client.post("/api/goal?solved=1", json=_spec())
    assert res.status_code == 200, res.text
    solved = res.json()
    wide = Image.open(io.BytesIO(base64.b64decode(solved["png"].split(",", 1)[1])))
    assert solved["edited"] is True and wide.width > panel.width
    assert solved["fidelity"] == pytest.approx(0.0560, abs=0.05)     # the goal before the edit
    assert _bytes(client, 9) == after                  # the edit is applied as before
    assert [e["strength"] for e in client.get("/api/edits").json()] == [1]
    assert client.post("/api/goal?solved=1", json=coarse).status_code == 409
    # Errors: an invalid spec is a 422 with its problems.
    bad = client.post("/api/goal", json=_spec(layer="main.8"))
    assert bad.status_code == 422 and any("main.8" in p for p in bad.json()["problems"])


# -- "not here" regions -------------------------------------------------------------------------
FOREHEAD = {"rect": [8, 0, 56, 16]}


def test_preserve_regions_change_the_edit(client):
    x0, y0, x1, y1 = EYES["rect"]

    def change_at_eyes(img, orig):
        return np.abs(img.astype(int) - orig)[y0:y1, x0:x1].mean()

    orig = _png(client.get("/api/sample/112.png?edited=false"))
    _apply(client, _spec())
    plain = _png(client.get("/api/sample/112.png"))
    client.post("/api/reset")
    # The eyes of samples 112 and 60 marked "not here": the rule leaves them (nearly) alone.
    preserve = [{"sample": 112, "mask": EYES}, {"sample": 60, "mask": EYES}]
    job = _apply(client, _spec(preserve=preserve))
    assert job["warnings"] == []
    kept = _png(client.get("/api/sample/112.png"))
    assert change_at_eyes(plain, orig) > 4
    assert change_at_eyes(kept, orig) < 0.5 * change_at_eyes(plain, orig)
    assert len(client.get("/api/edits").json()) == 1
    # The applied delta's spec carries the regions.
    assert client.post("/api/goal?solved=1", json=_spec(preserve=preserve)).status_code == 200
    assert client.post("/api/goal?solved=1", json=_spec()).status_code == 409
    # Saved with the spec, and refused where they cannot work.
    assert client.put("/api/specs/kept", json=_spec(preserve=preserve)).status_code == 200
    assert client.get("/api/specs/kept").json()["preserve"][0]["sample"] == 112
    for bad, needle in [(_spec(preserve=preserve, solver={"name": "finetune-all"}), "preserve"),
                        (_spec(preserve=[{"sample": 1, "mask": {"rect": [1, 1, 2, 2]}}]),
                         "empty")]:
        r = client.post("/api/apply", json=bad)
        assert r.status_code == 422 and needle in r.text, r.text


# -- never frozen: statistics outside the render lock, progress, cancel -------------------------
def _cold(monkeypatch, tmp_path):
    """Statistics computed from here on go to an empty cache (the model is loaded already)."""
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cold-cache"))


def _until(cond, timeout=60, what="condition"):
    t0 = time.time()
    while time.time() - t0 < timeout:
        value = cond()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_renders_never_wait_on_statistics(client, app_state, monkeypatch, tmp_path):
    """A heat map and an edit on a layer without statistics: tiles still render at once,
    and the job and /api/info say what is being computed and how far along."""
    import threading
    _cold(monkeypatch, tmp_path)
    body = {"layer": "main.3", "context": [{"sample": 9, "mask": {"rect": [16, 16, 48, 48]}}],
            "samples": [9]}
    app_state.stats_samples = 8000
    out = {}
    heat = threading.Thread(target=lambda: out.update(r=client.post("/api/heatmap", json=body)))
    heat.start()
    running = _until(lambda: client.get("/api/info").json()["stats_running"], what="stats")
    assert running[0]["layer"] == "main.3" and running[0]["total"] == 8000
    latencies = []
    for i in range(200, 203):
        t0 = time.time()
        _png(client.get(f"/api/sample/{i}.png"))
        latencies.append(time.time() - t0)
    assert client.get("/api/info").json()["stats_running"], "statistics finished too soon"
    assert max(latencies) < 1.0, latencies
    heat.join()
    assert out["r"].status_code == 200, out["r"].text
    # An Apply on a cold layer: phase and progress, and renders go on meanwhile.
    res = client.post("/api/apply", json=_spec(stats={"samples": 3000, "seed": 5}))
    assert res.status_code == 202
    job = _until(lambda: (j := client.get("/api/job").json())["done"] > 0 and j, what="progress")
    assert job["phase"].startswith("statistics ") and job["phase"].endswith("/3000 samples")
    assert job["kind"] == "copy-paste" and job["name"] == "add-sunglasses"
    t0 = time.time()
    _png(client.get("/api/sample/300.png"))
    assert time.time() - t0 < 1.0
    job = _wait(client)
    assert job["state"] == "done", job
    assert "collateral" in job["message"] and "loss" not in job["message"]


def _weights(state):
    return {k: v.clone() for k, v in state.model.state_dict().items()}


def _same(a, b):
    import torch
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cancel_during_statistics_changes_nothing(client, app_state, monkeypatch, tmp_path):
    assert client.post("/api/cancel").status_code == 409            # nothing runs
    _apply(client, _spec())
    before, version = _weights(app_state), app_state.version
    edits = client.get("/api/edits").json()
    _cold(monkeypatch, tmp_path)
    assert client.post("/api/apply", json=_spec(stats={"samples": 20000, "seed": 3})).status_code == 202
    _until(lambda: client.get("/api/job").json()["done"] > 0, what="statistics progress")
    t0 = time.time()
    res = client.post("/api/cancel")
    assert res.status_code == 200 and res.json()["phase"] == "cancelling"
    job = _wait(client)
    assert job["state"] == "cancelled" and time.time() - t0 < 5, job
    assert "nothing was changed" in job["message"]
    assert _same(before, _weights(app_state)) and app_state.version == version
    assert client.get("/api/edits").json() == edits
    assert client.get("/api/info").json()["stats_running"] == []
    # The slot is free again, and the cancelled statistics are computed afresh when needed.
    _apply(client, _spec())
    assert len(client.get("/api/edits").json()) == 2


def test_cancel_after_solving_swaps_no_weights(client, app_state):
    """Cancel while a solve is finishing (a solve held back here after its last step): the
    weights are not swapped in."""
    import threading
    solving, release = threading.Event(), threading.Event()
    compute = app_state.session.compute

    def slow(spec, inputs=None):
        solving.set()
        release.wait(30)
        return compute(spec, inputs)

    app_state.session.compute = slow
    before = _weights(app_state)
    assert client.post("/api/apply", json=_spec()).status_code == 202
    assert solving.wait(60)
    assert client.get("/api/job").json()["phase"] == "solving"
    assert client.post("/api/cancel").status_code == 200
    release.set()
    job = _wait(client)
    assert job["state"] == "cancelled", job
    assert _same(before, _weights(app_state)) and client.get("/api/edits").json() == []
    assert client.get("/api/job").json()["edits"] == 0


def test_cancel_stops_a_long_solve_midway(client, app_state):
    """The paper's schedule with 100,000 steps (minutes): Cancel stops it within a step,
    the job says how far it got, and nothing changes."""
    import time

    before = _weights(app_state)
    spec = _spec(solver={"name": "adam", "params": {"steps": 100_000}}, rank=1,
                 direction="mean")
    assert client.post("/api/apply", json=spec).status_code == 202
    deadline = time.time() + 120
    while not client.get("/api/job").json()["phase"].startswith("solving: step"):
        assert time.time() < deadline
        time.sleep(0.05)
    job = client.get("/api/job").json()
    assert job["total"] == 100_000 and job["done"] >= 1
    t0 = time.time()
    assert client.post("/api/cancel").status_code == 200
    job = _wait(client)
    assert job["state"] == "cancelled" and time.time() - t0 < 10, job
    assert _same(before, _weights(app_state)) and client.get("/api/edits").json() == []


def test_solve_together_replaces_the_layers_edits_with_a_joint_solve(client, app_state):
    """Two edits of main.6 applied one after the other, then solved again together: the
    weights become the joint solve's (as `rewrite edit A B` computes them), strengths kept."""
    import torch

    from rewrite.edit import EditSpec, Rewriter
    from rewrite.models import load_model

    root = Path(__file__).resolve().parents[2]
    glasses = json.loads((root / "benchmarks" / "edits" / "tune" / "add-glasses.json").read_text())
    glasses["stats"] = {"samples": 500, "seed": 0}
    _apply(client, _spec())
    _apply(client, glasses)
    assert client.post("/api/edits/0/strength", json={"strength": 0.5}).status_code == 200
    res = client.post("/api/edits/solve-together", json={"layer": "main.6"})
    assert res.status_code == 200, res.text
    edits = res.json()["edits"]
    assert [e["method"] for e in edits] == ["least-collateral (together)"] * 2
    assert [e["strength"] for e in edits] == [0.5, 1.0]
    # The same joint solve computed directly.
    G = load_model("dcgan-digiface64")
    a, b = EditSpec.from_json(_spec(strength=0.5)), EditSpec.from_json(glasses)
    a.model = b.model = "dcgan-digiface64"
    Rewriter(G, progress=False).apply_together([a, b])
    name = G.weight_name("main.6")
    assert torch.equal(app_state.model.state_dict()[name], G.state_dict()[name])
    # One edit of a layer is not enough.
    assert client.post("/api/edits/solve-together", json={"layer": "main.3"}).status_code == 422


def test_the_status_says_how_close_the_own_example_came(client):
    """After Apply the message gives the goal reproduction of the user's own example (the
    quality measure, 0 = the request, 1 = unchanged), not raw losses."""
    job = _apply(client, _spec())
    repro = job["figures"]["goal reproduction"]
    assert 0 < repro < 1, job
    assert f"your example reproduced to {repro:.2f}" in job["message"]
    assert "loss" not in job["message"]


def test_a_gated_edit_exports_as_a_delta_not_a_checkpoint(client, tmp_path):
    """The face model's default method makes gated edits: the app applies them (the edited
    gallery changes), refuses the checkpoint export with a message that names the delta file,
    and exports the delta, which re-applies to a fresh model with the same images."""
    spec = _spec(solver={"name": "gated",
                         "params": {"steps": 5, "examples": 4, "silent": 4, "keep": 2}})
    before = _bytes(client, 9, edited=False)
    _apply(client, spec)
    assert _bytes(client, 9) != before
    assert [e["gated"] for e in client.get("/api/edits").json()] == [True]
    ckpt = client.get("/api/export/checkpoint")
    assert ckpt.status_code == 422 and "delta file" in ckpt.json()["detail"]
    delta = client.get("/api/export/delta")
    assert delta.status_code == 200
    path = tmp_path / "edits.safetensors"
    path.write_bytes(delta.content)
    G = load_model("dcgan-digiface64")
    from rewrite.edit import Rewriter

    Rewriter(G, progress=False).apply_delta_file(path)
    again = client.get("/api/sample/9.png?edited=true")
    with torch.no_grad():
        img = G(G.latents([9]))
    served = _png(again).astype(np.float32)
    mine = ((img[0].clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()
    assert np.abs(served - mine).max() <= 1.0
