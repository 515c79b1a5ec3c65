"""HTTP client for the OCI distribution API (``/v2/``), on ``httpx``.

One ``RegistryClient`` holds the connection pools, the per-registry state (scheme, auth challenge)
and the token cache; the composition root creates it and passes it down. Every httpx error is
translated here into a ``RegistryError`` (or ``AuthenticationError``/``ManifestNotFoundError``)
whose message names what was being fetched and why it failed, in one line.

Rules it enforces:

* Transport: HTTPS with verification, except loopback hosts and registries listed insecure
  (plain HTTP, or TLS without verification); redirects only to http(s), at most 10, and to plain
  HTTP only for such hosts.
* Credentials (``Authorization``) are attached only to requests whose origin is the registry's
  own; a redirect to blob storage on another host never carries them.
* Retries: 408/429/5xx, connection resets and timeouts are retried a bounded number of times with
  exponential backoff, honouring ``Retry-After``; a blob download resumes with ``Range`` when the
  registry supports it and restarts otherwise; whatever happens, the store verifies the result.
* Limits: manifests 4 MiB, error bodies 64 KiB, token responses 1 MiB; a read that stalls for
  ``Timeouts.read`` seconds fails (and is retried like a reset).
* Integrity: manifests are hashed and checked against the requested digest and
  ``Docker-Content-Digest``; a ``mediaType`` that contradicts ``Content-Type`` is refused, and so
  is Docker schema 1.
"""

from __future__ import annotations

import email.utils
import enum
import json
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO, Final, Protocol, TypeVar

import httpx

from builder.digest import Digest
from builder.errors import (
    AuthenticationError,
    ManifestNotFoundError,
    RegistryError,
    StoreError,
    UnsupportedManifestError,
)
from builder.oci.descriptor import Descriptor
from builder.oci.mediatype import MediaType, is_index, is_manifest
from builder.registry.auth import (
    Challenge,
    Credentials,
    Token,
    TokenCache,
    TokenKey,
    merge_scopes,
    parse_challenges,
    parse_token_response,
    pick_challenge,
    repository_scope,
)
from builder.registry.config import (
    DOCKER_HUB,
    DOCKER_HUB_ENDPOINT,
    RegistrySettings,
    load_settings,
)
from builder.registry.credentials import DockerConfig

