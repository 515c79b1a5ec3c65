"""A container's output, as conmon keeps it in ``ctr.log``.

conmon writes one record per line in the CRI ("k8s-file") format:
``<RFC 3339 nanosecond time> <stdout|stderr> <F|P> <text>``, ``P`` marking a partial line that
the next record continues. When the file reaches ``--log-size-max`` conmon starts it afresh
(rotation by size, keeping no old file). ``pybuild logs`` reads it back as ``docker logs``
prints: stdout to stdout, stderr to stderr, ``-t`` prefixing docker's timestamps.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from builder.errors import BuildError
from builder.units import parse_duration


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    time: str  # RFC 3339 with nanoseconds, as conmon wrote it
    stream: str  # stdout | stderr
    data: bytes  # the line with its newline (unless the output ended without one)

    @property
    def timestamp(self) -> float:
        return _epoch(self.time)

    def docker_time(self) -> str:
        """docker's ``-t`` format: ``2026-12-07T00:37:00.289723194Z``."""
        stamp = self.time
        for suffix in ("+00:00", "Z"):
            if stamp.endswith(suffix):
                return stamp[: -len(suffix)] + "Z"
        return stamp


def _epoch(stamp: str) -> float:
    main, _, rest = stamp.partition(".")
    fraction = ""
    zone = "+00:00"
    for i, ch in enumerate(rest):
        if not ch.isdigit():
            fraction, zone = rest[:i], rest[i:]
            break
    else:
        fraction = rest
    if zone == "Z":
        zone = "+00:00"
    when = datetime.datetime.fromisoformat(main + zone)
    return when.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def parse_records(data: bytes) -> Iterator[Entry]:
    """Entries of whole lines of ``data`` (partial records joined)."""
    pending: dict[str, tuple[str, bytes]] = {}
    for raw in data.split(b"\n"):
        if not raw:
            continue
        parts = raw.split(b" ", 3)
        if len(parts) < 3:
            continue
        stamp, stream, tag = (p.decode(errors="replace") for p in parts[:3])
        text = parts[3] if len(parts) == 4 else b""
        first, so_far = pending.pop(stream, (stamp, b""))
        if tag == "P":
            pending[stream] = (first, so_far + text)
            continue
        yield Entry(time=first, stream=stream, data=so_far + text + b"\n")
    for stream, (stamp, text) in pending.items():
        if text:
            yield Entry(time=stamp, stream=stream, data=text)


def parse_since(text: str, *, now: float | None = None) -> float:
    """``--since``: a Unix time, an RFC 3339 time, or a duration before now (``10m``)."""
    current = time.time() if now is None else now
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return _epoch(text if any(c in text[10:] for c in "Z+-") else text + "Z")
    except ValueError:
        pass
    try:
        return current - parse_duration(text) / 1e9
    except BuildError:
        raise BuildError(f'invalid value for "since": {text}') from None
    except ValueError:
        raise BuildError(f'invalid value for "since": {text}') from None


Writer = Callable[[Entry], None]


def read_logs(
    path: Path,
    write: Writer,
    *,
    tail: int | None = None,
    since: float | None = None,
    follow: Callable[[], bool] | None = None,
) -> None:
    """Write the log's entries; with ``follow``, keep reading while it returns True."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    end = data.rfind(b"\n") + 1
    entries = [e for e in parse_records(data[:end]) if since is None or e.timestamp >= since]
    if tail is not None:
        entries = entries[-tail:] if tail > 0 else []
    for entry in entries:
        write(entry)
    if follow is None:
        return
    offset, inode, buffer = end, _inode(path), b""
    while True:
        running = follow()
        try:
            with open(path, "rb") as f:
                if os.fstat(f.fileno()).st_ino != inode:  # started afresh (rotation)
                    inode, offset, buffer = os.fstat(f.fileno()).st_ino, 0, b""
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            offset += len(chunk)
            buffer += chunk
            cut = buffer.rfind(b"\n") + 1
            for entry in parse_records(buffer[:cut]):
                write(entry)
            buffer = buffer[cut:]
        elif not running:
            return
        else:
            time.sleep(0.05)


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return 0
