"""A build whose base image is only in a registry: FROM pulls it, then push the result back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from builder.store import Store
from builder.store.fsck import fsck
from tests.conftest import REPO
from tests.integration.enginekit import busybox_store
from tests.integration.registry.regserver import RegistryServer

pytestmark = pytest.mark.integration


def _pybuild(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "builder", args[0], "--root", str(root), *args[1:]],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )


def test_from_pulls_missing_base_and_push_roundtrips(
    registry: RegistryServer, tmp_path: Path
) -> None:
    host = registry.url.removeprefix("http://")
    seed, builder_root = tmp_path / "seed", tmp_path / "builder"
    busybox_store(seed)
    assert _pybuild(seed, "tag", "busybox:latest", f"{host}/base/busybox:1").returncode == 0
    pushed = _pybuild(seed, "push", f"{host}/base/busybox:1")
    assert pushed.returncode == 0, pushed.stderr

    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f'FROM {host}/base/busybox:1\nRUN echo built > /built.txt\nCMD ["cat", "/built.txt"]\n'
    )
    built = _pybuild(
        builder_root, "build", "-t", f"{host}/app/x:1", "--progress=plain", str(context)
    )
    assert built.returncode == 0, built.stderr
    assert f"load metadata for {host}/base/busybox:1" in built.stderr
    ran = _pybuild(builder_root, "run", f"{host}/app/x:1")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "built\n"

    pushed = _pybuild(builder_root, "push", f"{host}/app/x:1")
    assert pushed.returncode == 0, pushed.stderr
    fresh = tmp_path / "fresh"
    pulled = _pybuild(fresh, "pull", f"{host}/app/x:1")
    assert pulled.returncode == 0, pulled.stderr
    a = Store.open(builder_root).resolve(f"{host}/app/x:1")
    b = Store.open(fresh).resolve(f"{host}/app/x:1")
    assert a.digest == b.digest
    assert fsck(Store.open(fresh)).ok


def test_pull_flag_refreshes_a_base_the_store_already_has(
    registry: RegistryServer, tmp_path: Path
) -> None:
    host = registry.url.removeprefix("http://")
    seed, builder_root = tmp_path / "seed", tmp_path / "builder"
    for root in (seed, builder_root):
        busybox_store(root)
    base = f"{host}/base/refresh:1"
    # the builder's store has the old base under the registry name
    assert _pybuild(builder_root, "tag", "busybox:latest", base).returncode == 0
    # the registry gets a newer base with a marker file
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "Dockerfile").write_text("FROM busybox\nRUN echo v2 > /marker\n")
    assert _pybuild(seed, "build", "-q", "-t", base, str(newer)).returncode == 0
    assert _pybuild(seed, "push", base).returncode == 0

    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {base}\nRUN cat /marker 2>/dev/null > /seen || true\n"
    )
    stale = _pybuild(builder_root, "build", "-q", "-t", "app:stale", str(context))
    assert stale.returncode == 0, stale.stderr
    fresh = _pybuild(builder_root, "build", "-q", "--pull", "-t", "app:fresh", str(context))
    assert fresh.returncode == 0, fresh.stderr
    assert _pybuild(builder_root, "run", "app:stale", "cat", "/seen").stdout == ""
    assert _pybuild(builder_root, "run", "app:fresh", "cat", "/seen").stdout == "v2\n"
