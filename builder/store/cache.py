"""Build cache records: CacheKey digest -> the blobs a cached step produced (GC roots).

One JSON file per key under ``cache/``, written atomically and only after its blobs are
committed (S9). The index is disposable: a record that does not parse is renamed to ``.bak``
and treated as a miss, and a record whose blobs are gone is a miss too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from builder.digest import Digest
from builder.errors import StoreError
from builder.oci._json import (
    as_object,
    canonical_json,
    get_list,
    get_str,
    get_str_map,
    load_object,
)
from builder.oci.descriptor import Descriptor
from builder.store.cas import ContentStore
from builder.store.fsutil import atomic_write
from builder.timings import phase

MAX_RECORD_BYTES = 1 << 20

Warn: TypeAlias = Callable[[str], None]  # takes a warning for the user


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheRecord:
    """What a cached step produced.

    ``roots`` are kept alive by GC (manifests and indexes are walked to their blobs);
    ``metadata`` is engine-defined (e.g. the diff_id, the resulting config digest).
    """

    key: Digest
    roots: tuple[Descriptor, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    created: str = ""

    def get(self, name: str) -> str | None:
        for k, v in self.metadata:
            if k == name:
                return v
        return None

    def to_bytes(self) -> bytes:
        return canonical_json(
            {
                "key": str(self.key),
                "roots": [d.to_json() for d in self.roots],
                "metadata": dict(self.metadata),
                "created": self.created,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes, what: str) -> CacheRecord:
        d = load_object(data, what, limit=MAX_RECORD_BYTES)
        key_text = get_str(d, "key", what)
        return cls(
            key=Digest.parse(key_text),
            roots=tuple(
                Descriptor.from_json(as_object(v, what), f"{what} root {i}")
                for i, v in enumerate(get_list(d, "roots", what))
            ),
            metadata=get_str_map(d, "metadata", what),
            created=get_str(d, "created", what),
        )


class CacheIndex:
    def __init__(self, directory: Path, cas: ContentStore) -> None:
        self.dir = directory
        self._cas = cas

    def _path(self, key: Digest) -> Path:
        return self.dir / f"{key.hex}.json"

    def put(self, record: CacheRecord) -> None:
        for root in record.roots:
            if not self._cas.has(root.digest):
                raise StoreError(
                    f"cache record {record.key}: blob {root.digest} is not in the store"
                )
        with phase("cache record write (fsync, rename, fsync dir)"):
            atomic_write(self._path(record.key), record.to_bytes())

    def _load(self, path: Path, on_corrupt: Warn | None = None) -> CacheRecord | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            record = CacheRecord.from_bytes(data, f"cache record {path.name}")
        except StoreError as exc:
            aside = path.with_name(path.name + ".bak")
            with contextlib.suppress(OSError):
                os.replace(path, aside)
            if on_corrupt is not None:
                on_corrupt(
                    f"cache record {path} is corrupt ({exc.message}): set aside as {aside.name},"
                    " the step is a cache miss"
                )
            return None
        if path.name != f"{record.key.hex}.json":
            return None
        return record

    def get(self, key: Digest, *, on_corrupt: Warn | None = None) -> CacheRecord | None:
        """The record for ``key``, or None (missing, corrupt, or its blobs are gone); a corrupt
        record is renamed to ``.bak`` and reported to ``on_corrupt``."""
        record = self._load(self._path(key), on_corrupt)
        if record is None:
            return None
        if not all(self._cas.has(r.digest) for r in record.roots):
            return None
        return record

    def delete(self, key: Digest) -> bool:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def records(self) -> Iterator[CacheRecord]:
        """Every readable record (corrupt ones are set aside as ``.bak``)."""
        with os.scandir(self.dir) as it:
            names = sorted(e.name for e in it if e.name.endswith(".json"))
        for name in names:
            record = self._load(self.dir / name)
            if record is not None:
                yield record
