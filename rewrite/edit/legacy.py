"""Import edits saved by the paper's original tool.

That format is a JSON object with ``object`` (the copy), ``paste`` and ``key``
(the context list); each entry is ``[sample_index, "data:image/png;base64,..."]``
and an erase edit has only ``key``. It stores neither layer nor rank, so they
are given here. PNG masks of another size than the model's images are
resampled (by area) to the model's resolution.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..utils.errors import SpecError
from .masks import decode_png, encode_png
from .spec import EditSpec, Selection


def _entry(val: Any, where: str, problems: list[str]):
    if isinstance(val, list) and len(val) == 1 and isinstance(val[0], list):
        val = val[0]
    if (
        not isinstance(val, list)
        or len(val) != 2
        or isinstance(val[0], bool)
        or not isinstance(val[0], int)
        or not isinstance(val[1], str)
    ):
        problems.append(f'{where} must be [sample_index, "data:image/png;base64,..."]')
        return None
    return val[0], val[1]


def _resampled_png(data: str, size: int, where: str, problems: list[str]) -> dict | None:
    try:
        img = decode_png(data)
    except Exception as e:  # noqa: BLE001 - reported
        problems.append(f"{where}: {e}")
        return None
    if "A" in img.getbands():
        arr = np.asarray(img.getchannel("A"), np.float32) / 255
    else:
        arr = np.asarray(img.convert("L"), np.float32) / 255
    if arr.shape != (size, size):
        t = torch.from_numpy(arr)[None, None]
        arr = torch.nn.functional.interpolate(t, size=(size, size), mode="area")[0, 0].numpy()
    return {"png": encode_png(arr)}


def import_legacy(
    obj: Any,
    model: str,
    layer: str,
    image_size: int,
    rank: int = 1,
    direction: str | None = None,
    name: str = "",
) -> EditSpec:
    """Turn an original-tool edit into an :class:`EditSpec`.

    Args:
        obj: the parsed JSON of the saved edit.
        model, layer, rank: what the old format does not store.
        image_size: the model's image resolution (masks are resampled to it).
        direction: ``mean`` or ``zca`` (default: ``mean`` for rank 1, else ``zca``).
    """
    problems: list[str] = []
    if not isinstance(obj, dict) or "key" not in obj:
        raise SpecError(
            [
                "not an edit of the original tool: expected an object with 'key' "
                "(and 'object' and 'paste' for a copy-paste edit)"
            ]
        )
    keys = obj["key"] if isinstance(obj["key"], list) else []
    context = []
    for i, entry in enumerate(keys):
        e = _entry(entry, f"key[{i}]", problems)
        if e:
            mask = _resampled_png(e[1], image_size, f"key[{i}]", problems)
            context.append(Selection(e[0], mask))
    has_copy = "object" in obj or "paste" in obj
    copy = paste = None
    if has_copy:
        for field in ("object", "paste"):
            if field not in obj:
                problems.append(f"a copy-paste edit needs {field!r}")
        if "object" in obj and (e := _entry(obj["object"], "object", problems)):
            copy = Selection(e[0], _resampled_png(e[1], image_size, "object", problems))
        if "paste" in obj and (e := _entry(obj["paste"], "paste", problems)):
            paste = Selection(e[0], _resampled_png(e[1], image_size, "paste", problems))
    if problems:
        raise SpecError(problems)
    spec = EditSpec(
        model=model,
        layer=layer,
        kind="copy-paste" if has_copy else "erase",
        rank=rank,
        direction=direction or ("mean" if rank == 1 else "zca"),
        copy=copy,
        paste=paste,
        context=context,
        name=name,
        description="imported from the original rewriting tool",
    )
    own = spec._own_problems()
    if own:
        raise SpecError(own)
    return spec
