"""``pybuild tag`` and ``pybuild rmi``: Docker's untag/delete rules and output."""

from __future__ import annotations

from pathlib import Path

import pytest
from cmdkit import T0, imported, pybuild

from builder.store import Store


def _names(root: Path) -> list[tuple[str, ...]]:
    return [rec.names for rec in Store.open(root).list_images()]


def test_tag_adds_a_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = imported(tmp_path, {"a": b"1"}, "busybox:latest")
    r = pybuild(capsys, tmp_path, "tag", "busybox", "registry.example:5000/team/bb:v1")
    assert (r.rc, r.out, r.err) == (0, "", "")
    by_id = pybuild(capsys, tmp_path, "tag", rec.config_digest.short, "other")
    assert by_id.rc == 0
    assert _names(tmp_path) == [
        (
            "docker.io/library/busybox:latest",
            "docker.io/library/other:latest",
            "registry.example:5000/team/bb:v1",
        )
    ]


def test_tag_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = imported(tmp_path, {"a": b"1"}, "busybox:latest")
    missing = pybuild(capsys, tmp_path, "tag", "nope", "x")
    assert (missing.rc, missing.err) == (1, "ERROR: No such image: nope\n")
    bad = pybuild(capsys, tmp_path, "tag", "busybox", "Bad:Name")
    assert bad.rc == 1
    assert bad.err.startswith('ERROR: Error parsing reference: "Bad:Name" is not a valid')
    pinned = pybuild(capsys, tmp_path, "tag", "busybox", f"x@{rec.digest}")
    assert pinned.err == "ERROR: refusing to create a tag with a digest reference\n"
    assert _names(tmp_path) == [("docker.io/library/busybox:latest",)]


def test_rmi_by_name_untags_then_deletes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = imported(tmp_path, {"a": b"1"}, "app:1", "app:2")
    first = pybuild(capsys, tmp_path, "rmi", "app:1")
    assert (first.rc, first.out) == (0, "Untagged: app:1\n")
    assert _names(tmp_path) == [("docker.io/library/app:2",)]
    last = pybuild(capsys, tmp_path, "rmi", "app:2")
    assert last.out == f"Untagged: app:2\nDeleted: {rec.config_digest}\n"
    assert _names(tmp_path) == []
    assert pybuild(capsys, tmp_path, "fsck").rc == 0  # its blobs wait for prune, unharmed


def test_rmi_by_id_needs_force_for_several_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = imported(tmp_path, {"a": b"1"}, "app:1", "web:1")
    refused = pybuild(capsys, tmp_path, "rmi", rec.config_digest.short)
    assert refused.rc == 1
    assert refused.err == (
        "Error response from daemon: conflict:"
        f" unable to delete {rec.config_digest.short} (must be forced)"
        " - image is referenced in multiple repositories\n"
    )
    assert len(_names(tmp_path)[0]) == 2
    forced = pybuild(capsys, tmp_path, "rmi", "-f", rec.config_digest.short)
    assert forced.out == f"Untagged: app:1\nUntagged: web:1\nDeleted: {rec.config_digest}\n"
    assert _names(tmp_path) == []


def test_rmi_single_name_by_id_and_dangling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = imported(tmp_path, {"a": b"old"}, "app:1", created=T0)
    new = imported(tmp_path, {"a": b"new"}, "app:1", created=T0 + 1)  # old is now dangling
    dangling = pybuild(capsys, tmp_path, "rmi", str(old.config_digest))
    assert dangling.out == f"Deleted: {old.config_digest}\n"
    single = pybuild(capsys, tmp_path, "rmi", str(new.digest))  # the manifest digest
    assert single.out == f"Untagged: app:1\nDeleted: {new.config_digest}\n"
    assert _names(tmp_path) == []


def test_rmi_continues_past_unknown_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imported(tmp_path, {"a": b"1"}, "app:1", "app:2")
    r = pybuild(capsys, tmp_path, "rmi", "nope", "app:2")
    assert r.rc == 1
    assert r.err == "Error response from daemon: No such image: nope\n"
    assert r.out == "Untagged: app:2\n"


def test_rmi_works_on_a_damaged_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = imported(tmp_path, {"a": b"1"}, "app:1")
    Store.open(tmp_path).cas.blob_path(rec.digest).unlink()  # the manifest itself is gone
    assert pybuild(capsys, tmp_path, "fsck").rc == 1
    r = pybuild(capsys, tmp_path, "rmi", "app:1")
    assert r.rc == 0
    assert r.out == f"Untagged: app:1\nDeleted: {rec.digest}\n"  # no config to name it by
    assert pybuild(capsys, tmp_path, "fsck").rc == 0
