"""Debug lines on stderr, ``DEBUG: ...``: on with ``PYBUILD_DEBUG=1`` or ``pybuild -D``/``--debug``
(docker's global flag), off otherwise at the cost of one dictionary lookup."""

from __future__ import annotations

import os
import sys
from typing import Final

from builder.units import parse_bool

ENV: Final = "PYBUILD_DEBUG"


def enabled() -> bool:
    return parse_bool(os.environ.get(ENV, "")) is True


def log(message: str) -> None:
    if enabled():
        sys.stderr.write(f"DEBUG: {message}\n")
