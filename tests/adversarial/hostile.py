"""Hostile base images for the layer-extraction cases: an OCI archive (``pybuild load``) whose
layers are busybox's followed by hand-made tar bytes, so that ``FROM evil`` plus a RUN makes
pybuild extract them. Imported as ``hostile`` (pytest puts this directory on ``sys.path``)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from advkit import Result, run_pybuild

from builder.store import Store

TAR = "application/vnd.oci.image.layer.v1.tar"
TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True, slots=True, kw_only=True)
class Blob:
    data: bytes
    media_type: str
    diff_id: str  # "sha256:<hex>" of the uncompressed tar

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


def plain(tar: bytes) -> Blob:
    """An uncompressed layer: its diff_id is its digest."""
    return Blob(data=tar, media_type=TAR, diff_id="sha256:" + hashlib.sha256(tar).hexdigest())


def busybox_blobs(store_root: Path) -> list[Blob]:
    store = Store.open(store_root)
    image = store.load_image(store.resolve("busybox:latest").descriptor)
    blobs = []
    for layer in image.layers:
        with layer.open_compressed() as stream:
            data = stream.read()
        blobs.append(
            Blob(data=data, media_type=layer.descriptor.media_type, diff_id=str(layer.diff_id))
        )
    return blobs


def oci_archive(layers: list[Blob], name: str) -> bytes:
    """An OCI image-layout tar naming one linux/amd64 image ``name``."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [b.diff_id for b in layers]},
        }
    ).encode()
    config_blob = Blob(
        data=config, media_type="application/vnd.oci.image.config.v1+json", diff_id=""
    )
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_blob.descriptor(),
            "layers": [b.descriptor() for b in layers],
        }
    ).encode()
    manifest_blob = Blob(
        data=manifest, media_type="application/vnd.oci.image.manifest.v1+json", diff_id=""
    )
    ref = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name}
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{**manifest_blob.descriptor(), "annotations": ref}],
        }
    ).encode()
    members = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": index}
    for blob in (*layers, config_blob, manifest_blob):
        members["blobs/sha256/" + blob.digest.removeprefix("sha256:")] = blob.data
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def load_hostile(store_root: Path, workdir: Path, layers: list[Blob]) -> tuple[str, Result]:
    """``pybuild load`` an image of busybox plus ``layers``; returns its name and the result."""
    name = f"evil{uuid.uuid4().hex[:10]}:latest"
    archive = workdir / f"{name.partition(':')[0]}.tar"
    archive.write_bytes(oci_archive([*busybox_blobs(store_root), *layers], name))
    result = run_pybuild(["load", "-i", str(archive)], store_root=store_root, cwd=workdir)
    return name, result
