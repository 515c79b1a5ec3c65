"""RegistryClient on ``httpx.MockTransport``: auth challenges and token caching, redirects
without credentials, retries and ``Retry-After``, manifest checks, resumable blob downloads,
uploads (monolithic, chunked, mounts) and transport rules."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from builder.digest import Digest, VerifyingReader
from builder.errors import (
    AuthenticationError,
    DigestMismatchError,
    RegistryError,
    UnsupportedManifestError,
)
from builder.oci.descriptor import Descriptor
from builder.oci.mediatype import MediaType
from builder.registry.auth import Credentials
from builder.registry.client import (
    Endpoint,
    RegistryClient,
    Repository,
    RetryPolicy,
    UploadOutcome,
)
from builder.registry.config import RegistrySettings

HOST = "registry.example"
REALM = "https://auth.example/token"
Handler = Callable[[httpx.Request], httpx.Response]


class Creds:
    def __init__(self, **entries: Credentials) -> None:
        self.entries = {k.replace("_", "."): v for k, v in entries.items()}

    def get(self, registry: str) -> Credentials | None:
        return self.entries.get(registry)


def make_client(
    handler: Handler,
    *,
    creds: dict[str, Credentials] | None = None,
    attempts: int = 4,
    settings: RegistrySettings | None = None,
    sleeps: list[float] | None = None,
    chunk_size: int = 1 << 20,
) -> RegistryClient:
    recorded = sleeps if sleeps is not None else []
    source = Creds()
    source.entries = dict(creds or {})
    return RegistryClient(
        settings=settings,
        credentials=source,
        retry=RetryPolicy(attempts=attempts, backoff=0.25, max_backoff=1.0),
        transport=httpx.MockTransport(handler),
        sleep=recorded.append,
        chunk_size=chunk_size,
    )


def repo(path: str = "team/app", *, push: bool = False, host: str = HOST) -> Repository:
    return Repository(
        endpoint=Endpoint(host=host, registry=host), path=path, label=f"{host}/{path}:v1", push=push
    )


MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": MediaType.OCI_MANIFEST,
        "config": {
            "mediaType": MediaType.OCI_CONFIG,
            "digest": "sha256:" + "1" * 64,
            "size": 2,
        },
        "layers": [],
    }
).encode()


def manifest_response(data: bytes = MANIFEST, **headers: str) -> httpx.Response:
    h = {
        "Content-Type": MediaType.OCI_MANIFEST,
        "Docker-Content-Digest": str(Digest.of_bytes(data)),
    }
    h.update({k.replace("_", "-"): v for k, v in headers.items()})
    return httpx.Response(200, headers=h, content=data)


def bearer_challenge(scope: str = "") -> dict[str, str]:
    value = f'Bearer realm="{REALM}",service="reg"'
    if scope:
        value += f',scope="{scope}",error="insufficient_scope"'
    return {"WWW-Authenticate": value}


# -- auth ---------------------------------------------------------------------------------------


def test_bearer_token_is_fetched_with_basic_credentials_and_cached() -> None:
    token_requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            token_requests.append(request)
            return httpx.Response(200, json={"token": "T1", "expires_in": 300})
        if request.url.path == "/v2/":
            return httpx.Response(401, headers=bearer_challenge())
        if request.headers.get("authorization") != "Bearer T1":
            return httpx.Response(401, headers=bearer_challenge("repository:team/app:pull"))
        return manifest_response()

    client = make_client(handler, creds={HOST: Credentials(username="bob", password="s3cret")})
    first = client.get_manifest(repo(), "v1")
    second = client.get_manifest(repo(), "v1")
    assert first == second
    assert first.digest == Digest.of_bytes(MANIFEST)
    assert len(token_requests) == 1
    token = token_requests[0]
    assert token.url.params.get_list("scope") == ["repository:team/app:pull"]
    assert token.url.params["service"] == "reg"
    assert token.url.params["account"] == "bob"
    assert token.headers["authorization"] == "Basic " + base64.b64encode(b"bob:s3cret").decode()


def test_insufficient_scope_fetches_a_wider_token_once() -> None:
    scopes_asked: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            scopes = request.url.params.get_list("scope")
            scopes_asked.append(scopes)
            return httpx.Response(200, json={"access_token": f"T{len(scopes_asked)}"})
        if request.url.path == "/v2/":
            return httpx.Response(401, headers=bearer_challenge())
        if request.headers.get("authorization") == "Bearer T2":
            return manifest_response()
        return httpx.Response(
            401, headers=bearer_challenge("repository:team/app:pull repository:base/img:pull")
        )

    client = make_client(handler)
    assert client.get_manifest(repo(), "v1").data == MANIFEST
    assert scopes_asked == [
        ["repository:team/app:pull"],
        ["repository:base/img:pull", "repository:team/app:pull"],
    ]


def test_open_ping_but_protected_repository_learns_the_challenge() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            return httpx.Response(200, json={"token": "T"})
        seen.append((request.url.path, request.headers.get("authorization")))
        if request.url.path == "/v2/":
            return httpx.Response(200)
        if request.headers.get("authorization") != "Bearer T":
            return httpx.Response(401, headers=bearer_challenge("repository:team/app:pull"))
        return manifest_response()

    client = make_client(handler)
    client.get_manifest(repo(), "v1")
    client.get_manifest(repo(), "v2")
    manifests = [auth for path, auth in seen if path != "/v2/"]
    assert manifests == [None, "Bearer T", "Bearer T"]  # no second anonymous attempt


def test_token_server_rejecting_credentials_is_an_authentication_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            return httpx.Response(401, json={"details": "incorrect username or password"})
        return httpx.Response(401, headers=bearer_challenge())

    client = make_client(handler, creds={HOST: Credentials(username="bob", password="nope")})
    with pytest.raises(AuthenticationError) as info:
        client.get_manifest(repo(), "v1")
    assert str(info.value) == (f"{HOST}/team/app:v1: unauthorized: incorrect username or password")
    assert "nope" not in str(info.value)


def test_identity_token_uses_oauth2_refresh_grant() -> None:
    forms: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            assert request.method == "POST"
            assert "authorization" not in request.headers
            forms.append(request.read())
            return httpx.Response(200, json={"access_token": "T"})
        if request.url.path == "/v2/":
            return httpx.Response(401, headers=bearer_challenge())
        assert request.headers["authorization"] == "Bearer T"
        return manifest_response()

    client = make_client(handler, creds={HOST: Credentials(identity_token="refresh-me")})
    client.get_manifest(repo(), "v1")
    form = httpx.QueryParams(forms[0].decode())
    assert form["grant_type"] == "refresh_token"
    assert form["refresh_token"] == "refresh-me"
    assert form["scope"] == "repository:team/app:pull"


def test_basic_challenge_sends_credentials_and_login_checks_them() -> None:
    good = "Basic " + base64.b64encode(b"bob:right").decode()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") == good:
            return httpx.Response(200, json={})
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="x"'})

    client = make_client(handler)
    client.login(HOST, Credentials(username="bob", password="right"))
    with pytest.raises(AuthenticationError, match="incorrect username or password"):
        client.login(HOST, Credentials(username="bob", password="wrong"))


def test_token_realm_over_plain_http_to_a_remote_host_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, headers={"WWW-Authenticate": 'Bearer realm="http://auth.example/token"'}
        )

    client = make_client(handler, creds={HOST: Credentials(username="u", password="p")})
    with pytest.raises(RegistryError, match=r"refusing plain HTTP to auth\.example"):
        client.get_manifest(repo(), "v1")


# -- redirects ----------------------------------------------------------------------------------

BLOB = b"layer bytes " * 100
BLOB_DESC = Descriptor(
    media_type=MediaType.OCI_LAYER_GZIP, digest=Digest.of_bytes(BLOB), size=len(BLOB)
)


class Sink:
    made: list[Sink]

    def __init__(self) -> None:
        self.data = bytearray()
        self.aborted = False

    def write(self, data: bytes, /) -> int:
        self.data += data
        return len(data)

    def abort(self) -> None:
        self.aborted = True


def sinks() -> tuple[list[Sink], Callable[[], Sink]]:
    made: list[Sink] = []

    def new() -> Sink:
        made.append(Sink())
        return made[-1]

    return made, new


def test_redirect_to_another_host_carries_no_credentials() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("authorization")))
        if request.url.host == "storage.example":
            return httpx.Response(200, content=BLOB)
        if request.url.path == "/v2/":
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        return httpx.Response(307, headers={"Location": "https://storage.example/blob?sig=abc"})

    client = make_client(handler, creds={HOST: Credentials(username="bob", password="pw")})
    made, new = sinks()
    client.fetch_blob(repo(), BLOB_DESC, new)
    assert bytes(made[-1].data) == BLOB
    assert seen[-2][0] == HOST
    assert seen[-2][1] is not None
    assert seen[-2][1].startswith("Basic ")
    assert seen[-1] == ("storage.example", None)


def test_redirect_loop_stops_after_ten_hops() -> None:
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        if request.url.path == "/v2/":
            return httpx.Response(200)
        count += 1
        return httpx.Response(302, headers={"Location": request.url.path})

    client = make_client(handler)
    with pytest.raises(RegistryError, match="stopped after 10 redirects"):
        client.fetch_blob(repo(), BLOB_DESC, sinks()[1])
    assert count == 11


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("file:///etc/passwd", "refusing to follow a redirect"),
        ("http://storage.example/blob", "refusing plain HTTP to storage.example"),
    ],
)
def test_redirect_targets_are_restricted(location: str, message: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200)
        return httpx.Response(302, headers={"Location": location})

    with pytest.raises(RegistryError, match=message):
        make_client(handler).fetch_blob(repo(), BLOB_DESC, sinks()[1])


# -- retries ------------------------------------------------------------------------------------


def test_503_and_429_honour_retry_after() -> None:
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "2"}),
            httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
            httpx.Response(502),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200)
        return next(answers, None) or manifest_response()

    sleeps: list[float] = []
    client = make_client(handler, sleeps=sleeps)
    assert client.get_manifest(repo(), "v1").data == MANIFEST
    # Retry-After seconds; an HTTP date in the past means now; no header: backoff (2nd retry)
    assert sleeps == [2.0, 0.0, 1.0]


def test_retries_are_bounded_and_the_error_is_temporary() -> None:
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        if request.url.path == "/v2/":
            return httpx.Response(200)
        count += 1
        return httpx.Response(
            500, json={"errors": [{"code": "UNKNOWN", "message": "disk on fire"}]}
        )

    sleeps: list[float] = []
    client = make_client(handler, attempts=3, sleeps=sleeps)
    with pytest.raises(RegistryError) as info:
        client.get_manifest(repo(), "v1")
    assert count == 3
    assert sleeps == [0.25, 0.5]
    assert str(info.value) == f"{HOST}/team/app:v1: registry error (HTTP 500): disk on fire"
    assert info.value.temporary
    assert info.value.status == 500
    assert info.value.codes == ("UNKNOWN",)


def test_connection_reset_is_retried_but_refusal_is_not() -> None:
    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise httpx.ReadError("connection reset by peer")
        if request.url.path == "/v2/":
            return httpx.Response(200)
        return manifest_response()

    assert make_client(flaky).get_manifest(repo(), "v1").data == MANIFEST
    assert calls == 3

    refused = 0

    def down(request: httpx.Request) -> httpx.Response:
        nonlocal refused
        refused += 1
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as exc:
            raise httpx.ConnectError("[Errno 111] Connection refused") from exc

    with pytest.raises(RegistryError) as info:
        make_client(down).get_manifest(repo(), "v1")
    assert refused == 1
    assert str(info.value) == (f"{HOST}/team/app:v1: cannot connect to {HOST}: Connection refused")


def test_read_timeout_is_reported_as_a_stall() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out")

    with pytest.raises(RegistryError) as info:
        make_client(handler, attempts=2).get_manifest(repo(), "v1")
    assert str(info.value) == f"{HOST}/team/app:v1: {HOST} timed out waiting for data"
    assert info.value.temporary


# -- manifests ----------------------------------------------------------------------------------


def serve(response: Callable[[], httpx.Response]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200)
        return response()

    return handler


def test_accept_header_and_schema1_refusal() -> None:
    accepted: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        accepted.append(request.headers.get("accept", ""))
        if request.url.path == "/v2/":
            return httpx.Response(200)
        body = json.dumps({"schemaVersion": 1, "name": "x", "fsLayers": []}).encode()
        return httpx.Response(
            200,
            headers={"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"},
            content=body,
        )

    with pytest.raises(UnsupportedManifestError, match="schema 1 is not supported"):
        make_client(handler).get_manifest(repo(), "v1")
    for media_type in (
        MediaType.OCI_MANIFEST,
        MediaType.OCI_INDEX,
        MediaType.DOCKER_MANIFEST,
        MediaType.DOCKER_MANIFEST_LIST,
    ):
        assert media_type in accepted[-1]

    body = json.dumps({"schemaVersion": 1, "fsLayers": []}).encode()
    generic = serve(lambda: httpx.Response(200, content=body))
    with pytest.raises(UnsupportedManifestError, match="schema 1"):
        make_client(generic).get_manifest(repo(), "v1")


def test_media_type_contradicting_content_type_is_refused() -> None:
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": MediaType.OCI_INDEX, "manifests": []}
    ).encode()
    lying = serve(lambda: manifest_response(index))
    with pytest.raises(RegistryError, match="does not match the Content-Type"):
        make_client(lying).get_manifest(repo(), "v1")


def test_manifest_without_media_type_is_detected_from_its_fields() -> None:
    body = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    generic = serve(lambda: httpx.Response(200, content=body))
    assert make_client(generic).get_manifest(repo(), "v1").media_type == MediaType.OCI_INDEX


def test_manifest_size_limit() -> None:
    big = serve(
        lambda: httpx.Response(
            200,
            headers={"Content-Type": MediaType.OCI_MANIFEST, "Content-Length": str(5 << 20)},
            content=b"",
        )
    )
    with pytest.raises(RegistryError, match="exceeds the 4194304-byte limit"):
        make_client(big).get_manifest(repo(), "v1")

    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b" " * (1 << 20)

    streamed = serve(
        lambda: httpx.Response(
            200, headers={"Content-Type": MediaType.OCI_MANIFEST}, content=chunks()
        )
    )
    with pytest.raises(RegistryError, match="exceeds the 4194304-byte limit"):
        make_client(streamed).get_manifest(repo(), "v1")


def test_manifest_digest_is_checked_against_header_and_request() -> None:
    wrong = "sha256:" + "f" * 64
    lying = serve(lambda: manifest_response(Docker_Content_Digest=wrong))
    with pytest.raises(RegistryError, match=f"Docker-Content-Digest says {wrong}"):
        make_client(lying).get_manifest(repo(), "v1")
    honest = serve(manifest_response)
    with pytest.raises(RegistryError, match=f"requested {wrong}, content hashes to"):
        make_client(honest).get_manifest(repo(), wrong)


def test_error_text_from_the_registry_is_made_printable() -> None:
    body = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "no\x1b[31m such\nthing"}]}
    missing = serve(lambda: httpx.Response(404, json=body))
    with pytest.raises(RegistryError) as info:
        make_client(missing).get_manifest(repo(), "v1")
    assert str(info.value) == f"{HOST}/team/app:v1: not found: no [31m such thing"
    assert info.value.codes == ("MANIFEST_UNKNOWN",)


# -- blob downloads -----------------------------------------------------------------------------


class Broken(httpx.SyncByteStream):
    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self.data
        raise httpx.RemoteProtocolError("peer closed connection")


def test_blob_download_resumes_with_range() -> None:
    ranges: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200)
        ranges.append(request.headers.get("range"))
        if "range" not in request.headers:
            return httpx.Response(
                200, headers={"Content-Length": str(len(BLOB))}, stream=Broken(BLOB[:500])
            )
        start = int(request.headers["range"].removeprefix("bytes=").rstrip("-"))
        return httpx.Response(
            206,
            headers={"Content-Range": f"bytes {start}-{len(BLOB) - 1}/{len(BLOB)}"},
            content=BLOB[start:],
        )

    made, new = sinks()
    progress: list[int] = []
    make_client(handler).fetch_blob(repo(), BLOB_DESC, new, progress=progress.append)
    assert ranges == [None, "bytes=500-"]
    assert len(made) == 1
    assert bytes(made[0].data) == BLOB
    assert progress[-1] == len(BLOB)


def test_blob_download_restarts_when_range_is_ignored() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        if request.url.path == "/v2/":
            return httpx.Response(200)
        calls += 1
        if calls == 1:
            return httpx.Response(200, stream=Broken(BLOB[:100]))
        return httpx.Response(200, content=BLOB)

    made, new = sinks()
    make_client(handler).fetch_blob(repo(), BLOB_DESC, new)
    assert len(made) == 2
    assert made[0].aborted
    assert bytes(made[1].data) == BLOB


def test_blob_with_wrong_length_or_digest_header_is_refused() -> None:
    longer = serve(lambda: httpx.Response(200, content=BLOB + b"x"))
    made, new = sinks()
    with pytest.raises(RegistryError, match=f"sends {len(BLOB) + 1} bytes for a blob of"):
        make_client(longer).fetch_blob(repo(), BLOB_DESC, new)
    assert all(s.aborted for s in made)

    other = "sha256:" + "a" * 64
    wrong = serve(
        lambda: httpx.Response(200, headers={"Docker-Content-Digest": other}, content=BLOB)
    )
    with pytest.raises(RegistryError, match=f"sent {other} instead"):
        make_client(wrong).fetch_blob(repo(), BLOB_DESC, sinks()[1])


# -- uploads ------------------------------------------------------------------------------------


class FakeUploads:
    """Just enough of the distribution upload protocol, recording requests."""

    def __init__(self, *, existing: bool = False, mountable: bool = False) -> None:
        self.existing = existing
        self.mountable = mountable
        self.requests: list[tuple[str, str]] = []
        self.received = bytearray()
        self.stored: dict[str, bytes] = {}
        self.digest_header: str | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append((request.method, str(request.url)))
        if path == "/v2/":
            return httpx.Response(200)
        if request.method == "HEAD":
            return httpx.Response(
                200 if self.existing else 404, headers={"Content-Length": str(len(DATA))}
            )
        if request.method == "POST":
            if "mount" in request.url.params and self.mountable:
                return httpx.Response(201)
            return httpx.Response(202, headers={"Location": "/v2/team/app/blobs/uploads/u1?s=0"})
        if request.method == "PATCH":
            start, _, end = request.headers["content-range"].partition("-")
            assert int(start) == len(self.received)
            self.received += request.read()
            assert int(end) == len(self.received) - 1
            return httpx.Response(
                202,
                headers={
                    "Location": f"/v2/team/app/blobs/uploads/u1?s={len(self.received)}",
                    "Range": f"0-{len(self.received) - 1}",
                },
            )
        if request.method == "PUT" and "/blobs/uploads/" in path:
            self.received += request.read()
            digest = request.url.params["digest"]
            assert str(Digest.of_bytes(bytes(self.received))) == digest
            self.stored[digest] = bytes(self.received)
            return httpx.Response(
                201, headers={"Docker-Content-Digest": self.digest_header or digest}
            )
        if request.method == "PUT":
            return httpx.Response(
                201,
                headers={
                    "Docker-Content-Digest": self.digest_header
                    or str(Digest.of_bytes(request.read()))
                },
            )
        return httpx.Response(405)


DATA = bytes(range(256)) * 40
DATA_DESC = Descriptor(
    media_type=MediaType.OCI_LAYER_GZIP, digest=Digest.of_bytes(DATA), size=len(DATA)
)


def test_monolithic_upload_and_existing_blob() -> None:
    fake = FakeUploads()
    client = make_client(fake)
    result = client.upload_blob(repo(push=True), DATA_DESC, lambda: io.BytesIO(DATA))
    assert result.outcome is UploadOutcome.UPLOADED
    assert fake.stored == {str(DATA_DESC.digest): DATA}
    methods = [m for m, _ in fake.requests if m != "GET"]
    assert methods == ["HEAD", "POST", "PUT"]
    put_url = httpx.URL(fake.requests[-1][1])
    assert put_url.params["s"] == "0"  # the upload state parameter is kept
    assert put_url.params["digest"] == str(DATA_DESC.digest)

    fake = FakeUploads(existing=True)
    result = make_client(fake).upload_blob(repo(push=True), DATA_DESC, lambda: io.BytesIO(DATA))
    assert result.outcome is UploadOutcome.EXISTS
    assert [m for m, _ in fake.requests if m != "GET"] == ["HEAD"]


def test_chunked_upload_uses_patch_with_content_range() -> None:
    fake = FakeUploads()
    client = make_client(fake, chunk_size=3000)
    result = client.upload_blob(repo(push=True), DATA_DESC, lambda: io.BytesIO(DATA))
    assert result.outcome is UploadOutcome.UPLOADED
    assert [m for m, _ in fake.requests].count("PATCH") == 4  # 10240 bytes / 3000
    assert fake.stored[str(DATA_DESC.digest)] == DATA


def test_cross_repository_mount() -> None:
    fake = FakeUploads(mountable=True)
    result = make_client(fake).upload_blob(
        repo(push=True), DATA_DESC, lambda: io.BytesIO(DATA), mount_from=("team/base",)
    )
    assert result.outcome is UploadOutcome.MOUNTED
    assert result.mounted_from == "team/base"
    post = httpx.URL(next(u for m, u in fake.requests if m == "POST"))
    assert post.params["mount"] == str(DATA_DESC.digest)
    assert post.params["from"] == "team/base"
    assert not [m for m, _ in fake.requests if m in ("PUT", "PATCH")]


def test_upload_of_corrupt_local_blob_never_completes() -> None:
    fake = FakeUploads()
    bad = DATA[:-1] + b"\x00"

    def opener() -> io.BufferedReader:
        reader = VerifyingReader(io.BytesIO(bad), expected=DATA_DESC.digest, size=len(DATA))
        return io.BufferedReader(reader)

    with pytest.raises(DigestMismatchError):
        make_client(fake).upload_blob(repo(push=True), DATA_DESC, opener)
    assert fake.stored == {}
    assert not [m for m, _ in fake.requests if m == "PUT"]


def test_put_manifest_checks_the_returned_digest() -> None:
    fake = FakeUploads()
    client = make_client(fake)
    assert client.put_manifest(repo(push=True), "v1", MANIFEST, MediaType.OCI_MANIFEST) == (
        Digest.of_bytes(MANIFEST)
    )
    fake.digest_header = "sha256:" + "e" * 64
    with pytest.raises(RegistryError, match="stored the manifest as sha256:eee"):
        client.put_manifest(repo(push=True), "v1", MANIFEST, MediaType.OCI_MANIFEST)


# -- transport rules ----------------------------------------------------------------------------


def test_remote_registries_use_https_and_loopback_is_probed_for_http() -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        if request.url.path == "/v2/":
            return httpx.Response(200)
        return manifest_response()

    client = make_client(handler)
    client.get_manifest(repo(), "v1")
    assert all(u.startswith(f"https://{HOST}/") for u in urls)

    urls.clear()
    client.get_manifest(repo(host="127.0.0.1:5000"), "v1")
    assert urls[0] == "http://127.0.0.1:5000/v2/"
    assert urls[-1].startswith("http://127.0.0.1:5000/v2/team/app/manifests/v1")

    urls.clear()
    insecure = make_client(handler, settings=RegistrySettings(insecure_registries=("10.0.0.0/8",)))
    insecure.get_manifest(repo(host="10.1.2.3:5000"), "v1")
    assert urls[-1].startswith("http://10.1.2.3:5000/")


def test_a_tls_registry_on_loopback_is_detected() -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        if request.url.scheme == "http":
            return httpx.Response(400, text="Client sent an HTTP request to an HTTPS server.")
        if request.url.path == "/v2/":
            return httpx.Response(200)
        return manifest_response()

    make_client(handler).get_manifest(repo(host="localhost:5443"), "v1")
    assert urls[-1].startswith("https://localhost:5443/v2/team/app/manifests/v1")


def test_docker_hub_endpoints_and_mirrors() -> None:
    from builder.registry.config import Mirror

    client = make_client(serve(manifest_response))
    assert [e.host for e in client.endpoints("docker.io")] == ["registry-1.docker.io"]
    mirrored = make_client(
        serve(manifest_response),
        settings=RegistrySettings(mirrors=(Mirror.parse("https://mirror.example"),)),
    )
    hosts = [(e.host, e.mirror) for e in mirrored.endpoints("docker.io")]
    assert hosts == [("mirror.example", True), ("registry-1.docker.io", False)]
    assert [e.host for e in mirrored.endpoints("docker.io", push=True)] == ["registry-1.docker.io"]
    assert [e.host for e in mirrored.endpoints("quay.io")] == ["quay.io"]


@pytest.mark.parametrize(("text", "read"), [("", 60.0), ("2.5", 2.5), ("30", 30.0)])
def test_registry_timeout_from_the_environment(text: str, read: float) -> None:
    from builder.registry.client import Timeouts

    env = {"PYBUILD_REGISTRY_TIMEOUT": text} if text else {}
    assert Timeouts.from_environment(env).read == read
    assert RegistryClient.from_environment(env).timeouts.read == read


@pytest.mark.parametrize("text", ["0", "-1", "soon", "nan"])
def test_registry_timeout_must_be_positive(text: str) -> None:
    from builder.registry.client import Timeouts

    with pytest.raises(RegistryError, match="PYBUILD_REGISTRY_TIMEOUT"):
        Timeouts.from_environment({"PYBUILD_REGISTRY_TIMEOUT": text})
