"""Reading Dockerfiles for commands: a path, ``-`` for stdin, errors as one line."""

from __future__ import annotations

import sys
from pathlib import Path

from builder.errors import BuildError


def read_dockerfile(name: str) -> tuple[str, str]:
    """Return (display path, text). Bytes that are not UTF-8 survive via surrogateescape."""
    if name == "-":
        data = sys.stdin.buffer.read()
        return "<stdin>", data.decode("utf-8", "surrogateescape")
    try:
        data = Path(name).read_bytes()
    except OSError as err:
        reason = err.strerror or str(err)
        raise BuildError(f"open {name}: {reason}") from None
    return name, data.decode("utf-8", "surrogateescape")
