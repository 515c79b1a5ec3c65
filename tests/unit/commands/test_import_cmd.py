"""``pybuild import``: rootfs tarballs from files, stdin and URLs, ``--change``, bad input."""

from __future__ import annotations

import gzip
import http.server
import io
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cmdkit import pybuild, rootfs_tar

from builder.commands.import_ import apply_changes
from builder.errors import InvalidInstructionError
from builder.oci.layer import list_entries
from builder.oci.types import ContainerConfig, Healthcheck
from builder.store import Store

TAR = rootfs_tar({"bin/busybox": b"\x7fELF" + b"\0" * 100}, {"bin/sh": "busybox"})


def _inspect(capsys: pytest.CaptureFixture[str], root: Path, ref: str) -> dict[str, object]:
    r = pybuild(capsys, root, "inspect", ref)
    assert r.rc == 0, r.err
    data: dict[str, object] = json.loads(r.out)[0]
    return data


def test_import_file_prints_the_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "rootfs.tar"
    src.write_bytes(TAR)
    r = pybuild(capsys, tmp_path / "s", "import", str(src), "busybox:latest")
    assert r.rc == 0
    (rec,) = Store.open(tmp_path / "s").list_images()
    assert r.out == f"{rec.config_digest}\n"
    data = _inspect(capsys, tmp_path / "s", "busybox")
    assert data["Comment"] == "Imported from -"  # Docker's CLI uploads a file as "-"
    assert data["Config"] == {}
    image = Store.open(tmp_path / "s").load_image(rec.descriptor)
    (layer,) = image.layers
    with layer.open_compressed() as f:
        names = [h.name for h in list_entries(f)]
    assert names == ["bin/", "bin/busybox", "bin/sh"]  # the tarball, byte for byte
    history = pybuild(capsys, tmp_path / "s", "history", "busybox")
    assert "Imported from -" in history.out.splitlines()[1]


def test_import_changes_message_platform(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "rootfs.tar.gz"
    src.write_bytes(gzip.compress(TAR))
    changes = [
        'CMD ["sh"]',
        "ENV PATH=/bin HOME=/root",
        "ENV GREETING=hi-$HOME",
        "EXPOSE 80 53/udp 8000-8001",
        'LABEL org.example.a=1 "b c"=d',
        "ONBUILD RUN echo child",
        "USER 1000:1000",
        "VOLUME /data /cache",
        "WORKDIR /srv",
        "WORKDIR app",
        "STOPSIGNAL SIGTERM",
    ]
    argv = [
        "import",
        str(src),
        "app:1",
        "--message",
        "made by a test",
        "--platform",
        "linux/arm64/v8",
    ]
    for change in changes:
        argv += ["--change", change]
    r = pybuild(capsys, tmp_path, *argv)
    assert r.rc == 0, r.err
    data = _inspect(capsys, tmp_path, "app:1")
    assert data["Comment"] == "made by a test"
    assert (data["Architecture"], data["Os"]) == ("arm64", "linux")
    assert data["Config"] == {
        "Cmd": ["sh"],
        "Env": ["PATH=/bin", "HOME=/root", "GREETING=hi-/root"],
        "ExposedPorts": {"53/udp": {}, "80/tcp": {}, "8000/tcp": {}, "8001/tcp": {}},
        "Labels": {"b c": "d", "org.example.a": "1"},
        "OnBuild": ["RUN echo child"],
        "User": "1000:1000",
        "Volumes": {"/cache": {}, "/data": {}},
        "WorkingDir": "/srv/app",
        "StopSignal": "SIGTERM",
    }


def test_apply_changes_semantics() -> None:
    shell = apply_changes(["CMD echo hi"])
    assert shell.cmd == ("/bin/sh", "-c", "echo hi")
    # ENTRYPOINT drops an inherited CMD, but not one set by an earlier change
    base = ContainerConfig(cmd=("old",))
    assert apply_changes(['ENTRYPOINT ["/app"]'], base).cmd == ()
    both = apply_changes(['CMD ["--help"]', 'ENTRYPOINT ["/app"]'], base)
    assert (both.entrypoint, both.cmd) == (("/app",), ("--help",))
    health = apply_changes(["HEALTHCHECK --interval=5s --retries=2 CMD true"])
    assert health.healthcheck == Healthcheck(
        test=("CMD-SHELL", "true"), interval=5_000_000_000, retries=2
    )
    for bad, message in [
        ("RUN echo", "run is not a valid change command"),
        ("COPY a b", "copy is not a valid change command"),
        ("FROM busybox", "from is not a valid change command"),
        ("BOGUS x", "unknown instruction: BOGUS"),
        ("EXPOSE http", "invalid containerPort: http"),
    ]:
        with pytest.raises(InvalidInstructionError) as err:
            apply_changes([bad])
        assert err.value.message.startswith(f"invalid --change {bad!r}: "), err.value.message
        assert message in err.value.message


def test_import_bad_change_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "rootfs.tar"
    src.write_bytes(TAR)
    r = pybuild(capsys, tmp_path / "s", "import", str(src), "x", "--change", "RUN rm -rf /")
    assert (r.rc, r.out) == (1, "")
    assert r.err == "ERROR: invalid --change 'RUN rm -rf /': run is not a valid change command\n"
    assert not (tmp_path / "s").exists()  # the change is checked before the store is opened


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)

    def isatty(self) -> bool:
        return False


def test_import_from_stdin_untagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", _Stdin(TAR))
    r = pybuild(capsys, tmp_path, "import", "-")
    assert r.rc == 0
    images = pybuild(capsys, tmp_path, "images")
    assert images.out.splitlines()[1].startswith("<none>       <none>    " + r.out[7:19])


@pytest.fixture
def http_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server over ``tmp_path/www`` (stopped after the test)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)  # loopback only, never through a proxy
    www = tmp_path / "www"
    www.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(www), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", www
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_import_from_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], http_root: tuple[str, Path]
) -> None:
    base, www = http_root
    (www / "rootfs.tar").write_bytes(TAR)
    url = f"{base}/rootfs.tar"
    r = pybuild(capsys, tmp_path / "s", "import", url, "web:1")
    assert r.rc == 0, r.err
    assert _inspect(capsys, tmp_path / "s", "web:1")["Comment"] == f"Imported from {url}"
    gone = pybuild(capsys, tmp_path / "s", "import", f"{base}/missing.tar")
    assert (gone.rc, gone.err) == (1, f"ERROR: {base}/missing.tar: HTTP 404 File not found\n")


def test_import_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "s"
    cases = {
        "truncated.tar": TAR[:700],
        "text.tar": b"hello world\n" * 100,
        "bad.tar.gz": gzip.compress(TAR)[:-30],
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        r = pybuild(capsys, root, "import", str(path), "bad:1")
        assert r.rc == 1, name
        assert r.err.startswith(f"ERROR: {path}: "), r.err
        assert r.err.count("\n") == 1
    missing = pybuild(capsys, root, "import", str(tmp_path / "nope.tar"))
    assert missing.err == f"ERROR: open {tmp_path / 'nope.tar'}: no such file or directory\n"
    digest_tag = pybuild(capsys, root, "import", str(tmp_path / "text.tar"), "x@sha256:" + "a" * 64)
    assert digest_tag.err == "ERROR: refusing to create a tag with a digest reference\n"
    fsck = pybuild(capsys, root, "fsck")
    assert (fsck.rc, fsck.out) == (0, "ok: 0 blobs, 0 images verified\n")
