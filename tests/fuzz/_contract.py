"""What every reader fuzz shares: the contract check and the mutation strategies.

The contract of a reader, for any input: it returns a correct result or raises a
:class:`~rewrite.utils.errors.RewriteError` with a message; any other exception is a bug,
and the input file's bytes are the same afterwards.

Usage::

    @fuzz(100)
    @given(data=mutated_json(BASE))
    def test_reader(data, tmp_path_factory):
        path = write_input(tmp_path_factory, json.dumps(data).encode())
        result = reader_contract(EditSpec.load, path)   # None: a clean RewriteError
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from pathlib import Path
from typing import Any, Callable

from hypothesis import HealthCheck, event, settings, strategies as st

from rewrite.utils.errors import RewriteError

#: Every fuzz test runs the same examples on every run and machine: derandomized (a fixed
#: seed), no example database, no deadline (the machine is shared and slow).
_FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.function_scoped_fixture])


#: ``REWRITE_FUZZ_SCALE=20 pytest tests/fuzz`` runs 20 times the examples (a deeper search,
#: still the same fixed sequence for a given scale); the default keeps the fast lane fast.
SCALE = max(1, int(os.environ.get("REWRITE_FUZZ_SCALE", "1")))


def fuzz(max_examples: int) -> settings:
    """The fuzz settings with ``max_examples`` examples (sized so that all of
    ``tests/fuzz`` stays under a minute on two cores), times ``REWRITE_FUZZ_SCALE``."""
    return settings(_FUZZ, max_examples=max_examples * SCALE)


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def reader_contract(read: Callable[[Path], Any], path: Path) -> Any:
    """``read(path)``; returns its result, or None where it raised a RewriteError (whose
    message must not be empty). Any other exception propagates and fails the test; the
    file must be unchanged either way."""
    before = digest(path)
    try:
        result = read(path)
    except RewriteError as e:
        assert str(e).strip(), f"{type(e).__name__} without a message"
        event(f"{read.__name__}: {type(e).__name__}")
        return None
    else:
        event(f"{read.__name__}: read")
        return result
    finally:
        assert digest(path) == before, f"{read.__name__} changed its input {path}"


def write_input(factory, data: bytes, name: str = "input") -> Path:
    """``data`` in a fresh file (hypothesis reruns the body, so no shared ``tmp_path``)."""
    path = factory.mktemp("fuzz") / name
    path.write_bytes(data)
    return path


# -- JSON values -------------------------------------------------------------------------

#: Numbers a reader must not trust: type confusions, bounds, non-finite floats.
HOSTILE_NUMBERS = st.sampled_from([
    0, -1, 1, 2, 3, 7, 255, 2 ** 31, 2 ** 32, 2 ** 63 - 1, 2 ** 63, -(2 ** 63), 10 ** 30,
    10 ** 400, 0.0, -0.0, 0.5, -0.5, 1e-320, 1e15, 1e308, math.inf, -math.inf, math.nan,
])

_scalars = st.one_of(
    st.none(), st.booleans(), HOSTILE_NUMBERS, st.integers(), st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["", "0", "1", "1.0", "nan", "main.3", "main.3.weight", "\ud800", "\x00",
                     "é" * 3, "../../etc/passwd", "data:image/png;base64,AAAA"]),
)

#: Any JSON value (small), with hostile scalars.
json_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


#: Deepest nesting the mutations build. json (and repr) recurse: a value much deeper than
#: this fails or not depending on the stack depth of the caller, which differs between
#: Hypothesis's runs of one example (its replay would not be the same test).
MAX_DEPTH = 700


def _depth(obj) -> int:
    """Nesting depth of a JSON tree (without recursing)."""
    deepest, stack = 0, [(obj, 0)]
    while stack:
        val, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(val, dict):
            stack.extend((v, d + 1) for v in val.values())
        elif isinstance(val, list):
            stack.extend((v, d + 1) for v in val)
    return deepest


@st.composite
def deep_nesting(draw) -> Any:
    """A list or object nested hundreds of levels deep (within what json can parse)."""
    depth = draw(st.sampled_from([50, 300, 600]))
    leaf = draw(_scalars)
    for i in range(depth):
        leaf = [leaf] if (i % 3) else {"k": leaf}
    return leaf


hostile_values = st.one_of(json_values, deep_nesting())


def _paths(obj, prefix=()):
    """Every (path, value) of a JSON tree, the root included."""
    yield prefix, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _mutate_once(draw, obj):
    paths = [p for p, _ in _paths(obj)]
    path = draw(st.sampled_from(paths))
    if not path:                                   # the root itself
        return draw(st.one_of(hostile_values, st.just(obj)))
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1]
    action = draw(st.sampled_from(["replace", "replace", "delete", "rename", "add", "swap"]))
    if action == "replace":
        parent[key] = draw(hostile_values)
    elif action == "delete":
        del parent[key]
    elif action == "rename" and isinstance(parent, dict):
        parent[draw(st.sampled_from([key + "s", key[:-1], key.upper(), "", key + "\u200b"]))] \
            = parent.pop(key)
    elif action == "add":
        target = parent[key]
        if isinstance(target, dict):
            target[draw(st.text(max_size=8))] = draw(hostile_values)
        elif isinstance(target, list):
            target.insert(draw(st.integers(0, len(target))), draw(hostile_values))
        else:
            parent[key] = [target, draw(hostile_values)]
    else:                                          # swap in another node's value
        other = draw(st.sampled_from([v for _, v in _paths(obj)]))
        parent[key] = json.loads(json.dumps(other))
    return obj


@st.composite
def mutated_json(draw, bases: list, max_mutations: int = 3):
    """One of ``bases`` (deep-copied) with 0 to ``max_mutations`` structural mutations:
    a value replaced by another JSON type, a hostile number, a deep nesting or a copy of
    another node; a key deleted, renamed or added; a list element inserted."""
    obj = json.loads(json.dumps(draw(st.sampled_from(bases))))
    for _ in range(draw(st.integers(0, max_mutations))):
        before = json.dumps(obj)
        obj = _mutate_once(draw, obj)
        if _depth(obj) > MAX_DEPTH:            # a deep value nested in another: undo it
            return json.loads(before)
    return obj


# -- bytes -------------------------------------------------------------------------------

@st.composite
def mutated_bytes(draw, data: bytes, max_edits: int = 4):
    """``data`` with byte-level damage: flipped, overwritten, inserted or deleted bytes,
    truncation, or junk appended."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, max_edits))):
        action = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "append"]))
        pos = draw(st.integers(0, max(len(out) - 1, 0)))
        if action == "flip" and out:
            out[pos] ^= 1 << draw(st.integers(0, 7))
        elif action == "set" and out:
            out[pos] = draw(st.sampled_from([0, 0x22, 0x2C, 0x5B, 0x7B, 0x7D, 0x80, 0xFF]))
        elif action == "insert":
            out[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete" and out:
            del out[pos:pos + draw(st.integers(1, 16))]
        elif action == "truncate":
            del out[pos:]
        else:
            out += draw(st.binary(max_size=32))
    return bytes(out)


# -- safetensors headers -----------------------------------------------------------------

def split_safetensors(data: bytes) -> tuple[dict, bytes]:
    """A safetensors file as (header JSON object, the tensor bytes after it)."""
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def join_safetensors(header: dict | str, body: bytes) -> bytes:
    """A safetensors file from a header (an object, or raw text) and the tensor bytes."""
    text = (header if isinstance(header, str) else json.dumps(header)).encode("utf-8",
                                                                            "surrogatepass")
    return struct.pack("<Q", len(text)) + text + body


_DTYPES = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3",
           "X9", "", 7]


