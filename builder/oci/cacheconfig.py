"""BuildKit's cache manifest (``application/vnd.buildkit.cacheconfig.v0``), as pybuild writes it.

A cache export is an OCI image index whose ``manifests`` list the layer blobs (each descriptor
annotated with ``containerd.io/uncompressed``, the diff_id, and ``buildkit/createdat``), the
last entry being the cache config blob::

    {"layers": [{"blob": "sha256:...", "parent": -1,
                 "annotations": {"mediaType": ..., "diffID": ..., "size": N, "createdAt": ...}}],
     "records": [{"digest": "sha256:<cache key>", "layers": [{"layer": 0, "createdAt": ...}]}]}

The field names and containers are BuildKit's (``cache/remotecache/v1/spec.go``); what differs
is the meaning of a record's ``digest``: it is pybuild's cache key of a step (see
``builder.plan.cachekey``), which already chains the parent step's key, so a record has no
``inputs`` and its result is the one layer that step made (``parent`` is always -1). BuildKit and
pybuild therefore read each other's manifests but find no hits in them. A mounts export
(``mounts=true``) adds records whose ``digest`` is the ``sha256`` of ``mount:<cache mount id>``
with the mount's content as a layer, annotated ``pybuild/cache-mount`` (the id; in the config
under the layer's ``additional`` annotations, BuildKit's field for extra ones).

A ``COPY --from=<stage>`` step is exported twice: under its content key and under its *source
key* (the op and the source stage's chain key, as BuildKit keys it), a record that also holds
``"pybuild/chain"``, the chain key of the step it stands for, so that an importer hits it without
the stage's files.

Reading also accepts BuildKit's ``image-manifest=true`` form: an image manifest whose config is
the cache config and whose layers are the blobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from builder.digest import Digest
from builder.errors import StoreError
from builder.oci._json import (
    as_object,
    canonical_json,
    get_int,
    get_list,
    get_str,
    load_object,
)
from builder.oci.descriptor import Descriptor
from builder.oci.manifest import Index
from builder.oci.mediatype import MediaType, is_index, is_manifest

CACHE_CONFIG_MEDIA_TYPE: Final = "application/vnd.buildkit.cacheconfig.v0"
UNCOMPRESSED: Final = "containerd.io/uncompressed"
CREATED_AT: Final = "buildkit/createdat"
CACHE_MOUNT: Final = "pybuild/cache-mount"
CHAIN: Final = "pybuild/chain"
MAX_CONFIG_BYTES: Final = 64 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class CachedLayer:
    """One cache record: the step with cache key ``key`` made ``blob`` (content ``diff_id``)."""

    key: Digest
    blob: Descriptor  # media type, digest, size (no annotations)
    diff_id: Digest
    created: str
    mount: str = ""  # a cache mount's id, for a mounts export
    chain: Digest | None = None  # an alias record: the chain key of the step it stands for


def mount_key(mount_id: str) -> Digest:
    """The record key of a cache mount's content in a mounts export."""
    return Digest.of_bytes(f"mount:{mount_id}".encode())


def _plain(desc: Descriptor) -> Descriptor:
    return Descriptor(media_type=desc.media_type, digest=desc.digest, size=desc.size)


