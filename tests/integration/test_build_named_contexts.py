"""``--build-context`` with real builds: a directory (with its own ``.dockerignore``), an image
replacing ``FROM alpine``, a stage replaced by a context, an OCI layout written by
``pybuild save``, a git repository on ``git daemon`` and tarball/file URLs on a local HTTP
server; the cache follows the context's content; bad values fail in one line."""

from __future__ import annotations

import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginekit import Builder, Built
from gitkit import FileServer, file_server, git_daemon, make_repo, publish, tar_bytes
from test_build_cache import cached_by_text

from builder.store import Store

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[FileServer]:
    with file_server() as served:
        yield served


def named_dir(pb: Builder, files: dict[str, str], name: str = "named") -> Path:
    return pb.context(files, name=name)


def layer_digests(built: Built) -> list[str]:
    return [str(layer.descriptor.digest) for layer in built.image.layers]


def test_directory_context_in_from_copy_and_mount(pb: Builder) -> None:
    marker = uuid.uuid4().hex
    other = named_dir(
        pb, {"a.txt": marker, "secret.txt": "no", "sub/b.txt": "b", ".dockerignore": "secret.txt\n"}
    )
    dockerfile = (
        "FROM busybox\n"
        "COPY --from=other / /other/\n"
        "RUN --mount=from=other,target=/m cat /m/a.txt > /mounted && ls -a /m > /listed\n"
    )
    built = pb.build(dockerfile, args=["--build-context", f"other={other}"])
    files = built.files
    assert files["/other/a.txt"].text == marker
    assert files["/other/sub/b.txt"].text == "b"
    assert "/other/secret.txt" not in files
    assert (files["/other/a.txt"].uid, files["/other/a.txt"].gid) == (0, 0)
    assert files["/mounted"].text == marker
    assert "secret.txt" not in files["/listed"].text.split()
    # FROM the context: a one-layer image of its files on BuildKit's empty config
    as_base = pb.build("FROM other\nLABEL x=y\n", args=["--build-context", f"other={other}"])
    assert len(as_base.image.layers) == 1
    assert sorted(p for p, e in as_base.files.items() if e.type == "file") == [
        "/.dockerignore",
        "/a.txt",
        "/sub/b.txt",
    ]
    assert as_base.config["WorkingDir"] == "/"
    assert as_base.config["Env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    ]


def test_cache_follows_the_context_content(pb: Builder) -> None:
    other = named_dir(pb, {"a.txt": uuid.uuid4().hex})
    dockerfile = "FROM busybox\nCOPY --from=other /a.txt /a.txt\nRUN cat /a.txt > /b.txt\n"
    args = ["--build-context", f"other={other}"]
    first = pb.build(dockerfile, args=args)
    again = pb.build(dockerfile, args=args)
    cached = cached_by_text(again)
    assert cached["COPY --from=other /a.txt /a.txt"] is True
    assert cached["RUN cat /a.txt > /b.txt"] is True
    assert again.image_id == first.image_id
    changed = uuid.uuid4().hex
    (other / "a.txt").write_text(changed)
    third = pb.build(dockerfile, args=args)
    assert cached_by_text(third)["COPY --from=other /a.txt /a.txt"] is False
    assert third.files["/b.txt"].text == changed


def test_docker_image_context_replaces_from_alpine(pb: Builder) -> None:
    # alpine is not in the store and there is no network: only the context can answer it
    busybox = pb.build("FROM busybox\n")
    built = pb.build(
        "FROM alpine\nRUN echo replaced > /r\n",
        args=["--build-context", "alpine=docker-image://busybox"],
    )
    assert layer_digests(built)[:-1] == layer_digests(busybox)
    assert built.files["/r"].text == "replaced\n"
    # FROM alpine:3.20 is another name: the context does not answer it
    failed = pb.build(
        "FROM alpine:3.20\n", args=["--build-context", "alpine=docker-image://busybox"], check=False
    )
    assert "alpine:3.20" in failed.error_line()


def test_a_stage_is_replaced_by_the_context_of_its_name(pb: Builder) -> None:
    other = named_dir(pb, {"marker": "from the context"})
    dockerfile = "FROM busybox AS base\nRUN exit 3\nFROM busybox\nCOPY --from=base /marker /m\n"
    built = pb.build(dockerfile, args=["--build-context", f"base={other}"])
    assert built.files["/m"].text == "from the context"
    assert "exit 3" not in built.stderr


def test_oci_layout_context_from_pybuild_save(pb: Builder, tmp_path: Path) -> None:
    source = pb.build(f"FROM busybox\nRUN echo {uuid.uuid4().hex} > /id\n")
    archive = tmp_path / "img.tar"
    pb.cli("save", "--format", "oci", "-o", str(archive), source.tag, check=True)
    layout = tmp_path / "layout"
    with tarfile.open(archive) as tar:
        tar.extractall(layout, filter="data")
    tag = source.tag.rpartition(":")[2]
    for value in (f"oci-layout://{layout}:{tag}", f"oci-layout://{layout}@{source.image.digest}"):
        built = pb.build(
            "FROM img\nRUN cat /id > /copied\n", args=["--build-context", f"img={value}"]
        )
        assert built.files["/copied"].content == source.files["/id"].content
        assert layer_digests(built)[:-1] == layer_digests(source)


def test_git_context(pb: Builder, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    base = tmp_path / "srv"
    base.mkdir()
    work = make_repo(tmp_path / "work", {"sub/hello.txt": marker, "top.txt": "top"})
    publish(work, base, "repo.git")
    with git_daemon(base, tmp_path / "daemon.log") as daemon:
        url = f"{daemon.url}/repo.git#main:sub"
        built = pb.build(
            "FROM busybox\nCOPY --from=src / /src/\n", args=["--build-context", f"src={url}"]
        )
    assert built.files["/src/hello.txt"].text == marker
    assert "/src/top.txt" not in built.files
    assert "/src/.git" not in built.files


def test_https_tarball_and_plain_file_contexts(pb: Builder, server: FileServer) -> None:
    marker = uuid.uuid4().hex.encode()
    tarball = server.add_bytes("/ctx.tar", tar_bytes({"dir/f.txt": marker}))
    plain = server.add_bytes("/notes.txt", b"just a file\n")
    built = pb.build(
        "FROM busybox\nCOPY --from=t / /t/\nCOPY --from=p / /p/\n",
        args=["--build-context", f"t={tarball}", "--build-context", f"p={plain}"],
    )
    assert built.files["/t/dir/f.txt"].content == marker
    # BuildKit's HTTP source: the body is the one file "context", mode 0600
    assert built.files["/p/context"].content == b"just a file\n"
    assert built.files["/p/context"].mode == 0o600
    assert not list((pb.store_root / "tmp").iterdir())


def test_bad_values_fail_in_one_line_naming_them(
    pb: Builder, tmp_path: Path, server: FileServer
) -> None:
    dockerfile = "FROM busybox\nCOPY --from=x / /x/\n"
    missing = tmp_path / "missing"
    cases = {
        f"x={missing}": f"failed to get build context x: stat {missing}: No such file or directory",
        f"x=oci-layout://{missing}": (
            f"build context x=oci-layout://{missing}: {missing}: not an OCI image layout"
        ),
        f"x={server.url}/gone.tar": f"{server.url}/gone.tar",
        "x=docker-image://nosuch.invalid/img": "build context x=docker-image://nosuch.invalid/img:",
        "Bad=x": "invalid context name Bad",
    }
    for value, expected in cases.items():
        failed = pb.build(dockerfile, args=["--build-context", value], check=False)
        assert expected in failed.error_line(), value
    assert not list((pb.store_root / "tmp").iterdir())
    # nothing was tagged
    store = Store.open(pb.store_root)
    assert all(not n.startswith("docker.io/library/x:") for e in store.entries() for n in e.names)
