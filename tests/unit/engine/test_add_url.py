"""ADD <url>: name, mode 0600, Last-Modified, --checksum, remote archives not extracted."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import stat
import tarfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from copykit import Step, run, tree, write

from builder.context.download import DownloadLimits
from builder.context.local import LocalContext
from builder.digest import Digest
from builder.engine.chown import ChownResolver
from builder.engine.copy import apply_copy
from builder.engine.copy_digest import copy_source_digest
from builder.engine.fetch import UNNAMED, UrlFetcher, url_filename
from builder.errors import ContextError
from builder.store.cas import ContentStore


class _Handler(SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        del format, args

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    docroot = tmp_path / "www"
    docroot.mkdir()
    seen: list[str] = []
    handler = type("Handler", (_Handler,), {"requests": seen})
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(docroot))
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", docroot, seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    root.mkdir()
    return root


def _targz() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("inside.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"in"))
    return buf.getvalue()


def test_download_named_after_url_mode_0600_last_modified(
    server: tuple[str, Path, list[str]], ctx: Path, tmp_path: Path
) -> None:
    base, docroot, _ = server
    archive = _targz()  # once: the gzip header holds the time it was made
    write(docroot, "files/app.tar.gz", archive)
    os.utime(docroot / "files" / "app.tar.gz", (1_500_000_000, 1_500_000_000))
    res = run(
        ctx, Step(sources=(f"{base}/files/app.tar.gz",), dest="/dl/", is_add=True), tmp_path / "out"
    )
    out = tmp_path / "out" / "dl" / "app.tar.gz"
    assert out.read_bytes() == archive  # remote archives are not extracted
    st = out.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_mtime == 1_500_000_000
    item = res.get("/dl/app.tar.gz")
    assert item is not None
    assert (item.mode, item.uid, item.gid) == (0o600, 0, 0)


def test_dest_without_slash_names_the_file(
    server: tuple[str, Path, list[str]], ctx: Path, tmp_path: Path
) -> None:
    base, docroot, _ = server
    write(docroot, "data.json", "{}")
    run(
        ctx,
        Step(sources=(f"{base}/data.json?x=1",), dest="/etc/config.json", is_add=True),
        tmp_path / "out",
    )
    assert tree(tmp_path / "out") == {"etc": "dir", "etc/config.json": "{}"}


def test_unpack_true_extracts_remote_archives(
    server: tuple[str, Path, list[str]], ctx: Path, tmp_path: Path
) -> None:
    base, docroot, _ = server
    write(docroot, "a.tgz", _targz())
    step = Step(sources=(f"{base}/a.tgz",), dest="/x/", is_add=True, unpack=True)
    run(ctx, step, tmp_path / "out")
    assert tree(tmp_path / "out") == {"x": "dir", "x/inside.txt": "in"}


def test_checksum_verified(server: tuple[str, Path, list[str]], ctx: Path, tmp_path: Path) -> None:
    base, docroot, _ = server
    write(docroot, "f", "content")
    good = "sha256:" + hashlib.sha256(b"content").hexdigest()
    bad = "sha256:" + "0" * 64
    url = f"{base}/f"
    run(ctx, Step(sources=(url,), dest="/f", is_add=True, checksum=good), tmp_path / "o1")
    assert tree(tmp_path / "o1") == {"f": "content"}
    with pytest.raises(ContextError) as info:
        run(ctx, Step(sources=(url,), dest="/f", is_add=True, checksum=bad), tmp_path / "o2")
    message = str(info.value)
    assert url in message
    assert bad in message
    assert good in message


def test_http_errors(server: tuple[str, Path, list[str]], ctx: Path, tmp_path: Path) -> None:
    base, _, _ = server
    # the transfer is builder.context.download's, shared with tarball contexts
    with pytest.raises(
        ContextError, match=r"^Dockerfile:3:1: ADD http://.*/missing: invalid response status 404"
    ):
        run(ctx, Step(sources=(f"{base}/missing",), dest="/m", is_add=True), tmp_path / "o")
    with pytest.raises(ContextError, match=r"ADD http://127\.0\.0\.1:1/x: unreachable host"):
        run(ctx, Step(sources=("http://127.0.0.1:1/x",), dest="/m", is_add=True), tmp_path / "o")


def test_download_limits_apply_to_add(
    server: tuple[str, Path, list[str]], ctx: Path, tmp_path: Path
) -> None:
    base, docroot, _ = server
    write(docroot, "big", "x" * 100)
    with (
        UrlFetcher(limits=DownloadLimits(max_bytes=10)) as fetcher,
        pytest.raises(ContextError, match="too large"),
    ):
        fetcher.fetch(f"{base}/big")


def test_git_source_failure_names_the_url_at_the_step(ctx: Path, tmp_path: Path) -> None:
    step = Step(sources=("git://127.0.0.1:1/r.git",), dest="/", is_add=True)
    expected = r"ADD git://127\.0\.0\.1:1/r\.git: unreachable host \(Connection refused\)"
    with pytest.raises(ContextError, match=expected) as info:
        run(ctx, step, tmp_path / "o")
    assert info.value.span == step.span


def test_url_filename() -> None:
    assert url_filename("https://example.com/a/b/tool-1.2.tar.gz") == "tool-1.2.tar.gz"
    assert url_filename("https://example.com/") == UNNAMED
    assert url_filename("https://example.com") == UNNAMED
    assert url_filename("https://example.com/dir/?q=1") == "dir"
    assert url_filename("https://example.com/a%20b") == "a b"


def test_digest_pinned_by_checksum_makes_no_request(
    server: tuple[str, Path, list[str]], ctx: Path
) -> None:
    base, docroot, seen = server
    write(docroot, "f", "v1")
    pinned = "sha256:" + hashlib.sha256(b"v1").hexdigest()
    step = Step(sources=(f"{base}/f",), dest="/f", is_add=True, checksum=pinned)
    got = copy_source_digest(LocalContext.open(ctx), step)
    assert seen == []
    assert [name for name, _ in got.files] == [f"{base}/f"]


def test_digest_follows_remote_content_and_fetcher_is_shared(
    server: tuple[str, Path, list[str]], ctx: Path, tmp_path: Path
) -> None:
    base, docroot, seen = server
    write(docroot, "f", "v1")
    step = Step(sources=(f"{base}/f",), dest="/f", is_add=True)
    context = LocalContext.open(ctx)
    cas = ContentStore(tmp_path / "store")
    cas.blobs_dir.mkdir(parents=True)
    cas.ingest_dir.mkdir()
    with UrlFetcher(cas) as fetcher:
        first = copy_source_digest(context, step, fetcher=fetcher)
        out = tmp_path / "out"
        out.mkdir()
        apply_copy(
            context,
            step,
            rootfs=None,
            out_dir=out,
            chown_resolver=ChownResolver(None),
            fetcher=fetcher,
        )
        assert seen == ["/f"]  # downloaded once for both
    assert (out / "f").read_text() == "v1"
    write(docroot, "f", "v2")
    assert copy_source_digest(context, step).digest != first.digest
    # the download went through the store: one blob, nothing left in its ingest area
    assert [d for d, _ in cas.digests()] == [Digest.of_bytes(b"v1")]
    assert not any(cas.ingest_dir.iterdir())


def test_checksum_mismatch_keeps_nothing(
    server: tuple[str, Path, list[str]], ctx: Path, tmp_path: Path
) -> None:
    base, docroot, _ = server
    write(docroot, "f", "content")
    cas = ContentStore(tmp_path / "store")
    cas.blobs_dir.mkdir(parents=True)
    cas.ingest_dir.mkdir()
    bad = Digest.of_bytes(b"other")
    with UrlFetcher(cas) as fetcher, pytest.raises(ContextError, match="checksum mismatch"):
        fetcher.fetch(f"{base}/f", checksum=bad)
    assert list(cas.digests()) == []
    assert not any(cas.ingest_dir.iterdir())
