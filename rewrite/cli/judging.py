"""Commands that show or measure an edit: ``goal``, ``compare``, ``eval``,
``compare-methods``, ``suggest-layer`` and ``match``."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (
    PNG,
    LibraryDefault,
    check_outputs,
    device,
    load_for_spec,
    safe_name,
    sampling_options,
    seeds_callback,
    spec_model_options,
    weights_options,
)


@click.command("goal")
@click.argument("spec_path", metavar="SPEC.json", type=click.Path(dir_okay=False))
@click.option("--out", type=PNG, default="goal.png", show_default=True)
@click.option(
    "--solve/--no-solve",
    default=True,
    show_default=True,
    help="Also solve the edit and show the edited paste target.",
)
@spec_model_options
def goal_cmd(spec_path, out, solve, model, weights, arch, device_name):
    """Show what SPEC.json asks of its layer before (and after) solving.

    \b
    Tiles: the copy source, the paste target, the pasted request, the goal values
    rendered through the rest of the network, and (with --solve) the edited paste
    target. If the rendered goal does not show the object, no edit of this layer can:
    pick a finer layer or align the boxes to the layer's cells.
    \b
    Prints, in this order: whether the layer's keys separate the rule's place, the solve
    (method, layer loss before -> after, goal reproduction on your example, predicted
    collateral), how well the goal shows the request, warnings, then the picture written.
    \b
    Example:
      rewrite goal examples/add-sunglasses.json --out goal.png
    """
    from ..edit import Rewriter
    from ..metrics.before_after import apply_judged, goal_preview, goal_report
    from ..metrics.feasibility import feasibility
    from ..utils.images import save_png

    check_outputs({"--out": out}, model=model, weights=weights, spec_path=spec_path)
    spec, G = load_for_spec(spec_path, model, weights, arch, device_name)
    session = Rewriter(G, progress=True)
    inputs = session.prepare(spec)
    click.echo(feasibility(G, spec, session.stats(spec)).line())
    delta, reproduction = None, float("nan")
    if solve:
        delta, reproduction = apply_judged(session, spec, inputs)
    preview = goal_preview(session, spec, solved=solve, inputs=inputs)
    for line in goal_report(spec, preview.fidelity, delta, reproduction):
        click.echo(line)
    save_png(preview.panel, out)
    click.echo(f"wrote {out}")


@click.command()
@click.argument("first", metavar="[MODEL] SPEC.json")
@click.argument("second", required=False, metavar=" ", type=click.Path(dir_okay=False))
@click.option(
    "--seeds",
    default="100-115",
    show_default=True,
    callback=seeds_callback,
    help="Held-out samples to show.",
)
@click.option(
    "--matched",
    type=click.IntRange(min=1),
    default=None,
    help="Show only the N samples of --seeds where the rule responds most (as `rewrite "
    "match` ranks them), best first: where the edit is meant to act.",
)
@click.option("--out", type=PNG, default="compare.png", show_default=True)
@click.option(
    "--cols",
    type=click.IntRange(min=1),
    default=None,
    help="Samples per row pair (default: up to 16).",
)
@click.option("--scale", type=click.IntRange(1, 16), default=2, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option(
    "--model",
    "model_option",
    default=None,
    help="Model to edit instead of the one the spec names (as MODEL does).",
)
@click.option(
    "--delta",
    "delta_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Show the edits of this delta file (from `rewrite edit SPEC.json --delta`) instead "
    "of solving SPEC.json again.",
)
@weights_options
@sampling_options
def compare(
    first,
    second,
    seeds,
    matched,
    out,
    cols,
    scale,
    batch_size,
    model_option,
    delta_path,
    weights,
    arch,
    device_name,
    truncation,
    noise,
    class_index,
):
    """Render SEEDS before (upper row) and after (lower row) the edit in SPEC.json.

    The model is the spec's unless MODEL (or --model) names another. The samples are
    rendered with the spec's sampling settings (truncation, class), each unless
    --truncation or --class gives one. Prints the solve (method, layer loss before ->
    after, goal reproduction on your example, predicted collateral) before the picture.

    \b
    Examples:
      rewrite compare examples/add-sunglasses.json --seeds 100-115 --out cmp.png
      rewrite compare examples/add-sunglasses.json --seeds 100-355 --matched 16
      rewrite compare my_dcgan.pt examples/add-sunglasses.json --out cmp-mine.png
      rewrite compare examples/demo-glasses.json --delta outputs/glasses.safetensors
    """
    from ..edit import Rewriter
    from ..edit.calibrate import firing_samples
    from ..metrics.before_after import (
        before_after_from_file,
        before_after_grid,
        before_after_solved,
        solve_line,
    )
    from ..utils.images import save_png

    model, spec_path = (first, second) if second is not None else (None, first)
    if model is not None and model_option is not None and model != model_option:
        raise click.UsageError(
            f"MODEL {model!r} and --model {model_option!r} disagree; give one of them"
        )
    model = model or model_option
    if matched is not None and matched > len(seeds):
        raise click.UsageError(
            f"--matched {matched} asks for more samples than the {len(seeds)} of --seeds; "
            "give more seeds or a smaller --matched"
        )
    check_outputs(
        {"--out": out},
        model=model,
        weights=weights,
        spec_path=spec_path,
        inputs={"--delta": delta_path},
    )
    spec, G = load_for_spec(
        spec_path,
        model,
        weights,
        arch,
        device_name,
        truncation=truncation,
        noise=noise,
        class_index=class_index,
    )
    if delta_path:
        from ..edit.delta import load_deltas

        layers = [d.layer for d in load_deltas(delta_path)[0]]
        if spec.layer not in layers:
            raise click.BadParameter(
                f"{delta_path} edits {', '.join(layers)}, but {spec_path} asks for "
                f"{spec.layer}; give the delta file made from this spec",
                param_hint="--delta",
            )
    shown = "samples"
    if matched is not None:
        from ..metrics.advisor import match

        seeds, _, _ = match(G, spec, seeds, top=matched)
        shown = "best-matched samples"
    inputs = Rewriter(G, progress=False).prepare(spec)  # once: the firing line and the solve
    fires = firing_samples(G, inputs, seeds)
    if delta_path:
        before, after, delta, reproduction = before_after_from_file(
            G, delta_path, seeds, inputs, batch_size=batch_size
        )
    else:
        before, after, delta, reproduction = before_after_solved(
            G, spec, seeds, batch_size=batch_size, inputs=inputs
        )
    click.echo(solve_line(delta, reproduction, loaded_from=delta_path))
    listed = f" ({', '.join(map(str, fires))})" if 0 < len(fires) <= 32 else ""
    click.echo(
        f"the rule fires at its place on {len(fires)} of these {len(seeds)} {shown}{listed}; "
        "the edit is meant to act there and leave the others as they were"
    )
    save_png(before_after_grid(before, after, seeds, cols=cols, scale=scale), out)
    click.echo(f"wrote {out}: {len(seeds)} {shown} before and after {spec.name or spec_path}")


#: The evaluation's firing quantile, shown in help without importing the library.
_QUANTILE = LibraryDefault("rewrite.metrics.evaluate:DEFAULT_QUANTILE", "0.99")


def _eval_options(f):
    """The options of ``eval`` and ``compare-methods``."""
    f = click.option(
        "--lpips-weights",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="torchvision's vgg16-397923af.pth: report LPIPS outside the firing "
        "regions and on silent samples [env: REWRITE_LPIPS_WEIGHTS].",
    )(f)
    f = click.option(
        "--inception-weights",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth: report FID and "
        "KID between unedited and edited samples "
        "[env: REWRITE_INCEPTION_WEIGHTS].",
    )(f)
    f = click.option(
        "--quantile",
        type=click.FloatRange(0.5, 0.9999),
        default=_QUANTILE,
        show_default=True,
        help="Response quantile above which the rule fires.",
    )(f)
    f = click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)(f)
    f = click.option("--no-cache", is_flag=True, help="Render every sample again.")(f)
    f = click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Folder for metrics, pictures and report.html [default: eval-<spec name>].",
    )(f)
    f = click.option(
        "--seeds",
        default="1000-1511",
        show_default=True,
        callback=seeds_callback,
        help="Held-out samples.",
    )(f)
    return f


def _report(spec_path, opts, what: str, measure) -> None:
    """The body of ``eval`` and ``compare-methods``: load the spec and its model, refuse a
    bad output folder, ``measure(G, spec, dist) -> (results, written)``, add the standard
    metrics (FID/KID, LPIPS) when their weights are given, write the report and print
    its table, then ``written(out)`` (extra files and lines, main rank), then the
    standard metrics' lines."""
    from ..metrics.evaluate import add_standard_metrics, standard_table
    from ..metrics.report import markdown, rows, write_outputs
    from ..metrics.standard import load_standard_nets
    from ..utils.distributed import context

    d = context()
    dev = d.device(device(opts["device_name"]))
    spec, G = load_for_spec(spec_path, opts["model"], opts["weights"], opts["arch"], dev)
    out = Path(opts["out_dir"] or f"eval-{safe_name(spec.name or Path(spec_path).stem)}")
    check_outputs(
        {"--out": out},
        model=opts["model"],
        weights=opts["weights"],
        spec_path=spec_path,
        folders=("--out",),
    )
    results, written = measure(G, spec, d)
    lines: list[str] = []
    if d.is_main:
        inet, iid, lnet, lines = load_standard_nets(
            opts["inception_weights"], opts["lpips_weights"], dev
        )
        if inet is not None or lnet is not None:
            add_standard_metrics(
                results,
                inet,
                lnet,
                iid,
                batch_size=opts["batch_size"],
                progress=True,
                cache=not opts["no_cache"],
            )
            lines = [standard_table(results), *lines]
        paths = write_outputs(results, out, f"{what}: {spec.name or Path(spec_path).stem}")
        click.echo(markdown(rows(results)))
        click.echo(
            f"wrote {out}/: metrics.csv, metrics.md, metrics.json"
            f"{', tradeoff.png' if 'plot' in paths else ''}, figures, report.html"
        )
        if written is not None:
            written(out)
    for line in lines:
        click.echo(line)


