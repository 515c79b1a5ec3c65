"""End to end with the real busybox binary: import, images, inspect, history, tag, save, load,
rmi, prune and fsck, each run as ``python -m builder`` the way a user runs ``pybuild``."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from builder.oci.layer import apply_layer
from builder.store import Store
from builder.units import human_size

pytestmark = pytest.mark.integration

BUSYBOX = Path("/bin/busybox")
PASSWD = b"root:x:0:0:root:/root:/bin/sh\n"


def pybuild(root: Path, *argv: str, rc: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "builder", *argv, "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == rc, f"pybuild {' '.join(argv)}: {proc.returncode}\n{proc.stderr}"
    return proc


def _rootfs(path: Path) -> tuple[bytes, int]:
    """A busybox rootfs: the binary, a symlink per applet, /etc/passwd. (tar, content bytes)"""
    if not BUSYBOX.is_file():
        pytest.fail("/bin/busybox is missing: install Debian's busybox-static (make test does)")
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "sh" in applets
    binary = BUSYBOX.read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("bin", "etc", "root", "tmp"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        info = tarfile.TarInfo("bin/busybox")
        info.mode = 0o755
        info.size = len(binary)
        tar.addfile(info, io.BytesIO(binary))
        for applet in sorted(set(applets) - {"busybox"}):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(PASSWD)
        tar.addfile(info, io.BytesIO(PASSWD))
    data = buf.getvalue()
    path.write_bytes(data)
    return data, len(binary) + len(PASSWD)


def _rows(text: str) -> list[list[str]]:
    return [re.split(r"\s{3,}", line.rstrip()) for line in text.splitlines()[1:]]


def test_busybox_image_lifecycle(tmp_path: Path) -> None:
    root = tmp_path / "store"
    tar, content = _rootfs(tmp_path / "rootfs.tar")

    # import: the printed ID is the config digest; the layer's diff_id is the tar's sha256
    out = pybuild(
        root, "import", str(tmp_path / "rootfs.tar"), "busybox:latest", "-c", 'CMD ["sh"]'
    )
    image_id = out.stdout.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id)
    data = json.loads(pybuild(root, "inspect", "busybox").stdout)[0]
    assert data["Id"] == image_id
    assert data["RootFS"]["Layers"] == ["sha256:" + hashlib.sha256(tar).hexdigest()]
    assert data["Config"] == {"Cmd": ["sh"]}
    assert data["Size"] == content
    manifest_digest = data["Descriptor"]["digest"]
    assert data["RepoDigests"] == [f"busybox@{manifest_digest}"]

    images = pybuild(root, "images", "--digests")
    (row,) = _rows(images.stdout)
    assert row[:4] == ["busybox", "latest", manifest_digest, image_id[7:19]]
    assert row[5] == human_size(content)

    history = pybuild(root, "history", "busybox:latest")
    (entry,) = _rows(history.stdout)
    assert entry[0] == image_id[7:19]
    assert entry[-2:] == [human_size(content), "Imported from -"]

    # tag, then save both names in one docker-archive
    pybuild(root, "tag", "busybox", "busybox:1.36")
    assert [r[:2] for r in _rows(pybuild(root, "images").stdout)] == [
        ["busybox", "1.36"],
        ["busybox", "latest"],
    ]
    archive = tmp_path / "busybox.tar"
    pybuild(root, "save", "-o", str(archive), "busybox")
    other = tmp_path / "other"
    loaded = pybuild(other, "load", "-i", str(archive))
    assert loaded.stdout == "Loaded image: busybox:1.36\nLoaded image: busybox:latest\n"
    assert json.loads(pybuild(other, "inspect", "busybox:1.36").stdout)[0]["Id"] == image_id
    # (the archive's own index.json, manifest.json, ... stay as loose blobs until a prune)
    assert re.fullmatch(r"ok: \d+ blobs, 2 images verified\n", pybuild(other, "fsck").stdout)

    # the loaded image unpacks to a working busybox
    store = Store.open(other)
    image = store.load_image(store.resolve("busybox:1.36").descriptor)
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    for layer in image.layers:
        with layer.open_compressed() as blob:
            apply_layer(blob, rootfs, expected_diff_id=layer.diff_id)
    assert (rootfs / "bin" / "sh").readlink() == Path("busybox")
    hello = subprocess.run(
        [str(rootfs / "bin" / "busybox"), "echo", "hello"], capture_output=True, check=True
    )
    assert hello.stdout == b"hello\n"

    # rmi: a name goes first; the last name takes the image with it
    assert pybuild(root, "rmi", "busybox:1.36").stdout == "Untagged: busybox:1.36\n"
    assert pybuild(root, "rmi", "busybox").stdout == (
        f"Untagged: busybox:latest\nDeleted: {image_id}\n"
    )
    assert pybuild(root, "images", "-q").stdout == ""
    gone = pybuild(root, "inspect", "busybox", rc=1)
    assert gone.stderr == "Error: No such image: busybox\n"

    # prune reclaims every blob; fsck agrees the store is clean and empty
    blobs = list((root / "blobs" / "sha256").iterdir())
    freed = sum(p.stat().st_size for p in blobs)
    pruned = pybuild(root, "prune", "-f")
    assert pruned.stdout == f"Total reclaimed space: {human_size(freed, 4)}\n"
    assert list((root / "blobs" / "sha256").iterdir()) == []
    assert pybuild(root, "fsck").stdout == "ok: 0 blobs, 0 images verified\n"
