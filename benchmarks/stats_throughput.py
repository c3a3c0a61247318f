"""Statistics throughput: samples/s of `rewrite stats` against a bare forward pass.

    python benchmarks/stats_throughput.py [--model MODEL --layers L ...] [-n 2000]

Default: the face model at main.3 and main.6, and the tiny StyleGAN2 and ProGAN
fixture models at two layers each (when ../shared/fixtures is there).

For each layer, the statistics pass (forward to the layer, float64 second moment
of the keys, per-unit value moments; what `rewrite stats` runs, without the
cache) and a bare forward pass through the same layer run in turn ``rounds``
times on the same samples; the table shows median samples/s and their ratio.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fixture_path, interleaved, table  # noqa: E402

from rewrite.edit.layer_stats import accumulate_layer_stats  # noqa: E402
from rewrite.models import load_model  # noqa: E402
from rewrite.sampling.generate import batches  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--layers", nargs="+", default=None)
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.model:
        runs = [(args.model, args.layers)]
    else:
        runs = [("dcgan-digiface64", ["main.3", "main.6"])]
        for name, layers in (("stylegan2_rosinality_tiny64.pt", ["convs.3", "convs.5"]),
                             ("proggan_netdissect_tiny64.pth", ["layer4", "layer6"])):
            path = fixture_path(name)
            if path is None:
                print(f"(fixture {name} not found; skipping it)")
            else:
                runs.append((str(path), layers))
    rows = []
    for model, layers in runs:
        G = load_model(model)
        fp = G.fingerprint()
        for layer in layers or [L.name for L in G.layers()]:
            @torch.no_grad()
            def bare():
                for chunk in batches(range(args.n), args.batch_size):
                    G.split(G.latents(chunk, seed=0), layer)

            def stats():
                accumulate_layer_stats(G, layer, range(args.n), batch_size=args.batch_size,
                                       progress=False, fingerprint=fp)

            bare()                                                        # warm-up
            t = interleaved({"bare": bare, "stats": stats}, args.rounds)
            info = G.layer(layer)
            rows.append({"model": Path(model).name, "layer": layer,
                         "keys": f"{info.in_channels}x{info.key_resolution}²",
                         "bare forward samples/s": args.n / t["bare"],
                         "stats samples/s": args.n / t["stats"], "ratio": t["bare"] / t["stats"]})
    print(f"{args.n} samples, batch {args.batch_size}, median of {args.rounds} interleaved rounds, "
          f"{torch.get_num_threads()} threads\n")
    print(table(rows, ["model", "layer", "keys", "bare forward samples/s", "stats samples/s",
                       "ratio"]))


if __name__ == "__main__":
    main()
