"""``pybuild images``: Docker's columns, truncation, digests, dangling rows, filters, JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cmdkit import T0, imported, pybuild

from builder.store import Store

AGO = r"(\d+|About an?) \w+ ago"


def test_table_has_dockers_columns_and_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = imported(tmp_path, {"bin/tool": b"x" * 4_261_550}, "busybox:latest")
    r = pybuild(capsys, tmp_path, "images")
    assert r.rc == 0
    assert r.err == ""
    header, row = r.out.splitlines()
    assert re.fullmatch(r"REPOSITORY   TAG       IMAGE ID       CREATED +SIZE", header)
    cells = re.split(r"\s{3,}", row)
    assert cells[:3] == ["busybox", "latest", rec.config_digest.hex[:12]]
    assert re.fullmatch(AGO, cells[3])
    assert cells[4] == "4.26MB"  # uncompressed file content, not the gzip blob
    # columns line up under their headers
    assert row.index(rec.config_digest.hex[:12]) == header.index("IMAGE ID")
    assert row.index("4.26MB") == header.index("SIZE")


def test_digests_no_trunc_and_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = imported(tmp_path, {"a": b"1"}, "app:1", "app:2")
    r = pybuild(capsys, tmp_path, "images", "--digests", "--no-trunc")
    lines = r.out.splitlines()
    assert re.fullmatch(r"REPOSITORY   TAG       DIGEST +IMAGE ID +CREATED +SIZE", lines[0])
    assert len(lines) == 3  # one row per tag
    for line, tag in zip(lines[1:], ("1", "2"), strict=True):
        cells = re.split(r"\s{3,}", line)
        assert cells[:4] == ["app", tag, str(rec.digest), str(rec.config_digest)]
    q = pybuild(capsys, tmp_path, "images", "-q")
    assert q.out.splitlines() == [rec.config_digest.hex[:12]] * 2


def test_dangling_newest_first_and_filters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = imported(tmp_path, {"a": b"old"}, "app:latest", created=T0)
    new = imported(tmp_path, {"a": b"new"}, "app:latest", "tools/x:1", created=T0 + 3600)
    other = imported(tmp_path, {"b": b"b"}, "busybox:latest", created=T0 + 60)
    r = pybuild(capsys, tmp_path, "images")
    rows = [re.split(r"\s{3,}", line) for line in r.out.splitlines()[1:]]
    assert [row[:3] for row in rows] == [
        ["app", "latest", new.config_digest.short],
        ["tools/x", "1", new.config_digest.short],
        ["busybox", "latest", other.config_digest.short],
        ["<none>", "<none>", old.config_digest.short],  # lost its tag: dangling
    ]
    by_repo = pybuild(capsys, tmp_path, "images", "app")
    assert [line.split()[:2] for line in by_repo.out.splitlines()[1:]] == [["app", "latest"]]
    by_tag = pybuild(capsys, tmp_path, "images", "tools/x:1", "-q")
    assert by_tag.out.split() == [new.config_digest.short]
    glob = pybuild(capsys, tmp_path, "images", "*o*/*", "-q")
    assert glob.out.split() == [new.config_digest.short]
    none = pybuild(capsys, tmp_path, "images", "nothing")
    assert none.rc == 0
    assert len(none.out.splitlines()) == 1


def test_json_format_is_one_object_per_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = imported(tmp_path, {"a": b"1" * 1500}, "app:1")
    Store.open(tmp_path).tag("app:1", "app:2")
    r = pybuild(capsys, tmp_path, "images", "--format", "json")
    lines = r.out.splitlines()
    assert len(lines) == 2
    assert "\\u003cnone\\u003e" in lines[0]  # Go's escaping of <none>
    first = json.loads(lines[0])
    assert sorted(first) == [
        "Containers",
        "CreatedAt",
        "CreatedSince",
        "Digest",
        "ID",
        "Repository",
        "SharedSize",
        "Size",
        "Tag",
        "UniqueSize",
        "VirtualSize",
    ]
    assert first["ID"] == rec.config_digest.short
    assert (first["Repository"], first["Tag"], first["Digest"]) == ("app", "1", "<none>")
    assert (first["Size"], first["VirtualSize"]) == ("1.5kB", "1.5kB")
    assert first["CreatedAt"].startswith("2023-11-1")
    digests = json.loads(
        pybuild(capsys, tmp_path, "images", "--format", "json", "--digests").out.splitlines()[0]
    )
    assert digests["Digest"] == str(rec.digest)


def test_empty_store_prints_the_header(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = pybuild(capsys, tmp_path / "new", "images")
    assert r.rc == 0
    assert r.out == "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"


def test_damaged_image_is_reported_and_others_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imported(tmp_path, {"a": b"good"}, "good:1")
    bad = imported(tmp_path, {"a": b"bad"}, "bad:1")
    store = Store.open(tmp_path)
    config_blob = store.cas.blob_path(bad.config_digest)
    config_blob.unlink()
    r = pybuild(capsys, tmp_path, "images")
    assert r.rc == 1
    assert [line.split()[0] for line in r.out.splitlines()[1:]] == ["good"]
    assert r.err.count("\n") == 1
    assert r.err.startswith("ERROR: image bad:1: ")
    assert str(bad.config_digest) in r.err


def test_hand_edited_names_do_not_break_listing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = imported(tmp_path, {"a": b"1"}, "app:1")
    index = tmp_path / "index.json"
    data = json.loads(index.read_text())
    data["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = "Not A Name!"
    index.write_text(json.dumps(data))
    r = pybuild(capsys, tmp_path, "images")
    assert r.rc == 0
    assert re.split(r"\s{3,}", r.out.splitlines()[1])[:3] == [
        "Not A Name!",
        "<none>",
        rec.config_digest.short,
    ]
    inspected = pybuild(capsys, tmp_path, "inspect", rec.config_digest.short)
    assert json.loads(inspected.out)[0]["RepoTags"] == []
