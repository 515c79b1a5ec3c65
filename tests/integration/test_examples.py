"""Build every example under ``examples/`` and check the layers and config it produces."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from enginekit import DEFAULT_PATH, PYBUILD, REPO, Builder, mounts, runc_containers

pytestmark = pytest.mark.integration

EXAMPLES = REPO / "examples"


def test_examples_are_documented() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    dirs = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())
    assert dirs == ["buildargs", "dockerignore", "onbuild", "psweb"]
    for name in dirs:
        assert f"`{name}/`" in readme


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body: bytes = response.read()
                return body.decode()
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_psweb(pb: Builder) -> None:
    built = pb.build(None, context_dir=EXAMPLES / "psweb")
    image = built.image
    assert len(image.layers) == 2
    assert built.layer_names(0) == ["bin", "bin/busybox"]
    assert built.layer_names(1) == [
        "www",
        "www/build-date.txt",
        "www/index.html",
        "www/manifest.txt",
        "www/style.css",
    ]
    cfg = built.config
    assert cfg["Entrypoint"] == ["/bin/busybox", "httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
    assert "Cmd" not in cfg
    assert cfg["ExposedPorts"] == {"8080/tcp": {}}
    assert cfg["User"] == "65534:65534"
    assert cfg["Env"] == [f"PATH={DEFAULT_PATH}"]
    assert cfg["Labels"]["org.opencontainers.image.title"] == "psweb"
    files = built.files
    assert "<title>pybuild demo</title>" in files["/www/index.html"].text
    assert files["/www/manifest.txt"].text == "build-date.txt\nindex.html\nstyle.css\n"
    assert files["/bin/busybox"].mode == 0o755
    # the final image is no more than the static busybox plus a few bytes of site
    size = sum(layer.descriptor.size for layer in image.layers)
    assert size < Path("/bin/busybox").stat().st_size + 16 * 1024
    assert [h["created_by"] for h in built.history] == [
        "COPY /bin/busybox /bin/busybox # buildkit",
        "COPY /out/www /www # buildkit",
        "LABEL org.opencontainers.image.title=psweb "
        "org.opencontainers.image.description=static site served by busybox httpd",
        "EXPOSE [8080/tcp]",
        "USER 65534:65534",
        'ENTRYPOINT ["/bin/busybox" "httpd" "-f" "-v" "-p" "8080" "-h" "/www"]',
    ]

    # serve it on a free port (the image's own port may be taken on a shared machine)
    port = _free_port()
    # published on the private network's port forwarding; httpd, the container's PID 1,
    # ignores SIGTERM: pybuild run kills it after --stop-timeout
    publish = f"127.0.0.1:{port}:8080"
    argv = [PYBUILD, "run", "--rm", "--stop-timeout=1", "-p", publish, built.image_id]
    server = subprocess.Popen(
        argv,
        env=pb.environ(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        page = _get(f"http://127.0.0.1:{port}/", time.monotonic() + 30)
        assert "<title>pybuild demo</title>" in page
        css = _get(f"http://127.0.0.1:{port}/style.css", time.monotonic() + 5)
        assert css == files["/www/style.css"].text
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    assert runc_containers(pb.store_root) == []
    assert not [m for m in mounts() if str(pb.store_root) in m]

    titled = pb.build(
        None, context_dir=EXAMPLES / "psweb", args=["--build-arg", "SITE_TITLE=Custom title"]
    )
    assert "<title>Custom title</title>" in titled.files["/www/index.html"].text
    assert titled.image.layers[0].diff_id == image.layers[0].diff_id


def test_buildargs(pb: Builder) -> None:
    built = pb.build(None, context_dir=EXAMPLES / "buildargs")
    assert built.files["/app/greeting.txt"].text == "Hello from pybuild (greeter 1.0)\n"
    assert built.config["Labels"] == {
        "org.opencontainers.image.title": "greeter",
        "org.opencontainers.image.version": "1.0",
        "org.opencontainers.image.base.name": "busybox:latest",
    }
    assert built.config["Env"] == [f"PATH={DEFAULT_PATH}", "APP_VERSION=1.0"]
    assert built.config["Cmd"] == ["cat", "/app/greeting.txt"]
    assert built.layer_names(-1) == ["app", "app/greeting.txt"]
    assert pb.cli("run", built.image_id).stdout == "Hello from pybuild (greeter 1.0)\n"

    custom = pb.build(
        None,
        context_dir=EXAMPLES / "buildargs",
        args=["--build-arg", "APP_VERSION=2.0", "--build-arg", "GREETING=Hi"],
    )
    assert custom.files["/app/greeting.txt"].text == "Hi (greeter 2.0)\n"
    assert custom.config["Labels"]["org.opencontainers.image.version"] == "2.0"
    assert custom.config["Env"] == [f"PATH={DEFAULT_PATH}", "APP_VERSION=2.0"]
    history = [h["created_by"] for h in custom.history[pb.busybox_history :]]
    assert history[:4] == [
        "ARG BASE_IMAGE=busybox:latest",
        "ARG APP_NAME=greeter",
        "ARG APP_VERSION=2.0",
        "ARG GREETING=Hi",
    ]
    assert history[-2] == (
        "RUN |4 BASE_IMAGE=busybox:latest APP_NAME=greeter APP_VERSION=2.0 GREETING=Hi "
        '/bin/sh -c printf \'%s (%s %s)\\n\' "$GREETING" "$APP_NAME" "$APP_VERSION"'
        " > greeting.txt # buildkit"
    )

    # the global ARG picks the base: FROM the buildargs image itself
    rebased = pb.build(
        None,
        context_dir=EXAMPLES / "buildargs",
        args=["--build-arg", f"BASE_IMAGE={built.tag}", "--build-arg", "APP_NAME=rebased"],
    )
    assert rebased.config["Labels"]["org.opencontainers.image.base.name"] == built.tag
    # WORKDIR still makes a layer when the directory exists (BuildKit: a mkdir -p file op)
    assert len(rebased.image.layers) == len(built.image.layers) + 2
    assert rebased.files["/app/greeting.txt"].text == "Hello from pybuild (rebased 1.0)\n"


def test_onbuild(pb: Builder) -> None:
    base_tag = pb.new_tag("onbuild-base")
    base = pb.build(
        None,
        context_dir=EXAMPLES / "onbuild",
        dockerfile_name="base.Dockerfile",
        tag=base_tag,
    )
    assert base.config["OnBuild"] == [
        "COPY app/ /app/",
        'RUN echo "app $(cat /app/VERSION) built on onbuild-base" > /app/build-info.txt',
        'LABEL org.opencontainers.image.base.name="onbuild-base"',
    ]
    assert "/app/build-info.txt" not in base.files
    assert base.files["/app/README"].text == "base image, no app yet\n"

    child = pb.build(
        None, context_dir=EXAMPLES / "onbuild", args=["--build-arg", f"BASE={base_tag}"]
    )
    n = len(base.image.layers)
    assert len(child.image.layers) == n + 2
    assert child.layer_names(n) == ["app", "app/VERSION", "app/run.sh"]
    assert child.layer_names(n + 1) == ["app", "app/build-info.txt"]
    files = child.files
    assert files["/app/build-info.txt"].text == "app 1.2.3 built on onbuild-base\n"
    assert files["/app/run.sh"].mode == 0o755
    assert "/app/base.Dockerfile" not in files
    cfg = child.config
    assert "OnBuild" not in cfg or not cfg["OnBuild"]
    assert cfg["Labels"] == {"org.opencontainers.image.base.name": "onbuild-base"}
    assert "GREETING=hello from the onbuild child" in cfg["Env"]
    assert cfg["Cmd"] == ["sh", "/app/run.sh"]
    run = pb.cli("run", child.image_id)
    assert run.stdout == "app 1.2.3 built on onbuild-base\nhello from the onbuild child\n"


def test_dockerignore(pb: Builder) -> None:
    built = pb.build(None, context_dir=EXAMPLES / "dockerignore")
    copied = built.layer_names(2)
    assert copied == [
        "ctx",
        "ctx/.dockerignore",
        "ctx/Dockerfile",
        "ctx/docs",
        "ctx/docs/README.md",
        "ctx/logs",
        "ctx/logs/keep-me.log",
        "ctx/site",
        "ctx/site/index.html",
    ]
    # the files really exist in the context: .dockerignore is what kept them out
    for excluded in ("secrets/api.env", "site/access.log", "site/draft.tmp", "docs/internal.md"):
        assert (EXAMPLES / "dockerignore" / excluded).is_file()
    assert built.files["/manifest.txt"].text == (
        "./.dockerignore\n./Dockerfile\n./docs/README.md\n./logs/keep-me.log\n./site/index.html\n"
    )
    assert pb.cli("run", built.image_id).stdout == built.files["/manifest.txt"].text
