"""Registry authentication data: ``WWW-Authenticate`` challenges, scopes, credentials, tokens.

Pure data and parsing (no HTTP: the client does the requests). The flow it supports is the
distribution token protocol: a registry answers 401 with ``Bearer realm=...,service=...,scope=...``;
the client asks the realm for a token for its scopes (anonymously or with Basic credentials, or
with an OAuth2 refresh token) and caches it per scope until it expires. ``Basic`` challenges are
answered with the credentials directly.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from builder.errors import AuthenticationError

MAX_TOKEN_RESPONSE_BYTES: Final = 1 << 20
DEFAULT_TOKEN_SECONDS: Final = 60  # distribution token spec: default and minimum lifetime
_EXPIRY_MARGIN: Final = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """A username and password, or an identity (refresh) token. Secrets never show in repr."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identity_token)

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: lower-cased scheme plus its parameters."""

    scheme: str
    params: tuple[tuple[str, str], ...] = ()

    def param(self, key: str) -> str:
        key = key.lower()
        for k, v in self.params:
            if k == key:
                return v
        return ""

    @property
    def realm(self) -> str:
        return self.param("realm")

    @property
    def service(self) -> str:
        return self.param("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(s for s in self.param("scope").split(" ") if s)


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def _token(text: str, i: int) -> tuple[str, int]:
    start = i
    while i < len(text) and text[i] not in ' \t,="':
        i += 1
    return text[start:i], i


def _quoted(text: str, i: int) -> tuple[str, int]:
    """``text[i]`` is the opening quote; returns the unescaped value and the index after it."""
    out: list[str] = []
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    return "".join(out), i


def parse_challenges(headers: Iterable[str]) -> tuple[Challenge, ...]:
    """Parse ``WWW-Authenticate`` header values (RFC 7235) into challenges, in order.

    Tolerant: malformed parts are skipped rather than raised, as a client must not fail on a
    challenge it does not use.
    """
    out: list[Challenge] = []
    for header in headers:
        text = header[:8192]
        i = 0
        scheme = ""
        params: list[tuple[str, str]] = []
        while i < len(text):
            i = _skip_space(text, i)
            if i < len(text) and text[i] == ",":
                i += 1
                continue
            word, j = _token(text, i)
            if not word:
                i = j + 1  # stray quote or '=': skip a character
                continue
            k = _skip_space(text, j)
            if k < len(text) and text[k] == "=" and scheme:
                k = _skip_space(text, k + 1)
                if k < len(text) and text[k] == '"':
                    value, i = _quoted(text, k)
                else:
                    value, i = _token(text, k)
                    # token68 padding such as "abc==" belongs to the value
                    while i < len(text) and text[i] == "=":
                        value += "="
                        i += 1
                params.append((word.lower(), value))
                continue
            if scheme:
                out.append(Challenge(scheme=scheme, params=tuple(params)))
            scheme, params, i = word.lower(), [], j
        if scheme:
            out.append(Challenge(scheme=scheme, params=tuple(params)))
    return tuple(out)


def pick_challenge(challenges: tuple[Challenge, ...]) -> Challenge | None:
    """Bearer wins over Basic (Docker's order); other schemes are not supported."""
    for wanted in ("bearer", "basic"):
        for ch in challenges:
            if ch.scheme == wanted:
                return ch
    return None


def repository_scope(path: str, *, push: bool = False) -> str:
    return f"repository:{path}:{'pull,push' if push else 'pull'}"


def merge_scopes(*groups: Iterable[str]) -> tuple[str, ...]:
    """Union of scope strings, actions of the same resource merged, in a stable order."""
    resources: dict[str, list[str]] = {}
    for group in groups:
        for scope in group:
            resource, sep, actions = scope.rpartition(":")
            if not sep or not resource:
                resources.setdefault(scope, [])
                continue
            have = resources.setdefault(resource, [])
            for action in actions.split(","):
                if action and action not in have:
                    have.append(action)
    out: list[str] = []
    for resource, names in sorted(resources.items()):
        out.append(f"{resource}:{','.join(sorted(names))}" if names else resource)
    return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    value: str = field(repr=False)
    expires_in: float
    refresh_token: str = field(default="", repr=False)


def parse_token_response(data: bytes, *, realm: str) -> Token:
    """The token server's JSON: ``token`` or ``access_token``, ``expires_in`` seconds."""
    if len(data) > MAX_TOKEN_RESPONSE_BYTES:
        raise AuthenticationError(f"token server {realm}: response too large")
    try:
        doc = json.loads(data)
    except ValueError:
        raise AuthenticationError(f"token server {realm}: response is not JSON") from None
    if not isinstance(doc, dict):
        raise AuthenticationError(f"token server {realm}: response is not a JSON object")
    value = doc.get("token") or doc.get("access_token")
    if not isinstance(value, str) or not value:
        raise AuthenticationError(f"token server {realm}: response has no token")
    expires = doc.get("expires_in")
    seconds = float(expires) if isinstance(expires, int | float) and expires > 0 else 0.0
    refresh = doc.get("refresh_token")
    return Token(
        value=value,
        expires_in=max(seconds, float(DEFAULT_TOKEN_SECONDS)),
        refresh_token=refresh if isinstance(refresh, str) else "",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenKey:
    """What a cached token is good for: realm, service, scopes, and whose credentials."""

    realm: str
    service: str
    scopes: tuple[str, ...]
    identity: str


class TokenCache:
    """Bearer tokens per ``TokenKey`` until shortly before they expire (thread-safe)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[TokenKey, tuple[str, float]] = {}

    def get(self, key: TokenKey) -> str | None:
        with self._lock:
            hit = self._tokens.get(key)
            if hit is None:
                return None
            value, deadline = hit
            if self._clock() >= deadline:
                del self._tokens[key]
                return None
            return value

    def put(self, key: TokenKey, token: Token) -> None:
        deadline = self._clock() + max(1.0, token.expires_in - _EXPIRY_MARGIN)
        with self._lock:
            self._tokens[key] = (token.value, deadline)

    def drop(self, key: TokenKey) -> None:
        with self._lock:
            self._tokens.pop(key, None)
