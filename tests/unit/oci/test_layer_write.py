"""Deterministic layer writing: order, headers, hardlinks, whiteouts, compression, digests."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import threading
from pathlib import Path

import pytest
import zstandard

from builder.digest import Digest
from builder.errors import LayerError
from builder.oci.layer import EntryType, LayerEntry, LayerResult, list_entries, write_layer
from builder.oci.types import Compression, MediaType
from tests.conftest import require, try_setxattr


def _tree(root: Path) -> Path:
    (root / "b").mkdir(parents=True)
    (root / "b" / "file").write_bytes(b"content")
    (root / "a-sibling").write_bytes(b"x")
    (root / "a").mkdir()
    (root / "a" / "z").write_bytes(b"")
    os.link(root / "b" / "file", root / "a" / "hard")
    (root / "a" / "sym").symlink_to("../b/file")
    os.mkfifo(root / "fifo")
    return root


def _write(
    source: Path | list[LayerEntry],
    *,
    compression: Compression = Compression.GZIP,
    source_date_epoch: int | None = None,
    docker_media_type: bool = False,
    overlay: bool = False,
) -> tuple[bytes, LayerResult]:
    out = io.BytesIO()
    result = write_layer(
        source,
        out,
        compression=compression,
        source_date_epoch=source_date_epoch,
        docker_media_type=docker_media_type,
        overlay=overlay,
    )
    return out.getvalue(), result


def test_entries_sorted_hardlinks_and_types(tmp_path: Path) -> None:
    blob, _ = _write(_tree(tmp_path / "src"), compression=Compression.NONE)
    entries = [(e.name, e.type, e.linkname) for e in list_entries(io.BytesIO(blob))]
    assert entries == [
        ("a/", EntryType.DIR, ""),
        ("a/hard", EntryType.FILE, ""),
        ("a/sym", EntryType.SYMLINK, "../b/file"),
        ("a/z", EntryType.FILE, ""),
        ("a-sibling", EntryType.FILE, ""),
        ("b/", EntryType.DIR, ""),
        ("b/file", EntryType.HARDLINK, "a/hard"),
        ("fifo", EntryType.FIFO, ""),
    ]


def test_headers_are_normalised(tmp_path: Path) -> None:
    blob, _ = _write(_tree(tmp_path / "src"), compression=Compression.NONE, source_date_epoch=5)
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        for member in tar.getmembers():
            assert member.uname == ""
            assert member.gname == ""
            assert member.mtime == 5
            assert "atime" not in member.pax_headers
            assert "ctime" not in member.pax_headers
    assert blob.endswith(bytes(1024))


def test_digests_are_of_the_bytes(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    blob, result = _write(src)
    assert result.digest == Digest.of_bytes(blob)
    assert result.size == len(blob)
    raw = gzip.decompress(blob)
    assert result.diff_id == Digest.of_bytes(raw)
    assert result.uncompressed_size == len(raw)
    assert result.media_type == MediaType.OCI_LAYER_GZIP


@pytest.mark.parametrize(
    ("compression", "docker", "media_type"),
    [
        (Compression.NONE, False, MediaType.OCI_LAYER),
        (Compression.GZIP, False, MediaType.OCI_LAYER_GZIP),
        (Compression.ZSTD, False, MediaType.OCI_LAYER_ZSTD),
        (Compression.GZIP, True, MediaType.DOCKER_LAYER_GZIP),
        (Compression.NONE, True, MediaType.DOCKER_LAYER),
    ],
)
def test_diff_id_is_independent_of_compression(
    tmp_path: Path, compression: Compression, docker: bool, media_type: str
) -> None:
    src = _tree(tmp_path / "src")
    _, plain = _write(src, compression=Compression.NONE, source_date_epoch=0)
    blob, result = _write(
        src, compression=compression, docker_media_type=docker, source_date_epoch=0
    )
    assert result.diff_id == plain.diff_id
    assert result.media_type == media_type
    if compression is Compression.ZSTD:
        raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob)).read()
        assert hashlib.sha256(raw).hexdigest() == plain.diff_id.hex


def test_same_tree_twice_gives_identical_bytes(tmp_path: Path) -> None:
    one, _ = _write(_tree(tmp_path / "one"), source_date_epoch=100)
    two, _ = _write(_tree(tmp_path / "two"), source_date_epoch=100)
    assert one == two


def test_epoch_clamps_only_later_mtimes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "old").write_bytes(b"")
    (src / "new").write_bytes(b"")
    os.utime(src / "old", (50, 50))
    os.utime(src / "new", (5000, 5000))
    blob, _ = _write(src, compression=Compression.NONE, source_date_epoch=1000)
    times = {e.name: e.mtime_ns // 10**9 for e in list_entries(io.BytesIO(blob))}
    assert times == {"new": 1000, "old": 50}


def test_whiteouts_sort_first_in_their_directory() -> None:
    entries = [
        LayerEntry(path="d", type=EntryType.DIR, mode=0o755),
        LayerEntry(path="d/a", data=b"a"),
        LayerEntry.whiteout("d/old"),
        LayerEntry.opaque("d"),
        LayerEntry(path="c", data=b"c"),
    ]
    blob, result = _write(entries, compression=Compression.NONE)
    names = [e.name for e in list_entries(io.BytesIO(blob))]
    assert names == ["c", "d/", "d/.wh..wh..opq", "d/.wh.old", "d/a"]
    assert result.entries == 5


def test_long_names_large_ids_xattrs_and_devices() -> None:
    long = "p/" + "x" * 200
    entries = [
        LayerEntry(path=long, data=b"1", uid=3_000_000, gid=4_000_000),
        LayerEntry(path="cap", data=b"", xattrs=(("security.capability", b"\x01\x02\xff"),)),
        LayerEntry(path="dev/null", type=EntryType.CHAR, mode=0o666, devmajor=1, devminor=3),
        LayerEntry(path="dev/sda", type=EntryType.BLOCK, mode=0o660, devmajor=8, devminor=0),
    ]
    blob, _ = _write(entries, compression=Compression.NONE)
    got = {e.name: e for e in list_entries(io.BytesIO(blob))}
    assert got[long].uid == 3_000_000
    assert got[long].gid == 4_000_000
    assert got["cap"].xattrs == (("security.capability", b"\x01\x02\xff"),)
    assert (got["dev/null"].type, got["dev/null"].devmajor, got["dev/null"].devminor) == (
        EntryType.CHAR,
        1,
        3,
    )
    assert got["dev/sda"].type is EntryType.BLOCK


def test_wh_named_file_in_tree_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / ".wh.foo").write_bytes(b"")
    with pytest.raises(LayerError, match=r"'\.wh\.foo'.*reserved for whiteouts"):
        _write(src)


def test_wh_named_entry_is_refused() -> None:
    with pytest.raises(LayerError, match="reserved for whiteouts"):
        _write([LayerEntry(path="etc/.wh.passwd", data=b"")])


@pytest.mark.parametrize("path", ["../x", "a/../../x", ""])
def test_bad_entry_paths_are_refused(path: str) -> None:
    with pytest.raises(LayerError, match="layer path"):
        _write([LayerEntry(path=path, data=b"")])


def test_duplicate_paths_are_refused() -> None:
    with pytest.raises(LayerError, match="duplicate path 'a'"):
        _write([LayerEntry(path="a", data=b"1"), LayerEntry(path="/a", data=b"2")])


def test_overlay_upperdir_conversion(tmp_path: Path) -> None:
    """Overlay char 0/0 -> ``.wh.name``; a directory xattr ``*.overlay.opaque=y`` -> opaque."""
    src = tmp_path / "upper"
    (src / "d").mkdir(parents=True)
    (src / "d" / "keep").write_bytes(b"k")
    root = require(os.geteuid() == 0, "root (mknod of overlay's 0/0 whiteout device)")
    xattr = "trusted.overlay.opaque" if root else "user.overlay.opaque"  # what overlay writes
    opaque = require(try_setxattr(src / "d", xattr), f"xattr {xattr} on {tmp_path}")
    if root:
        os.mknod(src / "gone", 0o600 | stat.S_IFCHR, os.makedev(0, 0))
    blob, _ = _write(src, compression=Compression.NONE, overlay=True)
    names = [e.name for e in list_entries(io.BytesIO(blob))]
    whiteout = [".wh.gone"] if root else []
    opaque_marker = ["d/.wh..wh..opq"] if opaque else []
    assert names == [*whiteout, "d/", *opaque_marker, "d/keep"]
    for entry in list_entries(io.BytesIO(blob)):
        assert not any(k.startswith(("user.overlay.", "trusted.overlay.")) for k, _ in entry.xattrs)


def test_large_file_streams_in_chunks(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    chunk = os.urandom(1 << 16)
    with (src / "big").open("wb") as f:
        for _ in range(64):  # 4 MiB: several writer chunks
            f.write(chunk)
    blob, result = _write(src, compression=Compression.NONE)
    (entry,) = list_entries(io.BytesIO(blob))
    assert entry.size == 4 << 20
    assert result.uncompressed_size == len(blob)


class _FailingSink:
    """A blob sink that fails on the n-th write (a full disk, a digest mismatch)."""

    def __init__(self, fail_at: int) -> None:
        self.writes = 0
        self.fail_at = fail_at

    def write(self, data: bytes, /) -> int:
        self.writes += 1
        if self.writes >= self.fail_at:
            raise OSError(28, "No space left on device")
        return len(data)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("fail_at", [1, 3])
def test_sink_failure_reaches_the_caller_and_stops_the_worker(tmp_path: Path, fail_at: int) -> None:
    import threading

    src = tmp_path / "src"
    src.mkdir()
    for i in range(24):  # 24 MiB of incompressible data: many chunks for the worker
        (src / f"f{i:02d}").write_bytes(os.urandom(1 << 20))
    before = threading.active_count()
    with pytest.raises(OSError, match="No space left"):
        write_layer(src, _FailingSink(fail_at), compression=Compression.NONE)
    assert threading.active_count() == before


def test_file_that_grows_while_archived_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"x" * 100)
    entry = LayerEntry(path="f", size=50, source=str(src / "f"))
    before = threading.active_count()
    with pytest.raises(LayerError, match="grew"):
        write_layer([entry], io.BytesIO())
    short = LayerEntry(path="f", size=200, source=str(src / "f"))
    with pytest.raises(LayerError, match="shrank"):
        write_layer([short], io.BytesIO())
    assert threading.active_count() == before  # the compressing worker stopped each time


def test_layers_and_copy_sources_keep_only_allowlisted_xattrs(tmp_path: Path) -> None:
    """One allowlist (builder.oci.xattrs) for extraction, layer writing and COPY sources."""
    # lazy: the COPY source reader, to show it shares the rule
    from builder.context.sourcefs import list_xattrs

    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"x")
    names = ["user.ok", "user.overlay.redirect", "trusted.evil", "trusted.overlay.opaque"]
    settable = [n for n in names if try_setxattr(src / "f", n)]
    require("trusted.evil" in settable, f"root and trusted.* xattrs on {tmp_path}")
    blob, _ = _write(src, compression=Compression.NONE)
    (entry,) = [e for e in list_entries(io.BytesIO(blob)) if e.name == "f"]
    expected = (("user.ok", b"y"),) if "user.ok" in settable else ()
    assert entry.xattrs == expected
    fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert list_xattrs(fd, "f") == expected
    finally:
        os.close(fd)
