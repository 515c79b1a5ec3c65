"""ADD of local archives: detection by content, tar -x union semantics, --unpack."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
from pathlib import Path

import pytest
import zstandard
from copykit import Step, run, tree, write

from builder.engine.archive import is_archive
from builder.errors import ContextError


def _tar(entries: list[tuple[str, bytes | None, int]], *, uid: int = 0) -> bytes:
    """``(name, data or None for a directory, mode)`` entries as an uncompressed tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.mode = mode
            info.uid = info.gid = uid
            info.mtime = 1_600_000_000
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


SAMPLE = _tar(
    [
        ("pkg/", None, 0o755),
        ("pkg/bin/tool", b"#!/bin/sh\n", 0o755),
        ("pkg/README", b"readme", 0o644),
    ],
    uid=1000,
)
EXPECTED = {
    "opt": "dir",
    "opt/pkg": "dir",
    "opt/pkg/bin": "dir",
    "opt/pkg/bin/tool": "#!/bin/sh\n",
    "opt/pkg/README": "readme",
}


@pytest.mark.parametrize(
    "compress",
    [
        lambda d: d,
        gzip.compress,
        bz2.compress,
        lzma.compress,
        lambda d: zstandard.ZstdCompressor().compress(d),
    ],
    ids=["tar", "gzip", "bzip2", "xz", "zstd"],
)
def test_local_archives_are_extracted_by_content(tmp_path: Path, compress: object) -> None:
    assert callable(compress)
    root = tmp_path / "ctx"
    write(root, "release.bin", compress(SAMPLE))  # the name says nothing
    res = run(root, Step(sources=("release.bin",), dest="/opt/", is_add=True), tmp_path / "out")
    assert tree(tmp_path / "out") == EXPECTED
    tool = res.get("/opt/pkg/bin/tool")
    assert tool is not None
    assert (tool.mode, tool.uid, tool.gid) == (0o755, 1000, 1000)
    assert (tmp_path / "out/opt/pkg/README").stat().st_mtime == 1_600_000_000
    assert (tmp_path / "out/opt/pkg").stat().st_mtime == 1_600_000_000


def test_dest_without_slash_is_a_directory(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "a.tar.gz", gzip.compress(SAMPLE))
    run(root, Step(sources=("a.tar.gz",), dest="/opt", is_add=True), tmp_path / "out")
    assert tree(tmp_path / "out") == EXPECTED


def test_non_archives_and_unpack_false_are_copied(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "fake.tar.gz", "not really")
    write(root, "empty.tar", _tar([]))
    write(root, "real.tar", SAMPLE)
    step = Step(sources=("fake.tar.gz", "empty.tar"), dest="/d/", is_add=True)
    run(root, step, tmp_path / "o1")
    assert set(tree(tmp_path / "o1")) == {"d", "d/fake.tar.gz", "d/empty.tar"}
    step = Step(sources=("real.tar",), dest="/d/", is_add=True, unpack=False)
    run(root, step, tmp_path / "o2")
    assert set(tree(tmp_path / "o2")) == {"d", "d/real.tar"}
    run(root, Step(sources=("real.tar",), dest="/d/"), tmp_path / "o3")  # COPY never unpacks
    assert set(tree(tmp_path / "o3")) == {"d", "d/real.tar"}


def test_archives_inside_directories_are_not_extracted(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "dist/a.tar", SAMPLE)
    run(root, Step(sources=("dist",), dest="/d/", is_add=True), tmp_path / "out")
    assert set(tree(tmp_path / "out")) == {"d", "d/a.tar"}
    assert (tmp_path / "out" / "d" / "a.tar").read_bytes() == SAMPLE


def test_glob_of_archives(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "one.tar", _tar([("a", b"1", 0o644)]))
    write(root, "two.tar", _tar([("b", b"2", 0o644)]))
    run(root, Step(sources=("*.tar",), dest="/x", is_add=True), tmp_path / "out")
    assert tree(tmp_path / "out") == {"x": "dir", "x/a": "1", "x/b": "2"}


