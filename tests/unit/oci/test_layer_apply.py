"""Applying layers: contents, metadata, whiteouts, opaque dirs, diff_id checks, bad streams."""

from __future__ import annotations

import gzip
import io
import os
import stat
from pathlib import Path

import pytest
import zstandard
from tarcraft import build_tar

from builder.digest import Digest
from builder.errors import DigestMismatchError, LayerError
from builder.oci.layer import EntryType, LayerEntry, apply_layer, write_layer
from builder.oci.types import Compression
from builder.oci.xattrs import kept_xattr
from tests.conftest import require


def _layer(entries: list[LayerEntry], compression: Compression = Compression.GZIP) -> bytes:
    out = io.BytesIO()
    write_layer(entries, out, compression=compression)
    return out.getvalue()


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    root.mkdir()
    return root


@pytest.mark.parametrize("compression", list(Compression))
def test_round_trip_contents_and_diff_id(rootfs: Path, compression: Compression) -> None:
    entries = [
        LayerEntry(path="etc", type=EntryType.DIR, mode=0o755, mtime_ns=7 * 10**9),
        LayerEntry(path="etc/hosts", data=b"127.0.0.1\n", mode=0o640, mtime_ns=9 * 10**9),
        LayerEntry(path="bin/sh", data=b"#!", mode=0o4755),
        LayerEntry(path="bin/ash", type=EntryType.HARDLINK, linkname="bin/sh"),
        LayerEntry(path="lib", type=EntryType.SYMLINK, linkname="/usr/lib"),
        LayerEntry(path="pipe", type=EntryType.FIFO, mode=0o620),
    ]
    blob = _layer(entries, compression)
    out = io.BytesIO()
    expected = write_layer(entries, out, compression=Compression.NONE).diff_id
    result = apply_layer(io.BytesIO(blob), rootfs, expected_diff_id=expected)
    assert result.diff_id == expected
    assert result.entries == 6
    assert (rootfs / "etc" / "hosts").read_bytes() == b"127.0.0.1\n"
    assert stat.S_IMODE((rootfs / "etc" / "hosts").stat().st_mode) == 0o640
    assert (rootfs / "etc" / "hosts").stat().st_mtime_ns == 9 * 10**9
    assert (rootfs / "etc").stat().st_mtime_ns == 7 * 10**9  # set after its children
    assert stat.S_IMODE((rootfs / "bin" / "sh").stat().st_mode) == 0o4755
    assert os.path.samefile(rootfs / "bin" / "sh", rootfs / "bin" / "ash")
    assert os.readlink(rootfs / "lib") == "/usr/lib"
    assert stat.S_ISFIFO((rootfs / "pipe").lstat().st_mode)
    assert stat.S_IMODE((rootfs / "pipe").lstat().st_mode) == 0o620


def test_ownership_is_applied_only_when_privileged(rootfs: Path) -> None:
    blob = _layer([LayerEntry(path="f", data=b"x", uid=1234, gid=5678)])
    apply_layer(io.BytesIO(blob), rootfs)
    st = (rootfs / "f").stat()
    if require(os.geteuid() == 0, "root (chown to the layer's owners)"):
        assert (st.st_uid, st.st_gid) == (1234, 5678)
    else:
        assert st.st_uid == os.geteuid()


def test_device_nodes_created_as_root_or_reported_skipped(rootfs: Path) -> None:
    blob = _layer(
        [LayerEntry(path="null", type=EntryType.CHAR, mode=0o666, devmajor=1, devminor=3)]
    )
    result = apply_layer(io.BytesIO(blob), rootfs)
    if require(os.geteuid() == 0, "root (mknod)"):
        st = (rootfs / "null").lstat()
        assert stat.S_ISCHR(st.st_mode)
        assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
        assert stat.S_IMODE(st.st_mode) == 0o666
        assert result.skipped == ()
    else:
        assert result.skipped == ("null",)


def test_apply_without_same_owner_keeps_the_appliers_owner(rootfs: Path) -> None:
    """What a non-root user gets (``same_owner`` defaults to being root), also under root."""
    blob = _layer([LayerEntry(path="f", data=b"x", uid=1234, gid=5678)])
    apply_layer(io.BytesIO(blob), rootfs, same_owner=False)
    st = (rootfs / "f").stat()
    assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())


