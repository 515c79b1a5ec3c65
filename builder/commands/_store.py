"""Shared helpers of the image commands: the store location, lookups, and Docker's formatting.

Formatting follows the docker CLI: tables are laid out like Go's ``tabwriter`` with the CLI's
settings (minimum cell width 10, padding 3, the last column not padded), sizes use
``go-units`` (decimal units, 3 significant digits in tables), and ages read "2 hours ago".
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import re
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from builder.digest import Digest
from builder.errors import DigestMismatchError, InvalidReferenceError, LayerError, StoreError
from builder.oci.descriptor import Descriptor
from builder.oci.image import Image
from builder.oci.layer_apply import open_layer_stream
from builder.oci.mediatype import is_manifest
from builder.oci.tarformat import EntryType, TarLimits, TarReader
from builder.reference import Reference, is_digest, parse, parse_normalized
from builder.store import REF_NAME, Store, default_store_root
from builder.store.fsutil import atomic_write

_SIZES_DIR: Final = "sizes"  # <root>/sizes/<diff_id hex>: file-content bytes of a layer
_TABLE_MIN_WIDTH: Final = 10
_TABLE_PADDING: Final = 3
_FRACTION_RE: Final = re.compile(r"\.(\d+)")


# -- the store --------------------------------------------------------------------------------


def add_root_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        metavar="DIR",
        default=None,
        help="image store directory (default: $PYBUILD_ROOT, /var/lib/pybuild for root,"
        " else $XDG_DATA_HOME/pybuild)",
    )


def open_store(args: argparse.Namespace) -> Store:
    root: str | None = getattr(args, "root", None)
    return Store.open(Path(root) if root else default_store_root())


def no_such_image(name: str) -> StoreError:
    """Docker's wording: ``No such image: NAME``."""
    return StoreError(f"No such image: {name}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One image of ``index.json``: its manifest descriptor and every name pointing at it."""

    descriptor: Descriptor
    names: tuple[str, ...]

    @property
    def digest(self) -> Digest:
        return self.descriptor.digest


class Catalog:
    """The images of ``index.json``, looked up the way Docker does, tolerant of damage.

    Names and manifest digests are found from ``index.json`` alone, so an image whose blobs
    are damaged can still be untagged; image IDs (config digests) are read from manifests on
    demand, skipping manifests that cannot be read.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        order: list[Digest] = []
        found: dict[Digest, tuple[Descriptor, list[str]]] = {}
        for desc in store.read_index().manifests:
            if desc.digest not in found:
                order.append(desc.digest)
                plain = Descriptor(media_type=desc.media_type, digest=desc.digest, size=desc.size)
                found[desc.digest] = (plain, [])
            name = desc.annotation(REF_NAME)
            if name and name not in found[desc.digest][1]:
                found[desc.digest][1].append(name)
        self.entries: tuple[Entry, ...] = tuple(
            Entry(descriptor=found[d][0], names=tuple(sorted(found[d][1]))) for d in order
        )
        self._ids: dict[Digest, Digest | None] = {}

    def image_id(self, entry: Entry) -> Digest | None:
        """The config digest of ``entry`` (None when its manifest cannot be read)."""
        if entry.digest not in self._ids:
            image_id: Digest | None = None
            if is_manifest(entry.descriptor.media_type):
                try:
                    image_id = self.store.read_manifest(entry.descriptor).config.digest
                except StoreError:
                    image_id = None
            else:
                image_id = entry.digest  # an index: its own digest identifies it
            self._ids[entry.digest] = image_id
        return self._ids[entry.digest]

    def find(self, text: str) -> Entry:
        """The image ``text`` names: name[:tag], name@digest, a digest, or an ID prefix."""
        return self.lookup(text)[0]

    def lookup(self, text: str) -> tuple[Entry, bool]:
        """(the image ``text`` names, whether it was named by ID or digest rather than a name)."""
        ref = text.strip()
        if is_digest(ref):
            digest = Digest.parse(ref)
            for entry in self.entries:
                if digest in (entry.digest, self.image_id(entry)):
                    return entry, True
            raise no_such_image(text)
        parsed: Reference | None
        try:
            parsed = parse(ref)
        except InvalidReferenceError:
            parsed = None
        if parsed is not None:
            if parsed.digest:
                digest = Digest.parse(parsed.digest)
                for entry in self.entries:
                    if entry.digest == digest:
                        return entry, True
            else:
                full = str(parsed)
                for entry in self.entries:
                    if full in entry.names:
                        return entry, False
        hexpart = ref.removeprefix("sha256:")
        if hexpart and len(hexpart) <= 64 and all(c in "0123456789abcdef" for c in hexpart):
            hits = {
                image_id: entry
                for entry in self.entries
                if (image_id := self.image_id(entry)) is not None
                and image_id.hex.startswith(hexpart)
            }
            if len(hits) == 1:
                return next(iter(hits.values())), True
            if hits:
                raise StoreError(f"image ID prefix {hexpart!r} is ambiguous")
        if parsed is None:
            parse_normalized(ref)  # raises the reference error in Docker's words
        raise no_such_image(text)


@contextlib.contextmanager
def about(name: str) -> Iterator[None]:
    """Prefix a store error raised inside with ``image NAME: `` (damage names its image)."""
    try:
        yield
    except StoreError as exc:
        raise StoreError(f"image {familiar(name)}: {exc.message}") from None


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


# -- sizes and times --------------------------------------------------------------------------


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


def layer_size(store: Store, descriptor: Descriptor, diff_id: Digest) -> int:
    """Bytes of file content in a layer (what Docker reports as a layer's size).

    Computed once by reading the layer (its diff_id is checked on the way) and kept in
    ``<root>/sizes/<diff_id hex>``, a disposable cache keyed by content.
    """
    directory = store.root / _SIZES_DIR
    path = directory / diff_id.hex
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        pass
    limits = TarLimits()
    total = 0
    name = f"layer {descriptor.digest}"
    try:
        with io.BufferedReader(store.open_blob(descriptor), buffer_size=1 << 20) as blob:
            hashing, reader = open_layer_stream(blob, limits=limits, name=name)
            tar = TarReader(reader, limits=limits)
            while (hdr := tar.next()) is not None:
                if hdr.type is EntryType.FILE:
                    total += hdr.size
            while reader.read(1 << 20):
                pass
    except LayerError as exc:
        raise StoreError(f"{name}: {exc.message}") from None
    actual = hashing.hasher.digest()
    if actual != diff_id:
        raise DigestMismatchError(
            f"{name}: uncompressed content hashes to {actual}, the config says {diff_id}",
            expected=str(diff_id),
            actual=str(actual),
        )
    try:
        directory.mkdir(exist_ok=True)
        atomic_write(path, str(total).encode())
    except OSError:
        pass  # a read-only store still answers, just more slowly
    return total


def image_size(store: Store, image: Image) -> int:
    """Sum of the layers' content sizes (``docker images`` SIZE)."""
    return sum(layer_size(store, layer.descriptor, layer.diff_id) for layer in image.layers)


def forget_sizes(store: Store, keep: set[Digest]) -> None:
    """Drop cached layer sizes of diff_ids no longer used by any image."""
    directory = store.root / _SIZES_DIR
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    wanted = {d.hex for d in keep}
    for name in names:
        if name not in wanted:
            (directory / name).unlink(missing_ok=True)


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
