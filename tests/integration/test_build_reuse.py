"""Incremental COPY: a rebuild after one file changed hard-links every unchanged file from the
previous build's layer directory (``builder.engine.reuse``) and still writes the same layer."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from enginekit import Builder, Built

from builder.digest import Digest
from builder.store import Store

pytestmark = pytest.mark.integration

N = 60
DOCKERFILE = "FROM busybox\nCOPY src/ /app/\nRUN cat /app/d1/f001 > /out\n"


def _files(nonce: str) -> dict[str, str]:
    return {f"src/d{i % 4}/f{i:03d}": f"{nonce} file {i}\n" for i in range(N)}


def _layer_dir(built: Built, index: int) -> Path:
    """``/app`` in the extracted directory of the image's layer ``index`` (its chain's)."""
    diff_ids = built.image.config.diff_ids
    store = Store.open(built.store_root)
    path = store.snapshot_dir(tuple(Digest.parse(str(d)) for d in diff_ids[: index + 1]))
    assert path.is_dir(), path
    return path / "app"


def _inode(path: Path) -> int:
    return os.lstat(path).st_ino


def test_changed_file_is_copied_the_rest_linked_and_the_layer_is_the_same(pb: Builder) -> None:
    nonce = uuid.uuid4().hex
    ctx = pb.context(_files(nonce))
    first = pb.build(DOCKERFILE, context_dir=ctx)
    copy_index = len(first.image.config.diff_ids) - 2  # COPY, then RUN
    (ctx / "src/d2/f002").write_text("changed\n")
    second = pb.build(DOCKERFILE, context_dir=ctx)
    old, new = _layer_dir(first, copy_index), _layer_dir(second, copy_index)
    assert old != new
    assert _inode(old / "d2/f002") != _inode(new / "d2/f002")
    assert (new / "d2/f002").read_text() == "changed\n"
    assert (old / "d2/f002").read_text() == f"{nonce} file 2\n"  # the old layer is untouched
    linked = [f"d{i % 4}/f{i:03d}" for i in range(N) if i != 2]
    assert all(_inode(old / rel) == _inode(new / rel) for rel in linked)
    # the image is what a build from scratch gives: same layer, same files
    clean = pb.build(DOCKERFILE, context_dir=ctx, args=["--no-cache"])
    assert second.image.config.diff_ids[copy_index] == clean.image.config.diff_ids[copy_index]
    assert second.files["/app/d2/f002"].text == "changed\n"
    assert second.files["/app/d1/f001"].text == f"{nonce} file 1\n"


def test_a_changed_instruction_copies_everything_again(pb: Builder) -> None:
    ctx = pb.context(_files(uuid.uuid4().hex))
    first = pb.build(DOCKERFILE, context_dir=ctx)
    copy_index = len(first.image.config.diff_ids) - 2
    (ctx / "src/d2/f002").write_text("changed\n")
    chmod = DOCKERFILE.replace("COPY src/", "COPY --chmod=600 src/")
    second = pb.build(chmod, context_dir=ctx)
    old, new = _layer_dir(first, copy_index), _layer_dir(second, copy_index)
    assert all(
        _inode(old / f"d{i % 4}/f{i:03d}") != _inode(new / f"d{i % 4}/f{i:03d}") for i in range(N)
    )
    assert second.files["/app/d0/f000"].mode == 0o600


def test_files_linked_in_the_old_layer_stay_separate_in_the_new(pb: Builder) -> None:
    """Two sources that were hard links of each other, then are not: the new layer must not
    link them (each old inode is reused at most once)."""
    nonce = uuid.uuid4().hex
    ctx = pb.context(_files(nonce))
    os.link(ctx / "src/d0/f000", ctx / "src/d0/twin")
    first = pb.build(DOCKERFILE, context_dir=ctx)
    copy_index = len(first.image.config.diff_ids) - 2
    (ctx / "src/d0/twin").unlink()
    (ctx / "src/d0/twin").write_text(f"{nonce} file 0\n")  # same content, own inode
    os.utime(ctx / "src/d0/twin", ns=(os.stat(ctx / "src/d0/f000").st_mtime_ns,) * 2)
    (ctx / "src/d2/f002").write_text("changed\n")
    second = pb.build(DOCKERFILE, context_dir=ctx)
    new = _layer_dir(second, copy_index)
    assert _inode(new / "d0/f000") != _inode(new / "d0/twin")
    clean = pb.build(DOCKERFILE, context_dir=ctx, args=["--no-cache"])
    assert second.image.config.diff_ids[copy_index] == clean.image.config.diff_ids[copy_index]
