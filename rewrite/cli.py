"""The ``rewrite`` command line: thin commands over the library.

Examples::

    rewrite models
    rewrite layers dcgan-digiface64
    rewrite sample dcgan-digiface64 --seeds 0-31 --out grid.png
    rewrite stats dcgan-digiface64 --layer main.6 -n 10000
    rewrite edit examples/add-sunglasses.json --out edited.pt --delta edit.safetensors
    rewrite apply dcgan-digiface64 edit.safetensors --out edited.pt
    rewrite compare dcgan-digiface64 examples/add-sunglasses.json --seeds 100-115 --out cmp.png
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import click
import numpy as np
import torch

from .edit import METHODS, EditSpec, Rewriter
from .edit.layer_stats import (
    DEFAULT_STATS_SAMPLES,
    DEFAULT_STATS_SEED,
    describe,
    layer_stats,
    stats_cache_path,
)
from .edit.legacy import import_legacy
from .edit.spec import MAX_STATS_SAMPLES, MAX_STRENGTH, wide_integers
from .edit.spec import loads as spec_json_loads
from .metrics.advisor import advice_summary, match, suggest_layers
from .metrics.before_after import (
    before_after,
    before_after_grid,
    goal_fidelity,
    goal_notes,
    collateral_warning,
    goal_panel,
    visible_at_strength,
)
from .metrics.evaluate import (
    DEFAULT_QUANTILE,
    compare_methods,
    curve_table,
    evaluate,
    evaluate_curve,
    method_variants,
)
from .metrics.feasibility import feasibility
from .metrics.firing import heat
from .metrics.report import markdown, rows, write_outputs
from .models import DEFAULT_MODEL, FAMILIES, ZOO, cached_path, load_model
from .models.latents import MAX_SAMPLES
from .sampling.bulk import bulk_sample
from .sampling.generate import generate
from .sampling.seeds import parse_seeds
from .utils.cache import cache_dir, layer_key
from .utils.distributed import context
from .utils.errors import RewriteError
from .utils.fileio import atomic_path, check_outputs
from .utils.images import heat_overlay, make_grid, save_png


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


class _Group(click.Group):
    """Prints user errors (``RewriteError``) as one line and exits 2, without a traceback."""

    def invoke(self, ctx):
        # SIGTERM ends the command like Ctrl-C does, so half-written temporary files are
        # removed on the way out (atomic_path cleans up on any exit).
        # Not under torchrun: a rank blocked in a collective cannot act on the signal, and
        # torchrun would wait out its grace period before killing it.
        if (threading.current_thread() is threading.main_thread()
                and int(os.environ.get("WORLD_SIZE", "1")) == 1):
            signal.signal(signal.SIGTERM, _terminated)
        rank = f"[rank {os.environ['RANK']}] " if int(os.environ.get("WORLD_SIZE", "1")) > 1 \
            else ""
        try:
            return super().invoke(ctx)
        except RewriteError as e:
            click.echo(f"{rank}error: {e}", err=True)
            sys.exit(2)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as e:                          # noqa: BLE001 - one line, not a traceback
            if ctx.params.get("debug") or os.environ.get("REWRITE_DEBUG") == "1":
                raise
            command = " ".join(["rewrite", *sys.argv[1:]])[:300]
            message = str(e).splitlines()[0][:300] if str(e) else ""
            click.echo(f"{rank}error: unexpected {type(e).__name__} in `{command}`"
                       + (f": {message}" if message else "")
                       + ". No half-written file is left. Run it again with --debug (rewrite --debug "
                       "COMMAND ...) for the traceback, and please report it.", err=True)
            sys.exit(1)


def _seeds(ctx, param, value):
    try:
        return parse_seeds(value)
    except RewriteError as e:
        raise click.BadParameter(str(e)) from None


def _finite(ctx, param, value):
    """Reject NaN, which passes click's float ranges."""
    if value is not None and value != value:
        raise click.BadParameter("must be a number, got nan")
    return value


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise click.BadParameter(f"unknown device {name!r}; use auto, cpu or cuda[:N]",
                                 param_hint="--device") from None
    if dev.type not in ("cpu", "cuda"):
        raise click.BadParameter(f"unsupported device {name!r}; use auto, cpu or cuda[:N]",
                                 param_hint="--device")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available on this machine; use --device cpu",
                                 param_hint="--device")
    return dev


