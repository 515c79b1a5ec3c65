"""Image references, parsed and normalised like Docker's ``distribution/reference``.

``busybox`` -> ``docker.io/library/busybox:latest``; ``localhost:5000/x`` keeps its host;
``name:tag@sha256:...`` keeps both. Error messages use Docker's wording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from builder.errors import InvalidReferenceError

DEFAULT_DOMAIN: Final = "docker.io"
LEGACY_DEFAULT_DOMAIN: Final = "index.docker.io"
OFFICIAL_PREFIX: Final = "library/"
DEFAULT_TAG: Final = "latest"
NAME_TOTAL_LENGTH_MAX: Final = 255
_INPUT_MAX: Final = 4096  # bound regex work on hostile input; far above any valid reference

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = _ALNUM + r"(?:" + _SEPARATOR + _ALNUM + r")*"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = r"(?:" + _DOMAIN_NAME + r"|" + _IPV6 + r")"
_DOMAIN_AND_PORT = _HOST + r"(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_NAME = r"(?:" + _DOMAIN_AND_PORT + r"/)?" + _REMOTE_NAME

_REFERENCE_RE: Final = re.compile(
    r"(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?", re.ASCII
)
_ANCHORED_NAME_RE: Final = re.compile(
    r"(?:(" + _DOMAIN_AND_PORT + r")/)?(" + _REMOTE_NAME + r")", re.ASCII
)
_TAG_RE: Final = re.compile(_TAG, re.ASCII)
_IDENTIFIER_RE: Final = re.compile(r"[a-f0-9]{64}")
_SHA256_RE: Final = re.compile(r"sha256:[a-f0-9]{64}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """A normalised reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """Repository name with domain: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def familiar_name(self) -> str:
        """The short repository name Docker shows: ``busybox``, ``user/app``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_PREFIX) and "/" not in path[len(OFFICIAL_PREFIX) :]:
            path = path[len(OFFICIAL_PREFIX) :]
        return path

    @property
    def familiar(self) -> str:
        """``busybox:latest``-style string for display."""
        out = self.familiar_name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_tag(self, tag: str) -> Reference:
        if _TAG_RE.fullmatch(tag) is None:
            raise InvalidReferenceError("invalid tag format")
        return Reference(domain=self.domain, path=self.path, tag=tag, digest=self.digest)

    def with_default_tag(self) -> Reference:
        """Add ``:latest`` when there is neither tag nor digest (TagNameOnly)."""
        if self.tag or self.digest:
            return self
        return Reference(domain=self.domain, path=self.path, tag=DEFAULT_TAG)

    def docker_ref(self) -> Reference:
        """Tag *or* digest: with both, the tag is dropped (ParseDockerRef)."""
        if self.tag and self.digest:
            return Reference(domain=self.domain, path=self.path, digest=self.digest)
        return self.with_default_tag()


def _split_docker_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep:
        return DEFAULT_DOMAIN, OFFICIAL_PREFIX + name
    if first == "localhost":
        domain, remote = first, rest
    elif first == LEGACY_DEFAULT_DOMAIN:
        domain, remote = DEFAULT_DOMAIN, rest
    elif "." in first or ":" in first or first.lower() != first:
        domain, remote = first, rest
    else:
        domain, remote = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and "/" not in remote:
        remote = OFFICIAL_PREFIX + remote
    return domain, remote


def _parse_canonical(text: str) -> Reference:
    """``reference.Parse`` over an already domain-qualified string."""
    if not text:
        raise InvalidReferenceError(
            "invalid reference format: repository name must have at least one component"
        )
    m = _REFERENCE_RE.fullmatch(text)
    if m is None:
        lower = text.lower()
        if lower != text and _REFERENCE_RE.fullmatch(lower) is not None:
            raise InvalidReferenceError(
                "invalid reference format: repository name must be lowercase"
            )
        raise InvalidReferenceError("invalid reference format")
    name, tag, digest = m.group(1), m.group(2) or "", m.group(3) or ""
    nm = _ANCHORED_NAME_RE.fullmatch(name)
    if nm is None or nm.group(1) is None:
        raise InvalidReferenceError("invalid reference format")
    domain, path = nm.group(1), nm.group(2)
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReferenceError(
            f"invalid reference format: repository name must not be more than"
            f" {NAME_TOTAL_LENGTH_MAX} characters"
        )
    if digest and _SHA256_RE.fullmatch(digest) is None:
        algorithm = digest.partition(":")[0]
        if algorithm != "sha256":
            raise InvalidReferenceError(f"unsupported digest algorithm: {_shown(digest[:80])}")
        raise InvalidReferenceError(f"invalid checksum digest format: {_shown(digest[:80])}")
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def _shown(text: str) -> str:
    """``text`` for an error message: control characters escaped, so the error stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def parse_normalized(text: str) -> Reference:
    """``ParseNormalizedNamed``: familiar names become fully qualified (no default tag)."""
    if len(text) > _INPUT_MAX:
        raise InvalidReferenceError("invalid reference format")
    if _IDENTIFIER_RE.fullmatch(text):
        raise InvalidReferenceError(
            f"invalid repository name ({_shown(text)}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_docker_domain(text)
    remote = remainder.partition(":")[0] if ":" in remainder else remainder
    remote = remote.partition("@")[0]
    if remote.lower() != remote:
        raise InvalidReferenceError(
            f"invalid reference format: repository name ({_shown(remote)}) must be lowercase"
        )
    return _parse_canonical(f"{domain}/{remainder}")


def parse(text: str) -> Reference:
    """Parse and normalise, adding ``:latest`` when there is no tag and no digest."""
    return parse_normalized(text).with_default_tag()


def is_digest(text: str) -> bool:
    return _SHA256_RE.fullmatch(text) is not None