@click.command("eval")
@click.argument("spec_path", metavar="SPEC.json", type=click.Path(dir_okay=False))
@_eval_options
@spec_model_options
def eval_cmd(spec_path, seeds, quantile, **opts):
    """Measure the edit in SPEC.json on held-out samples and write a report.

    \b
    The rule fires where the context direction's response to the layer's keys
    exceeds the --quantile of all responses on the unedited samples. Efficacy is
    measured inside those regions, locality outside them and on samples where
    the rule never fires.
    \b
    Examples:
      rewrite eval examples/add-sunglasses.json --seeds 1000-1511 --out eval-sunglasses
      torchrun --nproc-per-node 2 -m rewrite eval examples/add-sunglasses.json --seeds 0-9999
    """
    from ..metrics.evaluate import curve_table, evaluate_curve
    from ..utils.fileio import atomic_path

    def measure(G, spec, d):
        curve = evaluate_curve(
            G,
            spec,
            seeds,
            quantile=quantile,
            batch_size=opts["batch_size"],
            progress=d.is_main,
            cache=not opts["no_cache"],
            dist=d,
        )
        result = next(e for e in curve if abs(e.delta.strength - spec.strength) < 1e-9)

        def written(out):
            text = (
                "Where this edit sits on its strength curve (the same solve re-weighted; "
                "visible collateral: image change outside the rule's band on fixed "
                "samples, first-order in the strength):\n\n" + curve_table(curve, spec.strength)
            )
            with atomic_path(Path(out) / "curve.md") as tmp:
                tmp.write_text(text + "\n")
            click.echo(text)
            click.echo(f"wrote {out}/curve.md")

        return [result], written

    _report(spec_path, opts, "evaluation", measure)


