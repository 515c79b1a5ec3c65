"""Image manifest and image index documents (OCI and Docker schema 2), to and from bytes.

Parsing rejects ambiguous documents (CVE-2021-41190): a manifest carrying ``manifests`` or an
index carrying ``config``/``layers`` is refused, as umoci and containerd do.
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.digest import Digest
from builder.errors import StoreError
from builder.oci._json import (
    MAX_JSON_BYTES,
    Extra,
    canonical_json,
    extra_of,
    get_int,
    get_list,
    get_str,
    get_str_map,
    load_object,
    put_extra,
)
from builder.oci.descriptor import Descriptor, Platform
from builder.oci.mediatype import MediaType, is_index, is_manifest

MAX_MANIFEST_BYTES = MAX_JSON_BYTES


def _subject(d: dict[str, object], what: str) -> Descriptor | None:
    value = d.get("subject")
    return None if value is None else Descriptor.from_json(value, f"{what} subject")


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    config: Descriptor
    layers: tuple[Descriptor, ...] = ()
    media_type: str = MediaType.OCI_MANIFEST
    schema_version: int = 2
    annotations: tuple[tuple[str, str], ...] = ()
    subject: Descriptor | None = None
    artifact_type: str = ""
    extra: Extra = ()

    _KNOWN = frozenset(
        {
            "schemaVersion",
            "mediaType",
            "config",
            "layers",
            "annotations",
            "subject",
            "artifactType",
        }
    )

    @classmethod
    def from_bytes(cls, data: bytes, *, what: str = "manifest") -> Manifest:
        d = load_object(data, what, limit=MAX_MANIFEST_BYTES)
        if "manifests" in d:
            raise StoreError(f"{what}: malicious or ambiguous manifest: has a 'manifests' field")
        version = get_int(d, "schemaVersion", what)
        if version != 2:
            raise StoreError(f"{what}: unsupported schemaVersion {version}")
        media_type = get_str(d, "mediaType", what, default=MediaType.OCI_MANIFEST)
        if not is_manifest(media_type):
            raise StoreError(f"{what}: unexpected mediaType {media_type!r} for an image manifest")
        if "config" not in d:
            raise StoreError(f"{what}: missing 'config'")
        return cls(
            config=Descriptor.from_json(d["config"], f"{what} config"),
            layers=tuple(
                Descriptor.from_json(v, f"{what} layer {i}")
                for i, v in enumerate(get_list(d, "layers", what))
            ),
            media_type=media_type,
            schema_version=version,
            annotations=get_str_map(d, "annotations", what),
            subject=_subject(d, what),
            artifact_type=get_str(d, "artifactType", what),
            extra=extra_of(d, cls._KNOWN),
        )

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "schemaVersion": self.schema_version,
            "mediaType": self.media_type,
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.subject is not None:
            out["subject"] = self.subject.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        put_extra(out, self.extra)
        return out

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())


@dataclass(frozen=True, slots=True, kw_only=True)
class Index:
    manifests: tuple[Descriptor, ...] = ()
    media_type: str = MediaType.OCI_INDEX
    schema_version: int = 2
    annotations: tuple[tuple[str, str], ...] = ()
    subject: Descriptor | None = None
    artifact_type: str = ""
    extra: Extra = ()

    _KNOWN = frozenset(
        {"schemaVersion", "mediaType", "manifests", "annotations", "subject", "artifactType"}
    )

    @classmethod
    def from_bytes(cls, data: bytes, *, what: str = "index") -> Index:
        d = load_object(data, what, limit=MAX_MANIFEST_BYTES)
        for forbidden in ("config", "layers"):
            if forbidden in d:
                raise StoreError(f"{what}: malicious or ambiguous index: has a {forbidden!r} field")
        version = get_int(d, "schemaVersion", what)
        if version != 2:
            raise StoreError(f"{what}: unsupported schemaVersion {version}")
        media_type = get_str(d, "mediaType", what, default=MediaType.OCI_INDEX)
        if not is_index(media_type):
            raise StoreError(f"{what}: unexpected mediaType {media_type!r} for an image index")
        return cls(
            manifests=tuple(
                Descriptor.from_json(v, f"{what} entry {i}")
                for i, v in enumerate(get_list(d, "manifests", what))
            ),
            media_type=media_type,
            schema_version=version,
            annotations=get_str_map(d, "annotations", what),
            subject=_subject(d, what),
            artifact_type=get_str(d, "artifactType", what),
            extra=extra_of(d, cls._KNOWN),
        )

    def for_platform(self, want: Platform) -> Descriptor | None:
        """The image manifest for ``want``, as a pull picks it: of the entries that match,
        one whose variant is the same, else one with a platform, else one without."""
        candidates = [
            d
            for d in self.manifests
            if is_manifest(d.media_type) and (d.platform is None or want.matches(d.platform))
        ]
        exact = [
            d for d in candidates if d.platform is not None and d.platform.variant == want.variant
        ]
        chosen = exact or [d for d in candidates if d.platform is not None] or candidates
        return chosen[0] if chosen else None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "schemaVersion": self.schema_version,
            "mediaType": self.media_type,
            "manifests": [m.to_json() for m in self.manifests],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.subject is not None:
            out["subject"] = self.subject.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        put_extra(out, self.extra)
        return out

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())


def descriptor_for(data: bytes, media_type: str) -> Descriptor:
    """The descriptor of an in-memory document."""
    return Descriptor(media_type=media_type, digest=Digest.of_bytes(data), size=len(data))
