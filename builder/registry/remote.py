"""Pull images from registries into the store and push them back out.

``pull(store, ref, client=..., platform=...) -> ImageRecord`` is what the build engine calls for
``FROM`` when an image is missing; ``pull_image`` returns more detail for ``pybuild pull``.
Blobs stream straight into the store, which verifies size and digest before anything is
committed; the manifest and then the tag are written last, under the store's shared lease, so a
failed pull leaves only verified blobs and no reference to a half-pulled image.

``push(store, ref, client=...)`` uploads layers (a few at a time), then the config, then the
manifest; layers the registry already has are skipped (HEAD) and layers the image also has in a
sibling repository of the same registry are mounted instead of uploaded.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from builder.digest import Digest
from builder.errors import (
    DigestMismatchError,
    InvalidReferenceError,
    ManifestNotFoundError,
    RegistryError,
    StoreError,
)
from builder.oci.config import MAX_CONFIG_BYTES, ImageConfig
from builder.oci.descriptor import Descriptor, Platform
from builder.oci.image import Image
from builder.oci.manifest import Index, Manifest
from builder.oci.mediatype import MediaType, is_config, is_index, is_manifest
from builder.reference import Reference, parse
from builder.registry.client import (
    FetchedManifest,
    RegistryClient,
    Repository,
    UploadOutcome,
    UploadResult,
)
from builder.registry.progress import LayerProgress, ProgressSink, Status, discard
from builder.store.layout import ImageRecord, Store

T = TypeVar("T")
_FOREIGN = frozenset(
    {
        MediaType.DOCKER_FOREIGN_LAYER_GZIP,
        MediaType.OCI_LAYER_NONDIST,
        MediaType.OCI_LAYER_NONDIST_GZIP,
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)


class _Cancelled(Exception):
    """Raised inside a worker when a sibling transfer failed: stop early."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PullResult:
    reference: Reference
    record: ImageRecord
    digest: Digest  # what the registry calls the reference (an index digest for multi-arch)
    up_to_date: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class PushResult:
    reference: Reference
    digest: Digest
    size: int


def _reference(ref: str | Reference) -> Reference:
    parsed = parse(ref) if isinstance(ref, str) else ref.with_default_tag()
    return parsed.docker_ref()


def _label(ref: Reference) -> str:
    return ref.familiar


def _as_registry_error(exc: StoreError, label: str) -> RegistryError:
    return RegistryError(f"{label}: {exc.message}", reference=label)


def _run_parallel(jobs: Sequence[Callable[[threading.Event], T]], workers: int) -> list[T]:
    """Run ``jobs`` on a bounded pool; the first failure cancels the rest and is raised."""
    if not jobs:
        return []
    cancel = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs))))
    futures: list[Future[T]] = []
    try:
        futures = [pool.submit(job, cancel) for job in jobs]
        wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in futures if f.done() and f.exception() is not None]
        if failed:
            cancel.set()
            wait(futures)
            errors = [f.exception() for f in futures if f.exception() is not None]
            real = [e for e in errors if not isinstance(e, _Cancelled)]
            raise (real or errors)[0]  # type: ignore[misc]
        return [f.result() for f in futures]
    finally:
        cancel.set()
        pool.shutdown(wait=True)


# -- pull ---------------------------------------------------------------------------------------


def _find_local(store: Store, ref: Reference) -> ImageRecord | None:
    """A stored image this reference already names (digest references are immutable)."""
    name = str(ref)
    want = Digest.parse(ref.digest) if ref.digest else None
    for record in store.list_images():
        if name in record.names or (want is not None and record.digest == want):
            return record
    return None


def _complete(store: Store, desc: Descriptor) -> bool:
    """Are the manifest, its config and all its layers in the store?"""
    if not is_manifest(desc.media_type) or not store.has_blob(desc.digest):
        return False
    try:
        manifest = store.read_manifest(desc)
    except StoreError:
        return False
    return all(store.has_blob(d.digest) for d in (manifest.config, *manifest.layers))


def _fetch_manifest(
    client: RegistryClient, ref: Reference, label: str
) -> tuple[Repository, FetchedManifest]:
    """The top-level manifest, from the first mirror that has it, else the registry."""
    failures: list[RegistryError] = []
    endpoints = client.endpoints(ref.domain)
    for endpoint in endpoints:
        repo = Repository(endpoint=endpoint, path=ref.path, label=label)
        try:
            return repo, client.get_manifest(repo, ref.digest or ref.tag)
        except RegistryError as exc:
            if not endpoint.mirror:
                raise
            failures.append(exc)
    raise failures[-1]  # pragma: no cover - the registry itself always comes last