def weights_options(f=None, device: bool = True):
    """``--weights``, ``--arch`` and (unless ``device=False``) ``--device``: the options of
    every command that loads a model. Usable as ``@weights_options`` or
    ``@weights_options(device=False)``."""
    def wrap(f):
        if device:
            f = click.option("--device", default="auto", show_default=True,
                             help="auto, cpu, cuda or cuda:N.")(f)
        f = click.option("--arch", type=click.Choice(sorted(FAMILIES)), default=None,
                         help="Generator family of the file (default: detected from the "
                              "file's content).")(f)
        f = click.option("--weights", type=click.Path(dir_okay=False), default=None,
                         help="Local checkpoint (or the zoo entry's wheel) to use instead of "
                              "downloading; for offline machines. Its family is detected from "
                              "its content (--arch overrides), with or without a MODEL.")(f)
        return f
    return wrap(f) if f is not None else wrap


def model_options(f):
    """A MODEL argument (default: the built-in model) and the weights options."""
    f = weights_options(f)
    f = click.argument("model", default=DEFAULT_MODEL, required=False)(f)
    return f


def _model_label(model: str, weights) -> str:
    """What a command calls the model it loaded: MODEL, or the --weights file when MODEL was
    left at its default (``rewrite sample --weights ffhq.pkl`` samples ffhq.pkl)."""
    ctx = click.get_current_context(silent=True)
    if weights and ctx is not None \
            and ctx.get_parameter_source("model") is click.core.ParameterSource.DEFAULT:
        return str(weights)
    return model


def sampling_options(f):
    """StyleGAN2's sampling options."""
    f = click.option("--noise", type=click.Choice(["const", "random"]), default="const",
                     show_default=True, help="StyleGAN2: stored noise buffers, or fresh noise.")(f)
    f = click.option("--truncation", type=click.FloatRange(0, 1), default=1.0, show_default=True,
                     callback=_finite,
                     help="StyleGAN2: pull w toward latent_avg (1 = no truncation).")(f)
    f = click.option("--class", "class_index", type=click.IntRange(min=0), default=None,
                     help="Class-conditional models (NVIDIA pickles with c_dim > 0): the class "
                          "to sample (default 0).")(f)
    return f


def _set_sampling(G, truncation: float, noise: str, class_index: int | None = None) -> None:
    try:
        G.set_sampling(truncation, noise)
    except RewriteError as e:
        raise click.BadParameter(str(e), param_hint="--truncation/--noise") from None
    if class_index is None:
        return
    classes = int(getattr(getattr(G, "config", None), "c_dim", 0) or 0)
    if not classes:
        raise click.BadParameter(f"this {G.family} model is not class-conditional; leave "
                                 "--class out", param_hint="--class")
    if class_index >= classes:
        raise click.BadParameter(f"class {class_index} is out of range: this model has "
                                 f"{classes} classes (0..{classes - 1})", param_hint="--class")
    G.class_index = class_index


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True,
              help="Show the Python traceback of an unexpected error (also REWRITE_DEBUG=1).")
def main(debug):
    """Rewrite the rules of pretrained image generators (Bau et al., ECCV 2020).

    MODEL is a zoo name (see `rewrite models`) or a checkpoint file; it defaults
    to dcgan-digiface64.
    """


@main.command()
def models():
    """List the built-in models and where they are cached.

    \b
    Example:
      rewrite models
    """
    click.echo(f"cache: {cache_dir()}  (set REWRITE_CACHE to move it)\n")
    for entry in ZOO.values():
        path = cached_path(entry)
        state = f"cached at {path}" if path.is_file() else "not fetched yet (downloads on first use)"
        click.echo(f"{entry.name}  [{entry.family}]  {entry.description}")
        click.echo(f"    {state}")
        click.echo(f"    source: {entry.credit}")


@main.command()
@model_options
def layers(model, weights, arch, device):
    """List the editable layers of MODEL.

    \b
    Examples:
      rewrite layers dcgan-digiface64
      rewrite layers --weights network-snapshot.pkl      # family detected from the file
    """
    G = load_model(model, weights=weights, arch=arch, device=_device(device))
    header = f"{'layer':<10} {'kind':<19} {'keys from':<15} {'C_in':>5} {'C_out':>5} " \
             f"{'keys':>7} {'values':>7} {'kernel':>6}"
    click.echo(header)
    click.echo("-" * len(header))
    for L in G.layers():
        click.echo(f"{L.name:<10} {L.kind:<19} {L.key_source:<15} {L.in_channels:>5} "
                   f"{L.out_channels:>5} {f'{L.key_resolution}x{L.key_resolution}':>7} "
                   f"{f'{L.value_resolution}x{L.value_resolution}':>7} {L.kernel_size:>6}")


