"""What the store does not redo: identical images, index.json and blobs are not written again,
and a name resolves without reading every image in the store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from storekit import image

import builder.store
from builder.digest import Digest
from builder.errors import DigestMismatchError, StoreError
from builder.oci.types import Descriptor
from builder.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "store")


def signature(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def test_rewriting_an_identical_image_leaves_index_and_blobs_alone(store: Store) -> None:
    img = image({"a": b"1"})
    first = store.write_image(img, ("app:v1",))
    index = store.root / "index.json"
    manifest = store.cas.blob_path(img.digest)
    config = store.cas.blob_path(img.id)
    before = (signature(index), signature(manifest), signature(config))
    again = store.write_image(img, ("app:v1",))
    assert again == first
    assert (signature(index), signature(manifest), signature(config)) == before
    assert list((store.root / "ingest").iterdir()) == []
    # a new name does change the index
    store.write_image(img, ("app:v2",))
    assert signature(index) != before[0]
    assert store.resolve("app:v2").digest == img.digest
    assert store.resolve("app:v1").digest == img.digest


def test_retagging_to_the_same_image_does_not_rewrite_the_index(store: Store) -> None:
    img = image({"a": b"1"})
    store.write_image(img, ("app:v1",))
    index = store.root / "index.json"
    before = signature(index)
    store.tag("app:v1", "app:v1")
    assert signature(index) == before


def test_put_bytes_of_a_stored_blob_writes_nothing(store: Store) -> None:
    desc = store.put_bytes(b"hello", media_type="text/plain")
    path = store.cas.blob_path(desc.digest)
    before = signature(path)
    assert store.put_bytes(b"hello", media_type="text/plain") == desc
    assert store.put_bytes(b"hello", expected=desc) == desc
    assert signature(path) == before


def test_put_bytes_still_rejects_content_that_does_not_match_expected(store: Store) -> None:
    desc = store.put_bytes(b"hello")
    wrong_size = Descriptor(media_type=desc.media_type, digest=desc.digest, size=4)
    with pytest.raises(DigestMismatchError):
        store.put_bytes(b"hell", expected=wrong_size)
    with pytest.raises(DigestMismatchError):
        store.put_bytes(b"world", expected=desc)
    assert store.cas.blob_path(desc.digest).read_bytes() == b"hello"
    assert list((store.root / "ingest").iterdir()) == []


def test_a_name_resolves_even_when_another_image_is_damaged(store: Store) -> None:
    good = image({"a": b"1"})
    bad = image({"b": b"2"})
    store.write_image(good, ("good:latest",))
    store.write_image(bad, ("bad:latest",))
    path = store.cas.blob_path(bad.id)  # the other image's config goes missing
    os.chmod(path, 0o644)
    path.unlink()
    record = store.resolve("good")
    assert record.digest == good.digest
    assert record.names == ("docker.io/library/good:latest",)
    assert record.id == good.id
    # an ID prefix reads every image's manifest, not its config: the damage is not in the way
    assert store.resolve(good.id.hex[:12]).digest == good.digest
    with pytest.raises(StoreError, match=f"blob {bad.id} is missing"):
        store.resolve("bad")  # describing the damaged image itself does need its config


def test_name_resolution_lists_every_name_of_the_image(store: Store) -> None:
    img = image({"a": b"1"})
    store.write_image(img, ("one:latest", "two:latest"))
    assert store.resolve("two").names == (
        "docker.io/library/one:latest",
        "docker.io/library/two:latest",
    )
    assert store.resolve("two") == next(r for r in store.list_images() if r.digest == img.digest)


def test_identical_layers_are_not_fsynced_again(store: Store, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f").write_text("x")
    first = store.write_layer(tree, source_date_epoch=0)
    path = store.cas.blob_path(first.descriptor.digest)
    before = signature(path)
    second = store.write_layer(tree, source_date_epoch=0)
    assert second.descriptor == first.descriptor
    assert signature(path) == before
    assert list((store.root / "ingest").iterdir()) == []


def test_store_package_names_load_lazily() -> None:
    for name in builder.store.__all__:
        assert getattr(builder.store, name) is not None
    assert builder.store.Store is Store
    assert isinstance(Digest.of_bytes(b""), Digest)
    with pytest.raises(AttributeError):
        builder.store.NoSuchThing  # noqa: B018