@click.command("compare-methods")
@click.argument("spec_path", metavar="SPEC.json", type=click.Path(dir_okay=False))
@_eval_options
@spec_model_options
def compare_methods_cmd(spec_path, seeds, quantile, **opts):
    """Solve SPEC.json with the paper's methods and compare them on held-out samples.

    \b
    Methods: the spec as written, the default solver at collateral budgets 0.003, 0.03, 0.1,
    the previous default (closed-form+refine, rank 1), the paper's schedule (adam,
    rank 1), finetune-layer, and finetune-all (copy-paste) or dissect-erase (erase).
    All are measured on the same firing regions (those of the spec's own directions).
    \b
    Example:
      rewrite compare-methods examples/add-sunglasses.json --seeds 1000-1255 --out cmp-sunglasses
    """
    from ..metrics.evaluate import compare_methods, method_variants

    def measure(G, spec, d):
        return compare_methods(
            G,
            spec,
            seeds,
            method_variants(spec),
            quantile=quantile,
            batch_size=opts["batch_size"],
            progress=d.is_main,
            cache=not opts["no_cache"],
            dist=d,
        ), None

    _report(spec_path, opts, "method comparison", measure)


@click.command("suggest-layer")
@click.argument("spec_path", metavar="SPEC.json", type=click.Path(dir_okay=False))
@click.option(
    "--stats-samples",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Samples for each layer's statistics.",
)
@spec_model_options
def suggest_layer(spec_path, stats_samples, model, weights, arch, device_name):
    """Rank the editable layers for the edit in SPEC.json by a trial edit at each.

    \b
    At every layer the spec is solved as written and judged on held-out samples
    5000-5063: goal reproduction on your own example (the edited image's distance
    to the request, as a fraction of the unedited distance; lower is better) and
    the silent change (whole-image change where the rule does not fire). Before
    the trial, "separation" says whether the layer's keys tell the rule's place from
    the rest at all (held-out AUC, 0.5 = chance; see rewrite.metrics.feasibility):
    layers that do not separate rank below those that do. Then local layers
    (silent change <= 0.015) come first, best reproduction first.
    \b
    Example:
      rewrite suggest-layer examples/add-sunglasses.json
    """
    import numpy as np

    from ..metrics.advisor import advice_summary, suggest_layers

    spec, G = load_for_spec(spec_path, model, weights, arch, device_name)
    advice = suggest_layers(G, spec, stats_samples=stats_samples, progress=True)
    click.echo(
        f"{'layer':<10} {'goal repro':>10} {'silent':>8} {'efficacy':>9} "
        f"{'key grid':>9} {'goal cells':>11}  {'separation':<22}"
    )

    def fmt(v, spec_):
        return "–" if np.isnan(v) else format(v, spec_)

    for a in advice:
        grid = f"{a.key_grid}x{a.key_grid}"
        f = a.feasibility
        apart = "–" if f is None else f"{fmt(f.auc, '.2f')} {f.verdict}"
        click.echo(
            f"{a.layer:<10} {fmt(a.goal_reproduction, '.3f'):>10} "
            f"{fmt(a.silent_change, '.4f'):>8} {fmt(a.efficacy, '.2f'):>9} {grid:>9} "
            f"{a.goal_cells:>11}  {apart:<22}"
        )
        click.echo(f"{'':<10} {a.note}")
    for line in advice_summary(advice, spec.layer):
        click.echo(line)