@main.command()
@model_options
@click.option("--seeds", default="0-31", show_default=True, callback=_seeds,
              help="Sample indices: ranges and lists, e.g. 0-31 or 3,7,100-103.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default="grid.png",
              show_default=True, help="PNG grid to write.")
@click.option("--out-dir", type=click.Path(file_okay=False), default=None,
              help="Bulk mode: one PNG per sample in this folder (resumes a stopped run).")
@click.option("--npz", type=click.Path(dir_okay=False), default=None,
              help="Bulk mode: all samples in one .npz (images, seeds; resumes a stopped run).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Samples per forward pass.")
@click.option("--cols", type=click.IntRange(min=1), default=None,
              help="Images per grid row (default: about square).")
@click.option("--scale", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Upscale each image by this factor in the grid.")
@click.option("--labels/--no-labels", default=True, show_default=True,
              help="Print the sample index above each image.")
@sampling_options
def sample(model, weights, arch, device, seeds, out, out_dir, npz, batch_size, cols, scale, labels,
           truncation, noise, class_index):
    """Render samples of MODEL into a PNG grid.

    \b
    Examples:
      rewrite sample dcgan-digiface64 --seeds 0-31 --out grid.png
      rewrite sample --seeds 3,7,100-103 --out picked.png --no-labels
      rewrite sample my_dcgan.pt --seeds 0-63 --batch-size 16 --out mine.png
      rewrite sample stylegan2-ffhq.pt --truncation 0.7 --seeds 0-15 --out ffhq.png
      rewrite sample --weights netdissect_church.pth --arch proggan --seeds 0-7 --out c.png
      rewrite sample --weights network-snapshot.pkl --seeds 0-7 --out nv.png
      rewrite sample --seeds 0-49999 --out-dir samples/           # bulk, resumable
      torchrun --nproc-per-node 2 -m rewrite sample --seeds 0-49999 --npz samples.npz
    """
    d = context()
    if out_dir and npz:
        raise click.BadParameter("give --out-dir or --npz, not both", param_hint="--out-dir/--npz")
    if npz and Path(npz).suffix.lower() != ".npz":
        raise click.BadParameter(f"{npz} must end in .npz", param_hint="--npz")
    bulk = bool(out_dir or npz)
    if not bulk and Path(out).suffix.lower() != ".png":
        raise click.BadParameter(f"{out} must end in .png", param_hint="--out")
    _check_outputs({"--out-dir": out_dir, "--npz": npz} if bulk else {"--out": out},
                   model=model, weights=weights, folders=("--out-dir",))
    if not bulk and d.enabled:
        raise click.BadParameter("a grid is made by one process; under torchrun use --out-dir "
                                 "or --npz", param_hint="--out")
    G = load_model(model, weights=weights, arch=arch, device=d.device(_device(device)))
    _set_sampling(G, truncation, noise, class_index)
    model = _model_label(model, weights)
    if bulk:
        summary = bulk_sample(G, seeds, out_dir=out_dir, npz=npz, batch_size=batch_size, dist=d,
                              progress=True, model_name=model)
        if d.is_main:
            click.echo(f"wrote {summary['samples']} samples of {model} to {out_dir or npz}"
                       + (f" (resumed: {summary['resumed_batches']} batch(es) were already "
                          "there)" if summary["resumed_batches"] else ""))
        return
    images = generate(G, seeds, batch_size=batch_size)
    grid = make_grid(images, cols=cols, labels=[f"#{s}" for s in seeds] if labels else None,
                     scale=scale)
    save_png(grid, out)
    click.echo(f"wrote {out}: {len(seeds)} samples of {model}, {grid.width}x{grid.height} px")


def _check_outputs(outputs: dict, model=None, weights=None, spec_path=None, inputs=None,
                   folders: tuple[str, ...] = ()) -> None:
    """Refuse, before any work, outputs that are inputs, are named twice or cannot be
    written (see :func:`rewrite.utils.fileio.check_outputs`); the model counts as an input
    when it names a local file."""
    ins = dict(inputs or {})
    ins.update({"--weights": weights, "SPEC.json": spec_path})
    if model is not None and Path(str(model)).expanduser().is_file():
        ins["MODEL"] = model
    check_outputs(outputs, ins, folders)


def _safe_name(name: str) -> str:
    """``name`` made safe as one path component (no folders, no leading dots)."""
    return re.sub(r"[^\w.-]+", "-", name).strip(".-") or "edit"


def _load_for_spec(spec_path, model, weights, arch, device):
    """The spec and its model, checked, sampling as the spec records (truncation, class),
    so what the command renders is what the edit was made on."""
    spec = EditSpec.load(spec_path)
    G = load_model(model or spec.model, weights=weights, arch=arch, device=_device(device))
    spec.validate_for(G)
    G.apply_sampling(spec.sampling or {})
    return spec, G


def spec_model_options(f):
    """Options of commands that read a spec: the model defaults to the spec's."""
    f = weights_options(f)
    f = click.option("--model", default=None,
                     help="Model to edit instead of the one the spec names.")(f)
    return f


@main.command()
@model_options
@click.option("--layer", required=True, help="Editable layer (see `rewrite layers`).")
@click.option("-n", "--samples", "n", type=click.IntRange(1, MAX_STATS_SAMPLES),
              default=DEFAULT_STATS_SAMPLES,
              show_default=True, help="Number of samples.")
@click.option("--seed", type=click.IntRange(0, 2 ** 32 - 1), default=DEFAULT_STATS_SEED,
              show_default=True,
              help="Latent stream of the statistics samples.")
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--no-cache", is_flag=True, help="Recompute and do not write the cache.")
def stats(model, weights, arch, device, layer, n, seed, batch_size, no_cache):
    """Compute (or read from the cache) the key statistics of one layer.

    \b
    Examples:
      rewrite stats dcgan-digiface64 --layer main.6 -n 10000
      torchrun --nproc-per-node 2 -m rewrite stats dcgan-digiface64 --layer main.6 -n 100000
    """
    d = context()
    G = load_model(model, weights=weights, arch=arch, device=d.device(_device(device)))
    G.layer(layer)
    path = stats_cache_path(layer_key(G, layer), layer, n, seed)
    t0 = time.perf_counter()
    result = layer_stats(G, layer, n=n, seed=seed, batch_size=batch_size, progress=True,
                         cache=not no_cache, dist=d)
    took = time.perf_counter() - t0
    if d.is_main:
        click.echo(describe(result))
        how = result.source if result.source != "computed" else \
            f"computed in {took:.1f} s ({n / took:.0f} samples/s on {d.world} process(es))"
        click.echo(f"{how}{'' if no_cache else f'; cached at {path}'}")


@main.command()
@click.argument("spec_paths", metavar="SPEC.json...", nargs=-1, required=True,
                type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Edited checkpoint to write (the family's own format).")
@click.option("--delta", "delta_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the edit(s) as a small delta file (.safetensors).")
@click.option("--solver", type=click.Choice(list(METHODS)), default=None,
              help="Override the spec's solver: "
                   + "; ".join(f"{n}: {m.summary}" for n, m in METHODS.items()) + ".")
@click.option("--strength", type=click.FloatRange(0, MAX_STRENGTH), default=None,
              help="Override the spec's strength s: the layer gets W0 + s·ΔW "
                   "(0: unedited, 1: the solved edit).")
@click.option("--sequential", is_flag=True,
              help="Apply several specs one after another instead of solving those on the "
                   "same layer together.")
@spec_model_options
def edit(spec_paths, out, delta_path, solver, strength, sequential, model, weights, arch,
         device):
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
    inputs = {f"SPEC.json ({i + 1})": p for i, p in enumerate(spec_paths)}
    _check_outputs({"--out": out, "--delta": delta_path}, model=model, weights=weights,
                   inputs=inputs)
    specs = [EditSpec.load(p) for p in spec_paths]
    G = load_model(model or specs[0].model, weights=weights, arch=arch, device=_device(device))
    _check_outputs({"--out": out, "--delta": delta_path}, model=specs[0].model)
    for spec in specs:
        if solver:
            spec.solver, spec.solver_params = solver, {}
        if strength is not None:
            spec.strength = strength
        spec.validate_for(G)
    session = Rewriter(G, progress=True)
    for spec in specs:
        click.echo(f"editing {spec.layer} of {spec.model} with {spec.solver} "
                   f"(rank {spec.rank}, {spec.direction} direction) ...", err=True)
    if len(specs) == 1 or sequential:
        deltas = [session.apply(spec) for spec in specs]
    else:
        deltas = session.apply_together(specs)
    for d in deltas:
        name = (d.spec or {}).get("name") or d.layer
        click.echo(f"{name}: {d.method} on {d.layer}: {d.loss_kind} loss {d.loss_before:.4f} "
                   f"-> {d.loss:.4f}, predicted collateral {d.collateral:.4f}, visible change "
                   f"outside the rule's region {visible_at_strength(d):.4f}, strength "
                   f"{d.strength:g} ({d.seconds:.2f} s)")
        for line in collateral_warning(d):
            click.echo(line, err=True)
    session.export_checkpoint(out)
    click.echo(f"wrote {out}")
    if delta_path:
        session.export_deltas(delta_path)
        click.echo(f"wrote {delta_path}")


@main.command("apply")
@click.argument("model")
@click.argument("delta_path", metavar="DELTA", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Edited checkpoint to write.")
@click.option("--strength", "strengths", type=click.FloatRange(0, MAX_STRENGTH), multiple=True,
              help="Strength s of the edits (W0 + s·ΔW, no new solve): once for all edits, "
                   "or once per edit in the file's order. Default: as saved.")
@click.option("--delta-out", type=click.Path(dir_okay=False), default=None,
              help="Also write the deltas with these strengths.")
@weights_options
def apply_cmd(model, delta_path, out, strengths, delta_out, weights, arch, device):
    """Re-apply the edits of a delta file to MODEL and export the result.

    \b
    Examples:
      rewrite apply dcgan-digiface64 edit.safetensors --out edited.pt
      rewrite apply dcgan-digiface64 edit.safetensors --strength 0.5 --out gentler.pt
    """
    _check_outputs({"--out": out, "--delta-out": delta_out}, model=model, weights=weights,
                   inputs={"DELTA": delta_path})
    G = load_model(model, weights=weights, arch=arch, device=_device(device))
    session = Rewriter(G)
    deltas = session.apply_delta_file(delta_path)
    if strengths:
        if len(strengths) not in (1, len(deltas)):
            raise click.BadParameter(f"give one strength, or one per edit ({len(deltas)} in "
                                     f"{delta_path}); got {len(strengths)}",
                                     param_hint="--strength")
        for i in range(len(deltas)):
            session.set_strength(i, strengths[0] if len(strengths) == 1 else strengths[i])
    session.export_checkpoint(out)
    shown = ", ".join(f"{d.strength:g}" for d in session.deltas)
    click.echo(f"applied {len(deltas)} edit(s) from {delta_path} at strength {shown}; wrote {out}")
    if delta_out:
        session.export_deltas(delta_out)
        click.echo(f"wrote {delta_out}")


@main.command("not-here")
@click.argument("spec_path", metavar="SPEC.json", type=click.Path(dir_okay=False))
@click.argument("sample", type=click.IntRange(0, MAX_SAMPLES - 1))
@click.argument("rect", nargs=4, type=float, metavar="X0 Y0 X1 Y1")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="The spec to write, with the region added (never the input itself).")
@spec_model_options
def not_here(spec_path, sample, rect, out, model, weights, arch, device):
    """Mark a region where SPEC.json's rule must not act ("not here").

    The rectangle X0 Y0 X1 Y1 (image pixels, X1 and Y1 exclusive) of SAMPLE joins the
    solve with its current values as the goal, so the edit keeps it unchanged as far as
    the request allows (the spec's preserve_weight says how much it counts).
    Find the places to mark with `rewrite match SPEC.json` (where the rule fires).

    \b
    Example:
      rewrite not-here add-cap.json 112 0 24 64 64 --out add-cap-fixed.json
    """
    _check_outputs({"--out": out}, spec_path=spec_path)
    spec, G = _load_for_spec(spec_path, model, weights, arch, device)
    obj = spec.to_json()
    obj["preserve"] = obj.get("preserve", []) + [
        {"sample": sample, "mask": {"rect": [v if not float(v).is_integer() else int(v)
                                             for v in rect]}}]
    new = EditSpec.from_json(obj)
    new.validate_for(G)
    new.save(out)
    click.echo(f"wrote {out}: {len(new.preserve)} \"not here\" region(s)")


@main.command()
@click.argument("model")
@click.argument("spec_path", metavar="SPEC.json", type=click.Path(dir_okay=False))
@click.option("--seeds", default="100-115", show_default=True, callback=_seeds,
              help="Held-out samples to show.")
@click.option("--out", type=click.Path(dir_okay=False), default="compare.png", show_default=True)
@click.option("--cols", type=click.IntRange(min=1), default=None,
              help="Samples per row pair (default: up to 16).")
@click.option("--scale", type=click.IntRange(1, 16), default=2, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@weights_options
@sampling_options
def compare(model, spec_path, seeds, out, cols, scale, batch_size, weights, arch, device,
            truncation, noise, class_index):
    """Render SEEDS before (upper row) and after (lower row) the edit in SPEC.json.

    The samples are rendered with the spec's sampling settings (truncation, class) unless
    --truncation or --class say otherwise.

    \b
    Example:
      rewrite compare dcgan-digiface64 examples/add-sunglasses.json --seeds 100-115 --out cmp.png
    """
    if Path(out).suffix.lower() != ".png":
        raise click.BadParameter(f"{out} must end in .png", param_hint="--out")
    _check_outputs({"--out": out}, model=model, weights=weights, spec_path=spec_path)
    spec = EditSpec.load(spec_path)
    G = load_model(model, weights=weights, arch=arch, device=_device(device))
    spec.validate_for(G)
    _set_sampling(G, truncation, noise, class_index)
    if spec.sampling and truncation == 1.0 and class_index is None:
        G.apply_sampling(spec.sampling)            # shown as the edit was made
    before, after = before_after(G, spec, seeds, batch_size=batch_size, progress=None)
    save_png(before_after_grid(before, after, seeds, cols=cols, scale=scale), out)
    click.echo(f"wrote {out}: {len(seeds)} samples before and after {spec.name or spec_path}")


def _eval_options(f):
    f = click.option("--quantile", type=click.FloatRange(0.5, 0.9999), default=DEFAULT_QUANTILE,
                     show_default=True, help="Response quantile above which the rule fires.")(f)
    f = click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)(f)
    f = click.option("--no-cache", is_flag=True, help="Render every sample again.")(f)
    f = click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
                     help="Folder for metrics, pictures and report.html [default: eval-<spec name>].")(f)
    f = click.option("--seeds", default="1000-1511", show_default=True, callback=_seeds,
                     help="Held-out samples.")(f)
    return f


def _eval_dir(spec, spec_path, out_dir) -> Path:
    """The folder of an evaluation: ``--out``, or ``eval-<spec name>`` (a safe name)."""
    return Path(out_dir or f"eval-{_safe_name(spec.name or Path(spec_path).stem)}")


def _write_eval(results, spec, spec_path, out, what):
    if not context().is_main:
        return
    paths = write_outputs(results, out, f"{what}: {spec.name or Path(spec_path).stem}")
    click.echo(markdown(rows(results)))
    click.echo(f"wrote {out}/: metrics.csv, metrics.md, metrics.json"
               f"{', tradeoff.png' if 'plot' in paths else ''}, figures, report.html")


def _standard_options(f):
    """--inception-weights / --lpips-weights: the files behind FID/KID and LPIPS."""
    f = click.option("--lpips-weights", type=click.Path(exists=True, dir_okay=False),
                     default=None,
                     help="torchvision's vgg16-397923af.pth: report LPIPS outside the firing "
                          "regions and on silent samples [env: REWRITE_LPIPS_WEIGHTS].")(f)
    f = click.option("--inception-weights", type=click.Path(exists=True, dir_okay=False),
                     default=None,
                     help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth: report FID and "
                          "KID between unedited and edited samples "
                          "[env: REWRITE_INCEPTION_WEIGHTS].")(f)
    return f


def _standard_metrics(results, inception_weights, lpips_weights, device, batch_size, cache):
    """Add FID/KID and masked LPIPS to ``results`` (main rank); returns lines to print
    afterwards (a table of them, or how to enable them)."""
    from .metrics.evaluate import add_standard_metrics, standard_table
    from .metrics.weightfiles import load_standard_nets

    if not context().is_main:
        return []
    inet, iid, lnet, notes = load_standard_nets(inception_weights, lpips_weights, device)
    if inet is None and lnet is None:
        return notes
    add_standard_metrics(results, inet, lnet, iid, batch_size=batch_size, progress=True,
                         cache=cache)
    return [standard_table(results)] + notes


@main.command("eval")
@click.argument("spec_path", metavar="SPEC.json", type=click.Path(dir_okay=False))
@_eval_options
@_standard_options
@spec_model_options
def eval_cmd(spec_path, seeds, out_dir, no_cache, batch_size, quantile, model, weights, arch,
             device, inception_weights=None, lpips_weights=None):
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
    d = context()
    spec, G = _load_for_spec(spec_path, model, weights, arch, d.device(_device(device)))
    out = _eval_dir(spec, spec_path, out_dir)
    _check_outputs({"--out": out}, model=model, weights=weights, spec_path=spec_path,
                   folders=("--out",))
    curve = evaluate_curve(G, spec, seeds, quantile=quantile, batch_size=batch_size,
                           progress=d.is_main, cache=not no_cache, dist=d)
    result = next(e for e in curve if abs(e.delta.strength - spec.strength) < 1e-9)
    standard = _standard_metrics([result], inception_weights, lpips_weights,
                                 d.device(_device(device)), batch_size, not no_cache)
    _write_eval([result], spec, spec_path, out, "evaluation")
    if d.is_main:
        text = ("Where this edit sits on its strength curve (the same solve re-weighted; "
                "visible collateral: image change outside the rule's band on fixed samples, "
                "first-order in the strength):\n\n" + curve_table(curve, spec.strength))
        with atomic_path(Path(out) / "curve.md") as tmp:
            tmp.write_text(text + "\n")
        click.echo(text)
        click.echo(f"wrote {out}/curve.md")
    for line in standard:
        click.echo(line)


@main.command("compare-methods")
@click.argument("spec_path", metavar="SPEC.json", type=click.Path(dir_okay=False))
@_eval_options
@_standard_options
@spec_model_options
def compare_methods_cmd(spec_path, seeds, out_dir, no_cache, batch_size, quantile,
                        model, weights, arch, device, inception_weights=None,
                        lpips_weights=None):
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
    d = context()
    spec, G = _load_for_spec(spec_path, model, weights, arch, d.device(_device(device)))
    out = _eval_dir(spec, spec_path, out_dir)
    _check_outputs({"--out": out}, model=model, weights=weights, spec_path=spec_path,
                   folders=("--out",))
    results = compare_methods(G, spec, seeds, method_variants(spec), quantile=quantile,
                              batch_size=batch_size, progress=d.is_main, cache=not no_cache,
                              dist=d)
    standard = _standard_metrics(results, inception_weights, lpips_weights,
                                 d.device(_device(device)), batch_size, not no_cache)
    _write_eval(results, spec, spec_path, out, "method comparison")
    for line in standard:
        click.echo(line)


@main.command("suggest-layer")
@click.argument("spec_path", metavar="SPEC.json", type=click.Path(dir_okay=False))
@click.option("--stats-samples", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Samples for each layer's statistics.")
@spec_model_options
def suggest_layer(spec_path, stats_samples, model, weights, arch, device):
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
    spec, G = _load_for_spec(spec_path, model, weights, arch, device)
    advice = suggest_layers(G, spec, stats_samples=stats_samples, progress=True)
    click.echo(f"{'layer':<10} {'goal repro':>10} {'silent':>8} {'efficacy':>9} "
               f"{'key grid':>9} {'goal cells':>11}  {'separation':<22}")
    for a in advice:
        def fmt(v, spec_):
            return "–" if np.isnan(v) else format(v, spec_)
        grid = f"{a.key_grid}x{a.key_grid}"
        f = a.feasibility
        apart = "–" if f is None else f"{fmt(f.auc, '.2f')} {f.verdict}"
        click.echo(f"{a.layer:<10} {fmt(a.goal_reproduction, '.3f'):>10} "
                   f"{fmt(a.silent_change, '.4f'):>8} {fmt(a.efficacy, '.2f'):>9} {grid:>9} "
                   f"{a.goal_cells:>11}  {apart:<22}")
        click.echo(f"{'':<10} {a.note}")
    for line in advice_summary(advice, spec.layer):
        click.echo(line)


@main.command("goal")
@click.argument("spec_path", metavar="SPEC.json", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default="goal.png", show_default=True)
@click.option("--solve/--no-solve", default=True, show_default=True,
              help="Also solve the edit and show the edited paste target.")
@spec_model_options
def goal_cmd(spec_path, out, solve, model, weights, arch, device):
    """Show what SPEC.json asks of its layer before (and after) solving.

    \b
    Tiles: the copy source, the paste target, the pasted request, the goal values
    rendered through the rest of the network, and (with --solve) the edited paste
    target. If the rendered goal does not show the object, no edit of this layer can:
    pick a finer layer or align the boxes to the layer's cells.
    \b
    Example:
      rewrite goal examples/add-sunglasses.json --out goal.png
    """
    if Path(out).suffix.lower() != ".png":
        raise click.BadParameter(f"{out} must end in .png", param_hint="--out")
    _check_outputs({"--out": out}, model=model, weights=weights, spec_path=spec_path)
    spec, G = _load_for_spec(spec_path, model, weights, arch, device)
    session = Rewriter(G, progress=True)
    inputs = session.prepare(spec)
    click.echo(feasibility(G, spec, session.stats(spec)).line())
    fidelity = goal_fidelity(G, inputs)
    edited = delta = None
    if solve:
        delta = session.apply(session.compute(spec, inputs))
        try:
            edited = generate(G, inputs.goal_samples[:1])[0]
        finally:
            session.undo()
        click.echo(f"solved with {delta.method}: layer loss {delta.loss_before:.4f} -> "
                   f"{delta.loss:.4f}, predicted collateral {delta.collateral:.4f}")
    save_png(goal_panel(G, spec, inputs, edited), out)
    click.echo(f"wrote {out}")
    for line in goal_notes(spec, fidelity, delta):
        click.echo(line)


@main.command("match")
@click.argument("spec_path", metavar="SPEC.json", type=click.Path(dir_okay=False))
@click.option("--seeds", default="0-999", show_default=True, callback=_seeds)
@click.option("--top", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default="match.png", show_default=True)
@spec_model_options
def match_cmd(spec_path, seeds, top, out, model, weights, arch, device):
    """Show the samples where the rule of SPEC.json would fire most, with heat overlays.

    \b
    Example:
      rewrite match examples/add-sunglasses.json --seeds 0-999 --top 16 --out match.png
    """
    if Path(out).suffix.lower() != ".png":
        raise click.BadParameter(f"{out} must end in .png", param_hint="--out")
    _check_outputs({"--out": out}, model=model, weights=weights, spec_path=spec_path)
    spec, G = _load_for_spec(spec_path, model, weights, arch, device)
    samples, scores, resp = match(G, spec, seeds, top=top, progress=True)
    images = heat_overlay(generate(G, samples), heat(resp).numpy())
    labels = [f"#{s} {v:.2f}" for s, v in zip(samples, scores)]
    grid = make_grid(images, labels=labels, scale=2)
    save_png(grid, out)
    click.echo(f"wrote {out}: the {len(samples)} of {len(seeds)} samples where the rule fires "
               f"most (score: strongest response)")


@main.command()
@click.argument("model", default=DEFAULT_MODEL, required=False)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (127.0.0.1: this machine only).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workspace", type=click.Path(file_okay=False), default="rewrite-workspace",
              show_default=True, help="Folder for saved edits and exports.")
@click.option("--stats-samples", type=click.IntRange(min=1), default=DEFAULT_STATS_SAMPLES,
              show_default=True, help="Samples for each layer's statistics.")
@weights_options
@sampling_options
def ui(model, host, port, workspace, stats_samples, weights, arch, device, truncation, noise,
       class_index):
    """Start the rewriting app in the browser.

    \b
    Examples:
      rewrite ui                      # the face model, http://127.0.0.1:8000
      rewrite ui my_stylegan2.pt --port 8080 --workspace edits/
      rewrite ui cifar10.pkl --class 3 --truncation 0.7   # edits made on class 3's samples
    """
    import uvicorn

    from .ui.guard import LOCAL_HOSTS
    from .ui.server import create_app
    from .ui.state import AppState

    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: listening on {host}: anyone who can reach this address can edit "
                   "the model and read the workspace", err=True)
    state = AppState(model, workspace, weights=weights, arch=arch, device=_device(device),
                     stats_samples=stats_samples)
    _set_sampling(state.model, truncation, noise, class_index)
    state.follow_model_sampling()
    state.warm_up()
    click.echo(f"rewrite app for {model}: http://{host}:{port}/  (workspace: {workspace})")
    hosts = set(LOCAL_HOSTS) | {host} if host not in ("0.0.0.0", "::") else None
    if hosts is None:
        import socket
        hosts = set(LOCAL_HOSTS) | {socket.gethostname(), socket.getfqdn()}
    uvicorn.run(create_app(state, hosts), host=host, port=port, log_level="warning")


@main.command("import-edit")
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
    _check_outputs({"--out": out}, model=model, weights=weights, inputs={"OLD.json": legacy_path})
    try:
        obj = spec_json_loads(Path(legacy_path).read_text())
    except (OSError, ValueError, RecursionError) as e:      # JSON and Unicode errors included
        raise click.BadParameter(f"cannot read {legacy_path}: {e}", param_hint="OLD.json")
    wide = wide_integers(obj)
    if wide:
        raise click.BadParameter(f"{legacy_path}: " + "; ".join(wide), param_hint="OLD.json")
    G = load_model(model, weights=weights, arch=arch, device="cpu")
    spec = import_legacy(obj, model, layer, G.resolution, rank=rank, name=Path(legacy_path).stem)
    spec.validate_for(G)
    spec.save(out)
    click.echo(f"wrote {out}: {spec.kind} edit with {len(spec.context)} context region(s)")


if __name__ == "__main__":
    main()