def encode(entries: tuple[CachedLayer, ...]) -> tuple[bytes, bytes]:
    """(cache config blob, index manifest) for ``entries``; a blob is listed once."""
    layers: list[dict[str, object]] = []
    descriptors: list[Descriptor] = []
    index_of: dict[Digest, int] = {}
    records: list[dict[str, object]] = []
    for entry in entries:
        if entry.blob.digest not in index_of:
            index_of[entry.blob.digest] = len(layers)
            notes = [(UNCOMPRESSED, str(entry.diff_id)), (CREATED_AT, entry.created)]
            annotations: dict[str, object] = {
                "mediaType": entry.blob.media_type,
                "diffID": str(entry.diff_id),
                "size": entry.blob.size,
                "createdAt": entry.created,
            }
            if entry.mount:
                notes.append((CACHE_MOUNT, entry.mount))
                annotations["additional"] = {CACHE_MOUNT: entry.mount}
            descriptors.append(_plain(entry.blob).with_annotations(tuple(notes)))
            layers.append(
                {"blob": str(entry.blob.digest), "parent": -1, "annotations": annotations}
            )
        record: dict[str, object] = {
            "digest": str(entry.key),
            "layers": [{"layer": index_of[entry.blob.digest], "createdAt": entry.created}],
        }
        if entry.chain is not None:
            record[CHAIN] = str(entry.chain)
        records.append(record)
    config = canonical_json({"layers": layers, "records": records})
    config_desc = Descriptor(
        media_type=CACHE_CONFIG_MEDIA_TYPE, digest=Digest.of_bytes(config), size=len(config)
    )
    index = Index(manifests=(*descriptors, config_desc), media_type=MediaType.OCI_INDEX)
    return config, index.to_bytes()


def config_descriptor(manifest: bytes, what: str) -> Descriptor:
    """The cache config blob a cache manifest (index or image-manifest form) names."""
    d = load_object(manifest, what)
    media_type = get_str(d, "mediaType", what)
    if is_index(media_type) or "manifests" in d:
        index = Index.from_bytes(manifest, what=what)
        found = [m for m in index.manifests if m.media_type == CACHE_CONFIG_MEDIA_TYPE]
    elif is_manifest(media_type) or "config" in d:
        found = [Descriptor.from_json(d.get("config"), f"{what} config")]
    else:
        found = []
    if len(found) != 1 or found[0].media_type != CACHE_CONFIG_MEDIA_TYPE:
        raise StoreError(f"{what}: not a cache manifest (no {CACHE_CONFIG_MEDIA_TYPE} config)")
    return found[0]


def decode(config: bytes, what: str) -> dict[Digest, CachedLayer]:
    """Cache key -> layer of the records of a cache config blob (BuildKit's chained records,
    which name a layer with a parent, are not pybuild's and are left out)."""
    d = load_object(config, what, limit=MAX_CONFIG_BYTES)
    layers: list[tuple[Descriptor, Digest, str, int, str]] = []
    for i, value in enumerate(get_list(d, "layers", what)):
        item = as_object(value, f"{what} layer {i}")
        notes = as_object(item.get("annotations", {}), f"{what} layer {i} annotations")
        label = f"{what} layer {i}"
        blob = Descriptor(
            media_type=get_str(notes, "mediaType", label),
            digest=Digest.parse(get_str(item, "blob", label)),
            size=get_int(notes, "size", label),
        )
        diff = get_str(notes, "diffID", label)
        if not diff:
            raise StoreError(f"{label}: no diffID")
        parent = get_int(item, "parent", label, default=-1)
        extra = as_object(notes.get("additional", {}), f"{label} additional")
        mount = get_str(extra, CACHE_MOUNT, label)
        created = get_str(notes, "createdAt", label)
        layers.append((blob, Digest.parse(diff), created, parent, mount))
    out: dict[Digest, CachedLayer] = {}
    for i, value in enumerate(get_list(d, "records", what)):
        label = f"{what} record {i}"
        item = as_object(value, label)
        results = get_list(item, "layers", label) if "layers" in item else []
        if len(results) != 1:
            continue
        result = as_object(results[0], label)
        n = get_int(result, "layer", label)
        if not 0 <= n < len(layers):
            raise StoreError(f"{label}: layer {n} out of range")
        blob, diff_id, created, parent, mount = layers[n]
        if parent != -1:
            continue
        key = Digest.parse(get_str(item, "digest", label))
        chain = get_str(item, CHAIN, label)
        out[key] = CachedLayer(
            chain=Digest.parse(chain) if chain else None,
            key=key,
            blob=blob,
            diff_id=diff_id,
            created=get_str(result, "createdAt", label) or created,
            mount=mount,
        )
    return out


__all__ = [
    "CACHE_CONFIG_MEDIA_TYPE",
    "CACHE_MOUNT",
    "CachedLayer",
    "config_descriptor",
    "decode",
    "encode",
    "mount_key",
]
