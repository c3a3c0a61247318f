"""The ``rewrite`` command line: thin commands over the library.

Examples::

    rewrite models
    rewrite layers dcgan-digiface64
    rewrite sample dcgan-digiface64 --seeds 0-31 --out grid.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import torch

from .errors import RewriteError
from .images import make_grid, save_png
from .models import DEFAULT_MODEL, FAMILIES, ZOO, cached_path, load_model
from .models.zoo import cache_dir
from .sampling import generate
from .seeds import parse_seeds


class _Group(click.Group):
    """Prints user errors (``RewriteError``) as one line and exits 2, without a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RewriteError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)


def _seeds(ctx, param, value):
    try:
        return parse_seeds(value)
    except RewriteError as e:
        raise click.BadParameter(str(e)) from None


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise click.BadParameter(f"unknown device {name!r}; use auto, cpu or cuda[:N]",
                                 param_hint="--device") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available on this machine; use --device cpu",
                                 param_hint="--device")
    return dev


def model_options(f):
    """Options shared by commands that load a model."""
    f = click.option("--device", default="auto", show_default=True,
                     help="auto, cpu, cuda or cuda:N.")(f)
    f = click.option("--arch", type=click.Choice(sorted(FAMILIES)), default=None,
                     help="Generator family of the file (default: the zoo entry's, or "
                          "detected from the keys).")(f)
    f = click.option("--weights", type=click.Path(dir_okay=False), default=None,
                     help="Local checkpoint (or the zoo entry's wheel) to use instead of "
                          "downloading; for offline machines.")(f)
    f = click.argument("model", default=DEFAULT_MODEL, required=False)(f)
    return f


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def main():
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
    Example:
      rewrite layers dcgan-digiface64
    """
    G = load_model(model, weights=weights, arch=arch, device=_device(device))
    header = f"{'layer':<10} {'kind':<16} {'keys from':<10} {'C_in':>5} {'C_out':>5} " \
             f"{'keys':>7} {'values':>7} {'kernel':>6}"
    click.echo(header)
    click.echo("-" * len(header))
    for L in G.layers():
        click.echo(f"{L.name:<10} {L.kind:<16} {L.key_source:<10} {L.in_channels:>5} "
                   f"{L.out_channels:>5} {f'{L.key_resolution}x{L.key_resolution}':>7} "
                   f"{f'{L.value_resolution}x{L.value_resolution}':>7} {L.kernel_size:>6}")


@main.command()
@model_options
@click.option("--seeds", default="0-31", show_default=True, callback=_seeds,
              help="Sample indices: ranges and lists, e.g. 0-31 or 3,7,100-103.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default="grid.png",
              show_default=True, help="PNG file to write.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Samples per forward pass.")
@click.option("--cols", type=click.IntRange(min=1), default=None,
              help="Images per grid row (default: about square).")
@click.option("--scale", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Upscale each image by this factor in the grid.")
@click.option("--labels/--no-labels", default=True, show_default=True,
              help="Print the sample index above each image.")
def sample(model, weights, arch, device, seeds, out, batch_size, cols, scale, labels):
    """Render samples of MODEL into a PNG grid.

    \b
    Examples:
      rewrite sample dcgan-digiface64 --seeds 0-31 --out grid.png
      rewrite sample --seeds 3,7,100-103 --out picked.png --no-labels
      rewrite sample my_dcgan.pt --seeds 0-63 --batch-size 16 --out mine.png
    """
    if Path(out).suffix.lower() != ".png":
        raise click.BadParameter(f"{out} must end in .png", param_hint="--out")
    G = load_model(model, weights=weights, arch=arch, device=_device(device))
    images = generate(G, seeds, batch_size=batch_size)
    grid = make_grid(images, cols=cols, labels=[f"#{s}" for s in seeds] if labels else None,
                     scale=scale)
    save_png(grid, out)
    click.echo(f"wrote {out}: {len(seeds)} samples of {model}, {grid.width}x{grid.height} px")


if __name__ == "__main__":
    main()
