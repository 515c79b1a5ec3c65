"""Tar archives as build contexts (a tarball URL, or a tar on stdin).

Compression is detected by content, not by name: gzip, bzip2, xz, zstd or none. Extraction goes
through the layer extractor (:func:`builder.oci.layer_apply.apply_layer`): every entry is
created in-root through directory fds, names with ``..`` or a leading ``/`` and hardlinks that
leave the archive are refused, and the decompressed size and the entry count are capped, so an
archive bomb stops with "limit exceeded" instead of filling the disk.
"""

from __future__ import annotations

import bz2
import contextlib
import io
import lzma
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final, cast

import zstandard

from builder.errors import ContextError, LayerError
from builder.oci.compress import DecompressingReader
from builder.oci.layer_apply import apply_layer
from builder.oci.tarformat import TarLimits, TarReader

_BZIP2: Final = b"BZh"
_XZ: Final = b"\xfd7zXZ\x00"
_PROBE_BYTES: Final = 1 << 16


def _errors() -> tuple[type[Exception], ...]:
    return (OSError, EOFError, ValueError, zlib.error, zstandard.ZstdError, lzma.LZMAError)


@contextlib.contextmanager
def _decompressed(fh: BinaryIO) -> Iterator[BinaryIO]:
    """``fh`` decompressed (bzip2 and xz here; gzip and zstd are left to the layer reader)."""
    head = fh.read(6)
    fh.seek(-len(head), io.SEEK_CUR)
    stream: BinaryIO
    if head.startswith(_BZIP2):
        stream = cast(BinaryIO, bz2.BZ2File(fh))
    elif head.startswith(_XZ):
        stream = cast(BinaryIO, lzma.LZMAFile(fh))  # noqa: SIM115 (closed below)
    else:
        yield fh
        return
    try:
        yield stream
    finally:
        with contextlib.suppress(*_errors()):
            stream.close()


def is_archive(fh: BinaryIO) -> bool:
    """Whether ``fh`` (from its current position) is a tar archive, maybe compressed."""
    start = fh.tell()
    not_archive: tuple[type[Exception], ...] = (LayerError, *_errors())
    try:
        with _decompressed(fh) as stream:
            plain = DecompressingReader(stream, max_bytes=1 << 40, name="context")
            reader = io.BufferedReader(plain, buffer_size=_PROBE_BYTES)
            return TarReader(reader).next() is not None
    except not_archive:
        return False
    finally:
        fh.seek(start)


def extract(fh: BinaryIO, directory: Path, *, label: str, max_bytes: int) -> int:
    """Extract archive ``fh`` into the empty ``directory``; returns the number of entries."""
    limits = TarLimits(max_bytes=max_bytes)
    try:
        with _decompressed(fh) as stream:
            result = apply_layer(stream, directory, limits=limits, same_owner=False, name=label)
    except LayerError as exc:
        raise ContextError(f"{label}: invalid context archive: {exc.message}") from None
    except _errors() as exc:
        if isinstance(exc, OSError) and not isinstance(exc, EOFError) and exc.errno:
            raise ContextError(
                f"{label}: cannot extract the context: {exc.strerror or exc}"
            ) from None
        raise ContextError(f"{label}: corrupt compressed archive: {exc}") from None
    return result.entries
