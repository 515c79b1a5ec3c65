"""Progress events: what the engine reports while it builds; sinks render them.

The engine never prints; it emits these values to an :class:`EventSink` (the CLI picks one from
``--progress``). A *vertex* is one line of BuildKit-style progress: an internal step (loading the
Dockerfile, the context, base image metadata, exporting) or a build step (``[build 2/4] RUN make``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class VertexStarted:
    vertex: int
    name: str
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True, kw_only=True)
class VertexCached:
    vertex: int
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VertexLog:
    vertex: int
    data: bytes
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True, kw_only=True)
class VertexStatus:
    """A sub-line of a vertex, e.g. ``transferring context: 2.1kB done``."""

    vertex: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VertexExplain:
    """Why a step was not taken from the cache (pybuild's own addition)."""

    vertex: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VertexDone:
    vertex: int
    error: str | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True, kw_only=True)
class Warning_:
    message: str


Event = (
    VertexStarted | VertexCached | VertexLog | VertexStatus | VertexExplain | VertexDone | Warning_
)


class EventSink(Protocol):
    def emit(self, event: Event) -> None: ...

    def close(self, *, ok: bool) -> None: ...


@dataclass(slots=True)
class RecordingSink:
    """Keeps every event (tests, and the ``--progress=rawjson``-style dump)."""

    events: list[Event] = field(default_factory=list)

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def close(self, *, ok: bool) -> None:
        pass
