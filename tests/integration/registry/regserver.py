"""Test kit for registry tests: a real ``docker-registry``, a JWT token server, a fault proxy.

Everything listens on loopback addresses with ports the kernel picks, and stops by itself when
the test session ends. ``bench/registry.py`` imports ``RegistryServer`` from here too.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from builder.digest import Digest
from builder.oci import mutate
from builder.oci.image import EMPTY, ImageValue
from builder.oci.layer import EntryType, LayerEntry
from builder.oci.mediatype import Compression
from builder.oci.types import ContainerConfig, History
from builder.registry.auth import Credentials
from builder.store import Store

REGISTRY_BIN = "/usr/bin/docker-registry"
SKOPEO_BIN = "/usr/bin/skopeo"
SETUP_HINT = "run `make test` (scripts/setup-system.sh installs it) or apt-get install"
SERVICE = "pybuild-test-registry"
USER = "alice"
PASSWORD = "wonderland-42"
ISSUER = "pybuild-test-issuer"


class ToolMissingError(RuntimeError):
    pass


class PortTakenError(RuntimeError):
    pass


def require_tool(path: str, package: str) -> str:
    found = path if os.path.isabs(path) and os.access(path, os.X_OK) else shutil.which(path)
    if not found:
        raise ToolMissingError(f"{path} is missing: {SETUP_HINT} {package}")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class DictCredentials:
    """A ``CredentialSource`` for tests: registry -> Credentials."""

    entries: dict[str, Credentials] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)

    def get(self, registry: str) -> Credentials | None:
        self.lookups.append(registry)
        return self.entries.get(registry)


# -- the registry -------------------------------------------------------------------------------


class RegistryServer:
    """``docker-registry serve`` on 127.0.0.1 with storage in ``workdir``."""

    def __init__(self, workdir: Path, *, auth_yaml: str = "") -> None:
        self.binary = require_tool(REGISTRY_BIN, "docker-registry")
        self.workdir = workdir
        self.storage = workdir / "storage"
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.auth_yaml = auth_yaml
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "registry.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def config(self) -> str:
        return "\n".join(
            [
                "version: 0.1",
                "log:",
                "  level: warn",
                "  accesslog:",
                "    disabled: true",
                "storage:",
                "  filesystem:",
                f"    rootdirectory: {self.storage}",
                "  delete:",
                "    enabled: true",
                "  maintenance:",
                "    uploadpurging:",
                "      enabled: false",
                "http:",
                f"  addr: {self.host}",
                "  secret: pybuild-test-secret",
                self.auth_yaml,
                "",
            ]
        )

    def start(self, timeout: float = 20.0) -> RegistryServer:
        """Start and wait for ``/v2/``; a port taken meanwhile is replaced (3 tries)."""
        for _ in range(2):
            try:
                return self._start(timeout)
            except PortTakenError:
                self.port = free_port()
                self.host = f"127.0.0.1:{self.port}"
        return self._start(timeout)

    def _start(self, timeout: float) -> RegistryServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage.mkdir(exist_ok=True)
        config = self.workdir / "config.yml"
        config.write_text(self.config())
        log = self.log.open("wb")
        self.proc = subprocess.Popen(
            [self.binary, "serve", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text()[-2000:]
                if "address already in use" in tail:
                    raise PortTakenError(tail)
                raise RuntimeError(f"docker-registry exited: {tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=1) as r:
                    r.read()
                return self
            except urllib.error.HTTPError as e:
                if e.code == 401:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer on {self.url} within {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def blob_path(self, digest: Digest) -> Path:
        return (
            self.storage / "docker/registry/v2/blobs/sha256" / digest.hex[:2] / digest.hex / "data"
        )


def htpasswd_auth(workdir: Path, users: dict[str, str]) -> str:
    tool = require_tool("htpasswd", "apache2-utils")
    lines = []
    for user, password in users.items():
        out = subprocess.run(
            [tool, "-Bbn", user, password], capture_output=True, text=True, check=True
        )
        lines.append(out.stdout.strip())
    path = workdir / "htpasswd"
    workdir.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return f"auth:\n  htpasswd:\n    realm: pybuild-test\n    path: {path}"


# -- the token server ---------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class TokenRequest:
    user: str
    scopes: tuple[str, ...]
    service: str


class TokenServer:
    """Issues RS256 JWTs the registry trusts (``auth: token:``) for a tiny user table.

    Authenticated users get every action they ask for; anonymous clients get ``pull`` on
    repositories under ``public/``; a wrong password is a 401.
    """

    def __init__(self, workdir: Path, users: dict[str, str]) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        openssl = require_tool("openssl", "openssl")
        workdir.mkdir(parents=True, exist_ok=True)
        self.cert = workdir / "token.crt"
        key = workdir / "token.key"
        subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=pybuild-test-token",
                "-keyout",
                str(key),
                "-out",
                str(self.cert),
            ],
            capture_output=True,
            check=True,
        )
        loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
        self._key = loaded
        der = x509.load_pem_x509_certificate(self.cert.read_bytes()).public_bytes(
            serialization.Encoding.DER
        )
        self._x5c = base64.b64encode(der).decode()
        self.users = users
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self.lifetime = 300
        self._server: ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def auth_yaml(self) -> str:
        return (
            "auth:\n  token:\n"
            f"    realm: {self.realm}\n"
            f"    service: {SERVICE}\n"
            f"    issuer: {ISSUER}\n"
            f"    rootcertbundle: {self.cert}"
        )

    def sign(self, claims: dict[str, object]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        assert isinstance(self._key, rsa.RSAPrivateKey)
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def issue(self, user: str, scopes: tuple[str, ...]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            granted = (
                wanted
                if user
                else [a for a in wanted if a == "pull" and name.startswith("public/")]
            )
            if granted:
                access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        return self.sign(
            {
                "iss": ISSUER,
                "sub": user,
                "aud": SERVICE,
                "exp": now + self.lifetime,
                "nbf": now - 30,
                "iat": now - 30,
                "jti": f"{random.getrandbits(64):x}",
                "access": access,
            }
        )

    def start(self) -> TokenServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/token":
                    self.send_error(404)
                    return
                query = parse_qs(parts.query)
                user = ""
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    raw = base64.b64decode(header[6:]).decode()
                    name, _, password = raw.partition(":")
                    if server.users.get(name) != password:
                        body = b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}'
                        self.send_response(401)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                    user = name
                scopes = tuple(" ".join(query.get("scope", [])).split())
                with server._lock:
                    server.requests.append(
                        TokenRequest(
                            user=user, scopes=scopes, service=query.get("service", [""])[0]
                        )
                    )
                token = server.issue(user, scopes)
                body = json.dumps(
                    {"token": token, "access_token": token, "expires_in": server.lifetime}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


# -- blob storage on another host, and the fault proxy ------------------------------------------


class StorageServer:
    """Serves bytes at random paths on 127.0.0.2 (another origin) and records request headers."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.seen: list[dict[str, str]] = []
        storage = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                storage.seen.append({k.lower(): v for k, v in self.headers.items()})
                data = storage.blobs.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def put(self, data: bytes) -> str:
        path = f"/blob/{random.getrandbits(64):x}"
        self.blobs[path] = data
        return f"http://127.0.0.2:{self._server.server_address[1]}{path}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Fault:
    """Misbehave on requests whose method matches and whose path matches ``path`` (regex).

    actions: ``status`` (answer ``status`` with ``headers``), ``corrupt`` (flip a byte),
    ``drop`` (send ``keep`` bytes, then close), ``stall`` (send ``keep`` bytes, wait ``delay``),
    ``extend`` (append bytes, Content-Length adjusted), ``rewrite`` (body -> ``rewrite(body)``,
    headers untouched), ``rewrite_consistent`` (same, with Docker-Content-Digest and length
    fixed), ``headers`` (override response headers), ``redirect_loop``, ``redirect_storage``.
    ``times`` limits how often it fires (None: always).
    """

    method: str
    path: str
    action: str
    times: int | None = None
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    keep: int = 0
    delay: float = 0.0
    rewrite: Callable[[bytes], bytes] | None = None
    hits: int = 0


