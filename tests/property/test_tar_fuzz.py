"""Fuzzing the tar reader: mutated headers raise only pybuild's ``LayerError``, never a
traceback from inside the reader, and every header it returns is in range."""

from __future__ import annotations

import io
import tarfile

from fuzzing import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import LayerError
from builder.oci.tarformat import TarLimits, TarReader


def _seed() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("dir/file")
        info.size = 5
        info.uid = 3_000_000  # over the octal field: a PAX uid record
        info.pax_headers = {"SCHILY.xattr.user.k": "v", "mtime": "12.5"}
        tar.addfile(info, io.BytesIO(b"hello"))
        dev = tarfile.TarInfo("dev/null")
        dev.type = tarfile.CHRTYPE
        dev.devmajor, dev.devminor = 1, 3
        tar.addfile(dev)
    return buf.getvalue()


SEED = _seed()
HEADERS = [i for i in range(0, len(SEED), 512) if SEED[i + 257 : i + 262] == b"ustar"]
FIELDS = [100, 108, 116, 124, 136, 329, 337]  # mode uid gid size mtime devmajor devminor


@st.composite
def edits(draw: st.DrawFn) -> tuple[int, bytes]:
    """A random splice anywhere, or a numeric field of a header overwritten (often base-256)."""
    if draw(st.booleans()):
        return draw(st.integers(0, len(SEED) - 1)), draw(st.binary(min_size=1, max_size=12))
    pos = draw(st.sampled_from(HEADERS)) + draw(st.sampled_from(FIELDS))
    value = draw(st.integers(-(1 << 63), (1 << 63) - 1))
    raw = bytearray(value.to_bytes(8, "big", signed=True))
    raw[0] |= 0x80
    return pos, bytes(raw)


def _fix_checksums(data: bytearray, fix: bool) -> None:
    """Recompute every header checksum, so mutations reach the field parsers."""
    if not fix:
        return
    for start in range(0, len(data) - 511, 512):
        block = data[start : start + 512]
        if block[257:262] == b"ustar":
            block[148:156] = b" " * 8
            block[148:156] = f"{sum(block):06o}\0 ".encode()
            data[start : start + 512] = block


@settings(max_examples=examples(300), deadline=None)
@given(
    changes=st.lists(edits(), max_size=6),
    fix=st.booleans(),
)
def test_mutated_archives_raise_only_layer_errors(
    changes: list[tuple[int, bytes]], fix: bool
) -> None:
    data = bytearray(SEED)
    for pos, value in changes:
        data[pos : pos + len(value)] = value
    _fix_checksums(data, fix)
    reader = TarReader(io.BytesIO(bytes(data)), limits=TarLimits(max_bytes=1 << 20))
    message = ""
    try:
        while (hdr := reader.next()) is not None:
            assert 0 <= hdr.uid <= (1 << 32) - 2
            assert 0 <= hdr.gid <= (1 << 32) - 2
            assert 0 <= hdr.size <= 1 << 20
            assert 0 <= hdr.devmajor < 1 << 32
            assert 0 <= hdr.devminor < 1 << 32
            assert -(1 << 63) <= hdr.mtime_ns < 1 << 63
            while reader.read(4096):
                pass
    except LayerError as e:
        message = str(e)
    assert "\n" not in message
