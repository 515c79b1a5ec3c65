"""Fixtures for the build-engine integration tests (root, runc and busybox-static required).

* ``store_root``: one image store per test session (per xdist worker) with ``busybox:latest``
  imported once by ``scripts/make-busybox.sh``; every build test shares it, so each test uses
  its own tags, contexts and (where the cache matters) its own file contents.
* ``pb``: an ``enginekit.Builder`` bound to that store and the test's ``tmp_path``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginekit import MAKE_BUSYBOX, PYBUILD, REPO, Builder, mounts, require_environment

from builder.store import Store


@pytest.fixture(scope="session")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A store with ``busybox:latest`` (made offline by scripts/make-busybox.sh), per session."""
    require_environment()
    root = tmp_path_factory.mktemp("store")
    proc = subprocess.run(
        ["bash", str(MAKE_BUSYBOX), PYBUILD, "--root", str(root)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"scripts/make-busybox.sh failed:\n{proc.stdout}\n{proc.stderr}")
    yield root
    # nothing a test did may leave a mount behind under the store
    leftovers = [line for line in mounts() if str(root) in line]
    assert not leftovers, f"mounts left under the store: {leftovers}"


@pytest.fixture(scope="session")
def busybox_history(store_root: Path) -> int:
    store = Store.open(store_root)
    image = store.load_image(store.resolve("busybox:latest").descriptor)
    return len(image.config.history)


@pytest.fixture
def pb(store_root: Path, busybox_history: int, tmp_path: Path) -> Builder:
    return Builder(store_root=store_root, workdir=tmp_path, busybox_history=busybox_history)