_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"})


class FaultProxy:
    """An HTTP proxy in front of ``upstream`` (host:port) that injects ``faults``."""

    def __init__(self, upstream: str, *, storage: StorageServer | None = None) -> None:
        self.upstream = upstream
        self.storage = storage
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int, dict[str, str]]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy._handle(self)

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def _match(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method != method or re.search(fault.path, path) is None:
                    continue
                if fault.times is not None and fault.hits >= fault.times:
                    continue
                fault.hits += 1
                return fault
        return None

    def requests(self, method: str, path_re: str) -> list[tuple[str, str, int, dict[str, str]]]:
        return [e for e in self.log if e[0] == method and re.search(path_re, e[1])]

    @staticmethod
    def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(handler.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    handler.rfile.readline()
                    return bytes(out)
                out += handler.rfile.read(size)
                handler.rfile.readline()
        length = int(handler.headers.get("Content-Length", "0") or 0)
        data = handler.rfile.read(length) if length else b""
        if len(data) < length:
            raise ConnectionAbortedError("client sent a short body")
        return data

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        if handler.command != "HEAD" and body:
            handler.wfile.write(body)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        method, path = handler.command, handler.path
        try:
            body = self._read_body(handler)
        except (OSError, ValueError):
            handler.close_connection = True
            self.log.append((method, path, 0, {}))
            return
        fault = self._match(method, path)
        req_headers = {k.lower(): v for k, v in handler.headers.items() if k.lower() not in _HOP}
        if fault is not None and fault.action == "status":
            err = json.dumps(
                {"errors": [{"code": "UNKNOWN", "message": f"injected {fault.status}"}]}
            ).encode()
            headers = {"Content-Type": "application/json", "Content-Length": str(len(err))}
            headers.update(fault.headers)
            self.log.append((method, path, fault.status, req_headers))
            self._send(handler, fault.status, headers, err)
            return
        if fault is not None and fault.action == "redirect_loop":
            self.log.append((method, path, 302, req_headers))
            self._send(handler, 302, {"Location": path, "Content-Length": "0"}, b"")
            return
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            if "content-length" not in req_headers and body:
                req_headers["content-length"] = str(len(body))
            conn.request(method, path, body=body or None, headers=req_headers)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            headers = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP}
        finally:
            conn.close()
        self.log.append((method, path, status, req_headers))
        action = fault.action if fault is not None else ""
        ok = 200 <= status < 300 and data
        if fault is not None and action == "redirect_storage" and ok and self.storage:
            location = self.storage.put(data)
            self._send(handler, 307, {"Location": location, "Content-Length": "0"}, b"")
            return
        if fault is not None and action == "headers":
            headers.update(fault.headers)
        if action == "corrupt" and ok:
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]
        elif action == "extend" and ok:
            data += b"\0" * 16
            headers["Content-Length"] = str(len(data))
        elif action in ("rewrite", "rewrite_consistent") and ok and fault is not None:
            assert fault.rewrite is not None
            data = fault.rewrite(data)
            headers["Content-Length"] = str(len(data))
            if action == "rewrite_consistent":
                headers["Docker-Content-Digest"] = str(Digest.of_bytes(data))
        elif action in ("drop", "stall") and ok and fault is not None:
            handler.send_response(status)
            for key, value in headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data[: fault.keep])
            handler.wfile.flush()
            if action == "stall":
                time.sleep(fault.delay)
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(handler, status, headers, data)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- images -------------------------------------------------------------------------------------


