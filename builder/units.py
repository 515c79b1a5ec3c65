"""Sizes, durations and booleans, read and written the way Docker and Go do.

* :func:`human_size`: go-units ``HumanSizeWithPrecision`` (``4.26MB``), for listings.
* :func:`ram_in_bytes`: go-units ``RAMInBytes`` (``512m``, ``1.5GiB``), for ``RUN --mount``'s
  tmpfs ``size`` and ``build --memory``.
* :func:`parse_duration` / :func:`format_duration`: Go's ``time.ParseDuration`` and
  ``Duration.String``, for HEALTHCHECK's intervals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from builder.errors import InvalidInstructionError

SIZE_UNITS: Final = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_bool(text: str) -> bool | None:
    """Go's ``strconv.ParseBool``: ``None`` when ``text`` is not one of its twelve spellings."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def human_size(size: float, precision: int = 3) -> str:
    """Decimal units, ``%.{precision}g`` (``4.26MB``)."""
    i = 0
    while size >= 1000.0 and i < len(SIZE_UNITS) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.{precision}g}{SIZE_UNITS[i]}"


_GO_FLOAT: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

_SIZE_UNITS: Mapping[str, int] = MappingProxyType(
    {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
)


def ram_in_bytes(value: str) -> int | None:
    """docker/go-units ``RAMInBytes`` (binary multiples); ``None`` when invalid."""
    sep = -1
    for i in range(len(value) - 1, -1, -1):
        if value[i] in "0123456789. ":
            sep = i
            break
    if sep == -1:
        return None
    if value[sep] != " ":
        number, suffix = value[: sep + 1], value[sep + 1 :]
    else:
        number, suffix = value[:sep], value[sep + 1 :]
    if not _GO_FLOAT.fullmatch(number):
        return None
    size = float(number)
    if size < 0 or size == float("inf"):  # Go's ParseFloat reports a range error for inf
        return None
    if suffix:
        lowered = suffix.lower()
        if len(lowered) > 3:
            return None
        if lowered[0] == "b":
            if len(lowered) > 1:
                return None
        else:
            mul = _SIZE_UNITS.get(lowered[0])
            if mul is None:
                return None
            if (len(lowered) == 2 and lowered[1] != "b") or (
                len(lowered) == 3 and lowered[1:] != "ib"
            ):
                return None
            size *= mul
    return int(size) if size < 2**63 else 2**63 - 1


_DURATION_UNITS: Mapping[str, int] = MappingProxyType(
    {
        "ns": 1,
        "us": 1_000,
        "\u00b5s": 1_000,
        "\u03bcs": 1_000,
        "ms": 1_000_000,
        "s": 1_000_000_000,
        "m": 60_000_000_000,
        "h": 3_600_000_000_000,
    }
)
_MAX_DURATION = 2**63


def _time_quote(s: str) -> str:
    """Go ``time`` package's ``quote``: non-ASCII and control bytes as ``\\xNN``."""
    out = ['"']
    for ch in s:
        if ch < " " or ord(ch) >= 0x80:
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogateescape"))
        else:
            if ch in '"\\':
                out.append("\\")
            out.append(ch)
    out.append('"')
    return "".join(out)


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration``, in nanoseconds, with Go's error messages."""

    def invalid() -> InvalidInstructionError:
        return InvalidInstructionError(f"time: invalid duration {_time_quote(text)}")

    s = text
    negative = False
    if s[:1] in ("-", "+"):
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise invalid()
    total = 0
    n = len(s)
    i = 0
    while i < n:
        if not (s[i] == "." or "0" <= s[i] <= "9"):
            raise invalid()
        start = i
        whole = 0
        while i < n and "0" <= s[i] <= "9":
            whole = whole * 10 + ord(s[i]) - 48
            if whole > _MAX_DURATION:
                raise invalid()
            i += 1
        has_whole = i > start
        fraction, scale, has_fraction = 0, 1, False
        if i < n and s[i] == ".":
            i += 1
            start = i
            overflow = False
            while i < n and "0" <= s[i] <= "9":
                if not overflow:
                    nxt = fraction * 10 + ord(s[i]) - 48
                    if fraction > (_MAX_DURATION - 1) // 10 or nxt > _MAX_DURATION:
                        overflow = True
                    else:
                        fraction = nxt
                        scale *= 10
                i += 1
            has_fraction = i > start
        if not has_whole and not has_fraction:
            raise invalid()
        start = i
        while i < n and not (s[i] == "." or "0" <= s[i] <= "9"):
            i += 1
        if i == start:
            raise InvalidInstructionError(f"time: missing unit in duration {_time_quote(text)}")
        unit_text = s[start:i]
        unit = _DURATION_UNITS.get(unit_text)
        if unit is None:
            raise InvalidInstructionError(
                f"time: unknown unit {_time_quote(unit_text)} in duration {_time_quote(text)}"
            )
        if whole > _MAX_DURATION // unit:
            raise invalid()
        value = whole * unit
        if fraction > 0:
            value += int(float(fraction) * (float(unit) / scale))
            if value > _MAX_DURATION:
                raise invalid()
        total += value
        if total > _MAX_DURATION:
            raise invalid()
    if negative:
        return -total
    if total > _MAX_DURATION - 1:
        raise invalid()
    return total


def format_duration(nanos: int) -> str:
    """Go's ``time.Duration.String()``: exact, and read back by ``time.ParseDuration``."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    u = abs(nanos)
    if u < 1_000_000_000:
        for unit, size, digits in (("ns", 1, 0), ("µs", 1_000, 3), ("ms", 1_000_000, 6)):
            if u < size * 1000:
                return sign + _decimal(u, size, digits) + unit
    seconds, fraction = divmod(u, 1_000_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    text = _decimal(seconds * 1_000_000_000 + fraction, 1_000_000_000, 9) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


def _decimal(value: int, size: int, digits: int) -> str:
    whole, frac = divmod(value, size)
    if not frac:
        return str(whole)
    return f"{whole}." + f"{frac:0{digits}d}".rstrip("0")
