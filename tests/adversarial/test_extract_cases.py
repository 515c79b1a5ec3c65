"""Checklist cases 11-19 (docs/SECURITY.md section 3, Layer extraction): hostile layers in a
base image. Each image is busybox plus hand-made layers, loaded with ``pybuild load``; a build
``FROM`` it makes pybuild extract them. Each case ends in a clean error naming the layer entry
(or the digest), or in a rootfs that keeps everything inside; the sentinels outside stay
byte- and mode-identical and the store consistent."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pytest
import zstandard
from advkit import (
    Sentinels,
    assert_clean_error,
    assert_nowhere,
    assert_store_consistent,
    rerun_succeeds,
)
from enginekit import Builder, Built
from hostile import Blob, load_hostile, plain
from tarcraft import build_tar

from builder.errors import LayerError
from builder.oci.layer_apply import apply_layer
from builder.oci.tarformat import TarReader
from tests.conftest import watchdog
from tests.unit.oci import test_layer_security as layer_security
from tests.unit.oci.test_layer_security import BREAKOUTS

pytestmark = pytest.mark.integration

GOOD = "FROM busybox\nRUN echo adversarial-extract-ok > /ok\n"
ETC_BASE = plain(build_tar([("dir", "etc", "0770"), ("file", "etc/passwd", "all users")]))


def build_on(pb: Builder, layers: list[Blob], run: str = "true", **kw: object) -> Built:
    """Load busybox + ``layers`` as an image, then build ``FROM`` it with one RUN."""
    name, loaded = load_hostile(pb.store_root, pb.workdir, layers)
    assert loaded.returncode == 0, loaded.stderr
    return pb.build(f"FROM {name}\nRUN {run}\n", check=False, context_name=name[:14])


def flatten(layers: list[bytes], root: Path) -> None:
    root.mkdir()
    for data in layers:
        apply_layer(io.BytesIO(data), root)


# --------------------------------------------------------------------------- case 11


@pytest.mark.parametrize("case", BREAKOUTS, ids=[c[0] for c in BREAKOUTS])
def test_case_11_containerd_breakouts(
    pb: Builder,
    sentinels: Sentinels,
    tmp_path: Path,
    case: tuple[str, list[tuple[str, ...]], Callable[[Path], None] | None, str | None],
) -> None:
    name, entries, validate, error = case
    evil = build_tar(entries)
    base = [ETC_BASE.data] if name.startswith("Whiteout") else []
    # containerd's validator on pybuild's applier (layers applied in order, as docker does)
    root = tmp_path / "applied"
    if error is None:
        flatten([*base, evil], root)
        if validate is not None:
            validate(root)
    else:
        with pytest.raises(LayerError, match=error):
            flatten([*base, evil], root)
    # and the whole path: a base image carrying the layer, extracted by a build
    layers = [ETC_BASE, plain(evil)] if base else [plain(evil)]
    built = build_on(pb, layers, "ls -la / /etc > /dev/null")
    if error is not None:
        assert_clean_error(built, must_name=("Dockerfile:2", "layer entry"))
    elif not built.ok:  # a layer alone (overlay form) may still be refused: cleanly
        assert_clean_error(built, must_name="Dockerfile:2")
    assert not Path("/localetc").exists()
    assert_store_consistent(pb.store_root)


def test_case_11_matrix_is_complete() -> None:
    # the table above plus the cases with their own set-up, run on the applier beside it
    extra = [n for n in dir(layer_security) if n.startswith("test_breakout_")]
    assert len(BREAKOUTS) + len(extra) >= 30


# --------------------------------------------------------------------------- case 12


def test_case_12_hardlink_to_sibling_prefix(
    pb: Builder, sentinels: Sentinels, tmp_path: Path
) -> None:
    evil_dir = tmp_path / "rootfs-evil"
    evil_dir.mkdir()
    (evil_dir / "secret").write_bytes(sentinels.secret)
    before = (evil_dir / "secret").stat()
    data = build_tar([("link", "stolen", "../rootfs-evil/secret")])
    root = tmp_path / "rootfs"
    with pytest.raises(LayerError, match="escapes the root"):
        flatten([data], root)
    # the store's own siblings: a link into the snapshot beside this layer's
    pb.build(GOOD)  # busybox's layer directory exists
    chains = sorted(p.name for p in (pb.store_root / "snapshots").iterdir() if p.is_dir())
    assert chains
    sibling = build_tar([("link", "stolen", f"../{chains[0]}/bin/busybox")])
    for layer in (data, sibling):
        built = build_on(pb, [plain(layer)])
        line = assert_clean_error(built, must_name=("Dockerfile:2", "layer entry 'stolen'"))
        assert "escapes the root" in line
    after = (evil_dir / "secret").stat()
    assert (after.st_mode, after.st_mtime_ns, after.st_nlink) == (
        before.st_mode,
        before.st_mtime_ns,
        1,
    )
    assert_store_consistent(pb.store_root)
    rerun_succeeds(pb, GOOD)


# --------------------------------------------------------------------------- case 13


def test_case_13_cross_layer_symlink_then_write(pb: Builder, sentinels: Sentinels) -> None:
    first = plain(build_tar([("symlink", "x", "../../../../tmp/pwn")]))
    second = plain(build_tar([("dir", "x"), ("file", "x/owned", "owned-bytes")]))
    built = build_on(
        pb, [first, second], "cat /x/owned /tmp/pwn/owned > /seen 2>/dev/null; cat /seen"
    )
    assert built.ok, built.stderr
    # contained either way: rootfs /tmp/pwn/owned (docker applies through the link) or /x/owned
    # (pybuild extracts each layer alone, overlay-style, where the upper dir hides the link)
    assert built.files["/seen"].content == b"owned-bytes"
    assert not Path("/tmp/pwn").exists()
    without_dir = plain(build_tar([("file", "x/owned", "owned-bytes")]))
    built = build_on(pb, [first, without_dir], "cat /x/owned > /seen")
    assert built.ok, built.stderr
    assert built.files["/seen"].content == b"owned-bytes"
    assert_store_consistent(pb.store_root)


# --------------------------------------------------------------------------- case 14


def test_case_14_metadata_never_applies_through_a_link(
    pb: Builder, sentinels: Sentinels, tmp_path: Path
) -> None:
    host = sentinels.trees[1] / "secret"  # 0600, under /tmp
    tool = sentinels.trees[1] / "tool"
    shapes = [
        # a link to the host file, then an entry of the same name with other metadata
        [("symlink", "m", str(host)), ("file", "m", "replaced", "0777")],
        [("symlink", "d", str(sentinels.trees[1])), ("dir", "d", "0777")],
        [("symlink", "p", str(host)), ("fifo", "p")],
        # CVE-2021-32760: a hardlink to a symlink, then a chmod through the hardlink
        [
            ("symlink", "s", "../" * 8 + str(tool).lstrip("/")),
            ("link", "h", "s"),
            ("file", "h", "x", "0777"),
        ],
    ]
    for entries in shapes:
        flatten([build_tar(entries)], tmp_path / f"root{shapes.index(entries)}")
        built = build_on(pb, [plain(build_tar(entries))])
        if not built.ok:
            assert_clean_error(built, must_name="Dockerfile:2")
    assert stat.S_IMODE(host.lstat().st_mode) == 0o600
    assert stat.S_IMODE(tool.lstat().st_mode) == 0o755
    assert_store_consistent(pb.store_root)


# --------------------------------------------------------------------------- case 15


@pytest.mark.parametrize("name", [".wh.", ".wh..", ".wh...", "etc/.wh.."])
def test_case_15_malformed_whiteouts(pb: Builder, sentinels: Sentinels, name: str) -> None:
    built = build_on(pb, [plain(build_tar([("file", name, "")]))])
    line = assert_clean_error(built, must_name=("Dockerfile:2", f"layer entry {name!r}"))
    assert "invalid whiteout name (invalid archive)" in line
    assert_store_consistent(pb.store_root)


def test_case_15_opaque_whiteout_hides_the_lower_directory(
    pb: Builder, sentinels: Sentinels
) -> None:
    lower = plain(build_tar([("dir", "data"), ("file", "data/old", "old")]))
    upper = plain(
        build_tar([("dir", "data"), ("file", "data/.wh..wh..opq", ""), ("file", "data/new", "new")])
    )
    built = build_on(pb, [lower, upper], "ls /data > /listing")
    assert built.ok, built.stderr
    assert built.files["/listing"].text == "new\n"
    assert_store_consistent(pb.store_root)


def test_case_15_run_creating_a_whiteout_name(pb: Builder, sentinels: Sentinels) -> None:
    built = pb.build("FROM busybox\nRUN touch /.wh.foo\n", check=False)
    line = assert_clean_error(built, must_name="Dockerfile:2")
    assert ".wh.foo" in line
    assert_store_consistent(pb.store_root)
    rerun_succeeds(pb, GOOD)


# --------------------------------------------------------------------------- case 16


def _zstd_bomb(total: int) -> Blob:
    """A tar of one ``total``-byte zero file, zstd-compressed in repeated frames (tiny)."""
    header = tarfile.TarInfo("zeros")
    header.size = total
    head = header.tobuf(format=tarfile.PAX_FORMAT)
    chunk = 64 << 20
    zeros = zstandard.ZstdCompressor(level=3).compress(b"\0" * chunk)
    body = zstandard.ZstdCompressor().compress(head) + zeros * (total // chunk)
    tail = zstandard.ZstdCompressor().compress(b"\0" * 1024)  # two end-of-archive blocks
    return Blob(
        data=body + tail,
        media_type="application/vnd.oci.image.layer.v1.tar+zstd",
        diff_id="sha256:" + "0" * 64,  # never reached: the cap stops first
    )


def test_case_16_decompression_bomb_in_a_base_image(pb: Builder, sentinels: Sentinels) -> None:
    bomb = _zstd_bomb(4 << 30)  # 4 GiB of zeros in a few hundred kilobytes
    assert len(bomb.data) < 1 << 20
    with watchdog(120):
        _name, loaded = load_hostile(pb.store_root, pb.workdir, [bomb])
    line = assert_clean_error(loaded, must_name=bomb.digest)
    assert "limit exceeded" in line
    assert_store_consistent(pb.store_root)
    rerun_succeeds(pb, GOOD)


def test_case_16_layer_over_the_unpack_cap_at_extraction(pb: Builder, sentinels: Sentinels) -> None:
    data = build_tar([("file", "zeros", "\0" * (8 << 20))])
    layer = Blob(
        data=gzip.compress(data),
        media_type="application/vnd.oci.image.layer.v1.tar+gzip",
        diff_id="sha256:" + hashlib.sha256(data).hexdigest(),
    )
    name, loaded = load_hostile(pb.store_root, pb.workdir, [layer])
    assert loaded.returncode == 0, loaded.stderr
    ctx = pb.context({"Dockerfile": f"FROM {name}\nRUN true\n"}, name="capped")
    built = pb.build_context(str(ctx), env={"PYBUILD_MAX_UNPACK": str(4 << 20)}, check=False)
    line = assert_clean_error(built, must_name=("Dockerfile:2", "'zeros'"))
    assert f"size {8 << 20} exceeds the {4 << 20}-byte limit" in line  # from its header
    assert_store_consistent(pb.store_root)
    assert pb.build_context(str(ctx)).ok  # under the default cap the same layer is fine


# --------------------------------------------------------------------------- case 17


def _raw_header(name: bytes, size_field: bytes, typeflag: bytes = b"0") -> bytes:
    block = bytearray(512)
    block[0 : len(name)] = name
    block[100:108] = b"0000644\0"
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = size_field
    block[136:148] = b"00000000000\0"
    block[156:157] = typeflag
    block[257:263] = b"ustar\0"
    block[263:265] = b"00"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def _pax(records: bytes, name: bytes = b"f") -> bytes:
    head = _raw_header(b"PaxHeaders/" + name, b"%011o\0" % len(records), b"x")
    pad = b"\0" * (-len(records) % 512)
    return head + records + pad + _raw_header(name, b"00000000000\0") + b"\0" * 1024


HOSTILE_HEADERS = {
    "negative-size": _raw_header(b"f", b"\xff" * 12) + b"\0" * 1024,
    "huge-size": _raw_header(b"f", b"\x80" + b"\xff" * 11) + b"\0" * 1024,
    "zero-length-pax-record": _pax(b"0 \n"),
    "pax-length-past-end": _pax(b"99999 path=x\n"),
    "pax-negative-size": _pax(b"16 size=-12345\n"),
    "pax-redos-shape": _pax(b"%d path=%s\n" % (len(b"path=\n") + 4 + 50000, b"a" * 50000)),
    "pax-10mb": _pax(b"%d comment=%s\n" % (10_000_000 + 13, b"x" * 10_000_000)),
}


@pytest.mark.parametrize("shape", sorted(HOSTILE_HEADERS))
def test_case_17_malformed_headers_end_within_seconds(
    pb: Builder, sentinels: Sentinels, tmp_path: Path, shape: str
) -> None:
    data = HOSTILE_HEADERS[shape]
    with watchdog(5), suppress(LayerError):
        flatten([data], tmp_path / "root")
    with watchdog(120):
        built = build_on(pb, [plain(data)])
    if not built.ok:
        assert_clean_error(built, must_name="Dockerfile:2")
    assert_store_consistent(pb.store_root)


# --------------------------------------------------------------------------- case 18
# Go archive/tar's entry lists for PAX/GNU header sequences that other readers disagree on,
# written by hand from archive/tar's reader.go (no Go toolchain offline): a PAX 'x' record
# applies to the next entry only and overrides its ustar name/size; a 'g' record applies to
# every later entry; a GNU 'L' long name applies to the next entry; Go checks the header
# checksum of every block and reports ErrHeader on a bad one.


def _gnu_long(name: bytes) -> bytes:
    data = name + b"\0"
    head = _raw_header(b"././@LongLink", b"%011o\0" % len(data), b"L")
    return head + data + b"\0" * (-len(data) % 512)


def _file(name: bytes, body: bytes) -> bytes:
    return _raw_header(name, b"%011o\0" % len(body)) + body + b"\0" * (-len(body) % 512)


def _pax_record(key: bytes, value: bytes) -> bytes:
    text = b" %s=%s\n" % (key, value)
    n = len(text) + 1
    while len(b"%d" % n) + len(text) != n:
        n += 1
    return b"%d%s" % (n, text)


def _pax_block(records: bytes, kind: bytes = b"x") -> bytes:
    head = _raw_header(b"PaxHeaders/x", b"%011o\0" % len(records), kind)
    return head + records + b"\0" * (-len(records) % 512)


END = b"\0" * 1024
DESYNC: dict[str, tuple[bytes, list[tuple[str, int]] | None]] = {
    # PAX size overrides the ustar size: Go reads 3 bytes of body, then the next header
    "pax-size-override": (
        _pax_block(_pax_record(b"size", b"3"))
        + _raw_header(b"a", b"00000001000\0")
        + b"abc"
        + b"\0" * 509
        + _file(b"b", b"bb")
        + END,
        [("a", 3), ("b", 2)],
    ),
    # PAX path applies to the next entry only
    "pax-path-next-only": (
        _pax_block(_pax_record(b"path", b"long/name"))
        + _file(b"short", b"1")
        + _file(b"plain", b"2")
        + END,
        [("long/name", 1), ("plain", 1)],
    ),
    # a GNU long name and a PAX path: the GNU name wins (reader.go merges the PAX records
    # first, then sets hdr.Name = gnuLongName)
    "gnu-then-pax": (
        _gnu_long(b"gnu/name")
        + _pax_block(_pax_record(b"path", b"pax/name"))
        + _file(b"x", b"1")
        + END,
        [("gnu/name", 1)],
    ),
    # a global header applies to every later entry (Go returns it as an entry: pybuild
    # applies it and lists only the files)
    "global-path": (
        _pax_block(_pax_record(b"mtime", b"1"), b"g") + _file(b"a", b"1") + _file(b"b", b"1") + END,
        [("a", 1), ("b", 1)],
    ),
    # a header with a bad checksum: Go stops with ErrHeader
    "bad-checksum": (
        _file(b"a", b"1")[:148] + b"0000000\0" + _file(b"a", b"1")[156:] + END,
        None,
    ),
    # a PAX header followed by the end-of-archive blocks: Go's readHeader returns io.EOF, a
    # clean end, and the orphan record is dropped
    "pax-at-end": (_pax_block(_pax_record(b"path", b"x")) + END, []),
    # a PAX header cut off inside its records: io.ErrUnexpectedEOF
    "pax-truncated": (_pax_block(_pax_record(b"path", b"x" * 600))[:700], None),
}


def _pybuild_entries(data: bytes) -> list[tuple[str, int]]:
    reader = TarReader(io.BytesIO(data))
    out = []
    while (hdr := reader.next()) is not None:
        out.append((hdr.name, hdr.size))
    return out


@pytest.mark.parametrize("shape", sorted(DESYNC))
def test_case_18_pax_gnu_desync_matches_go(pb: Builder, sentinels: Sentinels, shape: str) -> None:
    data, expected = DESYNC[shape]
    if expected is None:
        with pytest.raises(LayerError):
            _pybuild_entries(data)
    else:
        assert _pybuild_entries(data) == expected
    built = build_on(pb, [plain(data)])
    if expected is None:
        assert_clean_error(built, must_name="Dockerfile:2")
    else:
        assert built.ok, built.stderr
    assert_store_consistent(pb.store_root)


# --------------------------------------------------------------------------- case 19


def test_case_19_diff_id_mismatch(pb: Builder, sentinels: Sentinels) -> None:
    data = build_tar([("file", "f", "content")])
    wrong = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    gz = gzip.compress(data)
    layer = Blob(data=gz, media_type="application/vnd.oci.image.layer.v1.tar+gzip", diff_id=wrong)
    snapshots = set(os.listdir(pb.store_root / "snapshots"))
    name, loaded = load_hostile(pb.store_root, pb.workdir, [layer])
    line = assert_clean_error(loaded, must_name=(layer.digest, wrong))
    assert "diff_id" in line
    assert set(os.listdir(pb.store_root / "snapshots")) == snapshots  # nothing extracted
    built = pb.build(f"FROM {name}\nRUN true\n", check=False)
    assert_clean_error(built, must_name="Dockerfile:1")  # never named: not loaded
    assert_nowhere(b"content", built)
    assert_store_consistent(pb.store_root)
    rerun_succeeds(pb, GOOD)
