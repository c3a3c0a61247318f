"""The Rewriter session: compute edits, apply them in sequence, undo, reset, export.

Usage::

    session = Rewriter(load_model("dcgan-digiface64"))
    delta = session.apply(EditSpec.load("examples/add-glasses.json"))
    session.undo()                        # back to the weights before that edit
    session.apply(delta)                  # re-apply a computed delta without solving again
    session.set_strength(0, 0.5)          # W0 + 0.5·ΔW, without solving again
    session.remove(0)                     # drop an edit from the history, keep the others
    session.export_checkpoint("edited.pt")
    session.export_deltas("edits.safetensors")

    with session.without_last_edit():     # the model as before the last edit (goal previews)
        before = generate(session.model, [7])

    def progress(phase, done, total):     # "statistics" | "goal" | "solving"; may raise
        print(phase, done, total)
    with session.reporting(progress):
        session.apply(spec)

    Rewriter(G, stats_provider=StatsPool())   # statistics kept in memory (the app's)

Every edit of the library, the CLI and the app goes through this session:
statistics from the session's provider (:meth:`Rewriter.stats`), the goal
(:meth:`Rewriter.prepare`), the solve (:meth:`Rewriter.compute`), each with the
spec's sampling settings. ``compute`` never touches the model; ``apply``
changes it only once the whole edit has been computed and checked, so a failed
edit (or one cancelled by its ``progress`` callback) leaves the weights as they
were. The same spec on the same model gives bit-identical weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from ..memory.solvers import StepCallback
from ..metrics.visible import visible_collateral
from ..models.base import Generator
from ..utils.errors import DeltaFileError, EditError
from .delta import Delta, load_deltas, low_rank_problem, save_deltas
from .gated import apply_gated, gated_problem
from .goals import EditInputs, build_inputs, rule_directions
from .layer_stats import DEFAULT_STATS_SAMPLES, DEFAULT_STATS_SEED, LayerStats, layer_stats
from .limits import MAX_STRENGTH
from .methods import compute_delta, method_params
from .spec import EditSpec

#: ``progress(phase, done, total)``: what a session is doing (see :meth:`Rewriter.reporting`).
Progress = Callable[[str, int, int], None]
#: ``provider(G, layer, samples, seed, callback) -> LayerStats``: the statistics of ``layer``
#: of ``G`` over ``samples`` samples of latent stream ``seed``, as ``G`` samples now (the
#: session has set the spec's sampling settings). ``callback(done, total)``, when not None,
#: is to be called as samples are done; it may raise to cancel (let the exception through).
#: The default computes them or reads them from the disk cache (:func:`layer_stats`); the
#: app passes its in-memory, shared :class:`~rewrite.edit.stats_pool.StatsPool`.
StatsProvider = Callable[[Generator, str, int, int, Callable[[int, int], None] | None], LayerStats]


class Rewriter:
    """An editing session over one generator.

    Args:
        G: the generator; it is edited in place.
        progress: show progress bars for statistics (of the default provider). For a
            progress callback, see :meth:`reporting`.
        stats_cache: read and write cached statistics on disk (the default provider).
        stats_provider: where statistics come from (:data:`StatsProvider`); default:
            computed, or read from the disk cache.
    """

    def __init__(
        self,
        G: Generator,
        progress: bool | None = None,
        stats_cache: bool = True,
        stats_provider: StatsProvider | None = None,
    ):
        self.model = G
        self.progress = progress
        self.stats_cache = stats_cache
        self.stats_provider: StatsProvider = stats_provider or self._computed_stats
        self._base_fingerprint: str | None = None
        self._report: Progress | None = None
        self._original: dict[str, torch.Tensor] = {}
        # (delta, the weights it changed as they were before, remove() of a gated edit's wrap)
        self._history: list[tuple[Delta, dict[str, torch.Tensor], Callable[[], None] | None]] = []

    @property
    def base_fingerprint(self) -> str:
        """Fingerprint of the weights before the session's first edit (delta files are bound
        to it); hashed when first needed, so a session that only reads costs no hashing."""
        if self._base_fingerprint is None:
            self._base_fingerprint = self.model.fingerprint()
        return self._base_fingerprint

    @property
    def deltas(self) -> list[Delta]:
        """Applied deltas, oldest first."""
        return [d for d, _, _ in self._history]

    # -- progress ------------------------------------------------------------
    @contextlib.contextmanager
    def reporting(self, progress: Progress) -> Iterator[Rewriter]:
        """Within the block, the session's work calls
        ``progress(phase, done, total)``:

        - ``"statistics"``: after each batch of samples computed (``done``/``total``
          samples; not called when the provider has them already);
        - ``"goal"`` (0, 0): building the goal from the spec's masks;
        - ``"solving"``: (0, 0) as a solve starts, then (``i``, ``n``) at step ``i`` of ``n``
          of an iterative solver (also in a joint solve, :meth:`solve_together`).

        ``progress`` may raise to cancel: the exception leaves the session call that was
        running, and the model is as it was before that call (``compute`` never changes
        it; ``apply`` and the joint solves change it only once everything is computed).
        """
        outer = self._report
        self._report = progress
        try:
            yield self
        finally:
            self._report = outer

    def _progress(self, phase: str, done: int = 0, total: int = 0) -> None:
        if self._report is not None:
            self._report(phase, done, total)

    def _step(self, step: StepCallback | None) -> StepCallback | None:
        """The step callback of a solve: ``step`` when given, else one that reports
        ``("solving", i + 1, n)`` to the :meth:`reporting` callback, if any."""
        if step is not None or self._report is None:
            return step
        report = self._report
        return lambda i, n: report("solving", i + 1, n)

    # -- the pipeline: statistics -> goal -> solve -----------------------------
    def _computed_stats(
        self, G: Generator, layer: str, samples: int, seed: int, callback=None
    ) -> LayerStats:
        """The default statistics provider: computed, or read from the disk cache."""
        return layer_stats(
            G,
            layer,
            n=samples,
            seed=seed,
            progress=self.progress,
            cache=self.stats_cache,
            callback=callback,
        )

    def layer_stats(
        self,
        layer: str,
        samples: int = DEFAULT_STATS_SAMPLES,
        seed: int = DEFAULT_STATS_SEED,
        sampling: dict | None = None,
    ) -> LayerStats:
        """Statistics of ``layer`` of the current model from the session's provider, with
        ``sampling`` settings (None: as the model samples now); progress is reported."""
        report = (
            None
            if self._report is None
            else (lambda done, total: self._progress("statistics", done, total))
        )
        with self.model.using_sampling(sampling):
            return self.stats_provider(self.model, layer, samples, seed, report)

    def stats(self, spec: EditSpec) -> LayerStats:
        """The statistics ``spec`` asks for, of the current model's layer, with the spec's
        sampling settings."""
        return self.layer_stats(spec.layer, spec.stats_samples, spec.stats_seed, spec.sampling)

    def directions(self, spec: EditSpec) -> torch.Tensor:
        """The rule's directions ``D`` [rank, C_in] of ``spec``'s context on the current
        model (for heat maps of where the rule fires), without building the goal."""
        spec.validate_for(self.model)
        with self.model.using_sampling(spec.sampling):
            return rule_directions(self.model, spec, self.stats(spec))

    def prepare(self, spec: EditSpec) -> EditInputs:
        """Validate ``spec`` and build its tensors (goal, mask, directions) on the current
        model, its samples rendered with the spec's sampling settings."""
        spec.validate_for(self.model)
        with self.model.using_sampling(spec.sampling):
            stats = self.stats(spec)
            self._progress("goal")
            return build_inputs(self.model, spec, stats)

    def compute(
        self, spec: EditSpec, inputs: EditInputs | None = None, step: StepCallback | None = None
    ) -> Delta:
        """The delta for ``spec`` on the current model; the model is not changed.
        ``step(step, steps)`` is called at every step of an iterative solve (it may raise to
        stop it)."""
        inputs = inputs or self.prepare(spec)
        self._progress("solving")
        with self.model.using_sampling(spec.sampling):  # finetune-all renders samples
            delta = compute_delta(
                self.model,
                inputs,
                spec.solver,
                method_params(spec.solver, spec.solver_params),
                self._step(step),
            )
        delta.spec = spec.to_json()
        delta.strength = spec.strength
        with self.model.using_sampling(spec.sampling):
            delta.visible_collateral = visible_collateral(
                self.model, spec.layer, delta.unscaled_changes(), inputs.band, gate=delta.gate
            )
        return delta

    def compute_together(
        self, specs: list[EditSpec], step: StepCallback | None = None
    ) -> list[Delta]:
        """Deltas for edits of one layer solved jointly (see :mod:`rewrite.edit.joint`);
        the model is not changed. One spec is computed as by :meth:`compute`."""
        from .joint import solve_together

        for spec in specs:
            spec.validate_for(self.model)
        if len(specs) == 1:
            return [self.compute(specs[0], step=step)]
        settings = [spec.sampling or {} for spec in specs]
        if any(s != settings[0] for s in settings):
            raise EditError(
                "edits solved together must share their sampling settings "
                f"(found {', '.join(sorted({str(s or 'defaults') for s in settings}))}); "
                "solve them in sequence instead"
            )
        with self.model.using_sampling(specs[0].sampling):
            stats = self.stats(specs[0])
            self._progress("solving")
            return solve_together(self.model, specs, stats, self._step(step))

    def apply_together(self, specs: list[EditSpec]) -> list[Delta]:
        """Apply several edits: those on the same layer solved together, layers in the
        order they first appear (each layer's group on the model the previous groups
        left). All or nothing; returns the applied deltas in ``specs`` order per layer."""
        groups: dict[str, list[EditSpec]] = {}
        for spec in specs:
            groups.setdefault(spec.layer, []).append(spec)
        applied: list[Delta] = []
        with self._all_or_nothing():
            for group in groups.values():
                for d in self.compute_together(group):
                    self.apply(d)
                    applied.append(d)
        return applied

    def solve_together(self, layer: str, step: StepCallback | None = None) -> list[Delta]:
        """Solve the applied edits of ``layer`` again, jointly (see :mod:`.joint`), in place
        of their separate solves; each keeps its strength, edits of other layers stay as
        they are. All or nothing; returns the new deltas of ``layer``."""
        old = self.deltas
        idx = [i for i, d in enumerate(old) if d.layer == layer and d.spec is not None]
        if len(idx) < 2:
            raise EditError(
                f"{len(idx)} applied edit(s) of {layer} carry their spec; solving "
                "together needs at least two"
            )
        specs = [EditSpec.from_json(old[i].spec) for i in idx]
        first = idx[0]
        for _ in old[first:]:
            self.undo()
        with self._all_or_nothing(restore=old[first:]):
            new = self.compute_together(specs, step)
            rest = [d for j, d in enumerate(old) if j > first and j not in idx]
            for d in new + rest:
                self.apply(d)
        return new

    def apply(self, edit: EditSpec | Delta) -> Delta:
        """Compute (for a spec) and apply an edit; returns the applied delta.

        The weights change only after the delta is complete and checked.
        """
        delta = self.compute(edit) if isinstance(edit, EditSpec) else edit
        if delta.gate is not None:  # the layer's values wrapped, no weight changed
            if self._base_fingerprint is None:
                self._base_fingerprint = self.model.fingerprint()
            remove = apply_gated(self.model, delta)
            self._history.append((delta, {}, remove))
            return delta
        state: dict[str, torch.Tensor] = dict(self.model.named_parameters())
        state.update(dict(self.model.named_buffers()))
        why = self._low_rank_problem(delta, state)
        if why:
            raise EditError(f"the edit of {delta.layer} cannot be applied: {why}")
        changes = delta.changes()
        for name, change in changes.items():
            if name not in state:
                raise EditError(f"the edit changes {name!r}, which this model does not have")
            if change.shape != state[name].shape:
                raise EditError(
                    f"the edit's change to {name} has shape {tuple(change.shape)}, "
                    f"the model's is {tuple(state[name].shape)}"
                )
            if not torch.isfinite(change).all():
                raise EditError(f"the edit's change to {name} is not finite; nothing applied")
        before = {n: state[n].detach().clone() for n in changes}
        if self._base_fingerprint is None:  # the weights before the first edit
            self._base_fingerprint = self.model.fingerprint()
        with torch.no_grad():
            for name, change in changes.items():
                self._original.setdefault(name, before[name])
                state[name].copy_(before[name] + change.to(state[name].device, state[name].dtype))
        self._history.append((delta, before, None))
        return delta

    @staticmethod
    def _low_rank_problem(delta: Delta, state: dict[str, torch.Tensor]) -> str | None:
        """Why ``delta``'s low-rank factors do not fit this model's weight, or None (checked
        before ``Λ D`` is formed, so a damaged delta never reaches the product)."""
        lr = delta.low_rank
        if lr is None:
            return None
        if not isinstance(lr.param, str) or lr.param not in state:
            return f"it changes {lr.param!r}, which this model does not have"
        return low_rank_problem(lr.lam, lr.D, lr.in_axis, lr.out_axis, tuple(state[lr.param].shape))

    def undo(self) -> Delta | None:
        """Revert the last applied edit exactly; returns it (None if there is none)."""
        if not self._history:
            return None
        delta, before, remove = self._history.pop()
        if remove is not None:
            remove()
        self._restore(before)
        return delta

    @contextlib.contextmanager
    def without_last_edit(self) -> Iterator[Delta]:
        """Within the block the model is as before the last applied edit (undone exactly);
        afterwards that edit is applied again, to the very same weights, also after an
        error. Yields that edit. For goal previews, which show the goal on the model the
        edit was solved on next to what the edit made; the block must leave the applied
        edits as it found them. :class:`EditError` when no edit is applied."""
        delta = self.undo()
        if delta is None:
            raise EditError("no edit applied yet: there is no 'before the last edit'")
        try:
            yield delta
        finally:
            self.apply(delta)

    def set_strength(self, index: int, strength: float) -> Delta:
        """Set the strength of applied edit ``index`` (0 = oldest): the weights become
        ``W0 + Σ s_i·ΔW_i`` without solving again. Returns that delta."""

        strength = float(strength)
        if not (0 <= strength <= MAX_STRENGTH):
            raise EditError(
                f"strength must be a number from 0 to {MAX_STRENGTH:g}, got {strength!r}"
            )
        self._check_index(index)

        def change(deltas):
            deltas[index] = dataclasses.replace(deltas[index], strength=strength)
            if deltas[index].spec is not None:
                deltas[index].spec = {**deltas[index].spec, "strength": strength}

        return self._replay(index, change)[index]

    def remove(self, index: int) -> Delta:
        """Remove applied edit ``index`` (0 = oldest), keeping the later ones; returns it."""
        self._check_index(index)
        gone = self.deltas[index]
        self._replay(index, lambda deltas: deltas.pop(index))
        return gone

    def _check_index(self, index: int) -> None:
        if (
            isinstance(index, bool)
            or not isinstance(index, int)
            or not 0 <= index < len(self._history)
        ):
            raise EditError(
                f"no applied edit number {index!r}; there are "
                f"{len(self._history)} (numbered from 0)"
            )

    def _replay(self, index: int, change) -> list[Delta]:
        """Undo back to before edit ``index``, let ``change`` alter the list of all applied
        deltas (in place, from ``index`` on), and apply the altered ones again; all or
        nothing. Returns the applied deltas."""
        old = self.deltas
        new = list(old)
        change(new)
        for _ in old[index:]:
            self.undo()
        with self._all_or_nothing(restore=old[index:]):
            for d in new[index:]:
                self.apply(d)
        return self.deltas

    @contextlib.contextmanager
    def _all_or_nothing(self, restore: list[Delta] | None = None) -> Iterator[None]:
        """A block that applies edits, all or nothing: when it raises, the edits it applied
        are undone (newest first), then ``restore`` (the edits the caller undid just before
        the block, oldest first) is applied again, and the exception goes on. The model and
        the list of applied edits are then as they were before the caller began."""
        mark = len(self._history)
        try:
            yield
        except Exception:
            while len(self._history) > mark:
                self.undo()
            for d in restore or ():
                self.apply(d)
            raise

    def reset(self) -> None:
        """Revert every edit: the model's weights are the original ones again, bit for bit."""
        for _, _, remove in reversed(self._history):
            if remove is not None:
                remove()
        self._restore(self._original)
        self._history.clear()
        self._original.clear()

    def _restore(self, tensors: dict[str, torch.Tensor]) -> None:
        state: dict[str, torch.Tensor] = dict(self.model.named_parameters())
        state.update(dict(self.model.named_buffers()))
        with torch.no_grad():
            for name, t in tensors.items():
                state[name].copy_(t)

    # -- export ------------------------------------------------------------
    def export_checkpoint(self, path: str | Path) -> Path:
        """Save the edited model in its family's checkpoint format (atomically). EditError
        when a gated edit is applied (the format holds weights only; export deltas instead)."""
        self.model.save(path)
        return Path(path)

    def export_deltas(self, path: str | Path) -> Path:
        """Save the applied edits as a delta file that re-applies to the original model."""
        if not self._history:
            raise EditError("no edits applied yet; nothing to export")
        return save_deltas(self.deltas, path, self.base_fingerprint)

    def apply_delta_file(self, path: str | Path, check_base: bool = True) -> list[Delta]:
        """Apply every edit of a delta file in order; all or nothing.

        With ``check_base`` the current model must be the one the deltas were made for.
        """
        deltas, base = load_deltas(path)
        current = self.model.fingerprint()
        if check_base and base and base != current:
            raise DeltaFileError(
                f"{path} was made for a model with fingerprint {base}, but this model's is "
                f"{current}; apply it to the model it was computed on"
            )
        state: dict[str, torch.Tensor] = dict(self.model.named_parameters())
        state.update(dict(self.model.named_buffers()))
        for i, d in enumerate(deltas):
            why = (
                self._low_rank_problem(d, state) if d.gate is None else gated_problem(self.model, d)
            )
            if why:
                raise DeltaFileError(
                    f"{path}: edit {i} ({d.layer}) does not fit this model: {why}; nothing applied"
                )
        with self._all_or_nothing():
            for d in deltas:
                self.apply(d)
        return deltas