def _pick_child(index: Index, want: Platform, label: str) -> Descriptor:
    chosen = index.for_platform(want)
    if chosen is None:
        raise ManifestNotFoundError(
            f"{label}: no matching manifest for {want} in the manifest list entries",
            reference=label,
        )
    return chosen


def _select(
    client: RegistryClient,
    repo: Repository,
    top: FetchedManifest,
    want: Platform,
    label: str,
) -> tuple[Descriptor, bytes]:
    """The platform manifest's descriptor and bytes (following an index when needed)."""
    if not is_index(top.media_type):
        return top.descriptor, top.data
    try:
        index = Index.from_bytes(top.data, what=f"{label}: index {top.digest}")
    except StoreError as exc:
        raise _as_registry_error(exc, label) from exc
    child = _pick_child(index, want, label)
    if child.size > client.max_manifest_bytes:
        raise RegistryError(
            f"{label}: manifest {child.digest} of {child.size} bytes exceeds the"
            f" {client.max_manifest_bytes}-byte limit",
            reference=label,
        )
    fetched = client.get_manifest(repo, str(child.digest))
    if len(fetched.data) != child.size:
        raise RegistryError(
            f"{label}: manifest {child.digest} is {len(fetched.data)} bytes, its index says"
            f" {child.size}",
            reference=label,
        )
    if fetched.media_type != child.media_type:
        raise RegistryError(
            f"{label}: manifest {child.digest} is {fetched.media_type}, its index says"
            f" {child.media_type}",
            reference=label,
        )
    return fetched.descriptor, fetched.data


def _download(
    client: RegistryClient,
    store: Store,
    repo: Repository,
    desc: Descriptor,
    *,
    label: str,
    progress: ProgressSink,
    cancel: threading.Event,
    report: bool,
) -> bool:
    """Fetch one blob into the store unless present; True when it was downloaded."""

    def emit(status: Status, current: int = 0) -> None:
        if report:
            progress(
                LayerProgress(digest=desc.digest, status=status, current=current, total=desc.size)
            )

    def on_bytes(done: int) -> None:
        if cancel.is_set():
            raise _Cancelled
        emit(Status.DOWNLOADING, done)

    with store.blob_lock(desc.digest) as present:
        if present:
            emit(Status.ALREADY_EXISTS)
            return False
        if cancel.is_set():
            raise _Cancelled
        try:
            writer = client.fetch_blob(
                repo,
                desc,
                lambda: store.blob_writer(media_type=desc.media_type, expected=desc),
                progress=on_bytes,
            )
            writer.commit()
        except DigestMismatchError as exc:
            raise RegistryError(
                f"{label}: {exc.message} (the registry sent wrong content)", reference=label
            ) from exc
    emit(Status.PULL_COMPLETE, desc.size)
    return True


def download_blob(client: RegistryClient, store: Store, repo: Repository, desc: Descriptor) -> bool:
    """Fetch one blob of ``repo`` into the store unless present; True when it was fetched."""
    return _download(
        client,
        store,
        repo,
        desc,
        label=repo.label,
        progress=discard,
        cancel=threading.Event(),
        report=False,
    )


