"""Descriptor and Platform: the typed pointers of OCI documents."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

from builder.digest import Digest
from builder.errors import StoreError
from builder.oci._json import (
    Extra,
    as_object,
    extra_of,
    get_int,
    get_str,
    get_str_map,
    get_str_tuple,
    put_extra,
)

_ARCH_ALIASES: Final = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "armhf": "arm",
    "armel": "arm",
    "i386": "386",
    "i686": "386",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Platform:
    architecture: str
    os: str = "linux"
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()
    extra: Extra = ()

    _KNOWN = frozenset({"architecture", "os", "variant", "os.version", "os.features"})

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]`` as ``--platform`` takes it (``linux/arm64/v8``)."""
        parts = text.strip().lower().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise StoreError(f"invalid platform {text!r}: want os/arch[/variant]")
        arch = _ARCH_ALIASES.get(parts[1], parts[1])
        variant = parts[2] if len(parts) == 3 else ""
        if arch == "arm64" and variant == "v8":
            variant = ""
        return cls(os=parts[0], architecture=arch, variant=variant)

    @classmethod
    def host(cls) -> Platform:
        machine = os.uname().machine.lower()  # what platform.machine() reads, minus its import
        return cls(architecture=_ARCH_ALIASES.get(machine, machine), os="linux")

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base

    def matches(self, other: Platform) -> bool:
        """True when ``other`` (from an index) satisfies this requested platform."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        return not self.variant or self.variant == other.variant

    @classmethod
    def from_json(cls, value: object, what: str) -> Platform:
        d = as_object(value, what)
        return cls(
            architecture=get_str(d, "architecture", what),
            os=get_str(d, "os", what),
            variant=get_str(d, "variant", what),
            os_version=get_str(d, "os.version", what),
            os_features=get_str_tuple(d, "os.features", what),
            extra=extra_of(d, cls._KNOWN),
        )

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        put_extra(out, self.extra)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Descriptor:
    """Media type + digest + size (+ optional annotations, platform, urls) of a blob."""

    media_type: str
    digest: Digest
    size: int
    annotations: tuple[tuple[str, str], ...] = ()
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    artifact_type: str = ""
    extra: Extra = ()

    _KNOWN = frozenset(
        {"mediaType", "digest", "size", "annotations", "platform", "urls", "artifactType"}
    )

    def __post_init__(self) -> None:
        if self.size < 0:
            raise StoreError(f"descriptor {self.digest}: negative size {self.size}")

    def annotation(self, key: str) -> str | None:
        for k, v in self.annotations:
            if k == key:
                return v
        return None

    def with_annotations(self, annotations: tuple[tuple[str, str], ...]) -> Descriptor:
        return Descriptor(
            media_type=self.media_type,
            digest=self.digest,
            size=self.size,
            annotations=tuple(sorted(dict(annotations).items())),
            platform=self.platform,
            urls=self.urls,
            artifact_type=self.artifact_type,
            extra=self.extra,
        )

    @classmethod
    def from_json(cls, value: object, what: str) -> Descriptor:
        d = as_object(value, what)
        digest_text = get_str(d, "digest", what)
        try:
            digest = Digest.parse(digest_text)
        except StoreError as exc:
            raise StoreError(f"{what}: {exc.message}") from None
        size = get_int(d, "size", what)
        if size < 0:
            raise StoreError(f"{what}: descriptor {digest} has negative size {size}")
        platform = d.get("platform")
        return cls(
            media_type=get_str(d, "mediaType", what),
            digest=digest,
            size=size,
            annotations=get_str_map(d, "annotations", what),
            platform=None if platform is None else Platform.from_json(platform, what),
            urls=get_str_tuple(d, "urls", what),
            artifact_type=get_str(d, "artifactType", what),
            extra=extra_of(d, cls._KNOWN),
        )

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.urls:
            out["urls"] = list(self.urls)
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        put_extra(out, self.extra)
        return out
