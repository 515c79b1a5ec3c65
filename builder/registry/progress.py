"""Progress events of pulls and pushes, and a docker-like terminal renderer for the CLI.

``remote.pull``/``push`` emit ``LayerProgress`` values to a sink (any callable); they never print.
``TerminalProgress`` is what the commands plug in: on a terminal it redraws one line per layer
(``\\r`` and cursor-up, throttled); elsewhere it writes only each layer's final status line.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TextIO

from builder.digest import Digest
from builder.units import human_size

_REDRAW_SECONDS: Final = 0.1
_BAR_WIDTH: Final = 40


class Status(enum.Enum):
    """Docker's per-layer status words."""

    PULLING = "Pulling fs layer"
    WAITING = "Waiting"
    DOWNLOADING = "Downloading"
    DOWNLOAD_COMPLETE = "Download complete"
    PULL_COMPLETE = "Pull complete"
    ALREADY_EXISTS = "Already exists"
    PREPARING = "Preparing"
    PUSHING = "Pushing"
    PUSHED = "Pushed"
    LAYER_EXISTS = "Layer already exists"
    MOUNTED = "Mounted from"
    RETRYING = "Retrying"

    @property
    def final(self) -> bool:
        return self in (
            Status.PULL_COMPLETE,
            Status.ALREADY_EXISTS,
            Status.PUSHED,
            Status.LAYER_EXISTS,
            Status.MOUNTED,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerProgress:
    digest: Digest
    status: Status
    current: int = 0
    total: int = 0
    detail: str = ""

    @property
    def line(self) -> str:
        head = f"{self.digest.short}: {self.status.value}"
        if self.detail:
            head += f" {self.detail}"
        if self.status in (Status.DOWNLOADING, Status.PUSHING) and self.total > 0:
            filled = min(_BAR_WIDTH, self.current * _BAR_WIDTH // self.total)
            bar = "=" * max(0, filled - 1) + (">" if filled else "") + " " * (_BAR_WIDTH - filled)
            head += f" [{bar}] {human_size(self.current)}/{human_size(self.total)}"
        return head


ProgressSink = Callable[[LayerProgress], None]


def discard(_: LayerProgress) -> None:
    """A sink that ignores everything (library default)."""


class TerminalProgress:
    """Renders ``LayerProgress`` events to ``stream`` (thread-safe)."""

    def __init__(
        self, stream: TextIO, *, tty: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._tty = tty
        self._clock = clock
        self._lock = threading.Lock()
        self._order: list[Digest] = []
        self._lines: dict[Digest, str] = {}
        self._drawn = 0
        self._last_draw = float("-inf")

    def __call__(self, event: LayerProgress) -> None:
        with self._lock:
            if not self._tty:
                if event.status.final:
                    self._stream.write(event.line + "\n")
                    self._stream.flush()
                return
            if event.digest not in self._lines:
                self._order.append(event.digest)
            self._lines[event.digest] = event.line
            busy = event.status in (Status.DOWNLOADING, Status.PUSHING)
            now = self._clock()
            if busy and now - self._last_draw < _REDRAW_SECONDS:
                return
            self._last_draw = now
            self._redraw()

    def _redraw(self) -> None:
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}A")
        for digest in self._order:
            out.append("\r\x1b[2K" + self._lines[digest] + "\n")
        self._drawn = len(self._order)
        self._stream.write("".join(out))
        self._stream.flush()

    def close(self) -> None:
        """Draw the final state once more (a throttled update may have been skipped)."""
        with self._lock:
            if self._tty and self._order:
                self._redraw()
