"""Parse sample lists such as ``0-31``, ``3,7,9`` or ``0-7,100-103``."""

from __future__ import annotations

import re

from ..models.latents import MAX_SAMPLES
from ..utils.errors import SeedSpecError

#: Refuse lists longer than this; a typo like ``0-10000000`` would run for hours.
MAX_SEEDS = 1_000_000


def parse_seeds(text: str) -> list[int]:
    """Turn ``"0-3,10"`` into ``[0, 1, 2, 3, 10]`` (ranges inclusive, order kept).

    Raises:
        SeedSpecError: empty parts, non-numbers, negative numbers, or a range
            whose end is below its start.
    """
    seeds: list[int] = []
    if not text or not text.strip():
        raise SeedSpecError("empty seed list; write e.g. 0-31 or 1,5,9")
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            # Plain digits only: int() would also take "1_0", "+3" or "٣".
            if not all(re.fullmatch(r"[0-9]+", x.strip()) for x in ([lo, hi] if sep else [part])):
                raise ValueError(part)
            if not sep:
                start = end = int(part)
            else:
                start, end = int(lo), int(hi)
        except ValueError:
            raise SeedSpecError(
                f"cannot read {part!r} in seed list {text!r}: use non-negative "
                "integers and ranges like 0-31, separated by commas"
            ) from None
        if start < 0 or end < 0:
            raise SeedSpecError(f"seeds must be non-negative, got {part!r}")
        if end >= MAX_SAMPLES:
            raise SeedSpecError(f"seeds must be below {MAX_SAMPLES}, got {part!r}")
        if end < start:
            raise SeedSpecError(
                f"seed range {part} is empty: its end is below its start "
                f"(did you mean {end}-{start}?)"
            )
        if len(seeds) + end - start + 1 > MAX_SEEDS:
            raise SeedSpecError(f"seed list {text!r} names more than {MAX_SEEDS} samples")
        seeds.extend(range(start, end + 1))
    return seeds
