"""COPY and ADD built for real: what lands in the image, as BuildKit's file op would place it.

Rules checked (Dockerfile reference, ``dockerfile2llb/convert_copy.go``, ``fsutil/copy``):
directory sources copy their contents; a trailing ``/`` makes dest a directory; relative dests
join WORKDIR; missing parents are created 0755 (owned by the ``--chown`` user); modes are kept,
owners are 0:0 from the context and kept from other stages; globs follow ``filepath.Match``.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from enginekit import Builder, D, F, L

from builder.digest import Digest
from builder.store import Store

pytestmark = pytest.mark.integration


def owner(entry: object) -> tuple[int, int]:
    return (entry.uid, entry.gid)  # type: ignore[attr-defined]


TREE = {
    "a.txt": "A\n",
    "b.txt": "B\n",
    "c.md": "C\n",
    "run.sh": F(content="#!/bin/sh\n", mode=0o755),
    "private.key": F(content="secret\n", mode=0o600),
    "dir/one.txt": "1\n",
    "dir/sub/two.txt": "2\n",
    "dir/sub/link": L(target="two.txt"),
    "dir/empty": D(mode=0o700),
    "dir2/x.txt": "x\n",
    "linkfile": L(target="a.txt"),
}


@pytest.fixture
def copied(pb: Builder) -> dict[str, object]:
    """One build exercising the common COPY rules (shared by several assertions)."""
    dockerfile = (
        "FROM busybox\n"
        "COPY a.txt /file-dest\n"
        "COPY a.txt /dir-dest/\n"
        "COPY a.txt /tmp\n"
        "COPY dir /contents\n"
        "COPY dir/ /contents-slash/\n"
        "COPY dir dir2 /merged/\n"
        "COPY *.txt /glob/\n"
        'COPY ["?.md", "nomatch*", "/glob2/"]\n'
        "COPY a.txt /p/q/r/parents.txt\n"
        "COPY run.sh private.key /modes/\n"
        "COPY linkfile /followed\n"
        "WORKDIR /work\n"
        "COPY a.txt rel/\n"
        "COPY b.txt .\n"
        "COPY c.md ./renamed.md\n"
    )
    built = pb.build(dockerfile, TREE)
    return built.files  # type: ignore[return-value]


def test_copy_file_destinations(copied: dict) -> None:  # type: ignore[type-arg]
    assert copied["/file-dest"].type == "file"
    assert copied["/file-dest"].content == b"A\n"
    assert copied["/dir-dest"].type == "dir"
    assert copied["/dir-dest/a.txt"].content == b"A\n"
    # an existing directory as dest (no trailing slash) receives the file
    assert copied["/tmp/a.txt"].content == b"A\n"
    assert copied["/tmp"].mode == 0o1777  # the existing directory keeps its mode


def test_copy_directory_copies_its_contents(copied: dict) -> None:  # type: ignore[type-arg]
    for root in ("/contents", "/contents-slash"):
        assert copied[f"{root}/one.txt"].content == b"1\n"
        assert copied[f"{root}/sub/two.txt"].content == b"2\n"
        assert copied[f"{root}/sub/link"].type == "symlink"
        assert copied[f"{root}/sub/link"].linkname == "two.txt"
        assert copied[f"{root}/empty"].type == "dir"
        assert copied[f"{root}/empty"].mode == 0o700
        assert f"{root}/dir" not in copied
    assert copied["/merged/one.txt"].content == b"1\n"
    assert copied["/merged/x.txt"].content == b"x\n"
    assert "/merged/dir" not in copied
    assert "/merged/dir2" not in copied


def test_copy_globs(copied: dict) -> None:  # type: ignore[type-arg]
    assert sorted(p for p in copied if p.startswith("/glob/")) == ["/glob/a.txt", "/glob/b.txt"]
    # a glob that matches nothing is fine when another source matches
    assert sorted(p for p in copied if p.startswith("/glob2/")) == ["/glob2/c.md"]


def test_copy_creates_parents_and_keeps_modes(copied: dict) -> None:  # type: ignore[type-arg]
    for path in ("/p", "/p/q", "/p/q/r"):
        assert copied[path].type == "dir"
        assert copied[path].mode == 0o755
        assert owner(copied[path]) == (0, 0)
    assert copied["/p/q/r/parents.txt"].content == b"A\n"
    assert copied["/modes/run.sh"].mode == 0o755
    assert copied["/modes/private.key"].mode == 0o600
    assert owner(copied["/modes/private.key"]) == (0, 0)
    assert copied["/file-dest"].mode == 0o644


def test_copy_follows_a_symlink_source(copied: dict) -> None:  # type: ignore[type-arg]
    assert copied["/followed"].type == "file"
    assert copied["/followed"].content == b"A\n"


def test_copy_relative_dest_joins_workdir(copied: dict) -> None:  # type: ignore[type-arg]
    assert copied["/work/rel/a.txt"].content == b"A\n"
    assert copied["/work/b.txt"].content == b"B\n"
    assert copied["/work/renamed.md"].content == b"C\n"


def test_copy_several_sources_need_a_directory_dest(pb: Builder) -> None:
    built = pb.build("FROM busybox\nCOPY a.txt b.txt /notadir\n", TREE, check=False)
    assert built.returncode == 1
    assert "must be a directory and end with a /" in built.stderr


def test_copy_chown_and_chmod(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox\n"
        "COPY --chown=nobody:nogroup a.txt /by-name.txt\n"
        "COPY --chown=www-data a.txt /user-only.txt\n"
        "COPY --chown=1234:5678 a.txt /new/parent/by-id.txt\n"
        "ARG OWNER=2000\n"
        "COPY --chown=${OWNER} dir /chowned-dir/\n"
        "COPY --chmod=0640 run.sh /chmod-octal.sh\n"
        "COPY --chmod=u+x,g-r a.txt /chmod-symbolic.txt\n"
        "COPY --chown=33:33 --chmod=700 b.txt /both.txt\n"
    )
    built = pb.build(dockerfile, TREE)
    files = built.files
    assert owner(files["/by-name.txt"]) == (65534, 65534)
    assert owner(files["/user-only.txt"]) == (33, 33)  # the user's primary group
    assert owner(files["/new/parent/by-id.txt"]) == (1234, 5678)
    # parents created by the copy belong to the --chown user too (fsutil MkdirAll)
    assert owner(files["/new"]) == (1234, 5678)
    assert owner(files["/new/parent"]) == (1234, 5678)
    assert owner(files["/chowned-dir/sub/two.txt"]) == (2000, 2000)
    assert owner(files["/chowned-dir/sub/link"]) == (2000, 2000)
    assert files["/chmod-octal.sh"].mode == 0o640
    assert files["/chmod-symbolic.txt"].mode == 0o704
    assert files["/both.txt"].mode == 0o700
    assert owner(files["/both.txt"]) == (33, 33)
    assert built.created_by(skip=pb.busybox_history) == [
        ("COPY --chown=nobody:nogroup a.txt /by-name.txt # buildkit", False),
        ("COPY --chown=www-data a.txt /user-only.txt # buildkit", False),
        ("COPY --chown=1234:5678 a.txt /new/parent/by-id.txt # buildkit", False),
        ("ARG OWNER=2000", True),
        ("COPY --chown=2000 dir /chowned-dir/ # buildkit", False),
        ("COPY --chmod=0640 run.sh /chmod-octal.sh # buildkit", False),
        ("COPY --chmod=u+x,g-r a.txt /chmod-symbolic.txt # buildkit", False),
        ("COPY --chown=33:33 --chmod=700 b.txt /both.txt # buildkit", False),
    ]


def test_copy_chmod_leaves_created_parents_0755(pb: Builder) -> None:
    """docker: missing parents of the destination are 0755 (owned by --chown); only what is
    copied gets --chmod. RUN sees the result, as a user of the image would."""
    dockerfile = (
        "FROM busybox\n"
        "COPY --chmod=0700 run.sh /usr/local/bin/\n"
        "COPY --chown=1234:5678 --chmod=0640 a.txt /opt/app/conf/a.txt\n"
        "RUN stat -c '%n %a %u:%g' /usr/local /usr/local/bin /usr/local/bin/run.sh"
        " /opt/app /opt/app/conf /opt/app/conf/a.txt > /modes.txt\n"
    )
    files = pb.build(dockerfile, TREE).files
    assert "/usr/local" not in pb.build("FROM busybox\n", context_name="c2").files
    assert files["/modes.txt"].content.decode().splitlines() == [
        "/usr/local 755 0:0",
        "/usr/local/bin 755 0:0",
        "/usr/local/bin/run.sh 700 0:0",
        "/opt/app 755 1234:5678",
        "/opt/app/conf 755 1234:5678",
        "/opt/app/conf/a.txt 640 1234:5678",
    ]
    assert (files["/usr/local"].mode, files["/usr/local/bin"].mode) == (0o755, 0o755)
    assert files["/usr/local/bin/run.sh"].mode == 0o700


def test_copy_chown_unknown_user_fails(pb: Builder) -> None:
    built = pb.build("FROM busybox\nCOPY --chown=nosuchuser a.txt /x\n", TREE, check=False)
    assert built.returncode == 1
    assert "nosuchuser" in built.stderr
    assert "Dockerfile:2" in built.stderr


def test_copy_from_stage_index_and_image(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox AS build\n"
        "RUN mkdir -p /out/sub && echo built > /out/sub/artifact"
        " && chown 1000:1000 /out/sub/artifact && ln -s sub/artifact /out/shortcut\n"
        "FROM scratch\n"
        "COPY --from=build /out /from-name/\n"
        "COPY --from=0 /out/sub/artifact /from-index\n"
        "COPY --from=busybox:latest /bin/busybox /bin/busybox\n"
        "COPY --from=build --chown=7:8 /out/sub/artifact /chowned\n"
    )
    built = pb.build(dockerfile)
    files = built.files
    assert files["/from-name/sub/artifact"].content == b"built\n"
    # ownership from another stage is kept unless --chown
    assert owner(files["/from-name/sub/artifact"]) == (1000, 1000)
    assert files["/from-name/shortcut"].type == "symlink"
    assert files["/from-name/shortcut"].linkname == "sub/artifact"
    assert files["/from-index"].content == b"built\n"
    assert files["/bin/busybox"].mode == 0o755
    assert files["/bin/busybox"].content == Path("/bin/busybox").read_bytes()
    assert owner(files["/chowned"]) == (7, 8)
    assert built.created_by() == [
        ("COPY /out /from-name/ # buildkit", False),
        ("COPY /out/sub/artifact /from-index # buildkit", False),
        ("COPY /bin/busybox /bin/busybox # buildkit", False),
        ("COPY --chown=7:8 /out/sub/artifact /chowned # buildkit", False),
    ]


def test_copy_link_layer_holds_only_the_copy(pb: Builder) -> None:
    dockerfile = "FROM busybox\nWORKDIR /w\nCOPY --link a.txt dir2 linked/\n"
    built = pb.build(dockerfile, TREE)
    assert built.layer_names(-1) == ["w", "w/linked", "w/linked/a.txt", "w/linked/x.txt"]
    assert built.files["/w/linked/a.txt"].content == b"A\n"
    assert built.files["/w/linked/x.txt"].content == b"x\n"
    assert built.files["/bin/busybox"].type == "file"  # the base is still below


def test_copy_parents(pb: Builder) -> None:
    files = {
        "src/app/main.go": "main\n",
        "src/app/util/util.go": "util\n",
        "src/lib/lib.go": "lib\n",
        "src/lib/README": "readme\n",
        "docs/guide.md": "guide\n",
    }
    dockerfile = (
        "FROM scratch\n"
        "COPY --parents src/app/main.go docs/guide.md /keep/\n"
        "COPY --parents ./src/./lib/lib.go /pivot/\n"
        "COPY --parents src/**/*.go /deep/\n"
    )
    built = pb.build(dockerfile, files)
    paths = {p for p, e in built.files.items() if e.type == "file"}
    assert paths == {
        "/keep/src/app/main.go",
        "/keep/docs/guide.md",
        "/pivot/lib/lib.go",
        "/deep/src/app/main.go",
        "/deep/src/app/util/util.go",
        "/deep/src/lib/lib.go",
    }
    assert built.history[0]["created_by"] == (
        "COPY --parents src/app/main.go docs/guide.md /keep/ # buildkit"
    )


def test_copy_exclude(pb: Builder) -> None:
    files = {
        "app/main.py": "m\n",
        "app/debug.log": "log\n",
        "app/cache/x.pyc": "pyc\n",
        "app/sub/keep.txt": "k\n",
        "app/sub/trace.log": "log\n",
    }
    dockerfile = "FROM scratch\nCOPY --exclude=*.log --exclude=cache app /app/\n"
    built = pb.build(dockerfile, files)
    paths = {p for p, e in built.files.items() if e.type == "file"}
    assert paths == {"/app/main.py", "/app/sub/keep.txt", "/app/sub/trace.log"}
    again = pb.build("FROM scratch\nCOPY --exclude=**/*.log app /app/\n", files, context_name="c2")
    assert {p for p, e in again.files.items() if e.type == "file"} == {
        "/app/main.py",
        "/app/cache/x.pyc",
        "/app/sub/keep.txt",
    }


def _tar(entries: dict[str, bytes], compression: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=f"w:{compression}") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o640
            info.uid, info.gid = 42, 43
            tar.addfile(info, io.BytesIO(data))
        sub = tarfile.TarInfo("pkg/bin")
        sub.type = tarfile.DIRTYPE
        sub.mode = 0o750
        tar.addfile(sub)
    return buf.getvalue()


def test_add_local_archives_are_extracted(pb: Builder) -> None:
    files = {
        "bundle.tar.gz": _tar({"pkg/README": b"readme\n", "pkg/bin/tool": b"tool\n"}, "gz"),
        "plain.tar": _tar({"pkg/extra.txt": b"extra\n"}),
        "notatar.tar": b"just text, not an archive\n",
        "data.bin": _tar({"pkg/nope": b"x"}, "bz2"),
    }
    dockerfile = (
        "FROM busybox\n"
        "ADD bundle.tar.gz /opt/\n"
        "ADD plain.tar /opt\n"
        "ADD notatar.tar /copied/\n"
        "ADD data.bin /bz/\n"
        "COPY bundle.tar.gz /not-extracted/\n"
    )
    built = pb.build(dockerfile, files)
    fs = built.files
    assert fs["/opt/pkg/README"].content == b"readme\n"
    assert fs["/opt/pkg/bin/tool"].content == b"tool\n"
    assert fs["/opt/pkg/extra.txt"].content == b"extra\n"  # merged into the same tree
    assert fs["/opt/pkg/README"].mode == 0o640
    assert owner(fs["/opt/pkg/README"]) == (42, 43)  # tar ownership is kept
    assert fs["/opt/pkg/bin"].mode == 0o750
    assert fs["/copied/notatar.tar"].content == b"just text, not an archive\n"
    assert fs["/bz/pkg/nope"].content == b"x"  # detected by content, not by name
    assert fs["/not-extracted/bundle.tar.gz"].content == files["bundle.tar.gz"]
    assert "/opt/bundle.tar.gz" not in fs


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local http.server on 127.0.0.1 (RUN and ADD use the host network)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_add_url_with_checksum(pb: Builder, http_root: tuple[str, Path]) -> None:
    url, root = http_root
    data = b"downloaded content\n"
    (root / "file.txt").write_bytes(data)
    (root / "archive.tar").write_bytes(_tar({"inside": b"i"}))
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    dockerfile = (
        "FROM busybox\n"
        f"ADD --checksum={digest} {url}/file.txt /dl/\n"
        f"ADD {url}/file.txt /renamed.txt\n"
        f"ADD {url}/archive.tar /remote/\n"
    )
    built = pb.build(dockerfile)
    fs = built.files
    assert fs["/dl/file.txt"].content == data
    assert fs["/dl/file.txt"].mode == 0o600
    assert owner(fs["/dl/file.txt"]) == (0, 0)
    assert fs["/renamed.txt"].content == data
    # a remote archive is not extracted
    assert fs["/remote/archive.tar"].content == (root / "archive.tar").read_bytes()
    assert built.history[pb.busybox_history]["created_by"] == (
        f"ADD {url}/file.txt /dl/ # buildkit"
    )
    bad = "sha256:" + "0" * 64
    failed = pb.build(
        f"FROM busybox\nADD --checksum={bad} {url}/file.txt /dl/\n", context_name="c2", check=False
    )
    assert failed.returncode == 1
    assert "digest mismatch" in failed.stderr or "checksum" in failed.stderr
    assert digest in failed.stderr


def test_copy_heredoc_sources(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox\n"
        "ENV NAME=world\n"
        "COPY <<EOF /greeting.txt\n"
        "hello $NAME\n"
        "EOF\n"
        'COPY <<"EOF" /literal.txt\n'
        "hello $NAME\n"
        "EOF\n"
        "COPY <<one.txt <<two.txt /many/\n"
        "first\n"
        "one.txt\n"
        "second\n"
        "two.txt\n"
        "ADD --chmod=755 <<EOF /script.sh\n"
        "#!/bin/sh\n"
        "EOF\n"
    )
    built = pb.build(dockerfile)
    fs = built.files
    assert fs["/greeting.txt"].text == "hello world\n"
    assert fs["/greeting.txt"].mode == 0o644
    assert fs["/literal.txt"].text == "hello $NAME\n"
    assert fs["/many/one.txt"].text == "first\n"
    assert fs["/many/two.txt"].text == "second\n"
    assert fs["/script.sh"].mode == 0o755
    assert built.created_by(skip=pb.busybox_history + 1) == [
        ("COPY <<EOF /greeting.txt # buildkit", False),
        ("COPY <<EOF /literal.txt # buildkit", False),
        ("COPY <<one.txt <<two.txt /many/ # buildkit", False),
        ("ADD --chmod=755 <<EOF /script.sh # buildkit", False),
    ]


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``/tool`` with a different body on every GET and counts the GETs."""

    gets: list[str]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.gets.append(self.path)
        body = f"response {len(self.gets)}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_add_url_downloads_once_and_the_key_describes_the_layer(pb: Builder) -> None:
    gets: list[str] = []
    handler = type("Handler", (_CountingHandler,), {"gets": gets})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/tool"
        dockerfile = f"FROM busybox\nADD {url} /tool\n"
        first = pb.build(dockerfile)
        assert gets == ["/tool"]  # one GET for both the cache key and the copy
        assert first.files["/tool"].content == b"response 1\n"
        # the layer's bytes are the download the key was computed from: that blob is stored
        assert Store(pb.store_root).cas.has(Digest.of_bytes(b"response 1\n"))
        # new remote bytes give a new key (a miss) and a layer with exactly those bytes
        second = pb.build(dockerfile, context_name="c2")
        assert gets == ["/tool", "/tool"]
        assert second.files["/tool"].content == b"response 2\n"
        assert Store(pb.store_root).cas.has(Digest.of_bytes(b"response 2\n"))
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