def random_layer_entries(rng: random.Random, size: int, prefix: str) -> list[LayerEntry]:
    """Files totalling about ``size`` bytes: half random, half repetitive (compressible)."""
    entries = [LayerEntry(path=prefix, mode=0o755, type=EntryType.DIR)]
    chunk = 64 * 1024
    made = 0
    i = 0
    while made < size:
        n = min(chunk, size - made)
        data = rng.randbytes(n // 2) + (b"pybuild %d " % i) * ((n - n // 2) // 12 + 1)
        data = data[:n]
        entries.append(LayerEntry(path=f"{prefix}/f{i:05d}", data=data))
        made += n
        i += 1
    return entries


def make_image(
    store: Store,
    tags: tuple[str, ...],
    *,
    layer_sizes: tuple[int, ...] = (3000, 70000),
    seed: int = 0,
    docker: bool = False,
) -> ImageValue:
    """An image of ``len(layer_sizes)`` gzip layers, written into ``store`` under ``tags``."""
    rng = random.Random(seed)
    image: ImageValue = EMPTY
    with store.lease():
        for n, size in enumerate(layer_sizes):
            entries = random_layer_entries(rng, size, f"layer{n}-{seed}")
            layer = store.write_layer(entries, compression=Compression.GZIP, source_date_epoch=0)
            image = mutate.append_layer(image, layer, history=History(created_by=f"layer {n}"))
        image = mutate.with_config(image, ContainerConfig(cmd=("sh",), env=(f"SEED={seed}",)))
        if docker:
            image = mutate.convert(image, docker=True)
        store.write_image(image, tags)
    return image


@contextlib.contextmanager
def running(server: RegistryServer) -> Iterator[RegistryServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()
