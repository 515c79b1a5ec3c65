"""``--cache-to ...,mounts=true`` (beyond BuildKit, moby/buildkit#1474): cache-mount contents
travel with the cache and seed an empty store's cache mounts, so a RUN that executes on
another machine finds the package cache the first machine filled."""

from __future__ import annotations

from pathlib import Path

import pytest
from enginekit import Builder, copy_store

pytestmark = pytest.mark.integration

FILL = """\
FROM busybox:latest
RUN --mount=type=cache,id=pkgs,target=/var/cache/pkgs \\
    echo "fetched-$RANDOM$RANDOM" > /var/cache/pkgs/data && cp /var/cache/pkgs/data /filled
"""
# another step on the same cache id: it runs on the second store (no cache hit) and reads it
USE = """\
FROM busybox:latest
RUN --mount=type=cache,id=pkgs,target=/cache cat /cache/data > /seen || echo empty > /seen
"""


def test_cache_mount_contents_seed_an_empty_store(busybox_seed: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache-dir"
    one = Builder(
        store_root=copy_store(busybox_seed, tmp_path / "a"), workdir=tmp_path, busybox_history=1
    )
    filled = one.build(
        FILL, {}, args=["--cache-to", f"type=local,dest={cache},mode=max,mounts=true"]
    )
    data = filled.files["/filled"].text
    assert data.startswith("fetched-")

    two = Builder(
        store_root=copy_store(busybox_seed, tmp_path / "b"), workdir=tmp_path, busybox_history=1
    )
    seen = two.build(USE, {}, args=["--cache-from", f"type=local,src={cache}"], context_name="c2")
    assert seen.files["/seen"].text == data

    # without mounts=true the cache mount is not exported: a third store starts empty
    plain = tmp_path / "plain-cache"
    one.build(FILL, {}, args=["--cache-to", f"type=local,dest={plain}"], context_name="c3")
    three = Builder(
        store_root=copy_store(busybox_seed, tmp_path / "c"), workdir=tmp_path, busybox_history=1
    )
    empty = three.build(
        USE, {}, args=["--cache-from", f"type=local,src={plain}"], context_name="c4"
    )
    assert empty.files["/seen"].text == "empty\n"
