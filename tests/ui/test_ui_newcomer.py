"""Issue 23, items 1-12: the faults a newcomer met in the page, each checked in chromium
against `rewrite ui` on the real face model (the server fixture of test_ui_browser.py).
Screenshots go to test-artifacts/ (and are looked at when the layout changes)."""

import base64
import io
import json
import random
import urllib.request

import pytest

from .test_ui_browser import APPLY_TIMEOUT_MS, ARTIFACTS, CHROMIUM, ROOT, SCALE, _drag, _goto, _mark_sunglasses, pytestmark, server  # noqa: F401

APPLIED = "document.querySelector('#status').textContent.startsWith('applied')"


@pytest.fixture(scope="module")
def page(server):  # noqa: F811 - the shared server fixture
    """A page that records errors, dialogs (type and message, all accepted) and downloads."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        pg.errors, pg.dialogs, pg.downloads = [], [], []
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))
        pg.on("download", lambda d: pg.downloads.append(d.suggested_filename))

        def accept(dialog):
            pg.dialogs.append((dialog.type, dialog.message))
            dialog.accept()

        pg.on("dialog", accept)
        pg.goto(server)
        pg.wait_for_selector(".tile img")
        ARTIFACTS.mkdir(exist_ok=True)
        yield pg
        browser.close()


def _post(server, path, body=None):
    req = urllib.request.Request(server + path, json.dumps(body or {}).encode(),
                                 {"Content-Type": "application/json"}, method="POST")
    try:
        return json.load(urllib.request.urlopen(req))
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{path}: {e.code} {e.read().decode()}") from None


def _get(server, path):
    return json.load(urllib.request.urlopen(server + path))


def _fresh(page, server, size=(1400, 1000)):
    """No applied edit, a reloaded page with no marks, at viewport `size`."""
    _post(server, "api/reset")
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.evaluate("location.reload()")
    page.wait_for_selector(".tile img")
    page.wait_for_function("document.querySelector('#status').textContent !== ''")


def _until(check, timeout=30, why=lambda: ""):
    """Wait until check() is true (polling the server from here)."""
    import time
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, f"timed out: {why()}"
        time.sleep(0.1)


def _in_view(page, selector):
    box = page.locator(selector).bounding_box()
    h = page.viewport_size["height"]
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= h + 1


def _scroll_down(page):
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_function("window.scrollY > 0")


def _apply(page, n_after):
    page.click("#apply")
    page.wait_for_function(f"{APPLIED} && document.querySelectorAll('#edit-list li').length === {n_after}",
                           timeout=APPLY_TIMEOUT_MS)


def _png_pixels(data_url):
    """A mask PNG (data URL) as the set of (x, y) pixels that are on."""
    from PIL import Image
    im = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGBA")
    w, h = im.size
    a = im.getchannel("A").load()
    return {(x, y) for y in range(h) for x in range(w) if a[x, y] >= 128}


# -- item 12: the first screen --------------------------------------------------------------

def test_first_screen_says_what_to_do_and_the_copy_mask_shows_on_blue(page, server):
    _fresh(page, server)
    assert "paint the object to copy" in page.inner_text("#message")
    assert "paint the object to copy" in page.inner_text("#editor-hint")
    # A copy mask on a face with a blue mask (sample 17): its outline is dashed black and
    # white, visible on any colour.
    page.check("input[name=tool][value=rect]")
    _goto(page, 17)
    _drag(page, (20, 36), (44, 56))
    assert page.inner_text("#message").startswith("Next: choose Paste")      # the next step
    row = page.evaluate("""() => Array.from(document.querySelector('#canvas').getContext('2d')
        .getImageData(20 * 6, 36 * 6 - 1, 24 * 6, 2).data)""")
    px = [row[i:i + 3] for i in range(0, len(row), 4)]
    assert any(min(p) > 230 for p in px) and any(max(p) < 25 for p in px), px[:12]
    page.screenshot(path=str(ARTIFACTS / "ui-copy-outline.png"))
    assert page.errors == []


# -- item 5: the brush ------------------------------------------------------------------------

def test_brush_size_one_paints_and_a_fast_stroke_has_no_gaps(page, server):
    _fresh(page, server)
    page.check("input[name=mode][value=context]")
    page.check("input[name=tool][value=brush]")
    page.fill("#brush-size", "1")
    _goto(page, 9)
    box = page.locator("#canvas").bounding_box()
    page.mouse.click(box["x"] + 10.5 * SCALE, box["y"] + 12.5 * SCALE)
    assert "context: sample 9" in page.inner_text("#selections")
    # A fast stroke: the mouse reports two points 50 px apart.
    page.fill("#brush-size", "3")
    page.mouse.move(box["x"] + 5.5 * SCALE, box["y"] + 40.5 * SCALE)
    page.mouse.down()
    page.mouse.move(box["x"] + 55.5 * SCALE, box["y"] + 40.5 * SCALE, steps=1)
    page.mouse.up()
    with page.expect_request("**/api/heatmap") as req:      # the page sends the masks
        page.click("#heatmap")
    on = _png_pixels(req.value.post_data_json["context"][0]["mask"]["png"])
    assert (10, 12) in on and not {(9, 12), (11, 12), (10, 11), (10, 13)} & on   # one pixel
    assert all((x, y) in on for x in range(5, 56) for y in (39, 40, 41))           # no gaps
    assert (5, 38) not in on and (3, 40) not in on       # centred on the pixel, diameter 3
    # (The API refuses so thin a region at this layer, and the page says so.)
    page.wait_for_function("document.querySelector('#message').className === 'error'")
    assert page.errors == []


# -- items 6 (disabled buttons, names, keyboard), 11 (stroke undo elsewhere) -----------------

def test_buttons_with_nothing_to_do_are_off_and_everything_has_a_name(page, server):
    _fresh(page, server)
    for b in ("#new-edit", "#stroke-undo", "#stroke-redo", "#clear-mask", "#undo"):
        assert page.is_disabled(b), b
    assert page.get_by_role("textbox", name="edit name").count() == 1
    assert page.get_by_role("button", name="previous page").count() == 1
    assert page.get_by_role("button", name="next page").count() == 1
    # Tiles and the canvas are in the tab order; Enter selects a tile.
    page.focus("#goto")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.className + ' ' + document.activeElement.id")
    assert "tile" in focused or "tile-size" in focused
    page.focus(".tile[data-sample='5']")
    page.keyboard.press("Enter")
    page.wait_for_selector(".tile.selected[data-sample='5']")
    assert page.inner_text("#editor-index") == "5"
    assert page.get_attribute("#canvas", "tabindex") == "0"
    assert page.get_by_role("button", name="sample 7").count() == 1
    # A stroke makes undo, New edit and Clear available.
    page.check("input[name=mode][value=context]")
    page.check("input[name=tool][value=rect]")
    _drag(page, (10, 10), (20, 20))
    for b in ("#new-edit", "#stroke-undo", "#clear-mask"):
        assert not page.is_disabled(b), b
    assert page.is_disabled("#stroke-redo")
    assert page.errors == []


def test_stroke_undo_shows_the_sample_it_changes(page, server):
    _fresh(page, server)
    page.check("input[name=mode][value=context]")
    page.check("input[name=tool][value=rect]")
    _goto(page, 130)
    _drag(page, (10, 10), (30, 30))
    _goto(page, 3)                                  # another page of the gallery
    assert page.inner_text("#page-label") == "samples 0–23"
    page.focus("#canvas")
    page.keyboard.press("Control+z")
    page.wait_for_selector(".tile.selected[data-sample='130']")
    assert page.inner_text("#editor-index") == "130"
    assert "on sample 130" in page.inner_text("#message")
    assert "context: sample 130" not in page.inner_text("#selections")
    _goto(page, 3)
    page.click("#stroke-redo")
    page.wait_for_selector(".tile.selected[data-sample='130']")
    assert "context: sample 130" in page.inner_text("#selections")
    assert page.errors == []


# -- item 2: marks are not lost --------------------------------------------------------------

def test_new_edit_loading_a_spec_and_reload_do_not_lose_marks_silently(page, server, tmp_path):
    _fresh(page, server)
    page.check("input[name=mode][value=context]")
    page.check("input[name=tool][value=rect]")
    _goto(page, 9)
    _drag(page, (16, 24), (55, 31))
    page.click("#new-edit")
    assert "no marks yet" in page.inner_text("#selections")
    assert "Ctrl+Z" in page.inner_text("#message")
    page.focus("#canvas")
    page.keyboard.press("Control+z")
    assert "context: sample 9" in page.inner_text("#selections")
    # Loading a spec replaces the marks, undoably, and clears the spec menu on New edit.
    spec = json.loads((ROOT / "examples" / "add-sunglasses.json").read_text())
    spec["context"] = spec["context"][1:2]
    path = tmp_path / "other.json"
    path.write_text(json.dumps(spec))
    page.set_input_files("#spec-file", str(path))
    page.wait_for_function("document.querySelector('#message').textContent.startsWith('Loaded')")
    assert "Ctrl+Z" in page.inner_text("#message")
    assert "context: sample 13" in page.inner_text("#selections")
    page.focus("#canvas")
    page.keyboard.press("Control+z")
    text = page.inner_text("#selections")
    assert "context: sample 9" in text and "context: sample 13" not in text
    assert page.input_value("#spec-name") == ""
    page.keyboard.press("Control+Shift+z")
    assert page.input_value("#spec-name") == "add-sunglasses"
    assert page.inner_text("#edit-title") == "New copy-paste edit"
    # Reload with marks asks first.
    n = len(page.dialogs)
    page.evaluate("location.reload()")
    page.wait_for_selector(".tile img")
    assert [t for t, _ in page.dialogs[n:]] == ["beforeunload"]
    assert page.errors == []


def test_after_reload_the_page_follows_the_job_on_its_layer(page, server):
    """A job running when the page is (re)loaded: the Layer menu shows its layer, and the
    message does not promise marks this page does not have."""
    _fresh(page, server)
    spec = json.loads((ROOT / "examples" / "add-sunglasses.json").read_text())
    spec["layer"] = "main.9"
    spec["stats"] = {"samples": 8000, "seed": random.randrange(1000, 10**6)}   # not cached
    _post(server, "api/apply", spec)
    page.evaluate("location.reload()")
    page.wait_for_selector(".tile img")
    page.wait_for_function(APPLIED, timeout=APPLY_TIMEOUT_MS)
    assert page.input_value("#layer") == "main.9"
    message = page.inner_text("#message")
    assert "marks stay" not in message and "no marks of it" in message
    # A reload after it: the Layer menu still shows the layer of the last edit.
    page.evaluate("location.reload()")
    page.wait_for_selector(".tile img")
    assert page.input_value("#layer") == "main.9"
    page.select_option("#layer", "main.6")
    assert page.errors == []


# -- items 1, 3, 7: apply, apply again, the total, feedback in view, layout ------------------

def test_apply_again_replaces_the_edit_and_feedback_stays_in_view(page, server):
    _fresh(page, server, size=(1280, 720))
    page.select_option("#layer", "main.6")
    _mark_sunglasses(page)
    _scroll_down(page)
    page.click("#apply")
    page.wait_for_selector("#job:not([hidden])")
    assert _in_view(page, "#job") and _in_view(page, "#cancel")
    for c in ("#apply", "#layer", "#rank", "#solver"):
        assert page.is_disabled(c), c
    page.wait_for_function(APPLIED, timeout=APPLY_TIMEOUT_MS)
    assert _in_view(page, "#message") and "collateral" in page.inner_text("#message")
    assert _in_view(page, "#status")
    for c in ("#apply", "#layer", "#rank", "#solver"):
        assert not page.is_disabled(c), c
    # The message after Apply leaves the canvas in view at 1280 x 720.
    page.evaluate("window.scrollTo(0, 0)")
    box = page.locator("#canvas").bounding_box()
    assert box["y"] + box["height"] <= 720, box
    page.wait_for_function("[...document.querySelectorAll('.tile img')].every("
                           "i => i.complete && i.naturalWidth > 0)")
    page.screenshot(path=str(ARTIFACTS / "ui-1280x720-applied.png"))
    assert page.locator("#edit-list li").count() == 1
    assert page.inner_text("#edit-title").startswith("Adjusting edit 1")
    # Adjust (one more context region) and apply again: it replaces the edit.
    _goto(page, 13)
    _drag(page, (16, 24), (55, 39))
    with page.expect_request("**/api/apply"):
        page.click("#apply")
    page.wait_for_function(APPLIED + " && document.querySelector('#message').textContent"
                           ".includes('replaces')", timeout=APPLY_TIMEOUT_MS)
    edits = _get(server, "api/edits")
    assert len(edits) == 1 and page.locator("#edit-list li").count() == 1
    assert page.is_hidden("#edits-total")
    # A new edit stacks; the list shows the total.
    page.click("#new-edit")
    _mark_sunglasses(page)
    _goto(page, 46)
    _drag(page, (16, 24), (55, 31))
    _apply(page, 2)
    assert "All 2 edits together" in page.inner_text("#edits-total")
    assert "(sum)" in page.inner_text("#edits-total")
    assert page.errors == []


def test_solving_together_shows_its_job_and_can_be_cancelled(page, server):
    """The joint solve shows its bar (in view), locks Apply and the sliders, and offers
    Cancel. Here the solve may finish before Cancel reaches it (its statistics are cached):
    then it is simply done; the cancel itself is checked deterministically below."""
    page.set_viewport_size({"width": 1280, "height": 720})
    assert len(_get(server, "api/edits")) == 2                  # the two edits of main.6
    before = _get(server, "api/edits")
    _scroll_down(page)
    page.click("#solve-together button")
    page.wait_for_selector("#job:not([hidden])")
    assert "together" in page.inner_text("#job-text") and _in_view(page, "#job")
    assert page.is_disabled("#apply") and page.is_disabled("#edit-list input.strength")
    assert page.is_enabled("#cancel")
    page.click("#cancel")
    page.wait_for_function("document.querySelector('#job').hidden", timeout=60_000)
    assert not page.is_disabled("#apply") and _in_view(page, "#message")
    if page.inner_text("#status") == "cancelled":
        assert "as before" in page.inner_text("#message")
        assert _get(server, "api/edits") == before
        page.click("#solve-together button")
        page.wait_for_function("document.querySelector('#job').hidden", timeout=60_000)
    assert page.inner_text("#status") == "solved together", page.inner_text("#message")
    assert [e["method"].endswith("(together)") for e in _get(server, "api/edits")] == [True, True]
    assert page.errors == []


def test_a_cancelled_joint_solve_changes_nothing(tmp_path, monkeypatch):
    """AppState.solve_together runs as the job: Cancel stops it at the solver's next step,
    or, when the solve ends first, drops its result; the applied edits stay as they were.
    And the locks the page meets around a job: the edits list, the slot right after a job."""
    import threading
    import time

    from rewrite.ui.state import AppState, Conflict

    state = AppState("dcgan-digiface64", tmp_path, stats_samples=200)
    calls = []

    def stepping(layer):                   # an iterative solve: checks at every step
        calls.append(layer)
        for i in range(2000):
            state.session._progress("solving", i + 1, 2000)   # the session's reporting callback
            time.sleep(0.005)

    def closed_form(layer):                # no steps: finishes, then the cancel is seen
        state.cancel_event.wait(10)
        state.session._history.append(("changed", {}))

    for solve in (stepping, closed_form):
        monkeypatch.setattr(state.session, "solve_together", solve)
        monkeypatch.setattr(state.session, "reset", lambda: state.session._history.clear())
        result = {}

        def run():
            try:
                state.solve_together("main.6")
            except Conflict as e:
                result["error"] = str(e)
        thread = threading.Thread(target=run)
        thread.start()
        for _ in range(200):
            if state.job.state == "running":
                break
            time.sleep(0.01)
        assert state.job.kind == "solve-together" and state.job.layer == "main.6"
        state.cancel()
        thread.join(20)
        assert "cancelled" in result["error"], solve.__name__
        assert state.job.state == "cancelled" and state.session.deltas == []
    version = state.version
    monkeypatch.setattr(state.session, "solve_together", lambda layer: None)
    state.solve_together("main.6")
    assert state.job.state == "done" and state.version == version + 1
    # The list of applied edits is not read half way through a replay (which holds the lock).
    seen = []
    with state.render_lock:
        reader = threading.Thread(target=lambda: seen.append(state.edits()))
        reader.start()
        time.sleep(0.2)
        assert seen == []
    reader.join(5)
    assert seen == [[]]
    # A job that has published its end but not yet let go of the slot: a request waits for it
    # (the page acts on the end it has just read); while it runs, a request is refused.
    state.job_lock.acquire()
    threading.Timer(0.3, state.job_lock.release).start()
    state.reset()
    state.job_lock.acquire()
    state.job.state = "running"
    try:
        with pytest.raises(Conflict):
            state.reset()
    finally:
        state.job_lock.release()


def test_strength_keys_keep_the_focus_and_a_refusal_shows(page, server):
    page.set_viewport_size({"width": 1280, "height": 720})
    assert _get(server, "api/edits")
    slider = page.locator("#edit-list input.strength").first
    slider.focus()
    for _ in range(20):
        page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.activeElement.classList.contains('strength')")
    _until(lambda: [e["strength"] for e in _get(server, "api/edits")][:1] == [0],
           why=lambda: f"{_get(server, 'api/edits')} {page.inner_text('#message')}")
    page.wait_for_function("document.querySelector('#status').textContent === 'strength 0.00'")
    assert page.input_value("#edit-list input.strength >> nth=0") == "0"
    assert page.evaluate("document.activeElement.classList.contains('strength')")
    # Refused (an edit started elsewhere holds the model): said where it can be seen.
    spec = json.loads((ROOT / "examples" / "add-sunglasses.json").read_text())
    spec["stats"] = {"samples": 90000, "seed": random.randrange(1000, 10**6)}     # long
    _post(server, "api/apply", spec)
    try:
        _scroll_down(page)
        slider.fill("1")
        page.wait_for_function("document.querySelector('#message').className === 'error'")
        assert "not changed" in page.inner_text("#message") and _in_view(page, "#message")
        assert page.get_attribute("#status", "class") == "failed"
    finally:
        _post(server, "api/cancel")
    _until(lambda: _get(server, "api/job")["state"] == "cancelled")
    assert page.errors == []


def test_no_horizontal_overflow_at_800_and_modes_keep_the_gallery_still(page, server):
    _fresh(page, server, size=(800, 900))
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
    gallery = page.locator("#gallery").bounding_box()
    assert gallery["x"] + gallery["width"] <= 800
    assert page.locator("#tile-size").bounding_box()["x"] + 10 <= 800
    page.screenshot(path=str(ARTIFACTS / "ui-800.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    widths, columns = set(), set()
    for mode in ("copy", "paste", "context", "preserve"):
        page.check(f"input[name=mode][value={mode}]")
        widths.add(round(page.locator("#editor").bounding_box()["width"]))
        columns.add(page.evaluate("new Set([...document.querySelectorAll('.tile')]"
                                  ".map(t => t.getBoundingClientRect().top)).size"))
    assert len(widths) == 1 and len(columns) == 1, (widths, columns)
    assert page.errors == []


# -- item 4: Go to ----------------------------------------------------------------------------

def test_go_to_a_sample_that_does_not_exist_says_why(page, server):
    _fresh(page, server)
    for bad, why in (("99999999", "sample index must be in 0..999999"), ("12.7", "valid integer")):
        page.fill("#goto", bad)
        page.press("#goto", "Enter")
        page.wait_for_function("document.querySelector('#message').className === 'error'")
        assert why in page.inner_text("#message"), page.inner_text("#message")
        page.wait_for_function("[...document.querySelectorAll('.tile img')].every("
                               "i => i.complete && i.naturalWidth > 0)")
        assert page.locator(".tile").count() == 24
        assert page.input_value("#goto") == "0" and page.inner_text("#editor-index") == "0"
        page.evaluate("document.querySelector('#message').className = ''")
    # Typing the sample on show leaves "best matches".
    page.check("input[name=mode][value=context]")
    page.check("input[name=tool][value=rect]")
    _goto(page, 9)
    _drag(page, (16, 24), (55, 31))
    page.click("#sort-match")
    page.wait_for_function("document.querySelector('#page-label').textContent === 'best matches'")
    page.fill("#goto", "9")
    page.press("#goto", "Enter")
    page.wait_for_function("document.querySelector('#page-label').textContent === 'samples 0–23'")
    assert page.errors == []


# -- item 8: stale state -----------------------------------------------------------------------

def test_nothing_stale_is_left_on_show(page, server, tmp_path):
    _fresh(page, server)
    page.check("input[name=mode][value=context]")
    page.check("input[name=tool][value=rect]")
    _goto(page, 9)
    _drag(page, (16, 24), (55, 31))
    # Best matches are sorted again after the marks change.
    page.click("#sort-match")
    page.wait_for_function("document.querySelector('#page-label').textContent === 'best matches'")
    assert page.inner_text("#message").startswith("Samples sorted")
    page.click(".tile[data-sample='9']")             # the best match: still sorted
    # (Waiting for the response, not the request: a heat map still in flight when the next
    # steps run re-sorts the gallery under them.)
    with page.expect_response("**/api/heatmap") as resp:
        _drag(page, (16, 36), (55, 39))
    assert len(resp.value.request.post_data_json["samples"]) == 96
    page.wait_for_function("document.querySelector('#page-label').textContent === 'best matches'")
    # Hide takes the "sorted" message with it.
    page.click("#heat-off")
    assert not page.inner_text("#message").startswith("Samples sorted")
    # The spec menu and the goal panel are cleared by New edit and by loading another spec.
    _mark_sunglasses(page)
    page.fill("#spec-name", "stale-one")
    page.click("#save-spec")
    page.wait_for_function("document.querySelector('#message').textContent.startsWith('Saved')")
    page.click("#goal-preview")
    page.wait_for_function("!document.querySelector('#goal-panel').hidden")
    page.select_option("#spec-list", "stale-one")
    page.wait_for_function("document.querySelector('#message').textContent.startsWith('Loaded')")
    assert page.is_hidden("#goal-panel")
    # (Opened again from a file with the app's statistics: a saved spec records the library's
    # default of 10 000 samples, slow to compute for the preview below.)
    spec = _get(server, "api/specs/stale-one")
    spec["stats"] = {"samples": 2000, "seed": 0}
    (tmp_path / "stale-two.json").write_text(json.dumps(spec))
    page.set_input_files("#spec-file", str(tmp_path / "stale-two.json"))
    page.wait_for_function("document.querySelector('#message').textContent.startsWith('Loaded \"stale-two')")
    page.click("#goal-preview")
    page.wait_for_function("!document.querySelector('#goal-panel').hidden || "
                           "document.querySelector('#message').className === 'error'")
    assert page.is_visible("#goal-panel"), page.inner_text("#message")
    page.click("#new-edit")
    assert page.input_value("#spec-list") == "" and page.is_hidden("#goal-panel")
    # A refusal under a green badge turns the badge grey.
    page.focus("#canvas")
    page.keyboard.press("Control+z")
    _apply(page, 1)
    assert page.get_attribute("#status", "class") == "done"
    page.click("#new-edit")
    page.click("#apply")                              # nothing marked: refused
    page.wait_for_function("document.querySelector('#message').className === 'error'")
    assert page.get_attribute("#status", "class") != "done"
    # "Before solving" after Apply is the target before the edit (the solved panel).
    page.focus("#canvas")
    page.keyboard.press("Control+z")
    with page.expect_request("**/api/goal*") as req:
        page.click("#goal-preview")
    assert "solved=1" in req.value.url
    page.wait_for_function("document.querySelector('#goal-state').textContent.includes('edited')")
    assert page.errors == []


# -- item 9: "not here" over the context ------------------------------------------------------

def test_not_here_over_a_context_region_is_named(page, server):
    _fresh(page, server)
    page.check("input[name=mode][value=context]")
    page.check("input[name=tool][value=rect]")
    _goto(page, 9)
    _drag(page, (16, 24), (55, 31))
    page.check("input[name=mode][value=preserve]")
    _drag(page, (30, 20), (40, 40))
    page.wait_for_function("document.querySelector('#message').className === 'warn'")
    message = page.inner_text("#message")
    assert '"not here" on sample 9 covers 88 px of its context region' in message, message
    assert "⚠" in page.inner_text("#selections")
    page.screenshot(path=str(ARTIFACTS / "ui-not-here-overlap.png"))
    assert page.errors == []


# -- item 10: exports ---------------------------------------------------------------------------

def test_a_gated_edit_exports_as_a_delta_and_the_checkpoint_link_says_why_not(page, server):
    """With a gated edit applied (the face model's default method), "edited model" downloads
    nothing and says the checkpoint cannot hold it; "delta" downloads the delta file."""
    _fresh(page, server)
    spec = json.loads((ROOT / "examples" / "add-sunglasses.json").read_text())
    spec["solver"] = {"name": "gated",
                      "params": {"steps": 5, "examples": 4, "silent": 4, "keep": 2}}
    spec["stats"] = {"samples": 2000, "seed": 0}
    _post(server, "api/apply", spec)
    _until(lambda: _get(server, "api/job")["state"] != "running", timeout=120)
    assert _get(server, "api/job")["state"] == "done"
    page.evaluate("location.reload()")
    page.wait_for_selector(".tile img")
    page.wait_for_function("document.querySelectorAll('#edit-list li').length === 1")
    n = len(page.downloads)
    page.evaluate("document.querySelector('#message').className = ''")
    page.click("#dl-checkpoint")
    page.wait_for_function("document.querySelector('#message').className === 'error'")
    assert "gated edit" in page.inner_text("#message") and "delta" in page.inner_text("#message")
    page.wait_for_timeout(500)
    assert len(page.downloads) == n
    with page.expect_download():
        page.click("#dl-delta")
    assert page.errors == []


def test_export_without_an_applied_edit_says_so(page, server):
    _fresh(page, server)
    n = len(page.downloads)
    for link in ("#dl-checkpoint", "#dl-delta"):
        page.evaluate("document.querySelector('#message').className = ''")
        page.click(link)
        page.wait_for_function("document.querySelector('#message').className === 'error'")
        assert "No edit is applied" in page.inner_text("#message")
    page.wait_for_timeout(500)
    assert len(page.downloads) == n
    assert page.errors == []
