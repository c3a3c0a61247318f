"""Commands that change a model or a spec: ``edit``, ``apply``, ``not-here`` and
``import-edit``."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (
    DEFAULT_MODEL,
    LazyChoice,
    check_outputs,
    device,
    load_for_spec,
    spec_model_options,
    spec_rules,
    weights_options,
)

_MAX_STRENGTH = spec_rules()["max_strength"]


@click.command()
@click.argument(
    "spec_paths", metavar="SPEC.json...", nargs=-1, required=True, type=click.Path(dir_okay=False)
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Edited checkpoint to write (the family's own format). Give --out, --delta or both.",
)
@click.option(
    "--delta",
    "delta_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the edit(s) as a small delta file (.safetensors); the only output a gated "
    "edit has.",
)
@click.option(
    "--solver",
    type=LazyChoice("rewrite.edit.methods:METHODS", "SOLVER"),
    default=None,
    help="Override the spec's solver: "
    + "; ".join(f"{n}: {s}" for n, s in spec_rules()["solvers"].items())
    + ".",
)
@click.option(
    "--strength",
    type=click.FloatRange(0, _MAX_STRENGTH),
    default=None,
    help="Override the spec's strength s: the layer gets W0 + s·ΔW "
    "(0: unedited, 1: the solved edit).",
)
@click.option(
    "--sequential",
    is_flag=True,
    help="Apply several specs one after another instead of solving those on the "
    "same layer together.",
)
@spec_model_options
def edit(
    spec_paths, out, delta_path, solver, strength, sequential, model, weights, arch, device_name
):
    """Apply the edit(s) in SPEC.json... and export the edited model.

    Several specs on the same layer are solved together in closed form, so that each
    keeps its effect (applied one after another, a later edit can spoil an earlier one);
    specs on different layers are applied in turn.

    \b
    Examples:
      rewrite edit examples/add-sunglasses.json --out edited.pt --delta edit.safetensors
      rewrite edit my-edit.json --solver adam --out edited.pt
      rewrite edit add-beard.json close-mouth.json --out both.pt
    """
    from ..edit import EditSpec, Rewriter
    from ..edit.calibrate import kept_share_note
    from ..edit.methods import METHODS
    from ..metrics.before_after import collateral_warning, solve_line, visible_at_strength
    from ..models import load_model

    if not out and not delta_path:
        raise click.UsageError("give --out (an edited checkpoint), --delta (a delta file) or both")
    inputs = {f"SPEC.json ({i + 1})": p for i, p in enumerate(spec_paths)}
    check_outputs(
        {"--out": out, "--delta": delta_path}, model=model, weights=weights, inputs=inputs
    )
    specs = [EditSpec.load(p) for p in spec_paths]
    G = load_model(model or specs[0].model, weights=weights, arch=arch, device=device(device_name))
    check_outputs({"--out": out, "--delta": delta_path}, model=specs[0].model)
    for spec in specs:
        if solver:
            spec.solver, spec.solver_params = solver, {}
        if strength is not None:
            spec.strength = strength
        spec.validate_for(G)
        if out and not METHODS[spec.solver].weights_only:
            raise click.UsageError(
                f"{spec.name or 'the spec'} uses the {spec.solver} method, whose edit no "
                f"{G.family} checkpoint can hold (it is not a weight change); drop --out and "
                "write a delta file with --delta FILE.safetensors"
            )
    session = Rewriter(G, progress=True)
    for spec in specs:
        how = (
            f" (rank {spec.rank}, {spec.direction} direction)"
            if METHODS[spec.solver].constrained
            else ""
        )
        click.echo(f"editing {spec.layer} of {spec.model} with {spec.solver}{how} ...", err=True)
    if len(specs) == 1 or sequential:
        deltas = [session.apply(spec) for spec in specs]
    else:
        deltas = session.apply_together(specs)
    for d in deltas:
        name = (d.spec or {}).get("name") or d.layer
        click.echo(
            f"{name}: {solve_line(d)}; visible change outside the rule's region "
            f"{visible_at_strength(d):.4f}, strength {d.strength:g} ({d.seconds:.2f} s)"
        )
        if note := kept_share_note(d):
            click.echo(f"  {note}")
        for line in collateral_warning(d):
            click.echo(line, err=True)
    if out:
        session.export_checkpoint(out)
        click.echo(f"wrote {out}")
    if delta_path:
        session.export_deltas(delta_path)
        click.echo(f"wrote {delta_path}")


@click.command("apply")
@click.argument("model")
@click.argument("delta_path", metavar="DELTA", type=click.Path(dir_okay=False))
@click.option(
    "--out", type=click.Path(dir_okay=False), required=True, help="Edited checkpoint to write."
)
@click.option(
    "--strength",
    "strengths",
    type=click.FloatRange(0, _MAX_STRENGTH),
    multiple=True,
    help="Strength s of the edits (W0 + s·ΔW, no new solve): once for all edits, "
    "or once per edit in the file's order. Default: as saved.",
)
@click.option(
    "--delta-out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the deltas with these strengths.",
)
@weights_options
def apply_cmd(model, delta_path, out, strengths, delta_out, weights, arch, device_name):
    """Re-apply the edits of a delta file to MODEL and export the result.

    \b
    Examples:
      rewrite apply dcgan-digiface64 edit.safetensors --out edited.pt
      rewrite apply dcgan-digiface64 edit.safetensors --strength 0.5 --out gentler.pt
    """
    from ..edit import Rewriter
    from ..models import load_model

    check_outputs(
        {"--out": out, "--delta-out": delta_out},
        model=model,
        weights=weights,
        inputs={"DELTA": delta_path},
    )
    G = load_model(model, weights=weights, arch=arch, device=device(device_name))
    session = Rewriter(G)
    deltas = session.apply_delta_file(delta_path)
    if strengths:
        if len(strengths) not in (1, len(deltas)):
            raise click.BadParameter(
                f"give one strength, or one per edit ({len(deltas)} in "
                f"{delta_path}); got {len(strengths)}",
                param_hint="--strength",
            )
        for i in range(len(deltas)):
            session.set_strength(i, strengths[0] if len(strengths) == 1 else strengths[i])
    session.export_checkpoint(out)
    shown = ", ".join(f"{d.strength:g}" for d in session.deltas)
    click.echo(f"applied {len(deltas)} edit(s) from {delta_path} at strength {shown}; wrote {out}")
    if delta_out:
        session.export_deltas(delta_out)
        click.echo(f"wrote {delta_out}")


@click.command("not-here")
@click.argument("spec_path", metavar="SPEC.json", type=click.Path(dir_okay=False))
@click.argument("sample", type=click.IntRange(0, spec_rules()["max_sample"]))
@click.argument("rect", nargs=4, type=float, metavar="X0 Y0 X1 Y1")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    required=True,
    help="The spec to write, with the region added (never the input itself).",
)
@spec_model_options
def not_here(spec_path, sample, rect, out, model, weights, arch, device_name):
    """Mark a region where SPEC.json's rule must not act ("not here").

    The rectangle X0 Y0 X1 Y1 (image pixels, X1 and Y1 exclusive) of SAMPLE joins the
    solve with its current values as the goal, so the edit keeps it unchanged as far as
    the request allows (the spec's preserve_weight says how much it counts).
    Find the places to mark with `rewrite match SPEC.json` (where the rule fires).

    \b
    Example:
      rewrite not-here add-cap.json 112 0 24 64 64 --out add-cap-fixed.json
    """
    check_outputs({"--out": out}, spec_path=spec_path)
    spec, G = load_for_spec(spec_path, model, weights, arch, device_name)
    new = spec.with_not_here(sample, rect)
    new.validate_for(G)
    new.save(out)
    click.echo(f'wrote {out}: {len(new.preserve)} "not here" region(s)')


@click.command("import-edit")
@click.argument("legacy_path", metavar="OLD.json", type=click.Path(dir_okay=False))
@click.option("--layer", required=True, help="Layer to edit (the old format does not store it).")
@click.option("--rank", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--model", default=DEFAULT_MODEL, show_default=True)
@weights_options(device=False)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Spec file to write.")
def import_edit(legacy_path, layer, rank, model, weights, arch, out):
    """Convert an edit saved by the paper's original tool into a spec file.

    \b
    Example:
      rewrite import-edit old-edit.json --layer main.6 --rank 1 --out edit.json
    """
    from ..edit.legacy import import_legacy
    from ..edit.spec import loads, wide_integers
    from ..models import load_model

    check_outputs({"--out": out}, model=model, weights=weights, inputs={"OLD.json": legacy_path})
    try:
        obj = loads(Path(legacy_path).read_text())
    except (OSError, ValueError, RecursionError) as e:  # JSON and Unicode errors included
        raise click.BadParameter(f"cannot read {legacy_path}: {e}", param_hint="OLD.json") from None
    wide = wide_integers(obj)
    if wide:
        raise click.BadParameter(f"{legacy_path}: " + "; ".join(wide), param_hint="OLD.json")
    G = load_model(model, weights=weights, arch=arch, device="cpu")
    spec = import_legacy(obj, model, layer, G.resolution, rank=rank, name=Path(legacy_path).stem)
    spec.validate_for(G)
    spec.save(out)
    click.echo(f"wrote {out}: {spec.kind} edit with {len(spec.context)} context region(s)")
