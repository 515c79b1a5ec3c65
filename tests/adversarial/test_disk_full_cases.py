"""Checklist cases 39 and 40 (docs/SECURITY.md section 3, Disk full): a store on a small tmpfs in
a private mount namespace runs out of space during a RUN, a layer export and an index.json
update. Each ends in one error line, leaves the old index.json byte-identical and nothing half
written, and the same command succeeds once there is room again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from advkit import Result, assert_clean_error, run_pybuild
from storefaults import SmallDisk, small_disk

from builder.oci.manifest import Index
from builder.store.paths import INDEX

pytestmark = pytest.mark.integration


def _build(disk: SmallDisk, context: Path) -> Result:
    return run_pybuild(
        ["build", "-t", "full:1", "--progress=plain", str(context)],
        store_root=disk.store,
        cwd=context,
        prefix=disk.prefix,
    )


def _index(disk: SmallDisk) -> bytes:
    return disk.outside(disk.store / INDEX).read_bytes()


@pytest.mark.parametrize(
    ("where", "run"),
    [
        # the command itself fills the disk: dd fails with ENOSPC
        ("run", "RUN dd if=/dev/zero of=/big bs=1M count=100"),
        # the command fits (30 MB), its layer (30 MB, incompressible) does not
        ("export", "RUN head -c 31457280 /dev/urandom > /random"),
    ],
)
def test_case_39_disk_full_during_run_or_layer_export(tmp_path: Path, where: str, run: str) -> None:
    with small_disk(tmp_path / "disk", "50m") as disk:
        index = _index(disk)
        context = tmp_path / "ctx"
        context.mkdir()
        (context / "Dockerfile").write_text(f"FROM busybox\n{run}\n")
        result = _build(disk, context)
        line = assert_clean_error(result, must_name=("Dockerfile:2", run))
        assert f"no space left on device during {run}" in line
        # out of space in the command: its own failure follows; in the export: no failure of it
        assert ("did not complete successfully" in line) == (where == "run"), line
        assert _index(disk) == index
        disk.assert_consistent()

        disk.resize("200m")  # room again
        again = _build(disk, context)
        assert again.returncode == 0, again.stderr
        assert _index(disk) != index
        disk.assert_consistent()


def test_case_40_disk_full_while_index_json_is_replaced(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "20m") as disk:
        index = _index(disk)
        disk.fill()
        # a tag writes nothing but index.json: its temp copy is what meets the full disk
        result = run_pybuild(
            ["tag", "busybox:latest", "full:2"],
            store_root=disk.store,
            cwd=tmp_path,
            prefix=disk.prefix,
        )
        line = assert_clean_error(result, must_name=str(disk.store / INDEX))
        assert "no space left on device during update of" in line
        assert _index(disk) == index
        Index.from_bytes(_index(disk), what="index.json")  # parses
        store = disk.outside(disk.store)
        assert sorted(p.name for p in store.iterdir() if p.name.endswith(".tmp")) == []
        disk.assert_consistent()

        disk.free()
        retry = run_pybuild(
            ["tag", "busybox:latest", "full:2"],
            store_root=disk.store,
            cwd=tmp_path,
            prefix=disk.prefix,
        )
        assert retry.returncode == 0, retry.stderr
        names = [
            m.get("annotations", {}).get("org.opencontainers.image.ref.name")
            for m in json.loads(_index(disk))["manifests"]
        ]
        assert "docker.io/library/full:2" in names
        disk.assert_consistent()
