"""Human-readable sizes as Docker prints them (go-units ``HumanSizeWithPrecision``)."""

from __future__ import annotations

from typing import Final

SIZE_UNITS: Final = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(size: float, precision: int = 3) -> str:
    """Decimal units, ``%.{precision}g`` (``4.26MB``)."""
    i = 0
    while size >= 1000.0 and i < len(SIZE_UNITS) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.{precision}g}{SIZE_UNITS[i]}"
