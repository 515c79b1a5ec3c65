"""The store is private to its owner: created 0700, and an existing 0755 store repaired on open
(SECURITY.md S11)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from builder.store import Store, paths


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_new_store_is_private(tmp_path: Path) -> None:
    root = tmp_path / "new" / "store"
    Store.open(root)
    assert _mode(root) == 0o700
    for state in paths.STATE_DIRS:
        if state.at_open:
            assert _mode(root / state.name) == 0o700, state.name


def test_an_open_store_repairs_a_0755_store_without_walking_it(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store.open(root)
    later = [root / paths.CACHEMOUNTS, root / paths.CONTAINERS, root / "runc"]
    for directory in later:  # made by their first user under a 022 umask
        directory.mkdir(mode=0o755)
    inner = root / paths.SNAPSHOTS / "0123abcd"
    inner.mkdir(mode=0o755)  # a layer directory: its mode is the image's, never changed
    for path in (root, *(root / d.name for d in paths.STATE_DIRS)):
        if path.exists():
            os.chmod(path, 0o755)
    os.chmod(inner, 0o755)
    Store.open(root)
    assert _mode(root) == 0o700
    for state in paths.STATE_DIRS:
        if (root / state.name).exists():
            assert _mode(root / state.name) == 0o700, state.name
    assert all(_mode(d) == 0o700 for d in later)
    assert _mode(inner) == 0o755
    assert _mode(root / paths.INDEX) == 0o644  # files keep their modes


def test_a_symlinked_state_dir_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store.open(root)
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    os.chmod(outside, 0o755)
    (root / paths.CONTEXTS).symlink_to(outside)
    Store.open(root)
    assert _mode(outside) == 0o755
