"""The CONTEXT argument: stdin tar or Dockerfile, which arguments are local, in-root reads
(remote contexts are covered against real servers in tests/integration/test_context_*.py)."""

from __future__ import annotations

import io
import lzma
import tarfile
from pathlib import Path

import pytest

from builder.api import is_local_context
from builder.context.prepare import prepare
from builder.errors import ContextError


def tar_of(files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def test_stdin_tar_is_the_context(tmp_path: Path) -> None:
    data = lzma.compress(tar_of({"Dockerfile": b"FROM scratch\n", "a/b.txt": b"b"}))
    got = prepare("-", None, store_root=tmp_path, stdin=io.BytesIO(data))
    try:
        assert got.kind == "stdin"
        assert got.dockerfile == b"FROM scratch\n"
        assert (got.directory / "a" / "b.txt").read_bytes() == b"b"
        assert got.directory.is_relative_to(tmp_path / "tmp")
    finally:
        got.close()
    assert not got.directory.exists()


def test_stdin_dockerfile_has_an_empty_context(tmp_path: Path) -> None:
    got = prepare("-", "ignored", store_root=tmp_path, stdin=io.BytesIO(b"FROM scratch\n"))
    assert (got.kind, got.dockerfile, list(got.directory.iterdir())) == (
        "dockerfile",
        b"FROM scratch\n",
        [],
    )
    got.close()


def test_dockerfile_of_a_tar_is_read_in_root(tmp_path: Path) -> None:
    data = tar_of({"x": b""}, symlinks={"Dockerfile": "/etc/passwd"})
    with pytest.raises(ContextError, match="'Dockerfile' not found in the context"):
        prepare("-", None, store_root=tmp_path, stdin=io.BytesIO(data))
    assert not list((tmp_path / "tmp").iterdir())


def test_dockerfile_flag_is_relative_to_the_tar_root(tmp_path: Path) -> None:
    data = tar_of({"sub/build.df": b"FROM scratch\nLABEL a=b\n"})
    got = prepare("-", "sub/build.df", store_root=tmp_path, stdin=io.BytesIO(data))
    assert got.dockerfile_name == "build.df"
    assert got.dockerfile_path == got.directory / "sub" / "build.df"
    got.close()


def test_stdin_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="can't use stdin for both"):
        prepare("-", "-", store_root=tmp_path, stdin=io.BytesIO(b""))


def test_is_local_context(tmp_path: Path) -> None:
    assert is_local_context(str(tmp_path))
    assert is_local_context("no/such/dir")
    assert not is_local_context("-")
    assert not is_local_context("https://h/r.git")
    assert not is_local_context("https://h/ctx.tar.gz")
    assert not is_local_context("git@h:o/r")
    odd = tmp_path / "git@h:o"
    odd.mkdir()
    assert is_local_context(str(odd))  # an existing directory wins, as in the docker CLI