MAX_MANIFEST_BYTES: Final = 4 * 1024 * 1024
MAX_ERROR_BYTES: Final = 64 * 1024
MAX_TOKEN_BYTES: Final = 1024 * 1024
MAX_REDIRECTS: Final = 10
DEFAULT_CHUNK_SIZE: Final = 64 * 1024 * 1024
READ_CHUNK: Final = 1024 * 1024
MANIFEST_TYPES: Final = (
    MediaType.OCI_MANIFEST,
    MediaType.OCI_INDEX,
    MediaType.DOCKER_MANIFEST,
    MediaType.DOCKER_MANIFEST_LIST,
)
SCHEMA1_TYPES: Final = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)
_RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_USER_AGENT: Final = "pybuild/0.1.0"
_SCHEMA1_MESSAGE: Final = (
    "Docker Image manifest version 2, schema 1 is not supported (a deprecated format);"
    " ask the image's author to push it again as Docker schema 2 or OCI"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried."""

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return float(min(self.backoff * (2**attempt), self.max_backoff))


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    connect: float = 30.0
    read: float = 60.0  # a body that stays silent this long counts as stalled
    probe: float = 5.0  # deciding between http and https for an insecure registry

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Timeouts:
        """Defaults, with ``read`` from ``PYBUILD_REGISTRY_TIMEOUT`` (seconds) when set."""
        text = env.get("PYBUILD_REGISTRY_TIMEOUT", "")
        if not text:
            return cls()
        try:
            seconds = float(text)
        except ValueError:
            seconds = -1.0
        if not seconds > 0:
            raise RegistryError(
                f"PYBUILD_REGISTRY_TIMEOUT={text!r}: want a positive number of seconds"
            )
        return cls(read=seconds)


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """Where requests for a registry go: ``host`` (netloc) with a fixed or probed scheme."""

    host: str
    registry: str  # whose credentials apply: "docker.io", "127.0.0.1:5000", a mirror's host
    scheme: str = ""  # "" = https, or probed for insecure/loopback hosts
    mirror: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Repository:
    """A repository at an endpoint; ``label`` names it in error messages."""

    endpoint: Endpoint
    path: str
    label: str
    push: bool = False

    @property
    def scopes(self) -> tuple[str, ...]:
        return (repository_scope(self.path, push=self.push),)


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchedManifest:
    data: bytes
    media_type: str
    digest: Digest

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(media_type=self.media_type, digest=self.digest, size=len(self.data))


class UploadOutcome(enum.Enum):
    EXISTS = "exists"
    MOUNTED = "mounted"
    UPLOADED = "uploaded"


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadResult:
    outcome: UploadOutcome
    mounted_from: str = ""


class CredentialSource(Protocol):
    def get(self, registry: str) -> Credentials | None: ...


class BlobSink(Protocol):
    """Where a downloaded blob goes (the store's ``BlobWriter``)."""

    def write(self, data: bytes, /) -> object: ...

    def abort(self) -> None: ...


SinkT = TypeVar("SinkT", bound=BlobSink)


class _NoCredentials:
    def get(self, registry: str) -> Credentials | None:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class _EndpointState:
    base: httpx.URL  # scheme://host (no path)
    challenge: Challenge | None


Body = bytes | Callable[[], Iterator[bytes]] | None


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.scheme, url.host, port


def _netloc(url: httpx.URL) -> str:
    return url.netloc.decode("ascii", "replace")


def clean_text(text: str, limit: int = 200) -> str:
    """Untrusted server text made safe for one terminal line: printable, single line, short."""
    out = "".join(c if c.isprintable() else " " for c in text)
    out = " ".join(out.split())
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _exc_reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if text.startswith("[Errno") and "] " in text:
        text = text.split("] ", 1)[1]
    return clean_text(text.splitlines()[0] if text else type(exc).__name__, 160)


def _is_tls_verify_failure(exc: BaseException) -> bool:
    return _caused_by(exc, ssl.SSLCertVerificationError)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _retryable(exc: httpx.TransportError) -> bool:
    """Worth another try: resets, timeouts, broken responses; not refusals or bad TLS."""
    if isinstance(exc, httpx.PoolTimeout | httpx.UnsupportedProtocol | httpx.ProxyError):
        return False
    if _is_tls_verify_failure(exc) or _caused_by(exc, ConnectionRefusedError):
        return False
    return isinstance(exc, httpx.NetworkError | httpx.TimeoutException | httpx.RemoteProtocolError)


def transport_error(exc: httpx.TransportError, what: str, host: str) -> RegistryError:
    """One-line error for a network failure while doing ``what``."""
    if isinstance(exc, httpx.TimeoutException):
        kind = {
            httpx.ConnectTimeout: "connecting",
            httpx.ReadTimeout: "waiting for data",
            httpx.WriteTimeout: "sending data",
            httpx.PoolTimeout: "waiting for a free connection",
        }.get(type(exc), "waiting")
        message = f"{what}: {host} timed out {kind}"
    elif _is_tls_verify_failure(exc):
        message = (
            f"{what}: TLS certificate of {host} not trusted: {_exc_reason(exc)}"
            " (list the registry in insecure-registries of pybuild's config to allow it)"
        )
    elif isinstance(exc, httpx.ConnectError):
        message = f"{what}: cannot connect to {host}: {_exc_reason(exc)}"
    elif isinstance(exc, httpx.RemoteProtocolError):
        message = f"{what}: {host} broke the connection: {_exc_reason(exc)}"
    else:
        message = f"{what}: network error talking to {host}: {_exc_reason(exc)}"
    return RegistryError(message, reference=what, temporary=_retryable(exc))


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), or None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def manifest_media_type(data: bytes, content_type: str, what: str) -> str:
    """The media type of a fetched manifest, checked against the body (CVE-2021-41190)."""
    if content_type in SCHEMA1_TYPES:
        raise UnsupportedManifestError(f"{what}: {_SCHEMA1_MESSAGE}", reference=what)
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise RegistryError(f"{what}: manifest is not valid JSON", reference=what) from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{what}: manifest is not a JSON object", reference=what)
    if doc.get("schemaVersion") == 1:
        raise UnsupportedManifestError(f"{what}: {_SCHEMA1_MESSAGE}", reference=what)
    body_type = doc.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise RegistryError(f"{what}: manifest mediaType is not a string", reference=what)
    known = is_manifest(content_type) or is_index(content_type)
    if known:
        if body_type and body_type != content_type:
            raise RegistryError(
                f"{what}: manifest mediaType {clean_text(body_type, 80)!r} does not match"
                f" the Content-Type {content_type!r}",
                reference=what,
            )
        return content_type
    if body_type and (is_manifest(body_type) or is_index(body_type)):
        return body_type
    if not body_type and content_type in ("", "application/json", "application/octet-stream"):
        if "manifests" in doc and "config" not in doc and "layers" not in doc:
            return MediaType.OCI_INDEX
        if "config" in doc and "manifests" not in doc:
            return MediaType.OCI_MANIFEST
    shown = body_type or content_type or "none"
    raise UnsupportedManifestError(
        f"{what}: unsupported manifest media type {clean_text(shown, 80)!r}", reference=what
    )


def _parse_errors(body: bytes) -> tuple[tuple[str, ...], str]:
    """Distribution error codes and the first message from an error body."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return (), clean_text(body.decode("utf-8", "replace"), 120) if body.strip() else ""
    codes: list[str] = []
    message = ""
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if isinstance(errors, list):
        for item in errors:
            if not isinstance(item, dict):
                continue
            code = item.get("code")
            text = item.get("message")
            if isinstance(code, str):
                codes.append(clean_text(code, 40))
            if not message:
                if isinstance(text, str) and text:
                    message = clean_text(text, 160)
                elif isinstance(code, str):
                    message = clean_text(code.lower().replace("_", " "), 80)
    elif isinstance(doc, dict) and isinstance(doc.get("details"), str):
        message = clean_text(str(doc["details"]), 160)
    return tuple(codes), message


class RegistryClient:
    """Talks to registries. Thread-safe: one instance serves parallel layer transfers."""

    def __init__(
        self,
        *,
        settings: RegistrySettings | None = None,
        credentials: CredentialSource | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        concurrency: int = 3,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_manifest_bytes: int = MAX_MANIFEST_BYTES,
        max_redirects: int = MAX_REDIRECTS,
    ) -> None:
        self.settings = settings or RegistrySettings()
        self._credentials: CredentialSource = credentials or _NoCredentials()
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.concurrency = max(1, concurrency)
        self.chunk_size = max(1, chunk_size)
        self.max_manifest_bytes = max_manifest_bytes
        self.max_redirects = max_redirects
        self._sleep = sleep
        self._lock = threading.Lock()
        self._token_lock = threading.Lock()
        self._states: dict[tuple[str, str], _EndpointState] = {}
        self._creds_cache: dict[str, Credentials | None] = {}
        self.tokens = TokenCache()
        limits = httpx.Limits(
            max_connections=self.concurrency * 2 + 4, max_keepalive_connections=self.concurrency + 2
        )
        timeout = httpx.Timeout(
            connect=self.timeouts.connect,
            read=self.timeouts.read,
            write=self.timeouts.read,
            pool=self.timeouts.connect,
        )

        def make(verify: bool) -> httpx.Client:
            return httpx.Client(
                transport=transport,
                verify=verify,
                timeout=timeout,
                limits=limits,
                follow_redirects=False,
                headers={"User-Agent": _USER_AGENT},
            )

        self._verified = make(True)
        self._unverified = self._verified if transport is not None else make(False)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> RegistryClient:
        """The client the CLI uses: pybuild's config file plus Docker's credentials."""
        return cls(
            settings=load_settings(env),
            credentials=DockerConfig.default(env),
            timeouts=Timeouts.from_environment(os.environ if env is None else env),
        )

    def close(self) -> None:
        self._verified.close()
        if self._unverified is not self._verified:
            self._unverified.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- endpoints ---------------------------------------------------------------------------

    def endpoints(self, domain: str, *, push: bool = False) -> tuple[Endpoint, ...]:
        """Where to send requests for ``domain``: mirrors first for Docker Hub pulls."""
        if domain == DOCKER_HUB:
            hub = Endpoint(host=DOCKER_HUB_ENDPOINT, registry=DOCKER_HUB, scheme="https")
            if push:
                return (hub,)
            mirrors = tuple(
                Endpoint(host=m.host, registry=m.host, scheme=m.scheme, mirror=True)
                for m in self.settings.mirrors_for(domain)
            )
            return (*mirrors, hub)
        return (Endpoint(host=domain, registry=domain),)

    def repository(
        self, domain: str, path: str, *, label: str = "", push: bool = False
    ) -> Repository:
        """The repository at the registry's own endpoint (no mirror)."""
        endpoint = self.endpoints(domain, push=True)[0]
        return Repository(
            endpoint=endpoint, path=path, label=label or f"{domain}/{path}", push=push
        )

    def _client_for(self, url: httpx.URL) -> httpx.Client:
        return self._unverified if self.settings.is_insecure(_netloc(url)) else self._verified

    def _check_target(self, url: httpx.URL, what: str) -> None:
        if url.scheme not in ("http", "https") or not url.host:
            raise RegistryError(
                f"{what}: refusing to follow a redirect to {clean_text(str(url), 120)!r}",
                reference=what,
            )
        if url.scheme == "http" and not self.settings.is_insecure(_netloc(url)):
            raise RegistryError(
                f"{what}: refusing plain HTTP to {_netloc(url)} (not a loopback or insecure"
                " registry)",
                reference=what,
            )

    # -- one request -------------------------------------------------------------------------

    def _follow(
        self,
        method: str,
        url: httpx.URL,
        *,
        headers: Mapping[str, str],
        authorization: str | None,
        auth_origin: tuple[str, str, int] | None,
        body: Body,
        what: str,
    ) -> httpx.Response:
        """Send, following GET/HEAD redirects; credentials only ever go to ``auth_origin``."""
        current = url
        hops = 0
        while True:
            sent = dict(headers)
            if authorization and auth_origin is not None and _origin(current) == auth_origin:
                sent["Authorization"] = authorization
            content = body() if callable(body) else body
            client = self._client_for(current)
            request = client.build_request(method, current, headers=sent, content=content)
            response = client.send(request, stream=True)
            if response.status_code not in _REDIRECT_STATUSES or method not in ("GET", "HEAD"):
                return response
            location = response.headers.get("location")
            response.close()
            if not location:
                raise RegistryError(
                    f"{what}: redirect (HTTP {response.status_code}) without a Location",
                    reference=what,
                )
            hops += 1
            if hops > self.max_redirects:
                raise RegistryError(
                    f"{what}: stopped after {self.max_redirects} redirects (redirect loop?)",
                    reference=what,
                )
            try:
                current = current.join(location)
            except httpx.InvalidURL:
                raise RegistryError(
                    f"{what}: invalid redirect location {clean_text(location, 120)!r}",
                    reference=what,
                ) from None
            self._check_target(current, what)

    def _with_retries(
        self, what: str, host: str, attempt: Callable[[], httpx.Response], *, retry: bool = True
    ) -> httpx.Response:
        """Run ``attempt`` until it gives a non-transient answer or the policy gives up."""
        n = 0
        while True:
            try:
                response = attempt()
            except httpx.TransportError as exc:
                if not retry or not _retryable(exc) or n + 1 >= self.retry.attempts:
                    raise transport_error(exc, what, host) from exc
                self._sleep(self.retry.delay(n, None))
                n += 1
                continue
            if retry and response.status_code in _RETRY_STATUSES and n + 1 < self.retry.attempts:
                delay = self.retry.delay(
                    n, retry_after_seconds(response.headers.get("retry-after"))
                )
                response.close()
                self._sleep(delay)
                n += 1
                continue
            return response

    def _request(
        self,
        method: str,
        repo: Repository,
        url: httpx.URL,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        scopes: tuple[str, ...] = (),
        retry: bool = True,
    ) -> httpx.Response:
        """An authorised request to ``repo``'s registry; the caller closes the response."""
        endpoint = repo.endpoint
        state = self._state(endpoint, what)
        wanted = merge_scopes(repo.scopes, scopes)
        base_origin = _origin(state.base)

        def attempt() -> httpx.Response:
            authorization = self._authorization(endpoint, state, wanted, what)
            response = self._follow(
                method,
                url,
                headers=headers or {},
                authorization=authorization,
                auth_origin=base_origin,
                body=body,
                what=what,
            )
            if response.status_code != 401 or _origin(response.url) != base_origin:
                return response
            challenge = pick_challenge(
                parse_challenges(response.headers.get_list("www-authenticate"))
            )
            if challenge is None:
                return response
            fresh = self._reauthorize(endpoint, challenge, wanted, what, stale=authorization)
            if fresh is None or fresh == authorization:
                return response
            if state.challenge is None:  # /v2/ was open, the repository is not: remember
                self._remember_challenge(endpoint, state, challenge)
            response.close()
            return self._follow(
                method,
                url,
                headers=headers or {},
                authorization=fresh,
                auth_origin=base_origin,
                body=body,
                what=what,
            )

        return self._with_retries(what, endpoint.host, attempt, retry=retry)

    def _url(self, repo: Repository, suffix: str, what: str) -> httpx.URL:
        state = self._state(repo.endpoint, what)
        return state.base.join(f"/v2/{repo.path}/{suffix}")

    # -- endpoint state and auth --------------------------------------------------------------

    def _state(self, endpoint: Endpoint, what: str) -> _EndpointState:
        key = (endpoint.scheme, endpoint.host)
        with self._lock:
            known = self._states.get(key)
        if known is not None:
            return known
        state = self._ping(endpoint, what)
        with self._lock:
            self._states.setdefault(key, state)
            return self._states[key]

    def _remember_challenge(
        self, endpoint: Endpoint, state: _EndpointState, challenge: Challenge
    ) -> None:
        general = Challenge(
            scheme=challenge.scheme,
            params=tuple((k, v) for k, v in challenge.params if k not in ("scope", "error")),
        )
        with self._lock:
            self._states[(endpoint.scheme, endpoint.host)] = _EndpointState(
                base=state.base, challenge=general
            )

    def _probe_scheme(self, endpoint: Endpoint) -> str:
        """Plain HTTP for an insecure registry if it speaks it, else TLS (unverified)."""
        if endpoint.scheme:
            return endpoint.scheme
        if not self.settings.is_insecure(endpoint.host):
            return "https"
        url = httpx.URL(f"http://{endpoint.host}/v2/")
        try:
            response = self._unverified.get(url, timeout=self.timeouts.probe)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            return "http"  # nothing listens: report it for http, where the user expects it
        except httpx.TransportError:
            return "https"  # a TLS server hung up on plain HTTP
        text = response.text[:200] if response.status_code == 400 else ""
        return "https" if "HTTPS" in text.upper() else "http"

    def _ping(self, endpoint: Endpoint, what: str) -> _EndpointState:
        scheme = self._probe_scheme(endpoint)
        if scheme not in ("http", "https"):
            raise RegistryError(f"{what}: unsupported scheme {scheme!r}", reference=what)
        base = httpx.URL(f"{scheme}://{endpoint.host}")
        self._check_target(base, what)
        ping = base.join("/v2/")

        def attempt() -> httpx.Response:
            return self._follow(
                "GET", ping, headers={}, authorization=None, auth_origin=None, body=None, what=what
            )

        response = self._with_retries(what, endpoint.host, attempt)
        try:
            if response.status_code == 401:
                challenge = pick_challenge(
                    parse_challenges(response.headers.get_list("www-authenticate"))
                )
                return _EndpointState(base=base, challenge=challenge)
            if response.status_code >= 500:
                raise self._response_error(response, what)
            return _EndpointState(base=base, challenge=None)
        finally:
            response.close()

    def _creds(self, endpoint: Endpoint) -> Credentials | None:
        with self._lock:
            if endpoint.registry in self._creds_cache:
                return self._creds_cache[endpoint.registry]
        found = self._credentials.get(endpoint.registry)
        with self._lock:
            self._creds_cache[endpoint.registry] = found
        return found

    def _authorization(
        self, endpoint: Endpoint, state: _EndpointState, scopes: tuple[str, ...], what: str
    ) -> str | None:
        challenge = state.challenge
        if challenge is None:
            return None
        creds = self._creds(endpoint)
        if challenge.scheme == "basic":
            if creds is None or not creds.username:
                return None
            return creds.basic_header()
        return "Bearer " + self._token(endpoint, challenge, scopes, creds, what)

    def _reauthorize(
        self,
        endpoint: Endpoint,
        challenge: Challenge,
        scopes: tuple[str, ...],
        what: str,
        *,
        stale: str | None,
    ) -> str | None:
        """A fresh Authorization after a 401 (expired token or a scope the registry wants)."""
        creds = self._creds(endpoint)
        if challenge.scheme == "basic":
            if creds is None or not creds.username:
                return None
            return creds.basic_header()
        wanted = merge_scopes(scopes, challenge.scopes)
        key = self._token_key(challenge, wanted, creds)
        if stale is not None and self.tokens.get(key) == stale.removeprefix("Bearer "):
            self.tokens.drop(key)
        return "Bearer " + self._token(endpoint, challenge, wanted, creds, what)

    @staticmethod
    def _token_key(
        challenge: Challenge, scopes: tuple[str, ...], creds: Credentials | None
    ) -> TokenKey:
        identity = ""
        if creds is not None:
            identity = "<token>" if creds.identity_token else creds.username
        return TokenKey(
            realm=challenge.realm, service=challenge.service, scopes=scopes, identity=identity
        )

    def _token(
        self,
        endpoint: Endpoint,
        challenge: Challenge,
        scopes: tuple[str, ...],
        creds: Credentials | None,
        what: str,
    ) -> str:
        key = self._token_key(challenge, scopes, creds)
        cached = self.tokens.get(key)
        if cached is not None:
            return cached
        with self._token_lock:  # parallel layer transfers share one token request
            cached = self.tokens.get(key)
            if cached is not None:
                return cached
            token = self.fetch_token(challenge, scopes, creds, what)
            self.tokens.put(key, token)
            return token.value

    def fetch_token(
        self,
        challenge: Challenge,
        scopes: tuple[str, ...],
        creds: Credentials | None,
        what: str,
    ) -> Token:
        """Ask the challenge's realm for a bearer token (Basic auth or OAuth2 refresh token)."""
        realm = challenge.realm
        try:
            url = httpx.URL(realm)
        except httpx.InvalidURL:
            raise AuthenticationError(
                f"{what}: invalid token realm {clean_text(realm, 120)!r}", reference=what
            ) from None
        if url.scheme not in ("http", "https") or not url.host:
            raise AuthenticationError(
                f"{what}: invalid token realm {clean_text(realm, 120)!r}", reference=what
            )
        self._check_target(url, what)
        headers = {"Accept": "application/json"}
        body: Body = None
        method = "GET"
        if creds is not None and creds.identity_token:
            method = "POST"
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": "pybuild",
                "access_type": "offline",
            }
            if challenge.service:
                form["service"] = challenge.service
            if scopes:
                form["scope"] = " ".join(scopes)
            body = _form(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            authorization = None
        else:
            params: list[tuple[str, str | int | float | bool | None]] = []
            if challenge.service:
                params.append(("service", challenge.service))
            params.extend(("scope", s) for s in scopes)
            if creds is not None and creds.username:
                params.append(("account", creds.username))
            url = url.copy_merge_params(params)
            authorization = creds.basic_header() if creds is not None and creds.username else None
        token_what = f"{what}: token from {_netloc(url)}"

        def attempt() -> httpx.Response:
            return self._follow(
                method,
                url,
                headers=headers,
                authorization=authorization,
                auth_origin=_origin(url),
                body=body,
                what=token_what,
            )

        response = self._with_retries(token_what, _netloc(url), attempt)
        try:
            if response.status_code in (401, 403):
                _, detail = _parse_errors(self._read_some(response, MAX_ERROR_BYTES))
                if creds is not None and not creds.empty:
                    reason = "incorrect username or password"
                else:
                    reason = "authentication required"
                if detail and detail not in (reason, "unauthorized"):
                    reason += f" ({detail})"
                raise AuthenticationError(
                    f"{what}: unauthorized: {reason}",
                    reference=what,
                    status=response.status_code,
                )
            if response.status_code != 200:
                raise self._response_error(response, token_what)
            data = self._read_limited(response, MAX_TOKEN_BYTES, token_what)
        finally:
            response.close()
        try:
            return parse_token_response(data, realm=_netloc(url))
        except AuthenticationError as exc:
            raise AuthenticationError(f"{what}: {exc.message}", reference=what) from exc

    # -- reading bodies and errors -------------------------------------------------------------

    @staticmethod
    def _read_some(response: httpx.Response, limit: int) -> bytes:
        """Up to ``limit`` bytes of a body, ignoring failures (for error messages)."""
        out = bytearray()
        try:
            for chunk in _raw_chunks(response):
                out += chunk
                if len(out) >= limit:
                    break
        except (httpx.TransportError, httpx.StreamError):
            pass
        return bytes(out[:limit])

    def _read_limited(self, response: httpx.Response, limit: int, what: str) -> bytes:
        length = response.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise RegistryError(
                f"{what}: response of {length} bytes exceeds the {limit}-byte limit",
                reference=what,
            )
        out = bytearray()
        try:
            for chunk in _raw_chunks(response):
                out += chunk
                if len(out) > limit:
                    raise RegistryError(
                        f"{what}: response exceeds the {limit}-byte limit", reference=what
                    )
        except httpx.TransportError as exc:
            raise transport_error(exc, what, _netloc(response.url)) from exc
        if length is not None and length.isdigit() and int(length) != len(out):
            raise RegistryError(
                f"{what}: got {len(out)} bytes, the registry announced {length}",
                reference=what,
                temporary=True,
            )
        return bytes(out)

    def _response_error(
        self, response: httpx.Response, what: str, *, not_found: str = "not found"
    ) -> RegistryError:
        status = response.status_code
        codes, detail = _parse_errors(self._read_some(response, MAX_ERROR_BYTES))
        response.close()
        detail = detail or response.reason_phrase.lower() or f"HTTP {status}"
        kind: type[RegistryError] = RegistryError
        temporary = False
        if status == 401:
            kind, message = AuthenticationError, f"unauthorized: {detail} (run 'pybuild login'?)"
        elif status == 403:
            kind, message = AuthenticationError, f"denied: {detail}"
        elif status == 404:
            kind, message = ManifestNotFoundError, f"{not_found}: {detail}"
        elif status == 413:
            message = "the registry refused it as too large (HTTP 413)"
        elif status == 429:
            message, temporary = f"too many requests (HTTP 429): {detail}", True
        elif status >= 500:
            message, temporary = f"registry error (HTTP {status}): {detail}", True
        else:
            message = f"unexpected HTTP {status}: {detail}"
        return kind(
            f"{what}: {message}", reference=what, status=status, codes=codes, temporary=temporary
        )

    # -- manifests -----------------------------------------------------------------------------

    def get_manifest(self, repo: Repository, reference: str) -> FetchedManifest:
        """Fetch a manifest or index by tag or digest, verified (see the module docstring)."""
        what = repo.label
        url = self._url(repo, f"manifests/{reference}", what)
        headers = {"Accept": ", ".join(MANIFEST_TYPES), "Accept-Encoding": "identity"}
        response = self._request("GET", repo, url, what=what, headers=headers)
        try:
            if response.status_code != 200:
                raise self._response_error(response, what)
            content_type = _media_type(response.headers.get("content-type"))
            if content_type in SCHEMA1_TYPES:
                raise UnsupportedManifestError(f"{what}: {_SCHEMA1_MESSAGE}", reference=what)
            data = self._read_limited(response, self.max_manifest_bytes, f"{what}: manifest")
            header_digest = response.headers.get("docker-content-digest", "")
        finally:
            response.close()
        digest = Digest.of_bytes(data)
        if reference.startswith("sha256:") and str(digest) != reference:
            raise RegistryError(
                f"{what}: manifest digest mismatch: requested {reference}, content hashes to"
                f" {digest}",
                reference=what,
            )
        if header_digest.startswith("sha256:") and header_digest != str(digest):
            raise RegistryError(
                f"{what}: manifest digest mismatch: Docker-Content-Digest says"
                f" {clean_text(header_digest, 80)}, content hashes to {digest}",
                reference=what,
            )
        media_type = manifest_media_type(data, content_type, what)
        return FetchedManifest(data=data, media_type=media_type, digest=digest)

    def put_manifest(
        self, repo: Repository, reference: str, data: bytes, media_type: str
    ) -> Digest:
        what = repo.label
        if len(data) > self.max_manifest_bytes:
            raise RegistryError(
                f"{what}: manifest of {len(data)} bytes exceeds the"
                f" {self.max_manifest_bytes}-byte limit",
                reference=what,
            )
        digest = Digest.of_bytes(data)
        url = self._url(repo, f"manifests/{reference}", what)
        response = self._request(
            "PUT",
            repo,
            url,
            what=what,
            headers={"Content-Type": media_type},
            body=data,
        )
        try:
            if response.status_code not in (200, 201, 202):
                raise self._response_error(response, f"{what}: manifest upload")
            header = response.headers.get("docker-content-digest", "")
        finally:
            response.close()
        if header and header != str(digest):
            raise RegistryError(
                f"{what}: the registry stored the manifest as {clean_text(header, 80)},"
                f" expected {digest}",
                reference=what,
            )
        return digest

    # -- blobs ---------------------------------------------------------------------------------

    def blob_size(self, repo: Repository, digest: Digest) -> int | None:
        """HEAD a blob: its size, -1 if the size is not given, or None when it is missing."""
        what = f"{repo.label}: blob {digest}"
        url = self._url(repo, f"blobs/{digest}", what)
        response = self._request("HEAD", repo, url, what=what)
        try:
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise self._response_error(response, what)
            length = response.headers.get("content-length", "")
            return int(length) if length.isdigit() else -1
        finally:
            response.close()

    def fetch_blob(
        self,
        repo: Repository,
        desc: Descriptor,
        new_sink: Callable[[], SinkT],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> SinkT:
        """Stream a blob into a fresh sink, resuming or restarting after failures.

        Returns the sink with exactly ``desc.size`` bytes written; the caller commits it (the
        store's writer verifies size and digest). On error every sink made is aborted.
        """
        what = f"{repo.label}: blob {desc.digest}"
        url = self._url(repo, f"blobs/{desc.digest}", what)
        sink = new_sink()
        offset = 0
        failures = 0
        try:
            while True:
                headers = {"Accept-Encoding": "identity"}
                if offset:
                    headers["Range"] = f"bytes={offset}-"
                response = self._request("GET", repo, url, what=what, headers=headers)
                try:
                    if response.status_code == 206 and offset:
                        if not _range_matches(response, offset, desc.size):
                            raise RegistryError(
                                f"{what}: bad Content-Range"
                                f" {clean_text(response.headers.get('content-range', ''), 60)!r}",
                                reference=what,
                            )
                    elif response.status_code == 200:
                        if offset:
                            sink.abort()
                            sink = new_sink()
                            offset = 0
                        length = response.headers.get("content-length")
                        if length is not None and length.isdigit() and int(length) != desc.size:
                            raise RegistryError(
                                f"{what}: the registry sends {length} bytes for a blob of"
                                f" {desc.size} bytes",
                                reference=what,
                            )
                    else:
                        raise self._response_error(response, what)
                    header = response.headers.get("docker-content-digest", "")
                    if header.startswith("sha256:") and header != str(desc.digest):
                        raise RegistryError(
                            f"{what}: the registry sent {clean_text(header, 80)} instead",
                            reference=what,
                        )
                    for chunk in _raw_chunks(response):
                        sink.write(chunk)
                        offset += len(chunk)
                        if progress is not None:
                            progress(offset)
                    if offset >= desc.size:
                        return sink
                    raise httpx.RemoteProtocolError(
                        f"body ended after {offset} of {desc.size} bytes"
                    )
                except httpx.TransportError as exc:
                    failures += 1
                    if not _retryable(exc) or failures >= self.retry.attempts:
                        raise transport_error(exc, what, _netloc(response.url)) from exc
                    self._sleep(self.retry.delay(failures - 1, None))
                finally:
                    response.close()
        except BaseException:
            sink.abort()
            raise

    def _blob_body(
        self,
        open_blob: Callable[[], BinaryIO],
        *,
        start: int,
        end: int,
        total: int,
        progress: Callable[[int], None] | None,
        what: str,
    ) -> Callable[[], Iterator[bytes]]:
        """Bytes ``[start, end)`` of a local blob; the whole blob's digest is checked (by the
        verifying reader) before its last bytes are handed to the network."""

        def generate() -> Iterator[bytes]:
            with open_blob() as f:
                skip = start
                while skip:
                    got = f.read(min(skip, READ_CHUNK))
                    if not got:
                        raise StoreError(f"{what}: local blob is shorter than {total} bytes")
                    skip -= len(got)
                pos = start
                pending = b""
                while pos < end:
                    chunk = f.read(min(READ_CHUNK, end - pos))
                    if not chunk:
                        raise StoreError(f"{what}: local blob is shorter than {total} bytes")
                    pos += len(chunk)
                    if pending:
                        yield pending
                    pending = chunk
                    if progress is not None:
                        progress(pos)
                if end >= total and f.read(1):
                    raise StoreError(f"{what}: local blob is longer than {total} bytes")
                if pending:
                    yield pending

        return generate

    def upload_blob(
        self,
        repo: Repository,
        desc: Descriptor,
        open_blob: Callable[[], BinaryIO],
        *,
        mount_from: tuple[str, ...] = (),
        progress: Callable[[int], None] | None = None,
    ) -> UploadResult:
        """Make ``desc`` exist in ``repo``: already there, mounted from a sibling, or uploaded."""
        what = f"{repo.label}: blob {desc.digest}"
        failures = 0
        while True:
            try:
                return self._upload_once(
                    repo, desc, open_blob, mount_from=mount_from, progress=progress, what=what
                )
            except RegistryError as exc:
                failures += 1
                if not exc.temporary or failures >= self.retry.attempts:
                    raise
                self._sleep(self.retry.delay(failures - 1, None))

    def _upload_once(
        self,
        repo: Repository,
        desc: Descriptor,
        open_blob: Callable[[], BinaryIO],
        *,
        mount_from: tuple[str, ...],
        progress: Callable[[int], None] | None,
        what: str,
    ) -> UploadResult:
        size = self.blob_size(repo, desc.digest)
        if size is not None and size in (desc.size, -1):
            return UploadResult(outcome=UploadOutcome.EXISTS)
        location: httpx.URL | None = None
        for source in mount_from[:3]:
            if source == repo.path:
                continue
            url = self._url(repo, "blobs/uploads/", what).copy_merge_params(
                {"mount": str(desc.digest), "from": source}
            )
            response = self._request(
                "POST",
                repo,
                url,
                what=what,
                scopes=(repository_scope(source),),
                headers={"Content-Length": "0"},
                retry=False,
            )
            try:
                if response.status_code == 201:
                    return UploadResult(outcome=UploadOutcome.MOUNTED, mounted_from=source)
                if response.status_code != 202:
                    raise self._response_error(response, f"{what}: mount from {source}")
                location = self._location(response, what)
                break
            finally:
                response.close()
        if location is None:
            url = self._url(repo, "blobs/uploads/", what)
            response = self._request(
                "POST", repo, url, what=what, headers={"Content-Length": "0"}, retry=False
            )
            try:
                if response.status_code != 202:
                    raise self._response_error(response, f"{what}: starting the upload")
                location = self._location(response, what)
            finally:
                response.close()
        if desc.size > self.chunk_size:
            location = self._upload_chunks(
                repo, desc, location, open_blob, progress=progress, what=what
            )
            final_body: Body = b""
            final_headers = {"Content-Length": "0"}
        else:
            final_body = self._blob_body(
                open_blob, start=0, end=desc.size, total=desc.size, progress=progress, what=what
            )
            final_headers = {
                "Content-Type": "application/octet-stream",
                "Content-Length": str(desc.size),
            }
        final = location.copy_merge_params({"digest": str(desc.digest)})
        response = self._request(
            "PUT", repo, final, what=what, headers=final_headers, body=final_body, retry=False
        )
        try:
            if response.status_code not in (201, 204):
                raise self._response_error(response, f"{what}: upload")
            header = response.headers.get("docker-content-digest", "")
        finally:
            response.close()
        if header and header != str(desc.digest):
            raise RegistryError(
                f"{what}: the registry stored the blob as {clean_text(header, 80)}",
                reference=what,
            )
        return UploadResult(outcome=UploadOutcome.UPLOADED)

    def _location(self, response: httpx.Response, what: str) -> httpx.URL:
        location = response.headers.get("location")
        if not location:
            raise RegistryError(f"{what}: upload response without a Location", reference=what)
        try:
            url = response.url.join(location)
        except httpx.InvalidURL:
            raise RegistryError(
                f"{what}: invalid upload location {clean_text(location, 120)!r}", reference=what
            ) from None
        self._check_target(url, what)
        return url

    def _upload_chunks(
        self,
        repo: Repository,
        desc: Descriptor,
        location: httpx.URL,
        open_blob: Callable[[], BinaryIO],
        *,
        progress: Callable[[int], None] | None,
        what: str,
    ) -> httpx.URL:
        """PATCH the blob in ``chunk_size`` pieces, resuming from the registry's offset."""
        offset = 0
        failures = 0
        while offset < desc.size:
            end = min(offset + self.chunk_size, desc.size)
            body = self._blob_body(
                open_blob, start=offset, end=end, total=desc.size, progress=progress, what=what
            )
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{end - 1}",
                "Content-Length": str(end - offset),
            }
            try:
                response = self._request(
                    "PATCH", repo, location, what=what, headers=headers, body=body, retry=False
                )
            except RegistryError as exc:
                failures += 1
                if not exc.temporary or failures >= self.retry.attempts:
                    raise
                self._sleep(self.retry.delay(failures - 1, None))
                location, offset = self._upload_status(repo, location, what)
                continue
            try:
                if response.status_code in _RETRY_STATUSES:
                    failures += 1
                    if failures >= self.retry.attempts:
                        raise self._response_error(response, f"{what}: chunk upload")
                    self._sleep(
                        self.retry.delay(
                            failures - 1, retry_after_seconds(response.headers.get("retry-after"))
                        )
                    )
                    location, offset = self._upload_status(repo, location, what)
                    continue
                if response.status_code != 202:
                    raise self._response_error(response, f"{what}: chunk upload")
                location = self._location(response, what)
                offset = end
            finally:
                response.close()
        return location

    def _upload_status(
        self, repo: Repository, location: httpx.URL, what: str
    ) -> tuple[httpx.URL, int]:
        """Where an interrupted upload stands: (location, next offset) from its ``Range``."""
        response = self._request("GET", repo, location, what=what)
        try:
            if response.status_code != 204:
                raise self._response_error(response, f"{what}: upload status")
            where = self._location(response, what) if response.headers.get("location") else location
            received = response.headers.get("range", "0-0")
        finally:
            response.close()
        _, _, last = received.partition("-")
        if not last.isdigit():
            raise RegistryError(
                f"{what}: bad upload Range {clean_text(received, 40)!r}", reference=what
            )
        end = int(last)
        return where, (end + 1 if end > 0 else 0)

    # -- login ---------------------------------------------------------------------------------

    def login(self, registry: str, creds: Credentials) -> None:
        """Check ``creds`` against ``registry`` (raises ``AuthenticationError`` if refused)."""
        what = f"login {registry}"
        endpoint = self.endpoints(registry, push=True)[0]
        state = self._state(endpoint, what)
        challenge = state.challenge
        if challenge is None:
            return
        if challenge.scheme == "basic":
            url = state.base.join("/v2/")

            def attempt() -> httpx.Response:
                return self._follow(
                    "GET",
                    url,
                    headers={},
                    authorization=creds.basic_header(),
                    auth_origin=_origin(state.base),
                    body=None,
                    what=what,
                )

            response = self._with_retries(what, endpoint.host, attempt)
            try:
                if response.status_code in (401, 403):
                    raise AuthenticationError(
                        f"{what}: unauthorized: incorrect username or password",
                        reference=what,
                        status=response.status_code,
                    )
                if response.status_code != 200:
                    raise self._response_error(response, what)
            finally:
                response.close()
            return
        self.fetch_token(challenge, (), creds, what)


def _raw_chunks(response: httpx.Response) -> Iterator[bytes]:
    """The body exactly as sent (no content decoding: a blob's digest is over its bytes)."""
    if response.is_stream_consumed:  # already loaded (in-memory transports)
        yield response.content
        return
    yield from response.iter_raw()


def _form(values: Mapping[str, str]) -> bytes:
    return str(httpx.QueryParams(dict(values))).encode()


def _range_matches(response: httpx.Response, offset: int, size: int) -> bool:
    """``Content-Range: bytes OFFSET-(SIZE-1)/(SIZE|*)``."""
    value = response.headers.get("content-range", "")
    unit, _, rest = value.partition(" ")
    span, _, total = rest.partition("/")
    first, _, last = span.partition("-")
    if unit != "bytes" or not first.isdigit() or not last.isdigit():
        return False
    if total not in ("*", str(size)):
        return False
    return int(first) == offset and int(last) == size - 1
