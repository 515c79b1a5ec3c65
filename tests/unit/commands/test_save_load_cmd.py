"""``pybuild save`` / ``pybuild load``: round trips, stdout/stdin, and hostile archives."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import pytest
from cmdkit import imported, pybuild

from builder.cli import main
from builder.digest import Digest
from builder.store import Store


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def _write_tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _clean(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    """The store is consistent and nothing got a name."""
    r = pybuild(capsys, root, "fsck")
    assert r.rc == 0, r.out
    assert Store.open(root).list_images() == ()


def test_save_and_load_keep_every_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    rec = imported(src, {"bin/tool": b"x" * 3000}, "app:1", "app:2")
    archive = tmp_path / "app.tar"
    r = pybuild(capsys, src, "save", "app", "-o", str(archive))
    assert (r.rc, r.out, r.err) == (0, "", "")
    members = _members(archive)
    (entry,) = json.loads(members["manifest.json"])  # one image, both tags
    assert entry["RepoTags"] == ["app:1", "app:2"]
    assert entry["Config"] == f"blobs/sha256/{rec.config_digest.hex}"
    loaded = pybuild(capsys, dst, "load", "-i", str(archive))
    assert (loaded.rc, loaded.out) == (0, "Loaded image: app:1\nLoaded image: app:2\n")
    (back,) = Store.open(dst).list_images()
    assert back.config_digest == rec.config_digest
    assert back.digest == rec.digest  # the docker-archive keeps the OCI manifest as is
    assert pybuild(capsys, dst, "fsck").rc == 0


def test_save_oci_format_and_untagged_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    rec = imported(src, {"a": b"1"}, "app:1")
    archive = tmp_path / "app-oci.tar"
    assert pybuild(capsys, src, "save", "--format", "oci", "-o", str(archive), "app:1").rc == 0
    members = _members(archive)
    assert "manifest.json" not in members
    assert json.loads(members["index.json"])["manifests"][0]["digest"] == str(rec.digest)
    assert pybuild(capsys, dst, "load", "-i", str(archive)).out == "Loaded image: app:1\n"
    by_id = tmp_path / "by-id.tar"
    assert pybuild(capsys, src, "save", "-o", str(by_id), rec.config_digest.short).rc == 0
    # a docker-archive entry without RepoTags loads as an unnamed image
    members = _members(by_id)
    manifest = json.loads(members["manifest.json"])
    manifest[0]["RepoTags"] = None
    members["manifest.json"] = json.dumps(manifest).encode()
    del members["index.json"], members["repositories"]
    bare = tmp_path / "bare.tar"
    _write_tar(bare, members)
    r = pybuild(capsys, tmp_path / "third", "load", "-i", str(bare))
    assert r.out == f"Loaded image ID: {rec.config_digest}\n"


def test_save_to_stdout_and_refuse_a_terminal(
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec = imported(tmp_path, {"a": b"1"}, "app:1")
    assert main(["save", "app:1", "--root", str(tmp_path)]) == 0
    data = capsysbinary.readouterr().out
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert f"blobs/sha256/{rec.config_digest.hex}" in tar.getnames()
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["save", "app:1", "--root", str(tmp_path)]) == 1
    err = capsysbinary.readouterr().err.decode()
    assert err == ("ERROR: cowardly refusing to save to a terminal. Use the -o flag or redirect\n")


def test_save_errors_leave_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imported(tmp_path / "s", {"a": b"1"}, "app:1")
    out = tmp_path / "out.tar"
    r = pybuild(capsys, tmp_path / "s", "save", "app:1", "nope", "-o", str(out))
    assert (r.rc, r.err) == (1, "ERROR: No such image: nope\n")
    assert not out.exists()
    nodir = pybuild(capsys, tmp_path / "s", "save", "app:1", "-o", str(tmp_path / "no/x.tar"))
    assert nodir.rc == 1
    assert nodir.err.startswith("ERROR: failed to save image: ")
    assert list(tmp_path.iterdir()) == [tmp_path / "s"]


class _Stdin:
    def __init__(self, data: bytes, *, tty: bool = False) -> None:
        self.buffer = io.BytesIO(data)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_load_from_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    imported(tmp_path / "src", {"a": b"1"}, "app:1")
    archive = tmp_path / "a.tar"
    assert pybuild(capsys, tmp_path / "src", "save", "app:1", "-o", str(archive)).rc == 0
    monkeypatch.setattr(sys, "stdin", _Stdin(archive.read_bytes()))
    assert pybuild(capsys, tmp_path / "dst", "load").out == "Loaded image: app:1\n"
    monkeypatch.setattr(sys, "stdin", _Stdin(b"", tty=True))
    tty = pybuild(capsys, tmp_path / "dst", "load")
    assert (tty.rc, tty.err) == (1, "ERROR: requested load from stdin, but stdin is empty\n")
    missing = pybuild(capsys, tmp_path / "dst", "load", "-i", str(tmp_path / "nope.tar"))
    assert missing.err == f"ERROR: open {tmp_path / 'nope.tar'}: no such file or directory\n"


def _saved(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, bytes]:
    imported(tmp_path / "src", {"bin/tool": b"tool" * 500}, "app:1")
    archive = tmp_path / "good.tar"
    assert pybuild(capsys, tmp_path / "src", "save", "app:1", "-o", str(archive)).rc == 0
    return _members(archive)


def test_truncated_and_garbage_archives(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _saved(tmp_path, capsys)
    data = (tmp_path / "good.tar").read_bytes()
    dst = tmp_path / "dst"
    cases = {
        "truncated.tar": data[: len(data) // 2 + 100],
        "garbage.tar": b"this is not a tar archive at all" * 40,
        "gzip-junk.tar.gz": b"\x1f\x8b\x08\x00" + b"\xff" * 200,
        "empty.tar": b"",
    }
    for name, blob in cases.items():
        path = tmp_path / name
        path.write_bytes(blob)
        r = pybuild(capsys, dst, "load", "-i", str(path))
        assert r.rc == 1, name
        assert r.err.startswith(f"ERROR: {path}: "), r.err
        assert r.err.count("\n") == 1, r.err
        assert r.out == ""
    _clean(capsys, dst)


def test_archives_that_lie(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _saved(tmp_path, capsys)
    (entry,) = json.loads(good["manifest.json"])
    layer_path = entry["Layers"][0]
    dst = tmp_path / "dst"

    flipped = dict(good)
    blob = bytearray(flipped[layer_path])
    blob[len(blob) // 2] ^= 0xFF
    flipped[layer_path] = bytes(blob)

    missing = dict(good)
    del missing[layer_path]
    del missing["index.json"]

    other_diff = dict(good)
    config = json.loads(other_diff[entry["Config"]])
    config["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]
    raw_config = json.dumps(config).encode()
    config_name = f"blobs/sha256/{Digest.of_bytes(raw_config).hex}"
    other_diff[config_name] = raw_config
    other_diff["manifest.json"] = json.dumps(
        [{"Config": config_name, "RepoTags": ["x:1"], "Layers": entry["Layers"]}]
    ).encode()
    del other_diff["index.json"]

    bad_json = {**good, "manifest.json": b"[{"}
    del bad_json["index.json"]

    expected = {
        "flipped.tar": f"member {layer_path!r}",
        "missing.tar": f"references {layer_path!r}, which is not in the archive",
        "other-diff.tar": "has diff_id sha256:",
        "bad-json.tar": "manifest.json: invalid JSON",
    }
    for name, members in (
        ("flipped.tar", flipped),
        ("missing.tar", missing),
        ("other-diff.tar", other_diff),
        ("bad-json.tar", bad_json),
    ):
        path = tmp_path / name
        _write_tar(path, members)
        r = pybuild(capsys, dst, "load", "-i", str(path))
        assert r.rc == 1, name
        assert r.err.startswith(f"ERROR: {path}: "), r.err
        assert expected[name] in r.err, r.err
        assert r.err.count("\n") == 1
    _clean(capsys, dst)


def test_unknown_media_types_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _saved(tmp_path, capsys)
    index = json.loads(good["index.json"])
    dst = tmp_path / "dst"

    artifact = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.example.thing+json"})
    digest = Digest.of_bytes(artifact.encode())
    only_artifact = {
        "oci-layout": good["oci-layout"],
        f"blobs/sha256/{digest.hex}": artifact.encode(),
        "index.json": json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.example.thing+json",
                        "digest": str(digest),
                        "size": len(artifact),
                    }
                ],
            }
        ).encode(),
    }
    path = tmp_path / "artifact.tar"
    _write_tar(path, only_artifact)
    r = pybuild(capsys, dst, "load", "-i", str(path))
    assert (r.rc, r.err) == (1, f"ERROR: {path}: the archive holds no image\n")

    manifest_desc = index["manifests"][0]
    manifest = json.loads(good[f"blobs/sha256/{manifest_desc['digest'].split(':')[1]}"])
    manifest["layers"][0]["mediaType"] = "application/vnd.example.layer.v1"
    raw = json.dumps(manifest).encode()
    odd = {k: v for k, v in good.items() if k not in ("manifest.json", "repositories")}
    odd[f"blobs/sha256/{Digest.of_bytes(raw).hex}"] = raw
    odd["index.json"] = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": manifest_desc["mediaType"],
                    "digest": str(Digest.of_bytes(raw)),
                    "size": len(raw),
                }
            ],
        }
    ).encode()
    path = tmp_path / "odd-layer.tar"
    _write_tar(path, odd)
    r = pybuild(capsys, dst, "load", "-i", str(path))
    assert r.rc == 1
    assert r.err.startswith(f"ERROR: {path}: "), r.err
    assert "application/vnd.example.layer.v1" in r.err
    _clean(capsys, dst)