def pull_image(
    store: Store,
    ref: str | Reference,
    *,
    client: RegistryClient,
    platform: Platform | None = None,
    progress: ProgressSink = discard,
) -> PullResult:
    """Pull ``ref`` for ``platform`` (default: the host's) into ``store``."""
    reference = _reference(ref)
    label = _label(reference)
    if reference.digest:
        local = _find_local(store, reference)
        fits = local is not None and (
            platform is None or (local.platform is not None and platform.matches(local.platform))
        )
        if local is not None and fits and _complete(store, local.descriptor):
            return PullResult(
                reference=reference,
                record=local,
                digest=Digest.parse(reference.digest),
                up_to_date=True,
            )
    want = platform or Platform.host()
    repo, top = _fetch_manifest(client, reference, label)
    with store.lease():
        desc, data = _select(client, repo, top, want, label)
        try:
            manifest = Manifest.from_bytes(data, what=f"{label}: manifest {desc.digest}")
        except StoreError as exc:
            raise _as_registry_error(exc, label) from exc
        if not is_config(manifest.config.media_type):
            raise RegistryError(
                f"{label}: not a container image (config media type"
                f" {manifest.config.media_type!r})",
                reference=label,
            )
        if manifest.config.size > MAX_CONFIG_BYTES:
            raise RegistryError(
                f"{label}: image config of {manifest.config.size} bytes exceeds the"
                f" {MAX_CONFIG_BYTES}-byte limit",
                reference=label,
            )
        name = str(reference)
        existing = _find_local(store, reference)
        up_to_date = (
            existing is not None and existing.digest == desc.digest and _complete(store, desc)
        )
        if not up_to_date:
            never = threading.Event()
            _download(
                client,
                store,
                repo,
                manifest.config,
                label=label,
                progress=progress,
                cancel=never,
                report=False,
            )
            try:
                config = ImageConfig.from_bytes(
                    store.read_blob(manifest.config, limit=MAX_CONFIG_BYTES),
                    what=f"{label}: config {manifest.config.digest}",
                )
            except StoreError as exc:
                raise _as_registry_error(exc, label) from exc
            _check_config(config, manifest, platform, label)
            for layer in manifest.layers:  # one line per layer, in manifest order
                progress(
                    LayerProgress(digest=layer.digest, status=Status.PULLING, total=layer.size)
                )
            jobs = [
                _layer_job(client, store, repo, layer, label=label, progress=progress)
                for layer in manifest.layers
            ]
            _run_parallel(jobs, client.concurrency)
            store.put_bytes(data, expected=desc)
            store.add_index_entry(desc, (name,))
    record = _find_local(store, reference)
    if record is None or record.digest != desc.digest:  # pragma: no cover - store invariant
        raise StoreError(f"{label}: pulled image {desc.digest} is not in the store index")
    return PullResult(reference=reference, record=record, digest=top.digest, up_to_date=up_to_date)


def _layer_job(
    client: RegistryClient,
    store: Store,
    repo: Repository,
    layer: Descriptor,
    *,
    label: str,
    progress: ProgressSink,
) -> Callable[[threading.Event], bool]:
    def job(cancel: threading.Event) -> bool:
        return _download(
            client, store, repo, layer, label=label, progress=progress, cancel=cancel, report=True
        )

    return job


def _check_config(
    config: ImageConfig, manifest: Manifest, platform: Platform | None, label: str
) -> None:
    if len(config.diff_ids) != len(manifest.layers):
        raise RegistryError(
            f"{label}: config has {len(config.diff_ids)} diff_ids for"
            f" {len(manifest.layers)} layers",
            reference=label,
        )
    if platform is None:
        return
    actual = Platform(architecture=config.architecture, os=config.os, variant=config.variant)
    if not platform.matches(actual):
        raise RegistryError(
            f"{label}: image was found but does not match the specified platform:"
            f" wanted {platform}, actual: {actual}",
            reference=label,
        )


def pull(
    store: Store,
    ref: str | Reference,
    *,
    client: RegistryClient | None = None,
    platform: Platform | None = None,
    progress: ProgressSink = discard,
) -> ImageRecord:
    """Pull ``ref`` into ``store`` and return its record (the build engine's ``FROM``).

    The composition root should pass its one ``client`` (shared pools and token cache);
    without one, a client configured from the environment is made for this call.
    """
    if client is None:
        with RegistryClient.from_environment() as own:
            return pull_image(store, ref, client=own, platform=platform, progress=progress).record
    return pull_image(store, ref, client=client, platform=platform, progress=progress).record


# -- push ---------------------------------------------------------------------------------------


def _mount_sources(record: ImageRecord, ref: Reference, extra: tuple[str, ...]) -> tuple[str, ...]:
    """Sibling repositories of the same registry that may already hold the blobs."""
    out: list[str] = []
    for candidate in (*extra, *record.names):
        try:
            other = parse(candidate)
        except InvalidReferenceError:
            continue
        if other.domain == ref.domain and other.path != ref.path and other.path not in out:
            out.append(other.path)
    return tuple(out)


