"""Tarball URL contexts, remote Dockerfiles and stdin contexts against a real HTTP server on
127.0.0.1 that also injects faults (redirects, a trickle, a body over the cap, archive bombs and
escaping entries). Each refusal is checked to leave nothing outside the store."""

from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard
from enginekit import Builder
from gitkit import FileServer, file_server, tar_bytes

pytestmark = pytest.mark.integration

DOCKERFILE = b"FROM scratch\nCOPY . /ctx/\n"


COMPRESSORS = {
    "tar": lambda b: b,
    "tar.gz": lambda b: gzip.compress(b, mtime=0),
    "tar.bz2": bz2.compress,
    "tar.xz": lzma.compress,
    "tar.zst": lambda b: zstandard.ZstdCompressor().compress(b),
}


@pytest.fixture
def server() -> Iterator[FileServer]:
    with file_server() as served:
        yield served


def store_tmp_is_empty(pb: Builder) -> bool:
    return not list((pb.store_root / "tmp").iterdir())


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_tarball_url_any_compression(pb: Builder, server: FileServer, kind: str) -> None:
    marker = uuid.uuid4().hex.encode()
    body = COMPRESSORS[kind](tar_bytes({"Dockerfile": DOCKERFILE, "sub/f.txt": marker}))
    # a misleading name: compression is detected by content
    url = server.add_bytes("/ctx.bin", body)
    built = pb.build_context(url)
    assert built.files["/ctx/sub/f.txt"].content == marker
    assert built.files["/ctx/Dockerfile"].content == DOCKERFILE
    assert store_tmp_is_empty(pb)


def test_remote_plain_dockerfile_has_an_empty_context(pb: Builder, server: FileServer) -> None:
    url = server.add_bytes("/Dockerfile", b'FROM scratch\nLABEL from="url"\n')
    built = pb.build_context(url)
    assert built.config["Labels"] == {"from": "url"}


def test_stdin_tar_and_stdin_dockerfile(pb: Builder) -> None:
    marker = uuid.uuid4().hex.encode()
    tar = gzip.compress(tar_bytes({"Dockerfile": DOCKERFILE, "f.txt": marker}), mtime=0)
    built = pb.build_context("-", stdin=tar)
    assert built.files["/ctx/f.txt"].content == marker
    plain = pb.build_context("-", stdin=b"FROM scratch\nCOPY . /empty/\nLABEL s=1\n")
    assert plain.config["Labels"] == {"s": "1"}
    assert not [p for p in plain.files if p.startswith("/empty/") and p != "/empty/"]
    assert store_tmp_is_empty(pb)


def test_dockerfile_from_stdin_with_a_directory_context(pb: Builder) -> None:
    ctx = pb.context({"a.txt": "from dir\n"})
    built = pb.build_context(str(ctx), args=["-f", "-"], stdin=b"FROM scratch\nCOPY a.txt /a.txt\n")
    assert built.files["/a.txt"].text == "from dir\n"
    both = pb.build_context("-", args=["-f", "-"], stdin=b"", check=False)
    assert "can't use stdin for both build context and dockerfile" in both.error_line()


# --- faults -------------------------------------------------------------------------------


def test_redirect_to_ftp_and_loops_are_refused(pb: Builder, server: FileServer) -> None:
    url = server.add_redirect("/to-ftp", "ftp://127.0.0.1/ctx.tar")
    assert "redirect to a ftp URL refused" in pb.build_context(url, check=False).error_line()
    for i in range(12):
        server.add_redirect(f"/hop{i}", f"/hop{i + 1}")
    server.add_bytes("/hop12", tar_bytes({"Dockerfile": DOCKERFILE}))
    line = pb.build_context(f"{server.url}/hop0", check=False).error_line()
    assert (
        line == f"ERROR: unable to prepare context: {server.url}/hop0: stopped after 10 redirects"
    )
    ten = pb.build_context(f"{server.url}/hop2")  # exactly 10 redirects is fine
    assert ten.ok


def test_credentials_never_go_to_another_host(pb: Builder) -> None:
    with file_server() as first, file_server() as second:
        second.add_bytes("/ctx.tar", tar_bytes({"Dockerfile": DOCKERFILE}))
        first.add_redirect("/ctx.tar", f"{second.url}/ctx.tar")
        url = f"http://user:pw@127.0.0.1:{first.port}/ctx.tar"
        built = pb.build_context(url)
        assert built.ok
        assert first.seen[0][1] is not None  # the URL's own origin got the credentials
        assert second.seen == [("/ctx.tar", None)]
        assert "pw" not in built.stderr.replace("pybuild", "")


def test_body_over_the_cap_and_trickle(pb: Builder, server: FileServer) -> None:
    url = server.add_bytes("/big.tar", b"\0" * (2 << 20))
    env = {"PYBUILD_MAX_DOWNLOAD": str(1 << 20)}
    line = pb.build_context(url, env=env, check=False).error_line()
    assert (
        line
        == f"ERROR: unable to prepare context: {url}: too large: {2 << 20} bytes (limit {1 << 20})"
    )
    slow = server.add_trickle("/slow.tar")
    line = pb.build_context(slow, env={"PYBUILD_DOWNLOAD_TIMEOUT": "1"}, check=False).error_line()
    assert line.startswith(f"ERROR: unable to prepare context: {slow}: timed out")
    assert store_tmp_is_empty(pb)


def test_unreachable_and_missing(pb: Builder, server: FileServer) -> None:
    from gitkit import free_port

    url = f"http://127.0.0.1:{free_port()}/ctx.tar"
    assert "unreachable host 127.0.0.1" in pb.build_context(url, check=False).error_line()
    assert (
        "invalid response status 404 Not Found"
        in pb.build_context(server.url + "/nope.tar", check=False).error_line()
    )


def test_archive_bomb_is_refused(pb: Builder, server: FileServer) -> None:
    bomb = gzip.compress(tar_bytes({"Dockerfile": DOCKERFILE, "zeros": b"\0" * (8 << 20)}))
    assert len(bomb) < (1 << 20)
    url = server.add_bytes("/bomb.tar.gz", bomb)
    env = {"PYBUILD_MAX_DOWNLOAD": str(1 << 20)}
    # the 8 MiB entry is refused from its header, before any of it is unpacked
    line = pb.build_context(url, env=env, check=False).error_line()
    assert "entry 'zeros': size 8388608 exceeds the 1048576-byte limit" in line
    assert store_tmp_is_empty(pb)


@pytest.mark.parametrize("shape", ["dotdot", "absolute", "hardlink"])
def test_escaping_entries_are_refused(
    pb: Builder, server: FileServer, tmp_path: Path, shape: str
) -> None:
    canary = tmp_path / "canary"
    canary.write_text("untouched\n")
    pwn = Path("/tmp") / f"pwn-{uuid.uuid4().hex}"
    extra: list[tarfile.TarInfo] = []
    members = {"Dockerfile": DOCKERFILE}
    if shape == "dotdot":
        members["../../../../../../" + str(pwn).lstrip("/")] = b"pwned"
    elif shape == "absolute":
        members[str(pwn)] = b"pwned"
    else:
        link = tarfile.TarInfo("link")
        link.type = tarfile.LNKTYPE
        link.linkname = "../../../../../../" + str(canary).lstrip("/")
        extra.append(link)
    url = server.add_bytes("/evil.tar", tar_bytes(members, extra=extra))
    line = pb.build_context(url, check=False).error_line()
    assert "invalid context archive" in line
    assert not pwn.exists()
    assert canary.read_text() == "untouched\n"
    assert canary.stat().st_nlink == 1
    assert store_tmp_is_empty(pb)
