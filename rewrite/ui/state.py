"""The app's state: one model being edited, the original for "before" renders, one edit job.

Edits are serialised (one job at a time; a second Apply is refused with 409),
and renders take a lock that an edit holds only while it swaps the weights in,
so a render sees the model before or after an edit, never half of it. Renders
never wait on statistics: statistics are computed outside the render lock, by
an edit on the live model (whose weights no one else changes while the edit
holds its slot) and by everything else (heat map, goal preview, warm-up) on a
frozen copy of the weights of the current version. Each entry is computed once
(a second request for it waits for the first) and kept in memory.
Every edit, heat map, goal preview and warm-up goes through a
:class:`~rewrite.edit.Rewriter` (the live session, or one over the frozen copy),
whose statistics come from the app's shared :class:`~rewrite.edit.stats_pool.StatsPool`.
A running edit reports its phase and progress in its :class:`Job` (the session's
``progress`` callback) and can be cancelled (:meth:`AppState.cancel`): between
statistics batches, at every solver step, and at the latest before its weights
are swapped in, so a cancelled edit changes nothing. The session's applied edits
live here, not in any request, so a failing request loses nothing. Changing them
(undo, reset, an edit's strength, removing one) is refused with 409 while an
edit runs, and bumps ``version``, which keys the cached renders. The goal
preview builds an edit's inputs without solving.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import io
import math
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path

import torch
from PIL import Image

from ..edit import EditSpec, Rewriter
from ..edit.calibrate import kept_share_note
from ..edit.layer_stats import DEFAULT_STATS_SEED
from ..edit.masks import layer_window
from ..edit.stats_pool import StatsPool
from ..metrics.before_after import (
    COLLATERAL_WARN,
    VISIBLE_WARN,
    collateral_at_strength,
    collateral_warning,
    goal_notes,
    goal_preview,
    own_goal_reproduction,
    visible_at_strength,
)
from ..metrics.feasibility import feasibility
from ..metrics.firing import heat, key_response
from ..models import load_model
from ..models.sampling import from_settings
from ..sampling.generate import generate
from ..utils.errors import RewriteError

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Conflict(Exception):
    """The request cannot run now (an edit is running, nothing to undo, ...)."""


class Missing(Exception):
    """The request names something that does not exist (an applied edit's number)."""


class Cancelled(Exception):
    """The running edit was cancelled."""


@dataclasses.dataclass
class Job:
    """The state of the current or last edit."""

    state: str = "idle"  # idle | running | done | failed | cancelled
    message: str = ""
    started: float = 0.0
    finished: float = 0.0
    figures: dict = dataclasses.field(default_factory=dict)
    warnings: list = dataclasses.field(default_factory=list)
    phase: str = ""  # what a running edit is doing ("statistics 3400/10000 samples")
    done: int = 0  # progress of the phase, when it has one
    total: int = 0
    kind: str = ""  # the edit's kind ("solve-together" for a joint solve),
    name: str = ""  # name and layer, for every page to show
    layer: str = ""


class AppState:
    """Everything the server shares between requests.

    Args:
        model: zoo name or checkpoint path.
        workspace: folder for saved specs and exports (created).
        weights, arch, device: as for :func:`rewrite.models.load_model`.
        stats_samples: samples for layer statistics.
    """

    def __init__(
        self,
        model: str,
        workspace: str | Path,
        weights=None,
        arch=None,
        device="cpu",
        stats_samples: int = 10_000,
    ):
        self.model_name = model
        self.model = load_model(model, weights=weights, arch=arch, device=device)
        self.original = copy.deepcopy(self.model)
        self.stats_samples = stats_samples
        self.ready_layers: set[str] = set()
        self.stats_pool = StatsPool(on_ready=self._stats_ready)
        self.session = self._session_on(self.model)
        self.workspace = Path(workspace)
        (self.workspace / "specs").mkdir(parents=True, exist_ok=True)
        (self.workspace / "exports").mkdir(parents=True, exist_ok=True)
        self.render_lock = threading.RLock()
        self.job_lock = threading.Lock()
        self.job = Job()
        self.version = 0
        self._png_cache: OrderedDict = OrderedDict()
        self.cancel_event = threading.Event()
        self._snap: tuple[int, object] | None = None
        self.sampling_epoch = 0  # bumped when the sampling options change

    # -- statistics (never under the render lock) ------------------------------
    def snapshot(self):
        """A frozen copy of the model at the current version (shared until the next change):
        work that only reads the weights runs on it outside the render lock."""
        with self.render_lock:
            if self._snap is None or self._snap[0] != self.version:
                self._snap = (self.version, copy.deepcopy(self.model))
            return self._snap[1]

    def _session_on(self, G) -> Rewriter:
        """A session over ``G`` (the live model, or a frozen copy for work that only reads)
        whose statistics come from the app's shared pool."""
        return Rewriter(G, progress=False, stats_provider=self.stats_pool)

    def _stats_ready(self, layer: str, samples: int, seed: int) -> None:
        """The pool has statistics of ``layer``: ready for the page when they are those an
        edit asks for by default."""
        if samples == self.stats_samples and seed == DEFAULT_STATS_SEED:
            self.ready_layers.add(layer)

    def stats_progress(self) -> list[dict]:
        """Statistics being computed now: layer, samples done, samples in all."""
        return self.stats_pool.running()

    def warm_up(self, layer: str | None = None) -> threading.Thread:
        """Compute (or load) the statistics of ``layer`` (default: the middle editable layer,
        the one the page selects first) in the background, so the first edit is quick."""
        layers = self.model.layers()
        layer = layer or layers[len(layers) // 2].name

        def run():
            self._session_on(self.snapshot()).layer_stats(layer, self.stats_samples)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    # -- rendering -----------------------------------------------------------
    def render_png(self, index: int, edited: bool = True) -> bytes:
        """PNG bytes of sample ``index`` from the edited (or the original) model."""
        key = (self.version if edited else -1 - self.sampling_epoch, index)
        if key in self._png_cache:
            self._png_cache.move_to_end(key)
            return self._png_cache[key]
        with self.render_lock:
            G = self.model if edited else self.original
            img = generate(G, [index], progress=False)[0]
            key = (self.version if edited else -1 - self.sampling_epoch, index)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        data = buf.getvalue()
        self._png_cache[key] = data
        while len(self._png_cache) > 2000:
            self._png_cache.popitem(last=False)
        return data

    # -- context heat maps -----------------------------------------------------
    def heatmap(self, spec: EditSpec, samples: list[int]) -> dict:
        """Response of the context direction on ``samples``, scaled to [0, 1] by the largest."""
        spec.validate_for(self.model)
        G = self.snapshot()  # renders go on while this computes
        info = G.layer(spec.layer)
        D = self._session_on(G).directions(spec)
        resp = key_response(G, spec.layer, D, samples) if samples else torch.zeros(0)
        scaled = heat(resp)
        scores = resp.flatten(1).max(1).values if resp.numel() else torch.zeros(0)
        return {
            "layer": spec.layer,
            "grid": layer_window(info, "key")[2],
            "samples": [
                {
                    "sample": s,
                    "score": float(scores[i]),
                    "heat": [[round(float(v), 3) for v in row] for row in scaled[i]],
                }
                for i, s in enumerate(samples)
            ],
        }

    # -- edits -------------------------------------------------------------------
    def start_apply(self, spec: EditSpec) -> Job:
        """Validate and start an edit in the background; :class:`Conflict` if one runs."""
        spec.model = self.model_name
        spec.validate_for(self.model)
        if not self._take_slot():
            raise Conflict("an edit is already running; wait for it to finish or cancel it")
        self.cancel_event = threading.Event()
        self.job = Job(
            "running",
            f"computing the {spec.kind} edit at {spec.layer} ...",
            time.time(),
            phase="starting",
            kind=spec.kind,
            name=spec.name or "",
            layer=spec.layer,
        )
        threading.Thread(target=self._run, args=(spec, self.cancel_event), daemon=True).start()
        return self.job

    def cancel(self) -> Job:
        """Cancel the running edit (it stops at its next check; nothing is changed)."""
        if self.job.state != "running":
            raise Conflict("no edit is running")
        self.cancel_event.set()
        self.job.phase = "cancelling"
        return self.job

    def _phase(self, cancel: threading.Event, phase: str, done: int = 0, total: int = 0):
        if cancel.is_set():
            raise Cancelled()
        self.job.phase, self.job.done, self.job.total = phase, done, total

    def _progress(self, cancel: threading.Event, solving: str = "solving"):
        """The session's ``progress(phase, done, total)`` for the job: the phase the page
        shows, and :class:`Cancelled` once ``cancel`` is set."""

        def report(phase: str, done: int, total: int) -> None:
            text = {
                "statistics": f"statistics {done}/{total} samples",
                "goal": "building the goal",
            }.get(phase) or (f"{solving}: step {done} of {total}" if total else solving)
            self._phase(cancel, text, done, total)

        return report

    def _run(self, spec: EditSpec, cancel: threading.Event) -> None:
        job = self.job
        try:
            # The weights stay as they are while this edit holds the slot: work on the model.
            progress = self._progress(cancel)
            with self.session.reporting(progress):
                inputs = self.session.prepare(spec)
                progress("solving", 0, 0)
                delta = self.session.compute(spec, inputs)
            with torch.no_grad():
                unedited = self.model(self.model.latents(inputs.goal_samples))
            with self.render_lock:
                if cancel.is_set():
                    raise Cancelled()
                self.session.apply(delta)
                self.version += 1
            repro = own_goal_reproduction(self.model, inputs, unedited)
            delta_figures = {
                **delta.figures(),
                "goal reproduction": repro if math.isfinite(repro) else None,
            }
            self.job = Job(
                "done",
                self._summary(spec, delta, repro),
                job.started,
                time.time(),
                delta_figures,
                goal_notes(spec, math.nan, delta) + collateral_warning(delta),
                kind=spec.kind,
                name=spec.name or "",
                layer=spec.layer,
            )
        except Cancelled:
            self.job = Job(
                "cancelled",
                "cancelled: nothing was changed",
                job.started,
                time.time(),
                kind=spec.kind,
                name=spec.name or "",
                layer=spec.layer,
            )
        except RewriteError as e:
            self.job = Job(
                "failed", str(e), job.started, time.time(), kind=spec.kind, layer=spec.layer
            )
        except Exception as e:  # noqa: BLE001 - reported to the page
            self.job = Job(
                "failed",
                f"internal error: {type(e).__name__}: {e}",
                job.started,
                time.time(),
                kind=spec.kind,
                layer=spec.layer,
            )
        finally:
            self.job_lock.release()

    @staticmethod
    def _summary(spec: EditSpec, delta, repro: float = math.nan) -> str:
        """What a person reads after an edit: what was applied, how close your own example
        came to the request, how much other images are predicted to change, and the time."""
        what = f"{spec.kind} edit" + (f" '{spec.name}'" if spec.name else "") + f" at {spec.layer}"
        c = collateral_at_strength(delta)
        side = (
            f"predicted change elsewhere (collateral) {c:.3f}"
            + (" — low" if c <= COLLATERAL_WARN else " — high")
            if math.isfinite(c)
            else "predicted change elsewhere: not known for this solver"
        )
        v = visible_at_strength(delta)
        if math.isfinite(v):
            side += f"; visible change outside the rule's region {v:.3f}" + (
                " — low" if v <= VISIBLE_WARN else " — high"
            )
        own = (
            f"your example reproduced to {repro:.2f} of the way from the request "
            "(0 = exactly, 1 = unchanged); "
            if math.isfinite(repro)
            else ""
        )
        kept = kept_share_note(delta)
        return (
            f"applied the {what}: {own}{side}{'; ' + kept if kept else ''}; {delta.seconds:.1f} s"
        )

    def _take_slot(self) -> bool:
        """Take the edit slot if it is free. A job that has already published its end (done,
        failed, cancelled) lets go of the slot a moment later, in its thread: a request that
        comes in that moment (the page acting on the end it has just read) waits for it."""
        if self.job_lock.acquire(blocking=False):
            return True
        return self.job.state != "running" and self.job_lock.acquire(timeout=2.0)

    @contextlib.contextmanager
    def _exclusive(self):
        """Hold the edit slot (:class:`Conflict` while an edit runs) and the render lock:
        for changes of the applied edits, which no edit's solve may see half done."""
        if not self._take_slot():
            raise Conflict("an edit is running; wait for it to finish")
        try:
            with self.render_lock:
                yield
        finally:
            self.job_lock.release()

    def undo(self) -> int:
        """Undo the last edit; returns the number of edits left."""
        with self._exclusive():
            if self.session.undo() is None:
                raise Conflict("nothing to undo")
            self.version += 1
        return len(self.session.deltas)

    def reset(self) -> int:
        """Undo every edit."""
        with self._exclusive():
            self.session.reset()
            self.version += 1
        return 0

    def set_sampling(self, settings: dict) -> dict:
        """Sample with ``settings`` (``truncation``, ``class``: a spec's ``sampling``, see
        :meth:`Generator.sampling_settings`) from now on, in the edited and the original
        model; the applied edits stay (they change weights, not sampling). Returns the
        settings that differ from the defaults. :class:`Conflict` while an edit runs;
        :class:`RewriteError` for settings the model cannot take."""
        with self._exclusive():
            self.model.set_sampling(**from_settings(settings))
            self.follow_model_sampling()
        self.warm_up()
        return self.model.sampling_changes()

    def follow_model_sampling(self) -> None:
        """After the model's sampling changed (truncation, noise, class): the original model
        samples the same way, and nothing rendered or marked ready before is reused
        (statistics are kept per setting by their cache key)."""
        with self.render_lock:
            changes = self.model.sampling.changes_from(self.original.sampling)
            if not changes:
                return
            self.original.set_sampling(**changes)
            self.version += 1
            self.sampling_epoch += 1
            self._png_cache.clear()
            self.ready_layers.clear()

    # -- the applied edits ---------------------------------------------------------
    def edits(self) -> list[dict]:
        """The applied edits, oldest first: what each is, its strength, and the predicted
        collateral at that strength (with the warning when it is high). Read under the render
        lock: a strength change or joint solve undoes and re-applies edits, and a list read
        half way would miss some."""
        with self.render_lock:
            deltas = self.session.deltas
        out = []
        for i, d in enumerate(deltas):
            spec = d.spec or {}
            c = collateral_at_strength(d)
            out.append(
                {
                    "index": i,
                    "name": spec.get("name", ""),
                    "kind": spec.get("kind", ""),
                    "layer": d.layer,
                    "method": d.method,
                    # not a weight change: no family checkpoint can hold it (delta file only)
                    "gated": d.gate is not None,
                    "strength": d.strength,
                    "collateral": c if math.isfinite(c) else None,
                    "visible": v if math.isfinite(v := visible_at_strength(d)) else None,
                    "warnings": collateral_warning(d),
                }
            )
        return out

    def set_strength(self, index: int, strength: float) -> dict:
        """Re-weight applied edit ``index`` (weights ``W0 + Σ s_i·ΔW_i``, no new solve);
        returns its entry of :meth:`edits`."""
        with self._exclusive():
            self._check_index(index)
            self.session.set_strength(index, strength)
            self.version += 1
        return self.edits()[index]

    def remove(self, index: int) -> int:
        """Drop applied edit ``index``, keeping the later ones; returns the number left."""
        with self._exclusive():
            self._check_index(index)
            self.session.remove(index)
            self.version += 1
        return len(self.session.deltas)

    def solve_together(self, layer: str) -> list[dict]:
        """Solve the applied edits of ``layer`` again, jointly, so that none spoils
        another (:meth:`Rewriter.solve_together`); returns :meth:`edits`.

        It runs as the job (``/api/job`` shows it, every page its bar) and can be cancelled:
        an iterative solver stops at its next step, a closed-form one finishes and its result
        is dropped; either way the applied edits stay as they were (:class:`Conflict`)."""
        with self._exclusive():
            cancel = self.cancel_event = threading.Event()
            started = time.time()
            self.job = Job(
                "running",
                f"solving the edits of {layer} together ...",
                started,
                phase="solving together",
                kind="solve-together",
                layer=layer,
            )
            old = self.session.deltas
            try:
                with self.session.reporting(self._progress(cancel, "solving together")):
                    self.session.solve_together(layer)
                if cancel.is_set():  # too late to stop: put the old ones back
                    self.session.reset()
                    for d in old:
                        self.session.apply(d)
                    raise Cancelled()
            except Cancelled:
                self.job = Job(
                    "cancelled",
                    "cancelled: nothing was changed",
                    started,
                    time.time(),
                    kind="solve-together",
                    layer=layer,
                )
                raise Conflict(
                    "solving together was cancelled: the applied edits are as before"
                ) from None
            except RewriteError as e:
                self.job = Job(
                    "failed", str(e), started, time.time(), kind="solve-together", layer=layer
                )
                raise
            except Exception as e:  # reported to the page, then raised
                message = f"internal error: {type(e).__name__}: {e}"
                self.job = Job(
                    "failed", message, started, time.time(), kind="solve-together", layer=layer
                )
                raise RewriteError(message) from e
            self.version += 1
            self.job = Job(
                "done",
                f"solved the edits of {layer} together",
                started,
                time.time(),
                kind="solve-together",
                layer=layer,
            )
        return self.edits()

    def _check_index(self, index: int) -> None:
        n = len(self.session.deltas)
        if not 0 <= index < n:
            raise Missing(
                f"no applied edit number {index}; there "
                f"{'is' if n == 1 else 'are'} {n} (numbered from 0)"
            )

    # -- goal preview ----------------------------------------------------------------
    def goal(self, spec: EditSpec, solved: bool = False) -> dict:
        """What ``spec`` asks of its layer, without solving: the goal panel (copy source,
        paste target, pasted request, goal rendered through the rest of the network) as a
        PNG data URL, the goal's fidelity and the notes about it.

        With ``solved`` the spec must be the last applied edit (up to its strength): the
        panel is built on the model before that edit and ends with the paste target as
        the edited model renders it now.
        """
        spec.model = self.model_name
        spec.validate_for(self.model)
        reader = self._session_on(self.snapshot())
        last = None
        ahead: list[str] = []
        if not solved:
            preview = goal_preview(reader, spec)
            # Before the solve: can this layer tell the rule's place from the rest?
            ahead = [feasibility(reader.model, spec, reader.stats(spec)).line()]
        else:
            # Statistics outside every lock; the solved preview finds them in the pool (same
            # layer key: the last edit is of this layer).
            reader.stats(spec)
            with self._exclusive():
                last = self._last_applied(spec)
                preview = goal_preview(self.session, spec, solved=True)
        buf = io.BytesIO()
        preview.panel.save(buf, format="PNG")
        fidelity = preview.fidelity
        notes = (
            ahead + goal_notes(spec, fidelity, last) + (collateral_warning(last) if last else [])
        )
        return {
            "png": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
            "notes": notes,
            "fidelity": fidelity if math.isfinite(fidelity) else None,
            "edited": preview.edited is not None,
            "layer": spec.layer,
        }

    def _last_applied(self, spec: EditSpec):
        """The last applied delta, if its spec is ``spec`` (strength aside); Conflict if not."""
        if not self.session.deltas:
            raise Conflict("no edit applied yet: apply this spec first")
        last = self.session.deltas[-1]
        drop = ("strength", "name", "description")
        want = {k: v for k, v in spec.to_json().items() if k not in drop}
        have = {k: v for k, v in (last.spec or {}).items() if k not in drop}
        if want != have:
            raise Conflict(
                "the last applied edit is not this spec; preview the goal without "
                "'solved', or apply the spec first"
            )
        return last

    # -- files ---------------------------------------------------------------------
    def spec_path(self, name: str) -> Path:
        """``<workspace>/specs/<name>.json`` for a safe name; ValueError otherwise."""
        if not SAFE_NAME.match(name) or ".." in name:
            raise ValueError(
                f"invalid name {name!r}: use letters, digits, '-', '_' and '.' "
                "(at most 64 characters)"
            )
        return self.workspace / "specs" / f"{name}.json"

    def export_checkpoint(self) -> Path:
        """The edited model written to ``exports/edited<suffix>`` in the format its own tools
        read (an NVIDIA ``.pkl`` for a model loaded from one, else ``.pt``)."""
        with self.render_lock:
            name = "edited" + self.session.model.checkpoint_suffix
            return self.session.export_checkpoint(self.workspace / "exports" / name)

    def export_deltas(self) -> Path:
        with self.render_lock:
            if not self.session.deltas:
                raise Conflict("no edits applied yet; nothing to export")
            return self.session.export_deltas(self.workspace / "exports" / "edits.safetensors")
