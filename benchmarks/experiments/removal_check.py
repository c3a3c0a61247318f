"""Old ``erase removal`` against the new ``clean removal`` on real erase edits.

For each erase spec and each parameter setting of ``--method`` (default ``gated-pair``, the
face model's default): the edit solved and measured by :func:`rewrite.metrics.evaluate.evaluate`
on ``--seeds`` (the TUNING samples by default; never choose anything on 3000-3255), then a
table of the old measure (:func:`rewrite.metrics.transfer.erase_removal`: the firing region's
contrast against its ring) and the new one (:func:`rewrite.metrics.removal.clean_removal`:
the firing region now looks like the same region of a face without the object, against the
evaluation's bank of faces, :func:`rewrite.metrics.removal.reference_bank`, or with
``--silent-bank`` every sample where the rule never fires), each as the mean over the firing
samples and over the ``--top`` best-matched (where the rule's directions respond most, as
``matched_faces.py`` and the evaluation's "matched" figures rank them; the new measure over
the samples it judges, counted in the last column), and a before/after grid of those
``--top`` per spec and setting.

Each solve's images are kept in ``--out`` (``<spec>__<setting>.npz``) and reused, so the table
can be recomputed without solving again (``--no-solve`` refuses to solve).

Usage (from the project root; 2-6 minutes a solve on a 2-core machine)::

    python benchmarks/experiments/removal_check.py \\
        benchmarks/edits/tune/remove-glasses.json benchmarks/edits/tune/remove-headwear.json \\
        benchmarks/edits/tune/remove-headwear-main6.json \\
        --params '{}' '{"erase_drawn": 1, "examples": 48}' --out outputs/removal-check
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rewrite.edit import EditSpec  # noqa: E402
from rewrite.metrics.before_after import before_after_grid  # noqa: E402
from rewrite.metrics.evaluate import evaluate, variant  # noqa: E402
from rewrite.metrics.removal import clean_removal, reference_bank  # noqa: E402
from rewrite.metrics.transfer import erase_removal  # noqa: E402
from rewrite.models import load_model  # noqa: E402
from rewrite.sampling.seeds import parse_seeds  # noqa: E402
from rewrite.utils.images import save_png  # noqa: E402


def setting_tag(params: dict) -> str:
    """A file-name-safe tag of a parameter setting (``default`` for ``{}``)."""
    if not params:
        return "default"
    text = "_".join(f"{k}={v}" for k, v in sorted(params.items()))
    return re.sub(r"[^A-Za-z0-9_=.-]", "", text)


def solve(G, path: Path, method: str, params: dict, seeds: list[int], cache: Path) -> dict:
    """The evaluation's images of ``path`` solved by ``method`` with ``params`` on ``seeds``:
    ``{"before", "after": uint8 [N, R, R, 3], "fire": bool [N, R, R], "peak": float [N],
    "metrics": dict}``, read from ``cache`` when there, else solved and written there."""
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        return {k: z[k] for k in ("before", "after", "fire", "peak")} | {
            "metrics": json.loads(str(z["metrics"]))
        }
    spec = variant(EditSpec.load(path), method, params=params)
    t0 = time.perf_counter()
    r = evaluate(G, spec, seeds, progress=False)
    peak = r.response.reshape(len(seeds), -1).max(1)
    metrics = {k: v for k, v in r.metrics.items() if isinstance(v, (int, float, str))}
    metrics["wall seconds"] = time.perf_counter() - t0
    out = {"before": r.before, "after": r.after, "fire": r.fire, "peak": peak, "metrics": metrics}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        cache, before=r.before, after=r.after, fire=r.fire, peak=peak, metrics=json.dumps(metrics)
    )
    return out


def _mean(x: np.ndarray) -> float:
    """Mean of the finite entries of ``x`` [K]; nan if none."""
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


def measures(run: dict, top: int, silent_bank: bool = False) -> dict:
    """Old and new removal, mean over the firing samples and over the ``top`` best-matched
    (the new one over those it judges; ``judged`` counts them); the new one against the
    evaluation's bank (:func:`rewrite.metrics.removal.reference_bank`), or with
    ``silent_bank`` against every sample where the rule never fires."""
    b = run["before"].astype(np.float64) / 255
    a = run["after"].astype(np.float64) / 255
    fire = run["fire"]
    firing = fire.any((1, 2))
    order = np.argsort(-run["peak"], kind="stable")[: min(top, int(firing.sum()))]
    old = erase_removal(b, a, fire)
    bank = ~firing if silent_bank else reference_bank(fire, run["peak"])
    new = np.full(len(b), np.nan)
    new[firing] = clean_removal(b[firing], a[firing], fire[firing], b[bank])
    return {
        "firing": int(firing.sum()),
        "bank": int(bank.sum()),
        "old all": _mean(old[firing]),
        f"old top{top}": _mean(old[order]),
        "new all": _mean(new[firing]),
        f"new top{top}": _mean(new[order]),
        "judged": f"{int(np.isfinite(new).sum())}, {int(np.isfinite(new[order]).sum())}",
        "per-sample new top": [round(float(x), 3) for x in new[order]],
        "per-sample old top": [round(float(x), 3) for x in old[order]],
        "order": order,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="+", type=Path)
    ap.add_argument("--seeds", default="2000-2255")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--method", default="gated-pair")
    ap.add_argument(
        "--params",
        nargs="+",
        type=json.loads,
        default=[{}, {"erase_drawn": 1, "examples": 48}],
        help="one JSON object per setting (default: '{}' and the drawn goals)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "outputs" / "removal-check")
    ap.add_argument("--no-solve", action="store_true", help="only the cached solves")
    ap.add_argument(
        "--silent-bank",
        action="store_true",
        help="the new measure against every silent sample (the first design), "
        "not the evaluation's bank",
    )
    args = ap.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    args.out.mkdir(parents=True, exist_ok=True)
    G = None
    lines = [
        f"| erase | setting | firing | bank | old all | old top{args.top} | new all | "
        f"new top{args.top} | new judged (all, top{args.top}) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for path in args.specs:
        for params in args.params:
            tag = setting_tag(params)
            cache = args.out / f"{path.stem}__{tag}.npz"
            if not cache.is_file():
                if args.no_solve:
                    print(f"skip {path.stem} {tag}: not solved", flush=True)
                    continue
                G = G or load_model("dcgan-digiface64")
            print(
                f"{path.stem} {tag}: solving"
                if not cache.is_file()
                else f"{path.stem} {tag}: cached",
                flush=True,
            )
            run = solve(G, path, args.method, params, seeds, cache)
            m = measures(run, args.top, args.silent_bank)
            order = m.pop("order")
            grid = args.out / f"{path.stem}__{tag}.png"
            save_png(
                before_after_grid(
                    run["before"][order],
                    run["after"][order],
                    [seeds[i] for i in order],
                    cols=args.top,
                ),
                grid,
            )
            print(
                json.dumps(
                    {
                        "erase": path.stem,
                        "setting": tag,
                        "grid": str(grid),
                        "evaluate": {
                            k: run["metrics"].get(k)
                            for k in (
                                "erase removal",
                                "clean removal",
                                "matched clean removal",
                                "silent change",
                                "wall seconds",
                            )
                        },
                        **m,
                    }
                ),
                flush=True,
            )
            lines.append(
                f"| {path.stem} | {tag} | {m['firing']} | {m['bank']} | "
                f"{m['old all']:.3f} | {m[f'old top{args.top}']:.3f} | "
                f"{m['new all']:.3f} | {m[f'new top{args.top}']:.3f} | {m['judged']} |"
            )
    print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
