"""``--build-context`` values: parsing as buildx does, local checks, the layer entries of a
directory context (its ``.dockerignore``, owners) and OCI layouts read back."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from builder.engine.named import (
    NamedContext,
    _entries,
    _from_layout,
    check_contexts,
    parse_build_context,
)
from builder.errors import ContextError
from builder.oci.archive_write import ArchiveFormat, ArchiveImage, write_archive
from builder.oci.descriptor import Platform
from builder.oci.image import empty_image
from builder.oci.layer_apply import apply_layer
from builder.oci.mutate import append_layer
from builder.store import Store

AMD64 = Platform(os="linux", architecture="amd64")


def test_parse_normalises_the_name() -> None:
    ctx = parse_build_context("docker.io/library/alpine:latest=docker-image://busybox")
    assert ctx == NamedContext(
        name="docker.io/library/alpine:latest", key="alpine", value="docker-image://busybox"
    )
    assert parse_build_context("a=b=c").value == "b=c"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("novalue", "invalid context value: novalue, expected key=value"),
        ("=x", "invalid context value: =x, expected key=value"),
        ("Bad=x", "invalid context name Bad: invalid reference format"),
        ("a=", "invalid context value: a=: the value is empty"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ContextError) as info:
        parse_build_context(text)
    assert info.value.message == message


def test_local_directories_are_checked(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    check_contexts([parse_build_context(f"a={tmp_path}"), parse_build_context("b=https://x/")])
    with pytest.raises(ContextError, match=r"^failed to get build context a: stat /nope: No such"):
        check_contexts([parse_build_context("a=/nope")])
    with pytest.raises(ContextError, match="not a directory"):
        check_contexts([parse_build_context(f"a={tmp_path / 'file'}")])


def test_entries_follow_dockerignore_with_exceptions_and_root_owner(tmp_path: Path) -> None:
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "a").write_text("a")
    (tmp_path / "drop").mkdir()
    (tmp_path / "drop" / "x").write_text("x")
    (tmp_path / "drop" / "back").write_text("back")
    (tmp_path / "top").write_text("t")
    os.link(tmp_path / "drop" / "x", tmp_path / "linked")
    os.chown(tmp_path / "top", 1234, 5678)

    def excluded(path: str) -> bool:
        return path.startswith("drop") and path != "drop/back"

    entries = {e.path: e for e in _entries(tmp_path, excluded)}
    assert sorted(entries) == ["drop", "drop/back", "keep", "keep/a", "linked", "top"]
    assert {(e.uid, e.gid) for e in entries.values()} == {(0, 0)}
    # the link's first path was excluded: the file itself is kept
    assert entries["linked"].type.name == "FILE"
    assert entries["linked"].size == 1


def test_oci_layout_by_tag_digest_and_single_image(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    layer = store.write_layer([])
    image = append_layer(empty_image(AMD64), layer)
    buf = io.BytesIO()
    write_archive(buf, [ArchiveImage(image=image, tags=("x/y:v1",))], format=ArchiveFormat.OCI)
    layout = tmp_path / "layout"
    layout.mkdir()
    apply_layer(io.BytesIO(buf.getvalue()), layout)
    for spec in (f"{layout}:v1", f"{layout}@{image.digest}", f"{layout}"):
        assert _from_layout(store, f"oci-layout://{spec}", AMD64).digest == image.digest
    with pytest.raises(ContextError, match="no manifest sha256:"):
        _from_layout(store, f"oci-layout://{layout}@sha256:{'0' * 64}", AMD64)
    index = json.loads((layout / "index.json").read_text())
    index["manifests"] *= 2
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(ContextError, match="no image named 'latest'"):
        _from_layout(store, f"oci-layout://{layout}", AMD64)
    with pytest.raises(ContextError, match="not an OCI image layout"):
        _from_layout(store, f"oci-layout://{tmp_path}/missing", AMD64)


def test_oci_layout_blob_tampered(tmp_path: Path) -> None:
    other = Store.open(tmp_path / "other")
    layer = other.write_layer([])
    image = append_layer(empty_image(AMD64), layer)
    buf = io.BytesIO()
    write_archive(buf, [ArchiveImage(image=image)], format=ArchiveFormat.OCI)
    layout = tmp_path / "layout"
    layout.mkdir()
    apply_layer(io.BytesIO(buf.getvalue()), layout)
    blob = layout / "blobs" / "sha256" / layer.descriptor.digest.hex
    blob.write_bytes(blob.read_bytes() + b"tampered")
    with pytest.raises(ContextError, match=f"blob {layer.descriptor.digest}"):
        _from_layout(Store.open(tmp_path / "store"), f"oci-layout://{layout}", AMD64)