def test_whiteout_removes_lower_file_and_tree(rootfs: Path) -> None:
    (rootfs / "gone").write_text("x")
    (rootfs / "tree" / "deep").mkdir(parents=True)
    (rootfs / "tree" / "deep" / "f").write_text("x")
    (rootfs / "stay").write_text("x")
    blob = _layer([LayerEntry.whiteout("gone"), LayerEntry.whiteout("tree")])
    apply_layer(io.BytesIO(blob), rootfs)
    assert sorted(p.name for p in rootfs.iterdir()) == ["stay"]


def test_whiteout_of_missing_path_is_a_no_op(rootfs: Path) -> None:
    apply_layer(io.BytesIO(_layer([LayerEntry.whiteout("a/b/c")])), rootfs)
    assert list(rootfs.iterdir()) == []


def test_whiteout_does_not_remove_same_layer_entry(rootfs: Path) -> None:
    data = build_tar([("file", "a", "new"), ("file", ".wh.a", "")])
    apply_layer(io.BytesIO(data), rootfs)
    assert (rootfs / "a").read_text() == "new"


def test_opaque_hides_lower_content_keeps_this_layer(rootfs: Path) -> None:
    d = rootfs / "d"
    (d / "sub").mkdir(parents=True)
    (d / "old").write_text("lower")
    (d / "sub" / "lower").write_text("lower")
    blob = _layer(
        [
            LayerEntry(path="d", type=EntryType.DIR, mode=0o755),
            LayerEntry.opaque("d"),
            LayerEntry(path="d/sub", type=EntryType.DIR, mode=0o755),
            LayerEntry(path="d/sub/new", data=b"upper"),
        ]
    )
    apply_layer(io.BytesIO(blob), rootfs)
    assert sorted(str(p.relative_to(d)) for p in d.rglob("*")) == ["sub", "sub/new"]


def test_opaque_after_entries_keeps_them_but_hides_lower(rootfs: Path) -> None:
    """An archive that lists the opaque marker last (not our writer's order) still works."""
    d = rootfs / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "lower").write_text("lower")
    (d / "old").write_text("lower")
    data = build_tar(
        [
            ("dir", "d"),
            ("dir", "d/sub"),
            ("file", "d/sub/new", "upper"),
            ("file", "d/.wh..wh..opq", ""),
        ]
    )
    apply_layer(io.BytesIO(data), rootfs)
    assert sorted(str(p.relative_to(d)) for p in d.rglob("*")) == ["sub", "sub/new"]


def test_entry_replaces_existing_of_other_type(rootfs: Path) -> None:
    (rootfs / "x" / "inner").mkdir(parents=True)
    (rootfs / "y").write_text("file")
    data = build_tar([("file", "x", "now a file"), ("dir", "y")])
    apply_layer(io.BytesIO(data), rootfs)
    assert (rootfs / "x").read_text() == "now a file"
    assert (rootfs / "y").is_dir()


def test_existing_dir_is_kept_and_its_mode_updated(rootfs: Path) -> None:
    (rootfs / "d").mkdir(mode=0o700)
    (rootfs / "d" / "lower").write_text("x")
    apply_layer(io.BytesIO(build_tar([("dir", "d", "0751")])), rootfs)
    assert (rootfs / "d" / "lower").exists()
    assert stat.S_IMODE((rootfs / "d").stat().st_mode) == 0o751


def test_missing_parents_are_created(rootfs: Path) -> None:
    apply_layer(io.BytesIO(build_tar([("file", "a/b/c", "x")])), rootfs)
    assert (rootfs / "a" / "b" / "c").read_text() == "x"


def test_root_entry_is_ignored(rootfs: Path) -> None:
    before = rootfs.stat().st_mode
    apply_layer(io.BytesIO(build_tar([("dir", "./", "0777"), ("file", "./f", "x")])), rootfs)
    assert rootfs.stat().st_mode == before
    assert (rootfs / "f").read_text() == "x"


def test_diff_id_mismatch_is_reported(rootfs: Path) -> None:
    blob = _layer([LayerEntry(path="f", data=b"x")])
    wrong = Digest.of_bytes(b"something else")
    with pytest.raises(DigestMismatchError, match="config says") as info:
        apply_layer(io.BytesIO(blob), rootfs, expected_diff_id=wrong)
    assert info.value.expected == str(wrong)


