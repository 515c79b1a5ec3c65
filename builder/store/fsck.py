"""Store consistency check (S8): blob names vs content, references, leftovers.

Read-only unless ``repair``: then corrupt blobs are quarantined to ``corrupt/`` and stale
ingest files removed (a re-pull or rebuild restores what was lost).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from builder.digest import Digest
from builder.errors import StoreError
from builder.oci._json import MAX_JSON_BYTES
from builder.oci.config import MAX_CONFIG_BYTES, ImageConfig
from builder.oci.descriptor import Descriptor
from builder.oci.manifest import Index, Manifest
from builder.oci.mediatype import is_index, is_manifest
from builder.store import paths

if TYPE_CHECKING:
    from builder.store.layout import Store


@dataclass(frozen=True, slots=True, kw_only=True)
class FsckProblem:
    kind: str  # "corrupt" | "missing" | "invalid" | "stale" | "stray"
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FsckReport:
    checked_blobs: int
    checked_images: int
    problems: tuple[FsckProblem, ...] = ()
    repaired: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def corrupt(self) -> tuple[str, ...]:
        return tuple(p.subject for p in self.problems if p.kind == "corrupt")

    def missing(self) -> tuple[str, ...]:
        return tuple(p.subject for p in self.problems if p.kind == "missing")


def _check_ref(
    store: Store, desc: Descriptor, via: str, corrupt: set[Digest], out: list[FsckProblem]
) -> None:
    subject = str(desc.digest)
    if desc.digest in corrupt:
        return  # already reported as corrupt
    if not store.cas.has(desc.digest):
        out.append(FsckProblem(kind="missing", subject=subject, detail=f"referenced by {via}"))
        return
    actual = store.cas.size_of(desc.digest)
    if actual != desc.size:
        out.append(
            FsckProblem(
                kind="invalid",
                subject=subject,
                detail=f"size {actual} but {via} records {desc.size}",
            )
        )
        return
    try:
        if is_manifest(desc.media_type):
            data = store.cas.read_bytes(desc, limit=MAX_JSON_BYTES)
            manifest = Manifest.from_bytes(data, what=f"manifest {desc.digest}")
            _check_ref(store, manifest.config, f"manifest {desc.digest}", corrupt, out)
            for layer in manifest.layers:
                _check_ref(store, layer, f"manifest {desc.digest}", corrupt, out)
            if manifest.config.digest not in corrupt and store.cas.has(manifest.config.digest):
                raw = store.cas.read_bytes(manifest.config, limit=MAX_CONFIG_BYTES)
                config = ImageConfig.from_bytes(raw, what=f"config {manifest.config.digest}")
                if len(config.diff_ids) != len(manifest.layers):
                    out.append(
                        FsckProblem(
                            kind="invalid",
                            subject=subject,
                            detail=f"{len(manifest.layers)} layers but"
                            f" {len(config.diff_ids)} diff_ids in its config",
                        )
                    )
        elif is_index(desc.media_type):
            data = store.cas.read_bytes(desc, limit=MAX_JSON_BYTES)
            for child in Index.from_bytes(data, what=f"index {desc.digest}").manifests:
                _check_ref(store, child, f"index {desc.digest}", corrupt, out)
    except StoreError as exc:
        out.append(FsckProblem(kind="invalid", subject=subject, detail=exc.message))


def _check_containers(store: Store, corrupt: set[Digest], out: list[FsckProblem]) -> None:
    """Each container's image (``containers/<id>/image.json``) must be whole in the store."""
    for path in sorted(paths.containers_dir(store.root).glob(f"*/{paths.CONTAINER_IMAGE}")):
        via = f"container {path.parent.name[:12]}"
        try:
            desc = Descriptor.from_json(json.loads(path.read_bytes()), str(path))
        except (OSError, ValueError, StoreError) as exc:
            detail = exc.message if isinstance(exc, StoreError) else f"unreadable: {exc}"
            out.append(FsckProblem(kind="invalid", subject=str(path), detail=detail))
            continue
        _check_ref(store, desc, via, corrupt, out)


def fsck(store: Store, *, repair: bool = False) -> FsckReport:
    problems: list[FsckProblem] = []
    corrupt: set[Digest] = set()
    with store.lease():
        layout = store.root / paths.OCI_LAYOUT
        try:
            if b'"imageLayoutVersion"' not in layout.read_bytes():
                problems.append(
                    FsckProblem(kind="invalid", subject=paths.OCI_LAYOUT, detail="no version")
                )
        except FileNotFoundError:
            problems.append(
                FsckProblem(kind="missing", subject=paths.OCI_LAYOUT, detail="file absent")
            )
        checked = 0
        for digest, _ in sorted(store.cas.digests(), key=lambda p: p[0].hex):
            checked += 1
            if not store.cas.verify(digest):
                corrupt.add(digest)
                problems.append(
                    FsckProblem(
                        kind="corrupt",
                        subject=str(digest),
                        detail="content does not match its name",
                    )
                )
                if repair:
                    store.cas.quarantine(digest)
        with os.scandir(store.cas.blobs_dir) as it:
            for entry in it:
                try:
                    Digest.from_hex(entry.name)
                except StoreError:
                    problems.append(
                        FsckProblem(kind="stray", subject=entry.path, detail="not a blob name")
                    )
        known = paths.known_entries()
        with os.scandir(store.root) as it:
            for entry in it:
                if entry.name not in known:
                    problems.append(
                        FsckProblem(
                            kind="stray",
                            subject=entry.path,
                            detail="not part of the store layout (builder.store.paths)",
                        )
                    )
        images = 0
        try:
            index = store.read_index()
        except StoreError as exc:
            problems.append(FsckProblem(kind="invalid", subject="index.json", detail=exc.message))
            index = Index()
        for desc in index.manifests:
            images += 1
            _check_ref(store, desc, "index.json", corrupt, problems)
        for record in store.cache.records():
            for root in record.roots:
                _check_ref(store, root, f"cache record {record.key}", corrupt, problems)
        _check_containers(store, corrupt, problems)
        for path in store.cas.stale_ingest(grace_seconds=0):
            problems.append(
                FsckProblem(kind="stale", subject=str(path), detail="abandoned ingest file")
            )
            if repair:
                path.unlink(missing_ok=True)
    return FsckReport(
        checked_blobs=checked,
        checked_images=images,
        problems=tuple(problems),
        repaired=repair,
    )
