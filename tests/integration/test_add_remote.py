"""``ADD <git URL>`` and ``ADD <http(s) URL>`` against real servers on 127.0.0.1 (git daemon
and a fault-injecting HTTP server), plus the decompressed-size cap of local archives."""

from __future__ import annotations

import gzip
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginekit import Builder, Built, layer_entries
from gitkit import (
    FileServer,
    GitDaemon,
    file_server,
    git,
    git_daemon,
    make_repo,
    publish,
    tar_bytes,
)

from builder.oci.tarformat import TarHeader

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GitDaemon, str, str]]:
    """A daemon with repo.git: tag v1 (app/hello.txt = a fresh marker); yields the commit too."""
    top = tmp_path_factory.mktemp("addgit")
    base = top / "srv"
    base.mkdir()
    marker = uuid.uuid4().hex
    work = make_repo(top / "work", {"app/hello.txt": marker, "top.txt": "top\n"})
    git("tag", "v1", cwd=work)
    publish(work, base, "repo.git")
    commit = git("rev-parse", "HEAD", cwd=work)
    with git_daemon(base, top / "daemon.log") as daemon:
        yield daemon, commit, marker


@pytest.fixture
def server() -> Iterator[FileServer]:
    with file_server() as running:
        yield running


def test_add_git_subdir_without_git_dir(pb: Builder, served: tuple[GitDaemon, str, str]) -> None:
    daemon, _, marker = served
    built = pb.build(f"FROM scratch\nADD {daemon.url}/repo.git#v1:app /src/\n")
    assert built.files["/src/hello.txt"].text == marker
    assert built.files["/src/hello.txt"].uid == 0
    assert not [p for p in built.files if "/.git" in p]


def test_add_git_keep_git_dir_and_checksum(pb: Builder, served: tuple[GitDaemon, str, str]) -> None:
    daemon, commit, _ = served
    add = f"ADD --keep-git-dir=true --checksum={commit[:12]} {daemon.url}/repo.git#v1 /r/"
    built = pb.build(f"FROM scratch\n{add}\n")
    assert built.files["/r/top.txt"].text == "top\n"
    assert built.files["/r/.git/HEAD"].text.strip() == commit
    wrong = "0" * 40
    bad = pb.build(
        f"FROM scratch\nADD --checksum={wrong} {daemon.url}/repo.git#v1 /r/\n", check=False
    )
    line = bad.error_line()
    assert f"ADD {daemon.url}/repo.git: expected checksum to match {wrong}, got {commit}" in line
    assert line.startswith("ERROR: Dockerfile:2")


def test_add_git_bad_ref_fails_at_planning(pb: Builder, served: tuple[GitDaemon, str, str]) -> None:
    daemon, _, _ = served
    before = daemon.requests()
    bad = pb.build(f"FROM scratch\nADD {daemon.url}/repo.git#--upload-pack=x /r/\n", check=False)
    assert "invalid refspec '--upload-pack=x'" in bad.error_line()
    assert daemon.requests() == before


def test_add_url_name_mode_mtime_checksum(pb: Builder, server: FileServer) -> None:
    body = uuid.uuid4().hex.encode()
    tarball = gzip.compress(tar_bytes({"inner.txt": b"x"}), mtime=0)
    headers = {
        "Content-Disposition": 'attachment; filename="../../../../tmp/pwn"',
        "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT",
    }
    url = server.add_bytes("/download?id=1", body, headers)
    archive = server.add_bytes("/pkg.tar.gz", tarball)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    built = pb.build(f"FROM scratch\nADD --checksum={digest} {url} /dl/\nADD {archive} /arch/\n")
    entry = built.files["/dl/pwn"]  # the base name of Content-Disposition's filename only
    assert (entry.content, entry.mode, entry.uid) == (body, 0o600, 0)
    assert built.files["/arch/pkg.tar.gz"].content == tarball  # never extracted
    assert [p for p in built.files if p.startswith("/dl/")] == ["/dl/pwn"]
    assert "/tmp/pwn" not in built.files
    wrong = "sha256:" + "0" * 64
    bad = pb.build(f"FROM scratch\nADD --checksum={wrong} {url} /dl/\n", check=False)
    assert f"checksum mismatch: expected {wrong}" in bad.error_line()


def test_add_url_mtime_from_last_modified(pb: Builder, server: FileServer) -> None:
    url = server.add_bytes("/f.txt", b"dated\n", {"Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"})
    built = pb.build(f"FROM scratch\nADD {url} /f.txt\n")
    headers = {h.name.lstrip("./"): h for h in _layer(built)}
    assert headers["f.txt"].mtime_ns == 1445412480 * 1_000_000_000


def test_add_url_faults(pb: Builder, server: FileServer, tmp_path: Path) -> None:
    to_ftp = server.add_redirect("/ftp", "ftp://127.0.0.1/x")
    line = pb.build(f"FROM scratch\nADD {to_ftp} /x\n", check=False).error_line()
    assert f"ADD {to_ftp}: redirect to a ftp URL refused" in line
    big = server.add_bytes("/big", b"\0" * (2 << 20))
    env_cap = {"PYBUILD_MAX_DOWNLOAD": str(1 << 20)}
    ctx = pb.context({"Dockerfile": f"FROM scratch\nADD {big} /x\n"}, name="big")
    line = pb.build_context(str(ctx), env=env_cap, check=False).error_line()
    assert f"ADD {big}: too large" in line
    assert not list((pb.store_root / "ingest").iterdir())


def test_local_archive_bomb_is_refused(pb: Builder) -> None:
    bomb = gzip.compress(tar_bytes({"zeros": b"\0" * (8 << 20)}))
    ctx = pb.context({"Dockerfile": "FROM scratch\nADD bomb.tar.gz /x/\n"}, name="bomb")
    (ctx / "bomb.tar.gz").write_bytes(bomb)
    env = {"PYBUILD_MAX_UNPACK": str(1 << 20)}
    line = pb.build_context(str(ctx), env=env, check=False).error_line()
    assert "limit exceeded" in line
    ok = pb.build_context(str(ctx))  # the default cap (1024 x the archive, at least 1 GiB)
    assert ok.files["/x/zeros"].content == b"\0" * (8 << 20)


def _layer(built: Built) -> tuple[TarHeader, ...]:
    return layer_entries(built.image, len(built.image.layers) - 1)