def test_extraction_is_a_union_with_the_image(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(
        root,
        "a.tar",
        _tar([("etc/", None, 0o700), ("etc/new.conf", b"new", 0o600), ("bin", b"file", 0o755)]),
    )
    rootfs = tmp_path / "rootfs"
    write(rootfs, "srv/etc/old.conf", "old")
    (rootfs / "srv" / "bin").mkdir()
    write(rootfs, "srv/bin/sh", "sh")
    res = run(
        root, Step(sources=("a.tar",), dest="/srv", is_add=True), tmp_path / "out", rootfs=rootfs
    )
    assert tree(tmp_path / "out") == {
        "srv": "dir",
        "srv/etc": "dir",
        "srv/etc/new.conf": "new",
        "srv/bin": "file",  # a file replaces the image's directory, as tar -x does
    }
    etc = res.get("/srv/etc")
    assert etc is not None
    assert etc.mode == 0o700


def test_chown_owns_extracted_entries(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "a.tar", SAMPLE)
    res = run(
        root, Step(sources=("a.tar",), dest="/opt/", is_add=True, chown="7:8"), tmp_path / "out"
    )
    for path in ("/opt", "/opt/pkg", "/opt/pkg/bin/tool"):
        item = res.get(path)
        assert item is not None, path
        assert (item.uid, item.gid) == (7, 8), path


def test_implied_parents_and_absolute_names(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "a.tar", _tar([("/abs/deep/f", b"f", 0o640), ("./rel", b"r", 0o644)]))
    res = run(root, Step(sources=("a.tar",), dest="/t/", is_add=True), tmp_path / "out")
    assert tree(tmp_path / "out") == {
        "t": "dir",
        "t/abs": "dir",
        "t/abs/deep": "dir",
        "t/abs/deep/f": "f",
        "t/rel": "r",
    }
    deep = res.get("/t/abs/deep")
    assert deep is not None
    assert (deep.mode, deep.uid) == (0o755, 0)


def test_hardlinks_in_archives(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("a")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"A"))
        link = tarfile.TarInfo("sub/b")
        link.type = tarfile.LNKTYPE
        link.linkname = "a"
        tf.addfile(link)
    root = tmp_path / "ctx"
    write(root, "h.tar", buf.getvalue())
    run(root, Step(sources=("h.tar",), dest="/h/", is_add=True), tmp_path / "out")
    a = (tmp_path / "out/h/a").stat()
    b = (tmp_path / "out/h/sub/b").stat()
    assert a.st_ino == b.st_ino


def test_corrupt_archive_after_a_valid_header(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    big = _tar([("first", b"ok", 0o644), ("second", os.urandom(256 * 1024), 0o644)])
    data = gzip.compress(big)
    write(root, "bad.tgz", data[: len(data) * 3 // 4])
    with pytest.raises(ContextError, match=r"ADD /bad\.tgz"):
        run(root, Step(sources=("bad.tgz",), dest="/d/", is_add=True), tmp_path / "out")


def test_is_archive(tmp_path: Path) -> None:
    cases = {
        "plain": (SAMPLE, True),
        "gz": (gzip.compress(SAMPLE), True),
        "text": (b"hello world" * 100, False),
        "gz-text": (gzip.compress(b"hello world" * 100), False),
        "empty": (b"", False),
        "zeros": (bytes(1024), False),
    }
    for name, (data, want) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        fd = os.open(path, os.O_RDONLY)
        try:
            assert is_archive(fd) is want, name
        finally:
            os.close(fd)


def test_whiteout_names_in_archives_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "w.tar", _tar([("etc/.wh.passwd", b"", 0o644)]))
    with pytest.raises(ContextError, match="reserved for whiteouts"):
        run(root, Step(sources=("w.tar",), dest="/", is_add=True), tmp_path / "out")