def test_trailing_padding_counts_in_diff_id(rootfs: Path) -> None:
    data = build_tar([("file", "f", "x")])  # tarfile pads to a 10 KiB record
    result = apply_layer(io.BytesIO(gzip.compress(data)), rootfs)
    assert result.diff_id == Digest.of_bytes(data)
    assert result.uncompressed_size == len(data)


def test_corrupt_gzip_is_a_layer_error(rootfs: Path) -> None:
    blob = bytearray(gzip.compress(build_tar([("file", "f", "x" * 10000)])))
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(LayerError, match="corrupt gzip stream"):
        apply_layer(io.BytesIO(bytes(blob)), rootfs)


def test_corrupt_zstd_is_a_layer_error(rootfs: Path) -> None:
    blob = zstandard.ZstdCompressor().compress(build_tar([("file", "f", "x")]))
    with pytest.raises(LayerError, match="corrupt zstd stream"):
        apply_layer(io.BytesIO(blob[:-8] + b"\0" * 8), rootfs)


def test_not_a_tar_is_a_layer_error(rootfs: Path) -> None:
    with pytest.raises(LayerError, match="invalid tar header"):
        apply_layer(io.BytesIO(b"this is not a tar archive" * 40), rootfs)


def test_rootfs_must_exist(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="cannot open rootfs"):
        apply_layer(io.BytesIO(build_tar([])), tmp_path / "nope")


def test_deep_tree_removal_has_no_recursion_limit(rootfs: Path) -> None:
    deep = rootfs / "top"
    deep.mkdir()
    fd = os.open(deep, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(1200):
        os.mkdir("d", dir_fd=fd)
        nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.close(fd)
    apply_layer(io.BytesIO(_layer([LayerEntry.whiteout("top")])), rootfs)
    assert not deep.exists()


_CAPABILITY = b"\x01\x00\x00\x02\x00\x04\x00\x00" + bytes(12)  # v2, cap_net_bind_service


def test_only_allowlisted_xattrs_are_extracted(rootfs: Path) -> None:
    """``user.*`` and ``security.capability`` are set; ``trusted.*``, the other ``security.*``
    names and ``user.overlay.*`` are dropped (docs/SECURITY.md, extended attributes)."""
    names = {
        "user.k": b"v",
        "security.capability": _CAPABILITY,
        "trusted.overlay.opaque": b"y",
        "trusted.evil": b"1",
        "security.selinux": b"system_u:object_r:shadow_t:s0",
        "security.ima": b"\x03\x02",
        "user.overlay.opaque": b"y",
    }
    entries = [
        LayerEntry(path="f", data=b"x", xattrs=tuple(sorted(names.items()))),
        LayerEntry(path="d", type=EntryType.DIR, mode=0o755, xattrs=(("trusted.evil", b"1"),)),
    ]
    apply_layer(io.BytesIO(_layer(entries)), rootfs)
    kept = {k: os.getxattr(rootfs / "f", k) for k in os.listxattr(rootfs / "f")}
    want = {"user.k": b"v"}
    if require(os.geteuid() == 0, "root, to set security.capability"):
        want["security.capability"] = _CAPABILITY
    assert kept == want
    assert os.listxattr(rootfs / "d") == []


def test_a_dropped_xattr_gets_a_debug_line(
    rootfs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = [LayerEntry(path="f", data=b"x", xattrs=(("trusted.evil", b"1"), ("user.k", b"v")))]
    apply_layer(io.BytesIO(_layer(entries)), rootfs)
    assert capsys.readouterr().err == ""  # off by default
    monkeypatch.setenv("PYBUILD_DEBUG", "1")
    apply_layer(io.BytesIO(_layer(entries)), rootfs)
    assert capsys.readouterr().err == (
        "DEBUG: layer entry 'f': extended attribute 'trusted.evil' dropped\n"
    )


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("user.mime_type", True),
        ("security.capability", True),
        ("user.overlay.redirect", False),
        ("trusted.overlay.opaque", False),
        ("trusted.foo", False),
        ("security.selinux", False),
        ("security.evm", False),
        ("security.capability.x", False),
        ("system.posix_acl_access", False),
    ],
)
def test_xattr_allowlist(name: str, kept: bool) -> None:
    assert kept_xattr(name) is kept
