"""Docker's output formatting for the image commands: names, IDs, times, sizes and tables.

Formatting follows the docker CLI: tables are laid out like Go's ``tabwriter`` with the CLI's
settings (minimum cell width 10, padding 3, the last column not padded), sizes use
``go-units`` (:func:`builder.units.human_size`), and ages read "2 hours ago". Nothing here
reads the store.
"""

from __future__ import annotations

import datetime
import re
import time
import unicodedata
from collections.abc import Sequence
from typing import Final

from builder.digest import Digest
from builder.errors import InvalidReferenceError
from builder.reference import parse_normalized

_TABLE_MIN_WIDTH: Final = 10
_TABLE_PADDING: Final = 3
_FRACTION_RE: Final = re.compile(r"\.(\d+)")


# -- names and IDs ----------------------------------------------------------------------------


def familiar(name: str) -> str:
    """``docker.io/library/busybox:latest`` -> ``busybox:latest`` (Docker's display form)."""
    try:
        return parse_normalized(name).familiar
    except InvalidReferenceError:
        return name


def short_id(digest: Digest | str) -> str:
    """Docker's ``TruncateID``: drop the algorithm, keep 12 characters."""
    text = str(digest)
    text = text.partition(":")[2] if ":" in text else text
    return text[:12]


# -- times ------------------------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """go-units ``HumanDuration`` ("Less than a second", "About an hour", "3 weeks", ...)."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def parse_created(created: str | None) -> datetime.datetime | None:
    """An RFC 3339 timestamp as images carry it (nanoseconds allowed), or None."""
    if not created:
        return None
    text = _FRACTION_RE.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), created.strip(), 1)
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when


def created_since(created: str | None, *, now: float | None = None) -> str:
    """``2 weeks ago``; ``N/A`` when the image has no (valid) creation time."""
    when = parse_created(created)
    if when is None:
        return "N/A"
    current = time.time() if now is None else now
    return human_duration(current - when.timestamp()) + " ago"


def created_at(created: str | None) -> str:
    """Go's ``time.Time.String()`` in local time: ``2024-05-01 10:00:00 +0000 UTC``."""
    when = parse_created(created)
    if when is None:
        return ""
    local = when.astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S %z ") + (local.tzname() or "")


def created_rfc3339(created: str | None) -> str:
    """Seconds-precision RFC 3339 (what ``docker history --human=false`` prints)."""
    when = parse_created(created)
    if when is None:
        return ""
    local = when.astimezone()
    text = local.isoformat(timespec="seconds")
    return text.replace("+00:00", "Z") if local.utcoffset() == datetime.timedelta(0) else text


# -- tables -----------------------------------------------------------------------------------


def table(rows: Sequence[Sequence[str]]) -> str:
    """Lay out rows like Go's ``tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)``.

    Every cell but the last of a row is padded to its column's width (widest cell + 3, at
    least 10); the last cell is written as is, so a row whose last cell is empty keeps the
    padding of the cell before it, as Docker's output does.
    """
    if not rows:
        return ""
    columns = max(len(r) for r in rows) - 1
    widths = [_TABLE_MIN_WIDTH] * max(columns, 0)
    for row in rows:
        for j, cell in enumerate(row[:-1]):
            widths[j] = max(widths[j], len(cell) + _TABLE_PADDING)
    lines = []
    for row in rows:
        head = "".join(cell.ljust(widths[j]) for j, cell in enumerate(row[:-1]))
        lines.append(head + (row[-1] if row else ""))
    return "\n".join(lines) + "\n"


def _rune_width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def ellipsis(text: str, width: int) -> str:
    """docker/cli ``formatter.Ellipsis``: cut to ``width`` display cells ending in ``…``."""
    if width <= 0:
        return ""
    if width == 1:
        return text[:1]
    if text.isascii():
        return text if len(text) <= width else text[: width - 1] + "…"
    total = 0
    ends: list[int] = []
    for ch in text:
        total += _rune_width(ch)
        ends.append(total)
    if total <= width:
        return text
    for i in range(len(ends) - 1):
        if ends[i] <= width - 1 < ends[i + 1]:
            return text[: i + 1] + "…"
    return text


def go_json_escape(text: str) -> str:
    """Escape ``<``, ``>`` and ``&`` as Go's ``encoding/json`` does (``\\u003cnone\\u003e``)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
