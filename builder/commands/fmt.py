"""``pybuild fmt``: print, rewrite (``-w``) or check (``--check``) a Dockerfile's canonical form."""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path

from builder.commands._io import read_dockerfile
from builder.errors import BuildError
from builder.syntax.format import format_text

HELP = (
    "Format a Dockerfile canonically: print the result, rewrite the file with -w, or exit 1 "
    "and print its name with --check when it is not formatted."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the Dockerfile, or - for stdin")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "-w", "--write", action="store_true", help="rewrite FILE in place instead of printing"
    )
    mode.add_argument(
        "--check",
        action="store_true",
        help="print nothing but FILE's name, and exit 1, when FILE is not formatted",
    )


def run(args: argparse.Namespace) -> int:
    name: str = args.file
    if args.write and name == "-":
        print("pybuild fmt: -w needs a file, not stdin", file=sys.stderr)
        return 2
    try:
        path, text = read_dockerfile(name)
    except BuildError as err:
        print(err.message, file=sys.stderr)
        return 1
    try:
        formatted = format_text(text, path=path)
    except BuildError as err:
        where = f"{path}:{err.span.line}" if err.span is not None else path
        print(f"{where}: {err.message}", file=sys.stderr)
        return 1
    if args.check:
        if formatted != text:
            print(path)
            return 1
        return 0
    if args.write:
        if formatted == text:
            return 0
        try:
            write_atomic(Path(name), formatted.encode("utf-8", "surrogateescape"))
        except OSError as err:
            print(f"{path}: cannot write: {err.strerror or err}", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(formatted)
    return 0


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data``: a temporary file beside it, then a rename.

    The file keeps its permission bits; a symbolic link is followed, so the link stays and its
    target is replaced.
    """
    target = Path(os.path.realpath(path))
    mode = stat.S_IMODE(target.stat().st_mode)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
