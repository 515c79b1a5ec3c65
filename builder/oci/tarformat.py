"""A strict, streaming tar reader with Go ``archive/tar`` semantics, and the header encoder.

``tarfile`` is not used to read untrusted archives (infinite loops on negative offsets and
zero-length PAX records, ReDoS in PAX parsing, ``extractall`` semantics). This reader is linear
in its input, bounded by ``TarLimits``, and resolves PAX ``x`` records and GNU ``L``/``K`` long
names exactly like Go's reader, so pybuild sees the same entry list as containerd. Writing uses
``tarfile.TarInfo.tobuf`` (PAX format) for the header bytes only.
"""

from __future__ import annotations

import enum
import os
import tarfile
from dataclasses import dataclass
from typing import BinaryIO, Final

from builder.errors import LayerError

BLOCK: Final = 512
MAX_SPECIAL_FILE: Final = 1 << 20  # PAX / GNU long-name payload cap, as Go's maxSpecialFileSize
_ZERO_BLOCK: Final = bytes(BLOCK)
# Field ranges a header must respect before any value reaches a syscall: ids are uid_t/gid_t
# without (uid_t)-1 (chown's "unchanged"), device numbers are makedev's unsigned ints, mode fits
# the 7 octal digits of its field, mtime fits the int64 nanoseconds of a timespec conversion.
_MAX_ID: Final = (1 << 32) - 2
_MAX_DEV: Final = (1 << 32) - 1
_MAX_MODE: Final = 0o7777777
_MIN_TIME_NS: Final = -(1 << 63)
_MAX_TIME_NS: Final = (1 << 63) - 1