@click.command("match")
@click.argument("spec_path", metavar="SPEC.json", type=click.Path(dir_okay=False))
@click.option("--seeds", default="0-999", show_default=True, callback=seeds_callback)
@click.option("--top", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--out", type=PNG, default="match.png", show_default=True)
@spec_model_options
def match_cmd(spec_path, seeds, top, out, model, weights, arch, device_name):
    """Show the samples where the rule of SPEC.json would fire most, with heat overlays.

    \b
    Example:
      rewrite match examples/add-sunglasses.json --seeds 0-999 --top 16 --out match.png
    """
    from ..metrics.advisor import match
    from ..metrics.firing import heat
    from ..sampling.generate import generate
    from ..utils.images import heat_overlay, make_grid, save_png

    check_outputs({"--out": out}, model=model, weights=weights, spec_path=spec_path)
    spec, G = load_for_spec(spec_path, model, weights, arch, device_name)
    samples, scores, resp = match(G, spec, seeds, top=top, progress=True)
    images = heat_overlay(generate(G, samples), heat(resp).numpy())
    labels = [f"#{s} {v:.2f}" for s, v in zip(samples, scores, strict=True)]
    grid = make_grid(images, labels=labels, scale=2)
    save_png(grid, out)
    click.echo(
        f"wrote {out}: the {len(samples)} of {len(seeds)} samples where the rule fires "
        f"most (score: strongest response)"
    )