def _upload_job(
    client: RegistryClient,
    repo: Repository,
    desc: Descriptor,
    opener: Callable[[], BinaryIO],
    *,
    mounts: tuple[str, ...],
    progress: ProgressSink,
    report: bool,
) -> Callable[[threading.Event], UploadResult]:
    def emit(status: Status, current: int = 0, detail: str = "") -> None:
        if report:
            progress(
                LayerProgress(
                    digest=desc.digest,
                    status=status,
                    current=current,
                    total=desc.size,
                    detail=detail,
                )
            )

    def job(cancel: threading.Event) -> UploadResult:
        if cancel.is_set():
            raise _Cancelled

        def on_bytes(done: int) -> None:
            if cancel.is_set():
                raise _Cancelled
            emit(Status.PUSHING, done)

        try:
            result = client.upload_blob(
                repo,
                desc,
                opener,
                mount_from=mounts,
                progress=on_bytes,
            )
        except StoreError as exc:
            raise RegistryError(f"{repo.label}: {exc.message}", reference=repo.label) from exc
        match result.outcome:
            case UploadOutcome.EXISTS:
                emit(Status.LAYER_EXISTS)
            case UploadOutcome.MOUNTED:
                emit(Status.MOUNTED, detail=result.mounted_from)
            case UploadOutcome.UPLOADED:
                emit(Status.PUSHED, desc.size)
        return result

    return job


def _push_manifest(
    client: RegistryClient,
    store: Store,
    repo: Repository,
    desc: Descriptor,
    *,
    mounts: tuple[str, ...],
    progress: ProgressSink,
) -> None:
    """Upload the blobs of one image manifest (not the manifest itself)."""
    try:
        image: Image = store.load_image(desc)
    except StoreError as exc:
        raise RegistryError(f"{repo.label}: {exc.message}", reference=repo.label) from exc
    jobs: list[Callable[[threading.Event], UploadResult]] = []
    for layer in image.layers:
        ldesc = layer.descriptor
        if ldesc.media_type in _FOREIGN and ldesc.urls:
            continue  # foreign layers stay where their URLs point (Docker does the same)
        progress(LayerProgress(digest=ldesc.digest, status=Status.PREPARING, total=ldesc.size))
        jobs.append(
            _upload_job(
                client,
                repo,
                ldesc,
                layer.open_compressed,
                mounts=mounts,
                progress=progress,
                report=True,
            )
        )
    raw_config = image.raw_config
    jobs.append(
        _upload_job(
            client,
            repo,
            image.manifest.config,
            lambda: io.BytesIO(raw_config),
            mounts=mounts,
            progress=progress,
            report=False,
        )
    )
    _run_parallel(jobs, client.concurrency)


def push_image(
    store: Store,
    ref: str | Reference,
    *,
    client: RegistryClient,
    progress: ProgressSink = discard,
    mount_from: tuple[str, ...] = (),
) -> PushResult:
    """Push the stored image named ``ref`` to the registry ``ref`` names."""
    reference = _reference(ref)
    label = _label(reference)
    try:
        record = store.resolve(str(reference))
    except StoreError:
        raise RegistryError(
            f"An image does not exist locally with the tag: {reference.familiar_name}",
            reference=label,
        ) from None
    repo = client.repository(reference.domain, reference.path, label=label, push=True)
    mounts = _mount_sources(record, reference, mount_from)
    desc = record.descriptor
    with store.lease():
        try:
            data = store.read_blob(desc, limit=client.max_manifest_bytes)
        except StoreError as exc:
            raise _as_registry_error(exc, label) from exc
        if is_index(desc.media_type):
            try:
                index = Index.from_bytes(data, what=f"{label}: index {desc.digest}")
            except StoreError as exc:
                raise _as_registry_error(exc, label) from exc
            for child in index.manifests:
                if not is_manifest(child.media_type) or not store.has_blob(child.digest):
                    raise RegistryError(
                        f"{label}: index entry {child.digest} is not in the store",
                        reference=label,
                    )
                _push_manifest(client, store, repo, child, mounts=mounts, progress=progress)
                child_data = store.read_blob(child, limit=client.max_manifest_bytes)
                client.put_manifest(repo, str(child.digest), child_data, child.media_type)
        else:
            _push_manifest(client, store, repo, desc, mounts=mounts, progress=progress)
        digest = client.put_manifest(repo, reference.digest or reference.tag, data, desc.media_type)
    if digest != desc.digest:  # pragma: no cover - bytes come from a verified blob
        raise RegistryError(f"{label}: pushed manifest hashes to {digest}, expected {desc.digest}")
    return PushResult(reference=reference, digest=digest, size=len(data))


def push(
    store: Store,
    ref: str | Reference,
    *,
    client: RegistryClient | None = None,
    progress: ProgressSink = discard,
    mount_from: tuple[str, ...] = (),
) -> PushResult:
    """Push ``ref`` from ``store`` (library entry point; ``client`` as for ``pull``)."""
    if client is None:
        with RegistryClient.from_environment() as own:
            return push_image(store, ref, client=own, progress=progress, mount_from=mount_from)
    return push_image(store, ref, client=client, progress=progress, mount_from=mount_from)