@st.composite
def header_mutation(draw, header: dict) -> dict:
    """A safetensors header with one declared field of one tensor changed: its dtype, its
    shape (another rank, a zero, a negative or a huge size) or its data offsets (reversed,
    overlapping, past the end, huge)."""
    header = json.loads(json.dumps(header))
    names = sorted(k for k in header if k != "__metadata__")
    if not names:
        return header
    name = draw(st.sampled_from(names))
    info = header[name]
    field = draw(st.sampled_from(["dtype", "shape", "data_offsets", "drop", "junk"]))
    if field == "dtype":
        info["dtype"] = draw(st.sampled_from(_DTYPES))
    elif field == "shape":
        shape = list(info["shape"])
        choice = draw(st.sampled_from(["size", "add", "remove", "type"]))
        if choice == "size" and shape:
            shape[draw(st.integers(0, len(shape) - 1))] = draw(st.sampled_from(
                [0, 1, 2, 3, -1, 2 ** 31, 2 ** 62, 2 ** 64, 10 ** 20]))
        elif choice == "add":
            shape.insert(draw(st.integers(0, len(shape))), draw(st.sampled_from([1, 2, 0])))
        elif choice == "remove" and shape:
            shape.pop(draw(st.integers(0, len(shape) - 1)))
        else:
            shape = draw(st.sampled_from([None, "4", [1.5], {}, [[2]]]))
        info["shape"] = shape
    elif field == "data_offsets":
        start, end = info["data_offsets"]
        info["data_offsets"] = draw(st.sampled_from([
            [end, start], [start, end + 4], [start, start], [0, end], [start + 1, end + 1],
            [start, 2 ** 63], [2 ** 64 - 8, 2 ** 64], [-1, end], [start], "0,4"]))
    elif field == "drop":
        del header[name]
    else:
        info[draw(st.sampled_from(["extra", "dtype", "shape"]))] = draw(json_values)
    return header
