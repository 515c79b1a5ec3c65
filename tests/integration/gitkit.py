"""Real servers on 127.0.0.1 for git and download tests, started by the tests.

* ``make_repo``: a git repository built from a dict of files, with branches, tags and commits
  made by the real ``git`` (fixed author and dates);
* ``GitDaemon``: ``git daemon`` serving ``git://`` (``--verbose``: requests are logged and
  counted);
* ``SmartHTTP``: ``git http-backend`` run as a CGI program behind a small threaded HTTP server
  (``http://``); paths under ``/private/`` need Basic auth; every request is recorded, and
  ``fetches`` counts the upload-pack requests that transfer objects (``command=fetch``);
* ``ssh_command``: a script for ``GIT_SSH_COMMAND`` that runs the requested ``git-upload-pack``
  locally, as sshd would, and logs each call;
* ``FileServer``: serves bytes by path and injects faults (redirects, trickle, big bodies).

Imported as ``gitkit`` (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import base64
import gzip
import http.server
import io
import os
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        ["git", "-c", "protocol.file.allow=always", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def write_files(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def make_repo(work: Path, files: Mapping[str, str], *, branch: str = "main") -> Path:
    """A non-bare repository with one commit of ``files`` on ``branch``."""
    work.mkdir(parents=True)
    git("init", "-q", "-b", branch, str(work))
    write_files(work, files)
    commit(work, "initial")
    return work


def commit(work: Path, message: str) -> str:
    git("add", "-A", cwd=work)
    git("commit", "-q", "--allow-empty", "-m", message, cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def add_submodule(work: Path, target: Path, url: str, *, path: str = "x") -> None:
    """Commit a submodule at ``path`` pointing at ``target``'s HEAD with ``url`` written as
    is into .gitmodules (a hostile URL the clone must refuse)."""
    (work / ".gitmodules").write_text(f'[submodule "{path}"]\n\tpath = {path}\n\turl = {url}\n')
    head = git("rev-parse", "HEAD", cwd=target)
    git("add", ".gitmodules", cwd=work)
    git("update-index", "--add", "--cacheinfo", f"160000,{head},{path}", cwd=work)
    git("commit", "-q", "-m", "submodule", cwd=work)


def publish(work: Path, base: Path, name: str) -> Path:
    """Push every ref of ``work`` into a bare repository ``base/name`` (created if needed)."""
    bare = base / name
    if not bare.exists():
        git("init", "-q", "--bare", "-b", "main", str(bare))
        (bare / "git-daemon-export-ok").touch()
    git(
        "push",
        "-q",
        "--force",
        str(bare),
        "refs/heads/*:refs/heads/*",
        "refs/tags/*:refs/tags/*",
        cwd=work,
    )
    return bare


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    for _ in range(200):
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class GitDaemon:
    base: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"git://127.0.0.1:{self.port}"

    def requests(self) -> int:
        """upload-pack requests served so far (ls-remote and fetch are one each)."""
        return self.log.read_text(errors="replace").count("Request upload-pack")


@contextmanager
def git_daemon(base: Path, log: Path) -> Iterator[GitDaemon]:
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                "git",
                "daemon",
                "--verbose",
                "--reuseaddr",
                "--export-all",
                "--enable=upload-pack",
                f"--base-path={base}",
                "--listen=127.0.0.1",
                f"--port={port}",
                str(base),
            ],
            stdout=out,
            stderr=out,
            env={**os.environ, **GIT_ENV},
        )
    try:
        wait_listening(port, proc)
        yield GitDaemon(base=base, port=port, log=log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- smart HTTP through git http-backend ---------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    authorization: str | None
    body: bytes


@dataclass
class SmartHTTP:
    base: Path
    port: int
    user: str
    password: str
    requests: list[Recorded] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fetches(self) -> int:
        """Requests that asked upload-pack for objects (not ref listings)."""
        return sum(1 for r in self.requests if r.method == "POST" and b"command=fetch" in r.body)


class _CGIHandler(http.server.BaseHTTPRequestHandler):
    server_state: SmartHTTP

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length))

    def _serve(self, body: bytes) -> None:
        state = self.server_state
        path, _, query = self.path.partition("?")
        auth = self.headers.get("Authorization")
        plain = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
        state.requests.append(Recorded(self.command, path, auth, plain))
        if path.startswith("/private/"):
            token = base64.b64encode(f"{state.user}:{state.password}".encode()).decode()
            if auth != f"Basic {token}":
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        env = {
            "PATH": os.environ.get("PATH", ""),
            "GIT_PROJECT_ROOT": str(state.base),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type") or "",
            "CONTENT_LENGTH": str(len(plain)),
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_USER": state.user if auth else "",
            "GIT_PROTOCOL": self.headers.get("Git-Protocol") or "",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": "/nonexistent",
        }
        proc = subprocess.run(
            ["git", "http-backend"],
            input=plain,
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = proc.stdout.partition(b"\n\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@contextmanager
def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def smart_http(base: Path, *, user: str = "u", password: str = "s3cret") -> Iterator[SmartHTTP]:
    state = SmartHTTP(base=base, port=0, user=user, password=password)
    handler = type("Handler", (_CGIHandler,), {"server_state": state})
    with _serve(handler) as port:
        state.port = port
        yield state


# --- ssh ---------------------------------------------------------------------------------------


def ssh_command(directory: Path, base: Path, log: Path) -> str:
    """A ``GIT_SSH_COMMAND`` that runs the remote command locally with ``base`` as home."""
    script = directory / "fake-ssh"
    script.write_text(
        "#!/bin/sh\n"
        "# git runs: $GIT_SSH_COMMAND [-o SendEnv=GIT_PROTOCOL] [-p PORT] HOST COMMAND\n"
        f'for last; do :; done\necho "$*" >> "{log}"\n'
        f'cd "{base}" || exit 1\n'
        'exec sh -c "$last"\n'
    )
    script.chmod(0o755)
    return str(script)


def tar_bytes(members: dict[str, bytes], *, extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
        for info in extra or ():
            tar.addfile(info)
    return buf.getvalue()


# --- a plain HTTP server with faults -------------------------------------------------------


Route = Callable[[http.server.BaseHTTPRequestHandler], None]


@dataclass
class FileServer:
    port: int
    routes: dict[str, Route]
    seen: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Authorization)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_bytes(self, path: str, body: bytes, headers: Mapping[str, str] | None = None) -> str:
        def route(h: http.server.BaseHTTPRequestHandler) -> None:
            h.send_response(200)
            for key, value in (headers or {}).items():
                h.send_header(key, value)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)

        self.routes[path] = route
        return self.url + path

    def add_redirect(self, path: str, location: str, status: int = 302) -> str:
        def route(h: http.server.BaseHTTPRequestHandler) -> None:
            h.send_response(status)
            h.send_header("Location", location)
            h.send_header("Content-Length", "0")
            h.end_headers()

        self.routes[path] = route
        return self.url + path

    def add_trickle(self, path: str, *, interval: float = 0.2, count: int = 600) -> str:
        def route(h: http.server.BaseHTTPRequestHandler) -> None:
            h.send_response(200)
            h.send_header("Content-Length", str(count))
            h.end_headers()
            try:
                for _ in range(count):
                    h.wfile.write(b"x")
                    h.wfile.flush()
                    time.sleep(interval)
            except OSError:
                pass

        self.routes[path] = route
        return self.url + path


@contextmanager
def file_server() -> Iterator[FileServer]:
    state = FileServer(port=0, routes={})

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state.seen.append((self.path, self.headers.get("Authorization")))
            route = state.routes.get(self.path)
            if route is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            route(self)

    with _serve(Handler) as port:
        state.port = port
        yield state
