"""Commands about models: ``models`` (the zoo) and ``layers`` (what can be edited)."""

from __future__ import annotations

import click

from .common import device, model_options


@click.command()
def models():
    """List the built-in models and where they are cached, and the generator families.

    \b
    Example:
      rewrite models
    """
    from ..models import FAMILIES, ZOO, cached_path
    from ..utils.cache import cache_dir

    click.echo(f"cache: {cache_dir()}  (set REWRITE_CACHE to move it)\n")
    for entry in ZOO.values():
        path = cached_path(entry)
        state = (
            f"cached at {path}" if path.is_file() else "not fetched yet (downloads on first use)"
        )
        click.echo(f"{entry.name}  [{entry.family}]  {entry.description}")
        click.echo(f"    {state}")
        click.echo(f"    source: {entry.credit}")
    click.echo(f"\nfamilies (--arch): {', '.join(sorted(FAMILIES))}")


@click.command()
@model_options
def layers(model, weights, arch, device_name):
    """List the editable layers of MODEL.

    \b
    Examples:
      rewrite layers dcgan-digiface64
      rewrite layers --weights network-snapshot.pkl      # family detected from the file
    """
    from ..models import load_model

    G = load_model(model, weights=weights, arch=arch, device=device(device_name))
    header = (
        f"{'layer':<10} {'kind':<19} {'keys from':<15} {'C_in':>5} {'C_out':>5} "
        f"{'keys':>7} {'values':>7} {'kernel':>6}"
    )
    click.echo(header)
    click.echo("-" * len(header))
    for L in G.layers():
        click.echo(
            f"{L.name:<10} {L.kind:<19} {L.key_source:<15} {L.in_channels:>5} "
            f"{L.out_channels:>5} {f'{L.key_resolution}x{L.key_resolution}':>7} "
            f"{f'{L.value_resolution}x{L.value_resolution}':>7} {L.kernel_size:>6}"
        )
