"""The Rewriter's seams that the app, the CLI and the notebook edit through (issue 25, one
pipeline): a statistics provider used instead of computing, a ``progress(phase, done,
total)`` callback that may raise to cancel, and "the model as before the last edit"."""

import threading

import pytest
import torch

from rewrite.edit import EditSpec, Rewriter
from rewrite.edit.layer_stats import layer_stats
from rewrite.edit.stats_pool import StatsPool
from rewrite.metrics.before_after import goal_preview
from rewrite.utils.errors import EditError

from ..conftest import make_tiny_dcgan


class Stop(Exception):
    pass


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "tiny-dcgan.pt"
    make_tiny_dcgan().save(path)
    return make_tiny_dcgan(), str(path)


def _spec(model: str, solver: str = "closed-form", params: dict | None = None) -> EditSpec:
    return EditSpec.from_json({
        "version": 1, "model": model, "layer": "main.6", "kind": "copy-paste",
        "stats": {"samples": 300}, "solver": {"name": solver, "params": params or {}},
        "copy": {"sample": 1, "mask": {"rect": [8, 8, 16, 16]}},
        "paste": {"sample": 2, "mask": {"rect": [16, 16, 24, 24]}},
        "context": [{"sample": 3, "mask": {"rect": [8, 8, 24, 16]}}]})


def _weights(G) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in G.state_dict().items()}


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_provider_is_used_instead_of_computing(tiny, tmp_path):
    G, path = tiny
    spec = _spec(path)
    own = layer_stats(G, "main.6", n=300, seed=0, cache=False, progress=False)
    asked = []

    def provider(model, layer, samples, seed, callback):
        asked.append((model, layer, samples, seed))
        return own

    session = Rewriter(G, progress=False, stats_provider=provider)
    delta = session.compute(spec)
    assert asked and all(a == (G, "main.6", 300, 0) for a in asked)
    assert not (tmp_path / "cache" / "stats").exists()          # nothing computed or cached
    # The same statistics computed by the default provider give the same edit.
    plain = Rewriter(G, progress=False, stats_cache=False).compute(spec)
    assert torch.equal(delta.changes()[delta.low_rank.param],
                       plain.changes()[plain.low_rank.param])
    assert session.stats(spec) is own and session.layer_stats("main.6", 300) is own


def test_progress_is_reported_by_phase(tiny):
    G, path = tiny
    seen = []
    session = Rewriter(G, progress=False, stats_cache=False)
    with session.reporting(lambda *a: seen.append(a)):
        session.apply(_spec(path, "adam", {"steps": 5}))
    phases = [p for p, _, _ in seen]
    assert phases[0] == "statistics" and seen[phases.index("statistics")][2] == 300
    assert seen[phases.index("goal")] == ("goal", 0, 0)
    assert phases.index("statistics") < phases.index("goal") < phases.index("solving")
    steps = [(d, t) for p, d, t in seen if p == "solving" and t]
    assert steps == [(i, 5) for i in range(1, 6)], seen
    n = len(seen)
    session.undo()
    session.apply(_spec(path, "adam", {"steps": 5}))             # outside the block: silent
    assert len(seen) == n


@pytest.mark.parametrize("phase", ["statistics", "goal", "solving"])
def test_a_raising_progress_cancels_and_leaves_the_model_unchanged(tiny, phase):
    G, path = tiny
    session = Rewriter(G, progress=False, stats_cache=False)
    session.apply(_spec(path))                                   # an edit already applied
    before = _weights(G)

    def progress(p, done, total):
        if p == phase and (phase != "solving" or total):         # a solver step
            raise Stop(p)

    with pytest.raises(Stop, match=phase), session.reporting(progress):
        session.apply(_spec(path, "adam", {"steps": 20}))
    assert _same(before, _weights(G)) and len(session.deltas) == 1


def test_a_cancelled_joint_solve_restores_the_edits(tiny):
    G, path = tiny
    session = Rewriter(G, progress=False, stats_cache=False)
    a, b = _spec(path), _spec(path)
    b.paste.sample = 5
    session.apply(a)
    session.apply(b)
    before, deltas = _weights(G), session.deltas

    def progress(p, done, total):
        if p == "solving":
            raise Stop()

    with pytest.raises(Stop), session.reporting(progress):
        session.solve_together("main.6")
    assert _same(before, _weights(G)) and session.deltas == deltas


def test_without_last_edit_restores_exactly(tiny):
    G, path = tiny
    session = Rewriter(G, progress=False, stats_cache=False)
    with pytest.raises(EditError, match="no edit applied"), session.without_last_edit():
        pass
    original = _weights(G)
    first = session.apply(_spec(path))
    session.apply(_spec(path, "adam", {"steps": 5}))
    session.set_strength(1, 0.5)
    edited, second = _weights(G), session.deltas[1]
    with session.without_last_edit() as last:
        assert last is second and session.deltas == [first]
        session.undo()
        assert _same(original, _weights(G))
        session.apply(first)
    assert _same(edited, _weights(G)) and session.deltas == [first, second]
    with pytest.raises(Stop), session.without_last_edit():        # also after an error
        raise Stop()
    assert _same(edited, _weights(G))
    session.reset()
    assert _same(original, _weights(G))


def test_the_goal_preview_before_and_after_solving(tiny):
    """Both goal previews (the app's and `rewrite goal`'s): the solved one is built on the
    model before the edit, so it matches the unsolved one up to the edited tile, and the
    model is left as it was."""
    G, path = tiny
    spec = _spec(path)
    session = Rewriter(G, progress=False, stats_cache=False)
    plain = goal_preview(session, spec)
    assert plain.edited is None and session.deltas == []
    session.apply(spec)
    edited = _weights(G)
    solved = goal_preview(session, spec, solved=True)
    assert _same(edited, _weights(G)) and len(session.deltas) == 1
    assert solved.fidelity == plain.fidelity or (solved.fidelity != solved.fidelity
                                                 and plain.fidelity != plain.fidelity)
    assert solved.edited is not None and solved.panel.width > plain.panel.width
    left = solved.panel.crop((0, 0, plain.panel.width, plain.panel.height))
    assert list(left.getdata()) == list(plain.panel.getdata())


def test_the_pool_computes_each_entry_once_for_many_callers(tiny):
    G, _ = tiny
    ready = []
    pool = StatsPool(on_ready=lambda *a: ready.append(a))
    progress, out = [], []
    callers = [threading.Thread(target=lambda: out.append(pool(G, "main.6", 400, 0,
                                                               lambda d, t: progress.append(t))))
               for _ in range(3)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(60)
    assert len(out) == 3 and out[0] is out[1] is out[2]
    assert set(progress) == {400} and pool.running() == []
    assert ready == [("main.6", 400, 0)] * 3
    # A caller that gives up leaves nothing behind; the next one computes it afresh.
    with pytest.raises(Stop):
        pool(G, "main.6", 500, 0, lambda d, t: (_ for _ in ()).throw(Stop()))
    assert pool.running() == []
    assert pool(G, "main.6", 500, 0).n_samples == 500
