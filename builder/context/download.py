"""One bounded HTTP(S) download, the transfer under tarball contexts and ``ADD <URL>``.

The rules (SECURITY.md 1d and I3):

- at most ``MAX_REDIRECTS`` (10) redirects, each to ``http`` or ``https`` only, never from
  ``https`` down to ``http``;
- credentials (URL user info) are sent to the URL's own origin only, never after a redirect to
  another scheme, host or port;
- the body is capped (``DownloadLimits.max_bytes``, also ``PYBUILD_MAX_DOWNLOAD``) and the whole
  transfer has a deadline besides the per-read timeout, so a server that trickles one byte a
  second cannot hold a build;
- every failure is one ``ContextError`` line naming the URL (password redacted) and the cause.

The body is written to a file the caller opened and hashed while it streams.
"""

from __future__ import annotations

import base64
import os
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from builder.digest import Digest, Hasher
from builder.errors import ContextError
from builder.urls import redact

if TYPE_CHECKING:
    import httpx

MAX_REDIRECTS: Final = 10
DEFAULT_MAX_BYTES: Final = 4 << 30


@dataclass(frozen=True, slots=True, kw_only=True)
class DownloadLimits:
    """Caps on one download; ``from_environment`` reads ``PYBUILD_MAX_DOWNLOAD`` (bytes)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    total_timeout: float = 3600.0  # seconds for the whole transfer
    read_timeout: float = 60.0  # seconds without a byte
    connect_timeout: float = 30.0

    @classmethod
    def from_environment(cls) -> DownloadLimits:
        text = os.environ.get("PYBUILD_MAX_DOWNLOAD", "")
        timeout = os.environ.get("PYBUILD_DOWNLOAD_TIMEOUT", "")
        limits = cls()
        if text:
            if not text.isdigit():
                raise ContextError(f"PYBUILD_MAX_DOWNLOAD={text!r}: want a number of bytes")
            limits = cls(max_bytes=int(text))
        if timeout:
            try:
                seconds = float(timeout)
            except ValueError:
                raise ContextError(
                    f"PYBUILD_DOWNLOAD_TIMEOUT={timeout!r}: want a number of seconds"
                ) from None
            limits = cls(
                max_bytes=limits.max_bytes,
                total_timeout=seconds,
                read_timeout=min(limits.read_timeout, seconds),
            )
        return limits


@dataclass(frozen=True, slots=True, kw_only=True)
class Downloaded:
    """What the server said about the body just written."""

    url: str  # the URL asked for
    final_url: str  # after redirects
    size: int
    digest: Digest
    last_modified: str | None
    content_disposition: str | None
    content_type: str | None


class Sink(Protocol):
    """Where the body goes: a binary file, or a content-store blob writer."""

    def write(self, data: bytes, /) -> int: ...


def download(
    url: str,
    out: Sink,
    *,
    limits: DownloadLimits | None = None,
    what: str = "",
    transport: httpx.BaseTransport | None = None,
) -> Downloaded:
    """GET ``url`` into ``out`` under ``limits``; ``what`` prefixes error messages."""
    # lazy: httpx (~100 ms) loads only for URL contexts
    import httpx

    limits = limits or DownloadLimits()
    label = f"{what} {redact(url)}".strip()
    deadline = time.monotonic() + limits.total_timeout

    def fail(cause: str) -> ContextError:
        return ContextError(f"{label}: {cause}")

    try:
        current = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise fail(f"invalid URL: {exc}") from None
    if current.scheme not in ("http", "https"):
        raise fail(f"unsupported URL scheme {current.scheme!r}")
    origin = _origin(current)
    auth = _auth(current)
    current = current.copy_with(username=None, password=None)
    timeout = httpx.Timeout(
        connect=limits.connect_timeout,
        read=limits.read_timeout,
        write=limits.read_timeout,
        pool=limits.connect_timeout,
    )
    with httpx.Client(
        timeout=timeout, follow_redirects=False, transport=transport, trust_env=True
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            headers = {"User-Agent": "pybuild", "Accept-Encoding": "identity"}
            if auth is not None and _origin(current) == origin:
                headers["Authorization"] = auth
            try:
                with client.stream("GET", current, headers=headers) as resp:
                    if resp.is_redirect:
                        current = _next_hop(current, resp, label)
                        continue
                    status = f"invalid response status {resp.status_code} {resp.reason_phrase}"
                    if resp.status_code in {401, 403}:
                        raise fail(f"authentication required ({status})")
                    if resp.status_code >= 400 or resp.status_code < 200:
                        raise fail(status)
                    declared = resp.headers.get("Content-Length", "")
                    if declared.isdigit() and int(declared) > limits.max_bytes:
                        raise fail(f"too large: {declared} bytes (limit {limits.max_bytes})")
                    hasher = Hasher()
                    for chunk in resp.iter_bytes():  # as it arrives, to check the deadline
                        if hasher.size + len(chunk) > limits.max_bytes:
                            raise fail(f"too large: more than {limits.max_bytes} bytes")
                        if time.monotonic() > deadline:
                            raise fail(
                                f"timed out: the download took longer than"
                                f" {limits.total_timeout:g}s"
                            )
                        hasher.update(chunk)
                        out.write(chunk)
                    if time.monotonic() > deadline:
                        raise fail(
                            f"timed out: the download took longer than {limits.total_timeout:g}s"
                        )
                    return Downloaded(
                        url=url,
                        final_url=redact(str(current)),
                        size=hasher.size,
                        digest=hasher.digest(),
                        last_modified=resp.headers.get("Last-Modified"),
                        content_disposition=resp.headers.get("Content-Disposition"),
                        content_type=resp.headers.get("Content-Type"),
                    )
            except httpx.TimeoutException as exc:
                raise fail(f"timed out {_phase(exc)}") from None
            except httpx.ConnectError as exc:
                raise fail(f"unreachable host {current.host}: {_reason(exc)}") from None
            except httpx.HTTPError as exc:
                raise fail(f"download failed: {_reason(exc)}") from None
            except OSError as exc:
                raise fail(f"cannot write the download: {exc.strerror or exc}") from None
    raise fail(f"stopped after {MAX_REDIRECTS} redirects")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def _auth(url: httpx.URL) -> str | None:
    if not url.username and not url.password:
        return None

    user = urllib.parse.unquote(url.username)
    password = urllib.parse.unquote(url.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _next_hop(current: httpx.URL, resp: httpx.Response, label: str) -> httpx.URL:
    # lazy: httpx (~100 ms) loads only for URL contexts
    import httpx

    def fail(cause: str) -> ContextError:
        return ContextError(f"{label}: {cause}")

    location = resp.headers.get("Location")
    if not location:
        raise fail(f"redirect ({resp.status_code}) without a Location")
    try:
        target = current.join(location)
    except (httpx.InvalidURL, TypeError) as exc:
        raise fail(f"invalid redirect location {location!r}: {exc}") from None
    if target.scheme not in ("http", "https"):
        raise fail(f"redirect to a {target.scheme or 'relative'} URL refused: {location!r}")
    if current.scheme == "https" and target.scheme == "http":
        raise fail(f"redirect from https to http refused: {redact(str(target))}")
    if target.username or target.password:
        target = target.copy_with(username=None, password=None)
    return target


def _phase(exc: Exception) -> str:
    # lazy: httpx (~100 ms) loads only for URL contexts
    import httpx

    match exc:
        case httpx.ConnectTimeout():
            return "connecting"
        case httpx.ReadTimeout():
            return "waiting for data"
        case httpx.WriteTimeout():
            return "sending the request"
        case _:
            return "waiting for a connection"


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]
