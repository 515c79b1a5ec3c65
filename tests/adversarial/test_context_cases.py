"""Checklist cases 5-10 (docs/SECURITY.md section 3, Context / COPY / ADD): context symlinks,
ignored files, image symlinks, ADD URLs, git and tarball contexts that aim outside the context
or the rootfs. Each ends in a clean error or a contained result; sentinels outside the store,
rootfs and context stay byte- and mode-identical; the store stays consistent."""

from __future__ import annotations

import gzip
import hashlib
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from advkit import (
    Sentinels,
    assert_clean_error,
    assert_nowhere,
    assert_store_consistent,
    rerun_succeeds,
)
from enginekit import Builder, L
from gitkit import (
    FileServer,
    GitDaemon,
    add_submodule,
    file_server,
    git_daemon,
    make_repo,
    publish,
    tar_bytes,
)

pytestmark = pytest.mark.integration

GOOD = "FROM busybox\nCOPY . /ctx/\nRUN cat /ctx/ok.txt\n"
GOOD_FILES = {"ok.txt": "adversarial-context-ok\n"}


@pytest.fixture
def server() -> Iterator[FileServer]:
    with file_server() as served:
        yield served


# --------------------------------------------------------------------------- case 5


@pytest.mark.parametrize("source", ["link", "link/", "dir/../link", "*"])
def test_case_05_context_symlink_to_host_file(
    pb: Builder, sentinels: Sentinels, source: str
) -> None:
    outside = sentinels.trees[1] / "secret"  # under /tmp, outside the context
    passwd = Path("/etc/passwd").read_bytes()
    files = {"link": L(target=str(outside)), "passwd": L(target="/etc/passwd"), "dir/x": "x"}
    built = pb.build(f"FROM busybox\nCOPY {source} /x/\nCOPY passwd /p\n", files, check=False)
    if built.ok:
        # copied as the link it is, never as the host file's bytes
        linked = [e for p, e in built.files.items() if p.startswith("/x/") and e.type == "symlink"]
        assert [e.linkname for e in linked] == [str(outside)]
        assert built.files["/p"].type == "symlink"
        assert built.files["/p"].linkname == "/etc/passwd"
    else:
        assert_clean_error(built, must_name="Dockerfile:2")
    assert_nowhere(sentinels.secret, built)
    if built.ok:
        assert all(e.content != passwd for e in built.files.values() if e.type == "file")
    assert_store_consistent(pb.store_root)


# --------------------------------------------------------------------------- case 6


@pytest.mark.parametrize(
    "dockerfile",
    [
        "FROM busybox\nCOPY . /c/\n",
        "FROM busybox\nCOPY link /l\n",
        "FROM busybox\nCOPY link* /l/\n",
        "FROM busybox\nRUN --mount=type=bind,target=/m cat /m/secret.txt\n",
        "FROM busybox\nRUN --mount=type=bind,target=/m cat /m/link\n",
        "FROM busybox\nRUN --mount=type=bind,target=/m,rw cat /m/secret.txt > /found || true\n",
    ],
    ids=["copy-dot", "copy-link", "copy-glob", "bind-cat", "bind-link", "bind-copy-out"],
)
def test_case_06_ignored_file_never_leaks(
    pb: Builder, sentinels: Sentinels, dockerfile: str
) -> None:
    secret = f"ignored-secret-{uuid.uuid4().hex}\n".encode()
    files = {
        ".dockerignore": "secret.txt\n",
        "secret.txt": secret,
        "link": L(target="secret.txt"),
        "ok.txt": "ok\n",
    }
    built = pb.build(dockerfile, files, check=False)
    if not built.ok:
        assert_clean_error(built, must_name="Dockerfile:2")
    assert_nowhere(secret, built)
    assert_store_consistent(pb.store_root)


# --------------------------------------------------------------------------- case 7


