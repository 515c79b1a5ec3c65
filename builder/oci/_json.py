"""Canonical JSON and typed accessors over untrusted JSON documents.

Every getter raises ``StoreError`` naming the document and field, so a malformed manifest or
config becomes one clear line instead of a ``KeyError`` or ``TypeError``.
"""

from __future__ import annotations

import json
from typing import Final

from builder.errors import StoreError

# Unknown fields are kept as (key, canonical JSON text of the value) pairs, sorted by key.
Extra = tuple[tuple[str, str], ...]

MAX_JSON_BYTES: Final = 4 * 1024 * 1024


def canonical_json(obj: object) -> bytes:
    """Sorted keys, compact separators, UTF-8: the same value always gives the same bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def load_object(data: bytes, what: str, *, limit: int = MAX_JSON_BYTES) -> dict[str, object]:
    if len(data) > limit:
        raise StoreError(f"{what}: document of {len(data)} bytes exceeds the {limit}-byte limit")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise StoreError(f"{what}: invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise StoreError(f"{what}: expected a JSON object")
    return obj


def as_object(value: object, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise StoreError(f"{what}: expected a JSON object")
    return value


def get_str(d: dict[str, object], key: str, what: str, default: str = "") -> str:
    value = d.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise StoreError(f"{what}: field {key!r} must be a string")
    return value


def get_opt_str(d: dict[str, object], key: str, what: str) -> str | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise StoreError(f"{what}: field {key!r} must be a string")
    return value


def get_int(d: dict[str, object], key: str, what: str, default: int | None = None) -> int:
    value = d.get(key)
    if value is None and default is not None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise StoreError(f"{what}: field {key!r} must be an integer")
    return value


def get_opt_int(d: dict[str, object], key: str, what: str) -> int | None:
    if d.get(key) is None:
        return None
    return get_int(d, key, what)


def get_bool(d: dict[str, object], key: str, what: str) -> bool:
    value = d.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise StoreError(f"{what}: field {key!r} must be a boolean")
    return value


def get_list(d: dict[str, object], key: str, what: str) -> list[object]:
    value = d.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise StoreError(f"{what}: field {key!r} must be an array")
    return value


def get_str_tuple(d: dict[str, object], key: str, what: str) -> tuple[str, ...]:
    items = get_list(d, key, what)
    if not all(isinstance(i, str) for i in items):
        raise StoreError(f"{what}: field {key!r} must be an array of strings")
    return tuple(str(i) for i in items)


def get_str_map(d: dict[str, object], key: str, what: str) -> tuple[tuple[str, str], ...]:
    value = d.get(key)
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise StoreError(f"{what}: field {key!r} must be an object of strings")
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))


def get_key_set(d: dict[str, object], key: str, what: str) -> tuple[str, ...]:
    """A Go ``map[string]struct{}`` such as ``ExposedPorts``: only the keys matter."""
    value = d.get(key)
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise StoreError(f"{what}: field {key!r} must be an object")
    return tuple(sorted(str(k) for k in value))


def extra_of(d: dict[str, object], known: frozenset[str]) -> Extra:
    return tuple(sorted((k, canonical_json(v).decode()) for k, v in d.items() if k not in known))


def put_extra(out: dict[str, object], extra: Extra) -> None:
    for key, text in extra:
        out.setdefault(key, json.loads(text))
