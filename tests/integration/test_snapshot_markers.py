"""Unsynced layer directories (``LayerDirs(durable=False)``): trusted in the boot that wrote
them, extracted again from the layer blob when the boot ID differs (after a machine crash)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.oci.layer_write import LayerEntry
from builder.snapshot import LayerDirs, mounts_under
from builder.snapshot.layerdirs import BOOT_SUFFIX, UNSYNCED_SUFFIX, boot_id
from builder.store import Store, StoreLayer

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _root_only() -> None:
    if os.geteuid() != 0:
        pytest.fail("layer directory tests need root (mknod, trusted.*)", pytrace=False)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store")
    yield s
    assert mounts_under(tmp_path) == ()


def layer(store: Store, name: str, data: bytes) -> StoreLayer:
    return store.write_layer(
        [LayerEntry(path=name, data=data, size=len(data), mode=0o644, mtime_ns=10**18)]
    )


def markers(dirs: LayerDirs, target: Path) -> list[str]:
    return sorted(p.name[len(target.name) :] for p in dirs.root.glob(target.name + ".*"))


def test_boot_id_is_read() -> None:
    value = boot_id()
    assert value is not None
    assert len(value) >= 32


def test_unsynced_dirs_are_marked_with_this_boot(store: Store) -> None:
    first = layer(store, "a", b"1")
    dirs = LayerDirs(store, durable=False)
    (target,) = dirs.ensure([first])
    assert markers(dirs, target) == sorted([UNSYNCED_SUFFIX, BOOT_SUFFIX + str(dirs.boot)])
    assert (target / "a").read_bytes() == b"1"
    inode = target.stat().st_ino
    assert dirs.ensure([first]) == (target,)
    assert target.stat().st_ino == inode  # trusted: not extracted again


def test_a_dir_from_another_boot_is_extracted_again(store: Store) -> None:
    first = layer(store, "a", b"1")
    dirs = LayerDirs(store, durable=False)
    (target,) = dirs.ensure([first])
    # what a crash can leave: the directory renamed into place, its content lost
    (target / "a").write_bytes(b"")
    current = dirs.marker_path(target, BOOT_SUFFIX + str(dirs.boot))
    current.rename(dirs.marker_path(target, BOOT_SUFFIX + "0ther-b00t"))
    assert dirs.ensure([first]) == (target,)
    assert (target / "a").read_bytes() == b"1"
    assert markers(dirs, target) == sorted([UNSYNCED_SUFFIX, BOOT_SUFFIX + str(dirs.boot)])


def test_synced_dirs_carry_no_marker_and_are_always_trusted(store: Store) -> None:
    first = layer(store, "a", b"1")
    synced = LayerDirs(store)  # durable
    (target,) = synced.ensure([first])
    assert markers(synced, target) == []
    inode = target.stat().st_ino
    assert LayerDirs(store, durable=False).ensure([first]) == (target,)
    assert target.stat().st_ino == inode


def test_adopt_replaces_an_untrusted_dir_and_remove_drops_markers(store: Store) -> None:
    base = layer(store, "a", b"1")
    top = layer(store, "b", b"2")
    dirs = LayerDirs(store, durable=False)
    dirs.ensure([base])
    chain = (base.diff_id, top.diff_id)
    with dirs.scratch_dir() as upper:
        (upper / "b").write_bytes(b"2")
        target = dirs.adopt(chain, upper)
    dirs.marker_path(target, BOOT_SUFFIX + str(dirs.boot)).rename(
        dirs.marker_path(target, BOOT_SUFFIX + "0ther-b00t")
    )
    with dirs.scratch_dir() as again:
        (again / "b").write_bytes(b"2")
        assert dirs.adopt(chain, again) == target
        assert not again.exists()  # it became the directory of the chain
    assert markers(dirs, target) == sorted([UNSYNCED_SUFFIX, BOOT_SUFFIX + str(dirs.boot)])
    assert dirs.remove(chain)
    assert markers(dirs, target) == []
    assert not target.exists()
    assert not dirs.remove(chain)
