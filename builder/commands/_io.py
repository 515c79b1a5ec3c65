"""Shared command input: Dockerfiles (a path, ``-`` for stdin, errors as one line), build args."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from builder.errors import BuildError
from builder.units import ram_in_bytes


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


def memory_size(text: str) -> int:
    """``--memory`` as docker reads it (go-units ``RAMInBytes``: ``512m``, ``1g``, ``1.5GiB``)."""
    size = ram_in_bytes(text)
    if size is None:
        raise argparse.ArgumentTypeError(f"invalid size: {text!r}")
    return size


def build_arg_words(words: Iterable[str]) -> tuple[tuple[str, str | None], ...]:
    """``--build-arg`` words: ``KEY=VALUE``, or ``KEY`` alone (value from the environment)."""
    out: list[tuple[str, str | None]] = []
    for word in words:
        key, eq, value = word.partition("=")
        out.append((key, value if eq else None))
    return tuple(out)


def add_root_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        metavar="DIR",
        default=None,
        help="image store directory (default: $PYBUILD_ROOT, /var/lib/pybuild for root,"
        " else $XDG_DATA_HOME/pybuild)",
    )