def test_case_07_image_symlink_destination_stays_in_the_rootfs(
    pb: Builder, sentinels: Sentinels
) -> None:
    name = f"adv-{uuid.uuid4().hex[:12]}"
    host = Path("/etc") / name
    built = pb.build(
        f"FROM busybox\nRUN ln -s /etc /app\nCOPY {name} /app/\nRUN cat /etc/{name}\n",
        {name: "through the image link\n"},
    )
    assert built.files[f"/etc/{name}"].text == "through the image link\n"
    assert built.files["/app"].linkname == "/etc"
    assert not host.exists()
    assert_store_consistent(pb.store_root)


@pytest.mark.parametrize("fd", [3, 4, 5, 6, 7, 8])
def test_case_07_workdir_proc_self_fd_gives_no_host_view(
    pb: Builder, sentinels: Sentinels, fd: int
) -> None:
    # CVE-2024-21626: a working directory on a leaked runc fd resolved against the host
    host_secret = sentinels.trees[1] / "secret"
    up = "../" * 12
    built = pb.build(
        f"FROM busybox\nWORKDIR /proc/self/fd/{fd}\n"
        f"RUN cat {up}{str(host_secret).lstrip('/')} > /out 2>&1; ls -la . ..; pwd -P; true\n",
        check=False,
    )
    if built.ok:
        assert sentinels.secret not in built.files["/out"].content
    else:
        assert_clean_error(built, must_name="Dockerfile:3")
    assert_nowhere(sentinels.secret, built)
    assert_store_consistent(pb.store_root)


# --------------------------------------------------------------------------- case 8


def test_case_08_content_disposition_names_only_the_base(
    pb: Builder, server: FileServer, sentinels: Sentinels
) -> None:
    body = uuid.uuid4().hex.encode()
    headers = {"Content-Disposition": 'attachment; filename="../../../../tmp/pwn"'}
    url = server.add_bytes("/download?id=1", body, headers)
    built = pb.build(f"FROM busybox\nADD {url} /dl/\n")
    assert [p for p in built.files if p.startswith("/dl/")] == ["/dl/pwn"]
    assert built.files["/dl/pwn"].content == body
    assert "/tmp/pwn" not in built.files
    assert_store_consistent(pb.store_root)


@pytest.mark.parametrize("fault", ["redirects-11", "file-url", "checksum", "over-cap"])
def test_case_08_add_url_faults(
    pb: Builder, server: FileServer, sentinels: Sentinels, fault: str
) -> None:
    body = b"payload\n" * 1000
    url = server.add_bytes("/body", body)
    flags, env, message = "", {}, ""
    match fault:
        case "redirects-11":
            for i in range(11):
                server.add_redirect(f"/hop{i}", f"/hop{i + 1}" if i < 10 else "/body")
            url, message = f"{server.url}/hop0", "stopped after 10 redirects"
        case "file-url":
            url = server.add_redirect("/to-file", f"file://{sentinels.trees[1]}/secret")
            message = "redirect to a file URL refused"
        case "checksum":
            flags, message = f"--checksum=sha256:{'0' * 64} ", "checksum mismatch"
        case "over-cap":
            env, message = {"PYBUILD_MAX_DOWNLOAD": "4096"}, "too large"
    ctx = pb.context({"Dockerfile": f"FROM busybox\nADD {flags}{url} /dl/f\n"}, name=fault)
    built = pb.build_context(str(ctx), env=env, check=False)
    line = assert_clean_error(built, must_name=("Dockerfile:2", url))
    assert message in line
    assert_nowhere(sentinels.secret, built)
    assert_store_consistent(pb.store_root)
    good = f"FROM busybox\nADD --checksum=sha256:{hashlib.sha256(body).hexdigest()} "
    rerun_succeeds(pb, good + f"{server.url}/body /dl/f\n")