class EntryType(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHAR = "char"
    BLOCK = "block"
    FIFO = "fifo"


_TYPEFLAGS: Final = {
    b"0": EntryType.FILE,
    b"\x00": EntryType.FILE,
    b"1": EntryType.HARDLINK,
    b"2": EntryType.SYMLINK,
    b"3": EntryType.CHAR,
    b"4": EntryType.BLOCK,
    b"5": EntryType.DIR,
    b"6": EntryType.FIFO,
}
_TO_TYPEFLAG: Final = {
    EntryType.FILE: tarfile.REGTYPE,
    EntryType.DIR: tarfile.DIRTYPE,
    EntryType.SYMLINK: tarfile.SYMTYPE,
    EntryType.HARDLINK: tarfile.LNKTYPE,
    EntryType.CHAR: tarfile.CHRTYPE,
    EntryType.BLOCK: tarfile.BLKTYPE,
    EntryType.FIFO: tarfile.FIFOTYPE,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TarLimits:
    """Caps on what one archive may contain (I3: bounded)."""

    max_entries: int = 1_000_000
    max_name_bytes: int = 4096
    max_pax_bytes: int = MAX_SPECIAL_FILE
    max_bytes: int = 64 << 30  # decompressed bytes of one archive


MIN_UNPACK: Final = 1 << 30
UNPACK_RATIO: Final = 1024


def unpack_limit(compressed_size: int) -> int:
    """The most bytes an archive from elsewhere (ADD's local archive, a base image's layer) of
    ``compressed_size`` bytes may expand to: ``PYBUILD_MAX_UNPACK`` when set, else 1024 times
    its size (at least 1 GiB), which no honest gzip stream exceeds: a decompression bomb stops
    with "limit exceeded" instead of filling the disk."""
    text = os.environ.get("PYBUILD_MAX_UNPACK", "")
    if text:
        if not text.isdigit():
            raise LayerError(f"PYBUILD_MAX_UNPACK={text!r}: want a number of bytes")
        return int(text)
    return max(MIN_UNPACK, UNPACK_RATIO * compressed_size)


@dataclass(frozen=True, slots=True, kw_only=True)
class TarHeader:
    """One archive entry after PAX/GNU records are merged (names are ``surrogateescape`` str)."""

    name: str
    type: EntryType
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime_ns: int = 0
    linkname: str = ""
    uname: str = ""
    gname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _cstring(field: bytes) -> bytes:
    nul = field.find(b"\x00")
    return field if nul < 0 else field[:nul]


def _numeric(field: bytes, what: str) -> int:
    if field and field[0] & 0x80:
        # GNU base-256: big-endian two's complement with the top bit as a marker.
        negative = field[0] & 0x40
        value = int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
        if negative:
            value -= 1 << (8 * len(field) - 1)
        return value
    text = field.replace(b"\x00", b" ").strip()
    if not text:
        return 0
    if any(c not in b"01234567" for c in text):
        raise LayerError(f"bad {what} field {field!r}")
    return int(text, 8)


def _checksum_ok(block: bytes) -> bool:
    stored = block[148:156]
    try:
        want = _numeric(stored, "checksum")
    except LayerError:
        return False
    data = block[:148] + b" " * 8 + block[156:]
    unsigned = sum(data)
    signed = sum(b - 256 if b > 127 else b for b in data)
    return want in (unsigned, signed)


def parse_pax(payload: bytes) -> dict[str, str]:
    """Parse ``"%d %s=%s\\n"`` records strictly (Go ``parsePAXRecord``); linear time.

    Lengths count bytes; keys and values are decoded as UTF-8 with ``surrogateescape``.
    """
    records: dict[str, str] = {}
    pos = 0
    while pos < len(payload):
        space = payload.find(b" ", pos)
        if space < 0:
            raise LayerError("invalid PAX header: record without length")
        length_text = payload[pos:space]
        if not length_text.isdigit() or len(length_text) > 10:
            raise LayerError("invalid PAX header: bad record length")
        length = int(length_text)
        end = pos + length
        if length < 5 or end > len(payload) or space + 1 >= end:
            raise LayerError("invalid PAX header: bad record length")
        if payload[end - 1 : end] != b"\n":
            raise LayerError("invalid PAX header: record not newline-terminated")
        raw_key, eq, raw_value = payload[space + 1 : end - 1].partition(b"=")
        if not eq or not raw_key:
            raise LayerError("invalid PAX header: record without key")
        key, value = _decode(raw_key), _decode(raw_value)
        if key in ("path", "linkpath", "uname", "gname") and "\x00" in value:
            raise LayerError(f"invalid PAX header: NUL in {key}")
        if "\x00" in key:
            raise LayerError("invalid PAX header: NUL in key")
        records[key] = value
        pos = end
    return records


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _pax_int(value: str, key: str) -> int:
    text = value.strip()
    body = text[1:] if text.startswith("-") else text
    if not _ascii_digits(body) or len(body) > 20:
        raise LayerError(f"bad PAX {key} {value[:40]!r}")
    return int(text)


def _pax_time_ns(value: str) -> int:
    whole, dot, frac = value.partition(".")
    seconds = _pax_int(whole or "0", "mtime")
    if dot:
        if not _ascii_digits(frac) or len(frac) > 30:
            raise LayerError(f"bad PAX mtime {value[:40]!r}")
        nanos = int((frac + "000000000")[:9])
        return seconds * 1_000_000_000 + (-nanos if whole.startswith("-") else nanos)
    return seconds * 1_000_000_000


def _label(name: str) -> str:
    """The head of a header error: which entry (its name cut to 200 characters)."""
    return f"invalid tar header for entry {name[:200]!r}"


class TarReader:
    """Iterate entries of a tar stream; ``read`` returns the current entry's content."""

    def __init__(self, stream: BinaryIO, *, limits: TarLimits | None = None) -> None:
        self._s = stream
        self._limits = limits or TarLimits()
        self._remaining = 0
        self._padding = 0
        self._done = False
        self.entries = 0

    def _read_exact(self, n: int) -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < n:
            chunk = self._s.read(n - got)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def _skip(self, n: int) -> None:
        while n > 0:
            chunk = self._s.read(min(n, 1 << 20))
            if not chunk:
                raise LayerError("truncated tar archive: unexpected end of data")
            n -= len(chunk)

    def _special(self, size: int, kind: str) -> bytes:
        if size > self._limits.max_pax_bytes:
            raise LayerError(
                f"tar {kind} header of {size} bytes exceeds the {self._limits.max_pax_bytes}-byte"
                " limit"
            )
        data = self._read_exact(size)
        if len(data) != size:
            raise LayerError("truncated tar archive: unexpected end of data")
        self._skip(-size % BLOCK)
        return data

    def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes of the current entry's content (``-1``: up to 1 MiB)."""
        if self._remaining <= 0:
            return b""
        want = self._remaining if n < 0 else min(n, self._remaining)
        data = self._s.read(min(want, 1 << 20))
        if not data:
            raise LayerError("truncated tar archive: unexpected end of data in an entry")
        self._remaining -= len(data)
        return data

    def next(self) -> TarHeader | None:
        """The next entry's header, or None at the end of the archive."""
        if self._done:
            return None
        self._skip(self._remaining + self._padding)
        self._remaining = self._padding = 0
        pax: dict[str, str] = {}
        long_name: str | None = None
        long_link: str | None = None
        while True:
            block = self._read_exact(BLOCK)
            if not block:
                self._done = True
                return None
            if len(block) != BLOCK:
                raise LayerError("truncated tar archive: partial header block")
            if block == _ZERO_BLOCK:
                nxt = self._read_exact(BLOCK)
                if nxt in (b"", _ZERO_BLOCK):
                    self._done = True
                    return None
                raise LayerError("invalid tar archive: data after an end-of-archive block")
            # the entry's name goes into an error message only when there is an error
            if not _checksum_ok(block):
                raise LayerError(f"{_label(_decode(_cstring(block[0:100])))}: checksum mismatch")
            typeflag = block[156:157]
            try:
                size = _numeric(block[124:136], "size")
            except LayerError as e:
                raise LayerError(f"{_label(_decode(_cstring(block[0:100])))}: {e}") from None
            if (problem := self._size_problem(size)) is not None:
                raise LayerError(f"{_label(_decode(_cstring(block[0:100])))}: {problem}")
            match typeflag:
                case b"x":
                    pax = parse_pax(self._special(size, "PAX"))
                    continue
                case b"g":
                    parse_pax(self._special(size, "PAX global"))  # validated, then ignored
                    pax, long_name, long_link = {}, None, None
                    continue
                case b"L":
                    long_name = _decode(_cstring(self._special(size, "GNU long name")))
                    continue
                case b"K":
                    long_link = _decode(_cstring(self._special(size, "GNU long link")))
                    continue
                case _:
                    return self._header(
                        block, typeflag, size, pax=pax, long_name=long_name, long_link=long_link
                    )

    def _size_problem(self, size: int) -> str | None:
        if size < 0:
            return f"negative size {size}"
        if size > self._limits.max_bytes:
            return f"size {size} exceeds the {self._limits.max_bytes}-byte limit"
        return None

    def _header(
        self,
        block: bytes,
        typeflag: bytes,
        size: int,
        *,
        pax: dict[str, str],
        long_name: str | None,
        long_link: str | None,
    ) -> TarHeader:
        magic = block[257:265]
        ustar = magic == b"ustar\x0000"
        gnu = magic == b"ustar  \x00"
        name = _decode(_cstring(block[0:100]))
        if ustar:
            prefix = _decode(_cstring(block[345:500]))
            if prefix:
                name = f"{prefix}/{name}"
        linkname = _decode(_cstring(block[157:257]))
        name = pax.get("path", name) if long_name is None else long_name
        linkname = pax.get("linkpath", linkname) if long_link is None else long_link
        try:
            mode = _numeric(block[100:108], "mode")
            uid = _numeric(block[108:116], "uid")
            gid = _numeric(block[116:124], "gid")
            mtime_ns = _numeric(block[136:148], "mtime") * 1_000_000_000
            uname = gname = ""
            devmajor = devminor = 0
            if ustar or gnu:
                uname = _decode(_cstring(block[265:297]))
                gname = _decode(_cstring(block[297:329]))
                devmajor = _numeric(block[329:337], "devmajor")
                devminor = _numeric(block[337:345], "devminor")
            xattrs: list[tuple[str, bytes]] = []
            for key, value in pax.items():
                if key == "uname":
                    uname = value
                elif key == "gname":
                    gname = value
                elif key == "uid":
                    uid = _pax_int(value, key)
                elif key == "gid":
                    gid = _pax_int(value, key)
                elif key == "mtime":
                    mtime_ns = _pax_time_ns(value)
                elif key == "size":
                    size = _pax_int(value, key)
                elif key.startswith("SCHILY.xattr."):
                    xattrs.append(
                        (key[len("SCHILY.xattr.") :], value.encode("utf-8", "surrogateescape"))
                    )
                elif key.startswith("GNU.sparse."):
                    raise LayerError("sparse files are not supported")
        except LayerError as e:
            raise LayerError(f"{_label(name)}: {e}") from None
        if (problem := self._size_problem(size)) is not None:
            raise LayerError(f"{_label(name)}: {problem}")
        for number, what, low, high in (
            (mode, "mode", 0, _MAX_MODE),
            (uid, "uid", 0, _MAX_ID),
            (gid, "gid", 0, _MAX_ID),
            (devmajor, "devmajor", 0, _MAX_DEV),
            (devminor, "devminor", 0, _MAX_DEV),
            (mtime_ns, "mtime (ns)", _MIN_TIME_NS, _MAX_TIME_NS),
        ):
            if not low <= number <= high:
                raise LayerError(f"{_label(name)}: {what} {number} out of range [{low}, {high}]")
        if typeflag == b"\x00" and name.endswith("/"):
            typeflag = b"5"
        entry_type = _TYPEFLAGS.get(typeflag)
        if entry_type is None:
            raise LayerError(
                f"tar entry {name[:200]!r}: unsupported entry type {typeflag.decode('latin-1')!r}"
            )
        limits = self._limits
        for text, what in ((name, "name"), (linkname, "link name")):
            if len(text.encode("utf-8", "surrogateescape")) > limits.max_name_bytes:
                raise LayerError(
                    f"tar entry {name[:200]!r}: {what} longer than {limits.max_name_bytes} bytes"
                )
        self.entries += 1
        if self.entries > limits.max_entries:
            raise LayerError(
                f"tar archive has more than {limits.max_entries} entries: limit exceeded"
            )
        # Header-only types carry no data whatever their size field says (as Go's reader).
        data_size = size if entry_type is EntryType.FILE else 0
        self._remaining = data_size
        self._padding = -data_size % BLOCK
        return TarHeader(
            name=name,
            type=entry_type,
            mode=mode & 0o7777,
            uid=uid,
            gid=gid,
            size=data_size,
            mtime_ns=mtime_ns,
            linkname=linkname,
            uname=uname,
            gname=gname,
            devmajor=devmajor,
            devminor=devminor,
            xattrs=tuple(sorted(xattrs)),
        )


def encode_header(header: TarHeader) -> bytes:
    """The PAX-format header bytes for ``header`` (plus PAX records when a field needs one).

    Deterministic: uname/gname as given (normally empty), whole-second mtime, sorted xattrs.
    """
    plain = _plain_ustar(header)
    return plain if plain is not None else encode_header_tarfile(header)


_USTAR_MAX_ID: Final = 8**7  # octal field of 8 bytes: 7 digits and a NUL
_USTAR_MAX_NUMBER: Final = 8**11  # size, mtime: 12 bytes


def _plain_ustar(header: TarHeader) -> bytes | None:
    """The header as one ustar block when no field needs a PAX record (the common case), built
    directly: byte-for-byte what ``tarfile`` makes for it, without its per-entry overhead.
    None when a PAX record would be needed."""
    if header.xattrs:
        return None
    name = header.name
    if header.type is EntryType.DIR and not name.endswith("/"):
        name += "/"
    texts = ((name, 100), (header.linkname, 100), (header.uname, 32), (header.gname, 32))
    if not all(text.isascii() and len(text) <= limit for text, limit in texts):
        return None
    size = header.size if header.type is EntryType.FILE else 0
    mtime = header.mtime_ns // 1_000_000_000
    if not (
        0 <= header.uid < _USTAR_MAX_ID
        and 0 <= header.gid < _USTAR_MAX_ID
        and 0 <= size < _USTAR_MAX_NUMBER
        and 0 <= mtime < _USTAR_MAX_NUMBER
    ):
        return None
    if header.type in (EntryType.CHAR, EntryType.BLOCK):
        if not (0 <= header.devmajor < _USTAR_MAX_ID and 0 <= header.devminor < _USTAR_MAX_ID):
            return None
        devices = b"%07o\0%07o\0" % (header.devmajor, header.devminor)
    else:
        devices = bytes(16)
    block = bytearray(BLOCK)
    block[0 : len(name)] = name.encode("ascii")
    block[100:148] = b"%07o\0%07o\0%07o\0%011o\0%011o\0" % (
        header.mode & 0o7777,
        header.uid,
        header.gid,
        size,
        mtime,
    )
    block[148:156] = b"        "  # the checksum counts its own field as spaces
    block[156:157] = _TO_TYPEFLAG[header.type]
    block[157 : 157 + len(header.linkname)] = header.linkname.encode("ascii")
    block[257:265] = tarfile.POSIX_MAGIC
    block[265 : 265 + len(header.uname)] = header.uname.encode("ascii")
    block[297 : 297 + len(header.gname)] = header.gname.encode("ascii")
    block[329:345] = devices
    block[148:155] = b"%06o\0" % sum(block)
    return bytes(block)


def encode_header_tarfile(header: TarHeader) -> bytes:
    """``encode_header`` through the ``tarfile`` module (every case, PAX records included)."""
    info = tarfile.TarInfo(header.name)
    info.type = _TO_TYPEFLAG[header.type]
    info.mode = header.mode & 0o7777
    info.uid = header.uid
    info.gid = header.gid
    info.size = header.size if header.type is EntryType.FILE else 0
    info.mtime = header.mtime_ns // 1_000_000_000
    info.linkname = header.linkname
    info.uname = header.uname
    info.gname = header.gname
    info.devmajor = header.devmajor
    info.devminor = header.devminor
    if header.xattrs:
        info.pax_headers = {
            f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in header.xattrs
        }
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape")


END_OF_ARCHIVE: Final = bytes(2 * BLOCK)
