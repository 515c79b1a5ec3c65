"""Helpers for the image-command tests: run ``pybuild`` in-process, make small images.

Imported by the test modules beside it (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.cli import main
from builder.oci import mutate
from builder.oci.image import EMPTY, BytesLayer, ImageValue
from builder.oci.layer import LayerEntry, write_layer
from builder.oci.types import ContainerConfig, History, Platform
from builder.store import ImageRecord, Store
from builder.store.archive import import_rootfs

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    rc: int
    out: str
    err: str


def pybuild(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> Result:
    """``pybuild ARGV... --root ROOT`` in-process; stdout/stderr captured."""
    capsys.readouterr()
    rc = main([*argv, "--root", str(root)])
    captured = capsys.readouterr()
    return Result(rc=rc, out=captured.out, err=captured.err)


def rootfs_tar(files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    """A plain rootfs tarball: ``files`` (0755 if the name is under bin/) and symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(n).parent) for n in [*files, *(symlinks or {})]} - {"."})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.mtime = T0
            tar.addfile(info)
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            info.mtime = T0
            tar.addfile(info, io.BytesIO(data))
        for name, target in sorted((symlinks or {}).items()):
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            info.mtime = T0
            tar.addfile(info)
    return buf.getvalue()


def imported(
    root: Path,
    files: dict[str, bytes],
    *tags: str,
    created: int = T0,
    config: ContainerConfig | None = None,
) -> ImageRecord:
    """``pybuild import`` through the library: a one-layer image with a fixed creation time."""
    store = Store.open(root)
    return import_rootfs(
        store,
        io.BytesIO(rootfs_tar(files)),
        tags=tags,
        created=created,
        platform=Platform(architecture="amd64", os="linux"),
        config=config,
        comment="Imported from -",
    )


def layer(files: dict[str, bytes]) -> BytesLayer:
    out = io.BytesIO()
    result = write_layer(
        [LayerEntry(path=p, data=d) for p, d in sorted(files.items())], out, source_date_epoch=0
    )
    return BytesLayer(data=out.getvalue(), diff_id=result.diff_id)


def built(root: Path, steps: list[tuple[str, dict[str, bytes] | None]], *tags: str) -> ImageValue:
    """An image made step by step: ``(created_by, files)``; ``files=None`` is an empty layer."""
    img = EMPTY
    for i, (created_by, files) in enumerate(steps):
        when = f"2023-11-14T22:{13 + i:02d}:20Z"
        if files is None:
            img = mutate.with_history(img, History(created=when, created_by=created_by))
        else:
            img = mutate.append_layer(
                img, layer(files), history=History(created=when, created_by=created_by)
            )
    img = mutate.with_created(img, f"2023-11-14T22:{13 + len(steps):02d}:20Z")
    Store.open(root).write_image(img, tags)
    return img
