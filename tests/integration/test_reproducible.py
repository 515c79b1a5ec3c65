"""Reproducible images: one multi-stage Dockerfile (RUN, COPY, ADD of a file and of a tar
archive) built on two empty stores with ``--source-date-epoch`` gives the same manifest digest,
byte for byte: layer blobs (tar headers, order, gzip header), config (created, history) and
manifest. The two contexts hold the same files written at different times, both after the epoch
(a fresh checkout): file times are clamped to the epoch, as BuildKit's ``rewrite-timestamp`` and
buildah's ``--source-date-epoch`` do; an older time is kept (a file's time is part of the image)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from enginekit import Builder, copy_store

from builder.store import Store

pytestmark = pytest.mark.integration

EPOCH = 1_700_000_000
SOURCE_DATE = "2023-11-14T22:13:20.000000Z"

DOCKERFILE = """\
FROM busybox:latest AS build
WORKDIR /src
COPY app.txt ./
ADD vendor.tar /src/vendor/
RUN mkdir -p /out && cat app.txt vendor/lib/a.txt > /out/app && ln -s app /out/link \\
    && mkdir /out/empty && touch /out/empty/.keep
RUN echo second > /out/second

FROM busybox:latest
ENV MODE=release
COPY --from=build /out /opt/app
ADD notes.txt /etc/notes.txt
ADD vendor.tar /opt/vendor/
RUN echo "$MODE" > /etc/mode && chmod 600 /etc/mode
CMD ["cat", "/opt/app/app"]
"""


def _vendor_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mtime in (
            ("lib/a.txt", b"vendored a\n", 1_600_000_000),
            ("lib/b.txt", b"vendored b\n", 1_800_000_000),  # after the epoch: clamped
            ("bin/tool", b"#!/bin/sh\necho tool\n", 1_500_000_000),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), mtime, 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _build(builder: Builder, name: str, mtime: int | None) -> tuple[str, str]:
    """(image ID, manifest digest) of the Dockerfile built in context ``name``."""
    files = {"app.txt": "the app\n", "notes.txt": "notes\n", "vendor.tar": _vendor_tar()}
    context = builder.context(files, name=name)
    for path in context.rglob("*") if mtime is not None else ():
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    built = builder.build(
        DOCKERFILE, context_dir=context, args=["--source-date-epoch", str(EPOCH)], tag="repro:1"
    )
    record = Store.open(builder.store_root).resolve("repro:1")
    assert str(record.config_digest) == built.image_id
    return built.image_id, str(record.descriptor.digest)


def test_multistage_build_is_byte_identical_on_two_empty_stores(
    busybox_seed: Path, tmp_path: Path
) -> None:
    one = Builder(
        store_root=copy_store(busybox_seed, tmp_path / "store-a"),
        workdir=tmp_path,
        busybox_history=1,
    )
    two = Builder(
        store_root=copy_store(busybox_seed, tmp_path / "store-b"),
        workdir=tmp_path,
        busybox_history=1,
    )
    first = _build(one, "ctx-a", 1_750_000_000)
    second = _build(two, "ctx-b", None)  # now
    assert first == second

    store = Store.open(one.store_root)
    image = store.load_image(store.resolve("repro:1").descriptor)
    seed = Store.open(busybox_seed)
    base = seed.load_image(seed.resolve("busybox:latest").descriptor)
    built = image.config.history[len(base.config.history) :]  # this Dockerfile's final stage
    assert [h.created_by.split()[0] for h in built] == ["ENV", "COPY", "ADD", "ADD", "RUN", "CMD"]
    assert {h.created for h in built} == {SOURCE_DATE}
    assert image.config.created == SOURCE_DATE