# --------------------------------------------------------------------------- case 9


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GitDaemon, Path]]:
    top = tmp_path_factory.mktemp("advgit")
    base = top / "srv"
    base.mkdir()
    work = make_repo(top / "work", {"Dockerfile": GOOD, **GOOD_FILES})
    publish(work, base, "repo.git")
    with git_daemon(base, top / "daemon.log") as daemon:
        yield daemon, base


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        ("#--upload-pack=touch${IFS}/tmp/pwn", "invalid refspec"),
        ("#-B", "invalid refspec"),
        ("#main:../../x", "outside of the repository"),
    ],
)
def test_case_09_git_fragments_never_become_options(
    pb: Builder,
    git_server: tuple[GitDaemon, Path],
    sentinels: Sentinels,
    fragment: str,
    message: str,
) -> None:
    daemon, _ = git_server
    url = f"{daemon.url}/repo.git{fragment}"
    before = daemon.requests()
    line = assert_clean_error(pb.build_context(url, check=False))
    assert message in line
    assert daemon.requests() == before  # refused before git ran
    assert_store_consistent(pb.store_root)


def test_case_09_ext_transport_context_is_refused(pb: Builder, sentinels: Sentinels) -> None:
    line = assert_clean_error(pb.build_context("ext::sh -c touch% /tmp/pwn", check=False))
    assert "ext::sh" in line
    assert_store_consistent(pb.store_root)


@pytest.mark.parametrize("transport", ["ext", "file"])
def test_case_09_dangerous_submodules_are_refused(
    pb: Builder,
    git_server: tuple[GitDaemon, Path],
    sentinels: Sentinels,
    tmp_path: Path,
    transport: str,
) -> None:
    daemon, base = git_server
    target = make_repo(tmp_path / "target", {"passwd": "host file\n"})
    url = {"ext": "ext::sh -c touch% /tmp/pwn", "file": "file:///etc"}[transport]
    work = make_repo(tmp_path / "evil", {"Dockerfile": GOOD, **GOOD_FILES})
    add_submodule(work, target, url)
    name = f"evil-{transport}-{uuid.uuid4().hex[:8]}.git"
    publish(work, base, name)
    line = assert_clean_error(pb.build_context(f"{daemon.url}/{name}", check=False))
    assert "not allowed" in line
    assert not list((pb.store_root / "git").glob("*/x/passwd"))
    assert_store_consistent(pb.store_root)
    rerun = pb.build_context(f"{daemon.url}/repo.git")
    assert rerun.files["/ctx/ok.txt"].text == GOOD_FILES["ok.txt"]


# --------------------------------------------------------------------------- case 10


@pytest.mark.parametrize("shape", ["dotdot", "absolute", "hardlink", "symlink-then-file"])
def test_case_10_tarball_context_escapes(
    pb: Builder, server: FileServer, sentinels: Sentinels, shape: str
) -> None:
    canary = sentinels.trees[0] / "secret"
    members = {"Dockerfile": GOOD.encode(), "ok.txt": b"ok\n"}
    extra: list[tarfile.TarInfo] = []
    match shape:
        case "dotdot":
            members["../" * 12 + "tmp/pwn"] = b"pwned"
        case "absolute":
            members["/tmp/pwn"] = b"pwned"
        case "hardlink":
            link = tarfile.TarInfo("link")
            link.type = tarfile.LNKTYPE
            link.linkname = "../" * 12 + str(canary).lstrip("/")
            extra.append(link)
        case "symlink-then-file":
            link = tarfile.TarInfo("out")
            link.type = tarfile.SYMTYPE
            link.linkname = "/tmp"
            extra += [link, tarfile.TarInfo("out/pwn")]  # an empty file through the link
    url = server.add_bytes("/evil.tar.gz", gzip.compress(tar_bytes(members, extra=extra)))
    built = pb.build_context(url, check=False)
    if built.ok:  # clamped into the context: nothing lands outside it
        assert all(not p.endswith("/pwn") or p.startswith("/ctx/") for p in built.files)
    else:
        assert "invalid context archive" in assert_clean_error(built, must_name=url)
    assert_nowhere(sentinels.secret, built)
    assert_store_consistent(pb.store_root)
    good = server.add_bytes(
        "/good.tar",
        tar_bytes({"Dockerfile": GOOD.encode(), **{k: v.encode() for k, v in GOOD_FILES.items()}}),
    )
    assert pb.build_context(good).ok
