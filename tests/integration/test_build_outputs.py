"""``-o/--output`` with real builds: each output loads back (archives through ``pybuild load``
into an empty store and ``skopeo inspect``, the rootfs tar listed, the local directory compared
with the image's files), ``--metadata-file`` matches them, ``--compression zstd`` keeps the image
ID, ``dest=-`` streams to stdout, and bad outputs fail in one line before anything runs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from enginekit import PYBUILD, Builder, Built

from builder.store import Store

pytestmark = pytest.mark.integration

DOCKERFILE = (
    "FROM busybox\n"
    "RUN mkdir -p /app && echo {marker} > /app/hello && chown 1000:2000 /app/hello"
    " && chmod 0640 /app/hello && ln -s hello /app/link && rm /etc/group\n"
    'CMD ["cat", "/app/hello"]\n'
)


def skopeo(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        ["skopeo", *args], capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


def build(pb: Builder, *args: str) -> tuple[Built, str]:
    marker = uuid.uuid4().hex
    built = pb.build(DOCKERFILE.format(marker=marker), args=list(args))
    return built, marker


def load(pb: Builder, archive: Path, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYBUILD, "load", "--root", str(root), "-i", str(archive)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_oci_and_docker_archives_load_back(pb: Builder, tmp_path: Path) -> None:
    oci, docker, meta = tmp_path / "img.oci.tar", tmp_path / "img.docker.tar", tmp_path / "m.json"
    built, marker = build(
        pb,
        "-o",
        f"type=oci,dest={oci}",
        "-o",
        f"type=docker,dest={docker}",
        "--metadata-file",
        str(meta),
        "--provenance=false",
    )
    metadata = json.loads(meta.read_text())
    assert metadata["containerimage.config.digest"] == built.image_id
    digest = metadata["containerimage.digest"]
    assert metadata["containerimage.descriptor"]["digest"] == digest
    assert metadata["containerimage.descriptor"]["mediaType"] == (
        "application/vnd.oci.image.manifest.v1+json"
    )
    assert metadata["image.name"] == f"docker.io/library/{built.tag}"
    # an oci/docker output alone does not name the image in the store
    assert not pb.tagged(built.tag)

    assert skopeo("inspect", f"oci-archive:{oci}")["Digest"] == digest
    inspected = skopeo("inspect", "--config", f"docker-archive:{docker}")
    assert inspected["config"]["Cmd"] == ["cat", "/app/hello"]
    assert skopeo("inspect", f"docker-archive:{docker}")["Layers"]
    for archive in (oci, docker):
        fresh = tmp_path / f"store-{archive.name}"
        loaded = load(pb, archive, fresh)
        assert loaded.returncode == 0, loaded.stderr
        record = Store.open(fresh).resolve(built.tag)
        assert str(record.config_digest) == built.image_id
        image = Store.open(fresh).load_image(record.descriptor)
        assert [layer.diff_id for layer in image.layers] == [
            layer.diff_id for layer in built.image.layers
        ]
    assert marker  # the content is checked through the rootfs outputs below


def test_rootfs_tar_and_local_directory(pb: Builder, tmp_path: Path) -> None:
    rootfs, local = tmp_path / "rootfs.tar", tmp_path / "local"
    local.mkdir()
    (local / "keep.txt").write_text("mine")
    built, marker = build(pb, "-o", f"type=tar,dest={rootfs}", "-o", str(local))
    with tarfile.open(rootfs) as tar:
        members = {m.name.removeprefix("./").rstrip("/"): m for m in tar.getmembers()}
        hello = members["app/hello"]
        assert (hello.uid, hello.gid, hello.mode) == (1000, 2000, 0o640)
        assert tar.extractfile(hello).read() == f"{marker}\n".encode()  # type: ignore[union-attr]
    assert members["app/link"].issym()
    assert members["app/link"].linkname == "hello"
    assert "etc/group" not in members  # the whiteout was applied, not exported
    assert "etc/passwd" in members
    assert not any(".wh." in name for name in members)

    files = built.files
    for path, entry in files.items():
        st = os.lstat(local / path.lstrip("/"))
        assert (st.st_uid, st.st_gid) == (entry.uid, entry.gid), path
        assert st.st_mode & 0o7777 == entry.mode, path
        if entry.type == "file":
            assert (local / path.lstrip("/")).read_bytes() == entry.content, path
    walked = {"/" + str(p.relative_to(local)) for p in local.rglob("*") if p.name != "keep.txt"}
    assert walked == set(files)
    assert (local / "keep.txt").read_text() == "mine"  # what was there stays


def test_local_output_stays_inside_dest(pb: Builder, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    local = tmp_path / "local"
    local.mkdir()
    (local / "app").symlink_to(outside)
    build(pb, "-o", f"type=local,dest={local}")
    assert list(outside.iterdir()) == []
    assert (local / "app" / "hello").is_file()
    assert not (local / "app").is_symlink()


def test_tar_to_stdout(pb: Builder, tmp_path: Path) -> None:
    context = pb.context({"Dockerfile": "FROM busybox\nRUN echo streamed > /s\n"}, name="s")
    proc = subprocess.run(
        [PYBUILD, "build", "-q", "-o", "-", str(context)],
        capture_output=True,
        env=pb.environ(),
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        assert tar.extractfile("s").read() == b"streamed\n"  # type: ignore[union-attr]


def test_oci_layout_directory_is_a_named_context(pb: Builder, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    built, marker = build(pb, "-o", f"type=oci,dest={layout},tar=false")
    assert (layout / "oci-layout").is_file()
    tag = built.tag.rpartition(":")[2]
    assert skopeo("inspect", f"oci:{layout}:{tag}")["Layers"]
    again = pb.build(
        "FROM img\nRUN cat /app/hello > /copied\n",
        args=["--build-context", f"img=oci-layout://{layout}:{tag}"],
    )
    assert again.files["/copied"].text == f"{marker}\n"


def test_zstd_compression_keeps_the_image_id(pb: Builder, tmp_path: Path) -> None:
    archive, meta = tmp_path / "z.tar", tmp_path / "m.json"
    built, _ = build(
        pb,
        "-o",
        f"type=oci,dest={archive}",
        "--compression",
        "zstd,level=5",
        "--metadata-file",
        str(meta),
    )
    raw = skopeo("inspect", "--raw", f"oci-archive:{archive}")
    assert {layer["mediaType"] for layer in raw["layers"]} == {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    }
    assert skopeo("inspect", "--config", f"oci-archive:{archive}")["rootfs"]["diff_ids"] == [
        str(layer.diff_id) for layer in built.image.layers
    ]
    metadata = json.loads(meta.read_text())
    assert metadata["containerimage.config.digest"] == built.image_id
    assert metadata["containerimage.digest"] != str(built.image.digest)  # new layer blobs
    fresh = tmp_path / "fresh"
    loaded = load(pb, archive, fresh)
    assert loaded.returncode == 0, loaded.stderr
    assert str(Store.open(fresh).resolve(built.tag).config_digest) == built.image_id


def test_compression_of_the_stored_image(pb: Builder) -> None:
    built, _ = build(pb, "--compression", "zstd")
    store = Store.open(pb.store_root)
    image = store.load_image(store.resolve(built.tag).descriptor)
    assert {layer.descriptor.media_type for layer in image.layers} == {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    }
    assert str(image.id) == built.image_id


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "type=s3"], "unknown output type 's3'"),
        (["--push", "-o", "type=tar,dest=x.tar"], 'push and "tar" output can\'t be used'),
        (["-o", "type=local"], "output directory is required for local exporter"),
        (["-o", "type=registry"], "tag is needed when pushing to registry"),
        (["--compression", "zstd,level=99"], "want 0-22"),
        (["--provenance=true"], "only --provenance=false is accepted"),
    ],
)
def test_bad_outputs_fail_before_the_build(pb: Builder, args: list[str], message: str) -> None:
    context = pb.context({"Dockerfile": "FROM busybox\nRUN exit 9\n"}, name="bad")
    proc = pb.cli("build", *args, str(context))
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "exit 9" not in proc.stderr
