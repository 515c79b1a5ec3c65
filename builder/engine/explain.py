"""Why a step missed the cache: diff what defined it now against what defined it last time.

Each executed or cached step leaves a small record (its key, parent key, named input values and
the digests of the files it read) under the build's identity (context + Dockerfile + stage +
position). On a miss the new record is compared with the old one, and the first difference that
explains the new key is named: a changed file, a changed ARG/ENV value, a changed instruction,
or a changed parent step. No other builder tells its users this.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.digest import Digest
from builder.oci.types import canonical_json

MAX_NAMED = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRecord:
    key: str
    parent: str
    values: tuple[tuple[str, str], ...]
    files: tuple[tuple[str, str], ...] = ()  # (path, content digest) of the files read

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "parent": self.parent,
            "values": [list(v) for v in self.values],
            "files": [list(f) for f in self.files],
        }

    @classmethod
    def from_json(cls, data: Any) -> StepRecord | None:
        try:
            return cls(
                key=str(data["key"]),
                parent=str(data["parent"]),
                values=tuple((str(k), str(v)) for k, v in data["values"]),
                files=tuple((str(p), str(d)) for p, d in data["files"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def _short(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_NAMED])
    more = len(items) - MAX_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


def explain_miss(previous: StepRecord | None, current: StepRecord) -> str:
    """One line saying why ``current`` was not found in the cache."""
    if previous is None:
        return "no previous build of this step"
    if previous.key == current.key:
        return "the cached layer is gone (pruned)"
    old_values = dict(previous.values)
    new_values = dict(current.values)
    changed = []
    for name in sorted(set(old_values) | set(new_values)):
        before, after = old_values.get(name), new_values.get(name)
        if before == after:
            continue
        if before is None:
            changed.append(f"{name} added ({_short(after or '')!r})")
        elif after is None:
            changed.append(f"{name} removed (was {_short(before)!r})")
        else:
            changed.append(f"{name} changed from {_short(before)!r} to {_short(after)!r}")
    if changed:
        return _names(changed)
    old_files = dict(previous.files)
    new_files = dict(current.files)
    files = [
        p for p in sorted(set(old_files) | set(new_files)) if old_files.get(p) != new_files.get(p)
    ]
    if files:
        added = [p for p in files if p not in old_files]
        removed = [p for p in files if p not in new_files]
        modified = [p for p in files if p in old_files and p in new_files]
        parts = []
        if modified:
            parts.append(
                f"file {_names(modified)} changed"
                if len(modified) == 1
                else f"files {_names(modified)} changed"
            )
        if added:
            parts.append(f"{_names(added)} added")
        if removed:
            parts.append(f"{_names(removed)} removed")
        return "; ".join(parts)
    if previous.parent != current.parent:
        return "a previous step changed"
    return "the step's inputs changed"


class MissRecords:
    """Each step's last record, one file per step under ``directory`` (the store's buildinfo),
    named by the step's identity: the build (``build``: context + Dockerfile), the stage and
    the step's position in it."""

    def __init__(self, directory: Path, build: str) -> None:
        self.directory = directory
        self.build = build

    def identity(self, stage: str | int, position: int) -> str:
        data = canonical_json({"build": self.build, "stage": stage, "step": position})
        return Digest.of_bytes(data).hex

    def _path(self, identity: str) -> Path:
        return self.directory / f"{identity}.json"

    def known(self, identity: str) -> bool:
        """Whether this step was built in this store before."""
        return self._path(identity).exists()

    def recall(self, identity: str) -> StepRecord | None:
        try:
            data = json.loads(self._path(identity).read_bytes())
        except (OSError, ValueError):
            return None
        return StepRecord.from_json(data)

    def remember(self, identity: str, record: StepRecord) -> None:
        path = self._path(identity)
        data = canonical_json(record.to_json())
        try:
            if path.read_bytes() == data:
                return  # a cache hit records what the last build of this step recorded
        except OSError:
            path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
