"""Render progress events the way BuildKit does: ``plain`` lines or a redrawn ``tty`` view."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import TextIO

from builder.engine.events import (
    Event,
    VertexCached,
    VertexDone,
    VertexExplain,
    VertexLog,
    VertexStarted,
    VertexStatus,
    Warning_,
)

TAIL_LINES = 6  # lines of a running step's output shown live on a terminal


@dataclass(slots=True)
class _Vertex:
    number: int
    name: str
    started: float
    finished: float | None = None
    cached: bool = False
    error: str | None = None
    statuses: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)
    partial: bytes = b""


def warnings_block(messages: list[str]) -> str:
    """The build's warnings, printed once at its end as BuildKit's clients do."""
    if not messages:
        return ""
    count = f"{len(messages)} warning" + ("s" if len(messages) > 1 else "")
    return f"\n{count} found:\n" + "".join(f" - {m}\n" for m in messages)


class PlainProgress:
    """BuildKit's ``--progress=plain``: ``#N name``, ``#N 0.123 output``, ``#N DONE 0.3s``."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._vertices: dict[int, _Vertex] = {}
        self._last: int | None = None
        self._started = time.monotonic()
        self._warnings: list[str] = []

    def _header(self, v: _Vertex) -> None:
        if self._last != v.number:
            self._out.write("\n" if self._last is not None else "")
            self._last = v.number

    def emit(self, event: Event) -> None:
        with self._lock:
            self._emit(event)
            self._out.flush()

    def _emit(self, event: Event) -> None:
        match event:
            case VertexStarted(vertex=n, name=name, at=at):
                v = self._vertices[n] = _Vertex(number=n, name=name, started=at)
                self._header(v)
                self._out.write(f"#{n} {name}\n")
            case VertexCached(vertex=n, name=name):
                v = self._vertices.setdefault(
                    n, _Vertex(number=n, name=name, started=time.monotonic())
                )
                v.cached = True
                self._header(v)
                self._out.write(f"#{n} {name}\n#{n} CACHED\n")
            case VertexStatus(vertex=n, text=text):
                v = self._vertices[n]
                self._header(v)
                self._out.write(f"#{n} {text}\n")
            case VertexExplain(vertex=n, reason=reason):
                v = self._vertices[n]
                self._header(v)
                self._out.write(f"#{n} cache miss: {reason}\n")
            case VertexLog(vertex=n, data=data, at=at):
                v = self._vertices[n]
                self._header(v)
                text = (v.partial + data).decode("utf-8", "replace")
                lines = text.split("\n")
                v.partial = lines.pop().encode()
                for line in lines:
                    self._out.write(f"#{n} {at - v.started:.3f} {line}\n")
            case VertexDone(vertex=n, error=error, at=at):
                v = self._vertices[n]
                self._header(v)
                if v.partial:
                    self._out.write(
                        f"#{n} {at - v.started:.3f} {v.partial.decode(errors='replace')}\n"
                    )
                    v.partial = b""
                if v.cached:
                    return
                if error is None:
                    self._out.write(f"#{n} DONE {at - v.started:.1f}s\n")
                else:
                    self._out.write(f"#{n} ERROR: {error}\n")
            case Warning_(message=message):
                self._warnings.append(message)

    def close(self, *, ok: bool) -> None:
        with self._lock:
            self._out.write(warnings_block(self._warnings))
            self._out.flush()


class TtyProgress:
    """BuildKit's terminal view: ``[+] Building 3.2s (9/9) FINISHED`` and one line per step,
    with a live tail of the running steps' output; redrawn at most ten times a second."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._vertices: dict[int, _Vertex] = {}
        self._started = time.monotonic()
        self._drawn = 0
        self._last_draw = 0.0
        self._messages: list[str] = []

    def emit(self, event: Event) -> None:
        with self._lock:
            match event:
                case VertexStarted(vertex=n, name=name, at=at):
                    self._vertices[n] = _Vertex(number=n, name=name, started=at)
                case VertexCached(vertex=n, name=name):
                    v = self._vertices.setdefault(
                        n, _Vertex(number=n, name=name, started=time.monotonic())
                    )
                    v.cached = True
                    v.finished = v.started
                case VertexStatus(vertex=n, text=text):
                    self._vertices[n].statuses.append(text)
                case VertexExplain(vertex=n, reason=reason):
                    self._vertices[n].statuses.append(f"cache miss: {reason}")
                case VertexLog(vertex=n, data=data):
                    v = self._vertices[n]
                    text = (v.partial + data).decode("utf-8", "replace")
                    lines = text.split("\n")
                    v.partial = lines.pop().encode()
                    v.tail = (v.tail + lines)[-TAIL_LINES:]
                case VertexDone(vertex=n, error=error, at=at):
                    v = self._vertices[n]
                    v.finished = at
                    v.error = error
                case Warning_(message=message):
                    self._messages.append(message)
            now = time.monotonic()
            if now - self._last_draw >= 0.1 or isinstance(event, VertexDone):
                self._draw(final=False)
                self._last_draw = now

    def _lines(self, *, final: bool, ok: bool = True) -> list[str]:
        # lazy: shutil loads the compression modules, which plain output never needs
        import shutil

        width = max(40, shutil.get_terminal_size((100, 24)).columns - 1)
        total = len(self._vertices)
        done = sum(1 for v in self._vertices.values() if v.finished is not None)
        elapsed = time.monotonic() - self._started
        state = ("FINISHED" if ok else "ERROR") if final else ""
        lines = [f"[+] Building {elapsed:.1f}s ({done}/{total}) {state}".rstrip()]
        for v in sorted(self._vertices.values(), key=lambda x: x.number):
            label = f" => {'CACHED ' if v.cached else ''}{'ERROR ' if v.error else ''}{v.name}"
            end = v.finished if v.finished is not None else time.monotonic()
            secs = "" if v.cached else f"{end - v.started:.1f}s"
            room = width - len(secs) - 1
            if len(label) > room:
                label = label[: room - 1] + "…"
            lines.append(label.ljust(room) + " " + secs)
            for status in v.statuses:
                lines.append(f" => => {status}"[:width])
            if v.finished is None or v.error:
                for t in v.tail:
                    lines.append(f" => => # {t}"[:width])
        return lines

    def _draw(self, *, final: bool, ok: bool = True) -> None:
        lines = self._lines(final=final, ok=ok)
        if self._drawn:
            self._out.write(f"\x1b[{self._drawn}F")
        for line in lines:
            self._out.write(line + "\x1b[K\n")
        self._out.write("\x1b[J")
        self._drawn = len(lines)
        self._out.flush()

    def close(self, *, ok: bool) -> None:
        with self._lock:
            self._draw(final=True, ok=ok)
            self._out.write(warnings_block(self._messages))
            self._out.flush()


class QuietProgress:
    """``-q``: nothing but warnings while building (the CLI prints the image ID at the end)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def emit(self, event: Event) -> None:
        if isinstance(event, Warning_):
            self._out.write(f"WARNING: {event.message}\n")

    def close(self, *, ok: bool) -> None:
        pass


def make_sink(
    mode: str, out: TextIO, *, quiet: bool = False
) -> PlainProgress | TtyProgress | QuietProgress:
    """``auto`` means ``tty`` on a terminal (unless TERM=dumb), else ``plain``."""
    if quiet:
        return QuietProgress(out)
    if mode == "auto":
        tty = out.isatty() and os.environ.get("TERM", "") != "dumb"
        mode = "tty" if tty else "plain"
    if mode == "tty":
        return TtyProgress(out)
    return PlainProgress(out)
