"""Commands that render or measure the unedited model: ``sample`` and ``stats``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .common import (
    PNG,
    OutputFile,
    check_outputs,
    device,
    model_label,
    model_options,
    sampling_options,
    seeds_callback,
    set_sampling,
    spec_rules,
)


@click.command()
@model_options
@click.option(
    "--seeds",
    default="0-31",
    show_default=True,
    callback=seeds_callback,
    help="Sample indices: ranges and lists, e.g. 0-31 or 3,7,100-103.",
)
@click.option(
    "--out", "out", type=PNG, default="grid.png", show_default=True, help="PNG grid to write."
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Bulk mode: one PNG per sample in this folder (resumes a stopped run).",
)
@click.option(
    "--npz",
    type=OutputFile(".npz"),
    default=None,
    help="Bulk mode: all samples in one .npz (images, seeds; resumes a stopped run).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Samples per forward pass.",
)
@click.option(
    "--cols",
    type=click.IntRange(min=1),
    default=None,
    help="Images per grid row (default: about square).",
)
@click.option(
    "--scale",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="Upscale each image by this factor in the grid.",
)
@click.option(
    "--labels/--no-labels",
    default=True,
    show_default=True,
    help="Print the sample index above each image.",
)
@click.option(
    "--delta",
    "delta_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Render the model with the edits of this delta file applied (from `rewrite edit "
    "--delta`; the way to see a gated edit, which no checkpoint can hold).",
)
@sampling_options
def sample(
    model,
    weights,
    arch,
    device_name,
    seeds,
    out,
    out_dir,
    npz,
    batch_size,
    cols,
    scale,
    labels,
    delta_path,
    truncation,
    noise,
    class_index,
):
    """Render samples of MODEL (with a delta file's edits, if given) into a PNG grid.

    \b
    Examples:
      rewrite sample dcgan-digiface64 --seeds 0-31 --out grid.png
      rewrite sample --seeds 3,7,100-103 --out picked.png --no-labels
      rewrite sample my_dcgan.pt --seeds 0-63 --batch-size 16 --out mine.png
      rewrite sample stylegan2-ffhq.pt --truncation 0.7 --seeds 0-15 --out ffhq.png
      rewrite sample --weights netdissect_church.pth --arch proggan --seeds 0-7 --out c.png
      rewrite sample --weights network-snapshot.pkl --seeds 0-7 --out nv.png
      rewrite sample --seeds 0-49999 --out-dir samples/           # bulk, resumable
      rewrite sample --delta edit.safetensors --seeds 0-31 --out edited.png
      torchrun --nproc-per-node 2 -m rewrite sample --seeds 0-49999 --npz samples.npz
    """
    from ..models import load_model
    from ..sampling.bulk import bulk_sample
    from ..sampling.generate import generate
    from ..utils.distributed import context
    from ..utils.images import make_grid, save_png

    d = context()
    if out_dir and npz:
        raise click.BadParameter("give --out-dir or --npz, not both", param_hint="--out-dir/--npz")
    bulk = bool(out_dir or npz)
    check_outputs(
        {"--out-dir": out_dir, "--npz": npz} if bulk else {"--out": out},
        model=model,
        weights=weights,
        inputs={"--delta": delta_path},
        folders=("--out-dir",),
    )
    if not bulk and d.enabled:
        raise click.BadParameter(
            "a grid is made by one process; under torchrun use --out-dir or --npz",
            param_hint="--out",
        )
    G = load_model(model, weights=weights, arch=arch, device=d.device(device(device_name)))
    set_sampling(G, truncation=truncation, noise=noise, class_index=class_index)
    model = model_label(model, weights)
    if delta_path:
        from ..edit import Rewriter

        # Refused whole (wrong model, damaged file) before anything is rendered.
        applied = Rewriter(G, progress=False).apply_delta_file(delta_path)
        model = f"{model} + {len(applied)} edit(s) from {Path(delta_path).name}"
    if bulk:
        summary = bulk_sample(
            G,
            seeds,
            out_dir=out_dir,
            npz=npz,
            batch_size=batch_size,
            dist=d,
            progress=True,
            model_name=model,
        )
        if d.is_main:
            click.echo(
                f"wrote {summary['samples']} samples of {model} to {out_dir or npz}"
                + (
                    f" (resumed: {summary['resumed_batches']} batch(es) were already there)"
                    if summary["resumed_batches"]
                    else ""
                )
            )
        return
    images = generate(G, seeds, batch_size=batch_size)
    grid = make_grid(
        images, cols=cols, labels=[f"#{s}" for s in seeds] if labels else None, scale=scale
    )
    save_png(grid, out)
    click.echo(f"wrote {out}: {len(seeds)} samples of {model}, {grid.width}x{grid.height} px")


_STATS_SAMPLES, _MAX_STATS_SAMPLES = spec_rules()["stats_samples"]
_STATS_SEED, _MAX_STATS_SEED = spec_rules()["stats_seed"]


@click.command()
@model_options
@click.option("--layer", required=True, help="Editable layer (see `rewrite layers`).")
@click.option(
    "-n",
    "--samples",
    "n",
    type=click.IntRange(1, _MAX_STATS_SAMPLES),
    default=_STATS_SAMPLES,
    show_default=True,
    help="Number of samples.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, _MAX_STATS_SEED),
    default=_STATS_SEED,
    show_default=True,
    help="Latent stream of the statistics samples.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--no-cache", is_flag=True, help="Recompute and do not write the cache.")
def stats(model, weights, arch, device_name, layer, n, seed, batch_size, no_cache):
    """Compute (or read from the cache) the key statistics of one layer.

    \b
    Examples:
      rewrite stats dcgan-digiface64 --layer main.6 -n 10000
      torchrun --nproc-per-node 2 -m rewrite stats dcgan-digiface64 --layer main.6 -n 100000
    """
    from ..edit.layer_stats import describe, layer_stats, stats_cache_path
    from ..models import load_model
    from ..utils.cache import layer_key
    from ..utils.distributed import context

    d = context()
    G = load_model(model, weights=weights, arch=arch, device=d.device(device(device_name)))
    G.layer(layer)
    path = stats_cache_path(layer_key(G, layer), layer, n, seed)
    t0 = time.perf_counter()
    result = layer_stats(
        G, layer, n=n, seed=seed, batch_size=batch_size, progress=True, cache=not no_cache, dist=d
    )
    took = time.perf_counter() - t0
    if d.is_main:
        click.echo(describe(result))
        how = (
            result.source
            if result.source != "computed"
            else f"computed in {took:.1f} s ({n / took:.0f} samples/s on {d.world} process(es))"
        )
        click.echo(f"{how}{'' if no_cache else f'; cached at {path}'}")
