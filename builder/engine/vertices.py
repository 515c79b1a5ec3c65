"""Progress vertex numbers: one counter per build, shared by the scheduler's steps and the
build's internal vertices (``[internal] load build definition``, ``exporting to image``,
``importing cache manifest``...)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from builder.engine.events import EventSink, VertexStarted, VertexStatus

__all__ = ["Counter", "Vertices"]


@dataclass(slots=True)
class Counter:
    value: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self) -> int:
        with self.lock:
            self.value += 1
            return self.value


class Vertices:
    """Numbers and starts the build's own vertices on ``sink``."""

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink
        self.counter = Counter()

    def run(self, name: str, *statuses: str) -> int:
        n = self.counter.next()
        self.sink.emit(VertexStarted(vertex=n, name=name))
        for s in statuses:
            self.sink.emit(VertexStatus(vertex=n, text=s))
        return n
