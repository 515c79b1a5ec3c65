"""The strict tar reader: Go ``archive/tar`` semantics, bounded work, clear errors."""

from __future__ import annotations

import io
import tarfile

import pytest
from tarcraft import build_tar

from builder.errors import LayerError
from builder.oci.tarformat import (
    EntryType,
    TarHeader,
    TarLimits,
    TarReader,
    encode_header,
    parse_pax,
)


def _raw_header(
    name: bytes, *, typeflag: bytes = b"0", size: bytes = b"00000000000\0", magic: bool = True
) -> bytes:
    block = bytearray(512)
    block[0 : len(name)] = name
    block[100:108] = b"0000644\0"
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = size
    block[136:148] = b"00000000000\0"
    block[156:157] = typeflag
    if magic:
        block[257:265] = b"ustar\x0000"
    block[148:156] = b" " * 8
    block[148:156] = f"{sum(block):06o}\0 ".encode()
    return bytes(block)


def _pax(records: bytes) -> bytes:
    size = f"{len(records):011o}\0".encode()
    return _raw_header(b"././@PaxHeader", typeflag=b"x", size=size) + records.ljust(
        -(-len(records) // 512) * 512, b"\0"
    )


def _rec(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    n = len(body) + 2
    if len(str(n)) != 2:
        raise AssertionError("test helper handles 2-digit lengths only")
    return str(n).encode() + body


def _entries(data: bytes, limits: TarLimits | None = None) -> list[TarHeader]:
    reader = TarReader(io.BytesIO(data), limits=limits)
    out = []
    while (hdr := reader.next()) is not None:
        out.append(hdr)
    return out


def test_reads_entries_written_by_tarfile() -> None:
    data = build_tar(
        [
            ("dir", "d"),
            ("file", "d/f", "hello", "0755"),
            ("symlink", "d/s", "f"),
            ("link", "d/h", "d/f"),
            ("fifo", "p"),
        ]
    )
    got = [(h.name, h.type, h.mode, h.size, h.linkname) for h in _entries(data)]
    assert got == [
        ("d/", EntryType.DIR, 0o755, 0, ""),
        ("d/f", EntryType.FILE, 0o755, 5, ""),
        ("d/s", EntryType.SYMLINK, 0o777, 0, "f"),
        ("d/h", EntryType.HARDLINK, 0o644, 0, "d/f"),
        ("p", EntryType.FIFO, 0o644, 0, ""),
    ]


def test_content_is_read_in_order() -> None:
    data = build_tar([("file", "a", "AAA"), ("file", "b", "B" * 1000)])
    reader = TarReader(io.BytesIO(data))
    assert reader.next() is not None
    assert reader.read() == b"AAA"
    assert reader.next() is not None
    assert reader.read(10) == b"B" * 10  # the rest is skipped by next()
    assert reader.next() is None


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names_gnu_and_pax(fmt: int) -> None:
    name = "dir/" + "n" * 300
    target = "t" * 200
    data = build_tar([("file", name, "x"), ("symlink", "l", target)], fmt=fmt)
    entries = _entries(data)
    assert entries[0].name == name
    assert entries[1].linkname == target


def test_pax_overrides_uid_mtime_and_xattrs() -> None:
    info = tarfile.TarInfo("f")
    info.uid = 10_000_000  # beyond octal range: tarfile writes a PAX record
    info.pax_headers = {"SCHILY.xattr.user.k": "v", "mtime": "12.5"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info)
    (hdr,) = _entries(buf.getvalue())
    assert hdr.uid == 10_000_000
    assert hdr.xattrs == (("user.k", b"v"),)
    assert hdr.mtime_ns == 12_500_000_000


def test_base256_numbers() -> None:
    size = b"\x80" + (7).to_bytes(11, "big")
    data = _raw_header(b"f", size=size) + b"payload".ljust(512, b"\0") + bytes(1024)
    (hdr,) = _entries(data)
    assert hdr.size == 7


def test_negative_base256_size_is_refused() -> None:
    size = b"\xff" * 12
    with pytest.raises(LayerError, match="negative size"):
        _entries(_raw_header(b"f", size=size) + bytes(1024))


def test_bad_checksum_is_refused() -> None:
    block = bytearray(_raw_header(b"f"))
    block[0] = ord("g")
    with pytest.raises(LayerError, match="checksum"):
        _entries(bytes(block) + bytes(1024))


def test_unknown_typeflag_is_refused() -> None:
    with pytest.raises(LayerError, match="unsupported entry type 'S'"):
        _entries(_raw_header(b"sparse", typeflag=b"S") + bytes(1024))


def test_data_after_end_block_is_refused() -> None:
    data = bytes(512) + _raw_header(b"f") + bytes(1024)
    with pytest.raises(LayerError, match="after an end-of-archive block"):
        _entries(data)


def test_partial_header_is_truncation() -> None:
    with pytest.raises(LayerError, match="partial header block"):
        _entries(_raw_header(b"f")[:300])


def test_missing_trailer_is_accepted_like_go() -> None:
    data = _raw_header(b"f")
    assert [h.name for h in _entries(data)] == ["f"]


@pytest.mark.parametrize(
    "records",
    [
        b"0 path=x\n",  # zero-length record: CVE-2019-20907 infinite loop shape
        b"-5 path=x\n",  # negative length
        b"4 a=\n",  # shorter than the minimum
        b"99 path=x\n",  # longer than the header
        b"10 pathx\n\n",  # no '='
        b"10 path=xx",  # not newline-terminated
        b"7 =abc\n",  # empty key
    ],
)
def test_malformed_pax_records_are_refused(records: bytes) -> None:
    with pytest.raises(LayerError, match="invalid PAX header"):
        _entries(_pax(records) + _raw_header(b"f") + bytes(1024))


def test_redos_shaped_pax_values_parse_linearly() -> None:
    value = "1" * 200_000 + "x"
    record = f"size={value}\n"
    payload = f"{len(record) + 7} {record}".encode()
    with pytest.raises(LayerError, match="bad PAX size"):
        _entries(_pax(payload) + _raw_header(b"f") + bytes(1024))


def test_pax_header_over_the_cap_is_refused() -> None:
    with pytest.raises(LayerError, match="exceeds the 1024-byte limit"):
        _entries(_pax(b"20 comment=" + b"x" * 2000 + b"\n"), limits=TarLimits(max_pax_bytes=1024))


def test_pax_record_applies_to_next_real_entry_not_gnu_longname() -> None:
    """An ``x`` header followed by a GNU ``L`` header: PAX applies to the file (as Go)."""
    longname = b"from-gnu-longname\0"
    gnu = _raw_header(b"././@LongLink", typeflag=b"L", size=f"{len(longname):011o}\0".encode())
    data = (
        _pax(_rec("path", "from-pax-path"))
        + gnu
        + longname.ljust(512, b"\0")
        + _raw_header(b"header-name")
        + bytes(1024)
    )
    (hdr,) = _entries(data)
    assert hdr.name == "from-gnu-longname"  # Go: GNU long name wins over PAX path


def test_global_pax_header_is_skipped() -> None:
    glob = _pax(_rec("comment", "global"))
    block = bytearray(glob[:512])
    block[156:157] = b"g"
    block[148:156] = b" " * 8
    block[148:156] = f"{sum(block):06o}\0 ".encode()
    data = bytes(block) + glob[512:] + _raw_header(b"f") + bytes(1024)
    assert [h.name for h in _entries(data)] == ["f"]


def test_header_only_types_carry_no_data_whatever_their_size() -> None:
    """Go treats a symlink's size field as 0: the next header follows at once."""
    data = _raw_header(b"s", typeflag=b"2", size=b"00000001000\0") + _raw_header(b"f") + bytes(1024)
    assert [h.name for h in _entries(data)] == ["s", "f"]


def test_parse_pax_accepts_multibyte_values() -> None:
    record = "path=é\n"
    n = len(record.encode()) + 3
    assert parse_pax(f"{n} {record}".encode()) == {"path": "é"}


def test_name_longer_than_limit_is_refused() -> None:
    data = build_tar([("file", "a/" + "b" * 5000, "")])
    with pytest.raises(LayerError, match="longer than 4096 bytes"):
        _entries(data)


def test_encode_header_round_trips() -> None:
    hdr = TarHeader(
        name="dir/" + "x" * 150,
        type=EntryType.FILE,
        mode=0o4755,
        uid=5_000_000,
        gid=7,
        size=3,
        mtime_ns=1_700_000_000_000_000_000,
        xattrs=(("security.capability", b"\x01\x00\xff"),),
    )
    data = encode_header(hdr) + b"abc".ljust(512, b"\0") + bytes(1024)
    (back,) = _entries(data)
    assert back == hdr


def _with_field(block: bytes, start: int, value: bytes) -> bytes:
    """``block`` with ``value`` at ``start`` and its checksum recomputed."""
    out = bytearray(block)
    out[start : start + len(value)] = value
    out[148:156] = b" " * 8
    out[148:156] = f"{sum(out):06o}\0 ".encode()
    return bytes(out)


def _base256(value: int, width: int = 8) -> bytes:
    raw = bytearray(value.to_bytes(width, "big", signed=True))
    raw[0] |= 0x80
    return bytes(raw)


@pytest.mark.parametrize(
    ("start", "field", "what"),
    [
        (108, _base256(-5), "uid -5 out of range"),
        (116, _base256(-1), "gid -1 out of range"),
        (108, _base256(1 << 40), f"uid {1 << 40} out of range"),
        (100, _base256(1 << 30), f"mode {1 << 30} out of range"),
        (100, _base256(-0o644), "mode -420 out of range"),
        (136, _base256(1 << 62, 12), "mtime \\(ns\\) .* out of range"),
        (329, _base256(1 << 33), f"devmajor {1 << 33} out of range"),
        (337, _base256(-2), "devminor -2 out of range"),
        (108, b"12x4567\0", "bad uid field"),
    ],
)
def test_out_of_range_header_fields_are_refused_naming_the_entry(
    start: int, field: bytes, what: str
) -> None:
    block = _with_field(_raw_header(b"etc/evil"), start, field)
    with pytest.raises(LayerError, match=f"^invalid tar header for entry 'etc/evil': {what}"):
        _entries(block + bytes(1024))


@pytest.mark.parametrize(
    ("records", "what"),
    [
        (_rec("uid", "abc"), "bad PAX uid 'abc'"),
        (_rec("uid", "-7"), "uid -7 out of range"),
        (_rec("gid", "4294967295"), "gid 4294967295 out of range"),
        (_rec("uid", "\u00b2"), "bad PAX uid"),
        (_rec("mtime", "1.\u0663"), "bad PAX mtime"),
        (_rec("mtime", "99999999999999999999"), "mtime \\(ns\\) .* out of range"),
        (_rec("size", "99999999999999999999"), "size 99999999999999999999 exceeds"),
        (_rec("size", "-1"), "negative size -1"),
    ],
)
def test_bad_pax_values_are_refused_naming_the_entry(records: bytes, what: str) -> None:
    data = _pax(_rec("path", "p/x") + records) + _raw_header(b"f") + bytes(1024)
    with pytest.raises(LayerError, match=f"^invalid tar header for entry 'p/x': {what}"):
        _entries(data)


def test_size_over_the_archive_limit_is_refused() -> None:
    size = f"{4096:011o}\0".encode()
    data = _raw_header(b"big", size=size) + bytes(4096) + bytes(1024)
    with pytest.raises(LayerError, match="entry 'big': size 4096 exceeds the 1024-byte limit"):
        _entries(data, TarLimits(max_bytes=1024))


def test_fields_at_the_edges_of_their_range_are_accepted() -> None:
    block = _raw_header(b"edge")
    block = _with_field(block, 108, _base256((1 << 32) - 2))
    block = _with_field(block, 136, _base256(-1, 12))
    (hdr,) = _entries(block + bytes(1024))
    assert (hdr.uid, hdr.mtime_ns) == ((1 << 32) - 2, -1_000_000_000)


def test_unpack_limit_is_1024_times_the_archive_at_least_1_gib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from builder.oci.tarformat import unpack_limit

    monkeypatch.delenv("PYBUILD_MAX_UNPACK", raising=False)
    assert unpack_limit(1000) == 1 << 30
    assert unpack_limit(10 << 20) == 10 << 30
    monkeypatch.setenv("PYBUILD_MAX_UNPACK", "4096")
    assert unpack_limit(10 << 20) == 4096
    monkeypatch.setenv("PYBUILD_MAX_UNPACK", "4k")
    with pytest.raises(LayerError, match="PYBUILD_MAX_UNPACK='4k': want a number of bytes"):
        unpack_limit(1)
