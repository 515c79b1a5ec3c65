"""pybuild's store and archives against the real skopeo and umoci (Debian packages).

The tools are required, not optional: ``make test`` installs them through
``scripts/setup-system.sh``; a missing tool fails with a message saying so.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.oci.layer import apply_layer
from builder.store import Store
from tests.conftest import require

pytestmark = pytest.mark.integration

REF = "docker.io/library/busybox:latest"
BUSYBOX = Path("/bin/busybox")
MTIME = 1_700_000_000


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: run `make test` (scripts/setup-system.sh installs it)"
            f" or `apt-get install {name}`"
        )
    return path


def _run(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}"
    return proc.stdout


def pybuild(root: Path, *argv: str) -> str:
    return _run(sys.executable, "-m", "builder", *argv, "--root", str(root))


def _rootfs_tar() -> bytes:
    """busybox with a few applet links, plus ownership, modes and a hardlink to compare."""
    if not BUSYBOX.is_file():
        pytest.fail("/bin/busybox is missing: install Debian's busybox-static (make test does)")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(info: tarfile.TarInfo, data: bytes | None = None) -> None:
            info.mtime = MTIME
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        for name, mode, owner in (
            ("bin", 0o755, 0),
            ("etc", 0o755, 0),
            ("home", 0o755, 0),
            ("home/user", 0o700, 1000),
            ("tmp", 0o1777, 0),
        ):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            info.uid = info.gid = owner
            add(info)
        binary = tarfile.TarInfo("bin/busybox")
        binary.mode = 0o755
        add(binary, BUSYBOX.read_bytes())
        for applet in ("sh", "ls", "cat", "echo"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            add(link)
        passwd = tarfile.TarInfo("etc/passwd")
        add(passwd, b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n")
        hard = tarfile.TarInfo("etc/passwd.bak")
        hard.type = tarfile.LNKTYPE
        hard.linkname = "etc/passwd"
        add(hard)
        secret = tarfile.TarInfo("home/user/.profile")
        secret.mode = 0o600
        secret.uid = secret.gid = 1000
        add(secret, b"export PS1='$ '\n")
    return buf.getvalue()


@dataclass(frozen=True, slots=True, kw_only=True)
class Imported:
    root: Path
    image_id: str
    manifest_digest: str
    diff_ids: list[str]
    layer_digests: list[str]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Imported:
    base = tmp_path_factory.mktemp("interop")
    tar = base / "rootfs.tar"
    tar.write_bytes(_rootfs_tar())
    root = base / "store"
    image_id = pybuild(root, "import", str(tar), "busybox:latest").strip()
    data = json.loads(pybuild(root, "inspect", "busybox"))[0]
    store = Store.open(root)
    (record,) = store.list_images()
    manifest = store.read_manifest(record.descriptor)
    assert data["Id"] == image_id
    return Imported(
        root=root,
        image_id=image_id,
        manifest_digest=data["Descriptor"]["digest"],
        diff_ids=data["RootFS"]["Layers"],
        layer_digests=[str(layer.digest) for layer in manifest.layers],
    )


def _sha256(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _skopeo_ids(transport: str) -> tuple[str, str, list[str]]:
    """(manifest digest, config digest, diff_ids) as skopeo reads them from ``transport``."""
    skopeo = _tool("skopeo")
    raw_manifest = _run(skopeo, "inspect", "--raw", transport)
    raw_config = _run(skopeo, "inspect", "--raw", "--config", transport)
    diff_ids = json.loads(raw_config)["rootfs"]["diff_ids"]
    return _sha256(raw_manifest), _sha256(raw_config), diff_ids


def test_skopeo_reads_the_store_as_an_oci_layout(imported: Imported) -> None:
    skopeo = _tool("skopeo")
    transport = f"oci:{imported.root}:{REF}"
    info = json.loads(_run(skopeo, "inspect", transport))
    assert info["Digest"] == imported.manifest_digest
    assert info["Layers"] == imported.layer_digests
    assert _skopeo_ids(transport) == (
        imported.manifest_digest,
        imported.image_id,
        imported.diff_ids,
    )


def test_skopeo_copies_pybuild_archives(imported: Imported, tmp_path: Path) -> None:
    skopeo = _tool("skopeo")
    docker_tar = tmp_path / "docker.tar"
    oci_tar = tmp_path / "oci.tar"
    pybuild(imported.root, "save", "busybox", "-o", str(docker_tar))
    pybuild(imported.root, "save", "--format", "oci", "busybox", "-o", str(oci_tar))
    _run(skopeo, "copy", "-q", f"docker-archive:{docker_tar}", f"oci:{tmp_path / 'a'}:bb")
    _run(skopeo, "copy", "-q", f"oci-archive:{oci_tar}", f"oci:{tmp_path / 'b'}:bb")
    # from the OCI archive nothing needs converting: every digest survives
    assert _skopeo_ids(f"oci:{tmp_path / 'b'}:bb") == (
        imported.manifest_digest,
        imported.image_id,
        imported.diff_ids,
    )
    # docker-archive -> oci: skopeo converts schema 2 to OCI and re-serialises the config
    # (dropping Docker-only fields such as "comment"), so only the content hashes (diff_ids)
    # and the run config stay the same; the distribution hashes change.
    diff_ids = _skopeo_ids(f"oci:{tmp_path / 'a'}:bb")[2]
    assert diff_ids == imported.diff_ids
    converted = json.loads(_run(skopeo, "inspect", "--raw", "--config", f"oci:{tmp_path}/a:bb"))
    original = json.loads(pybuild(imported.root, "inspect", "busybox"))[0]
    assert converted["config"] == original["Config"]
    assert converted["created"] == original["Created"]
    # and skopeo can read pybuild's archives directly
    assert _skopeo_ids(f"oci-archive:{oci_tar}")[0] == imported.manifest_digest
    assert _skopeo_ids(f"docker-archive:{docker_tar}")[1:] == (
        imported.image_id,
        imported.diff_ids,
    )


def test_pybuild_loads_what_skopeo_writes(imported: Imported, tmp_path: Path) -> None:
    skopeo = _tool("skopeo")
    source = f"oci:{imported.root}:{REF}"
    docker_tar = tmp_path / "skopeo-docker.tar"
    oci_tar = tmp_path / "skopeo-oci.tar"
    _run(skopeo, "copy", "-q", source, f"docker-archive:{docker_tar}:busybox:copied")
    _run(skopeo, "copy", "-q", source, f"oci-archive:{oci_tar}:copied")
    root = tmp_path / "store"
    assert pybuild(root, "load", "-i", str(docker_tar)) == "Loaded image: busybox:copied\n"
    data = json.loads(pybuild(root, "inspect", "busybox:copied"))[0]
    assert data["Id"] == imported.image_id
    assert data["RootFS"]["Layers"] == imported.diff_ids
    # skopeo's OCI archive names the image only by the tag "copied": it loads unnamed
    out = pybuild(root, "load", "-i", str(oci_tar))
    assert out == f"Loaded image ID: {imported.image_id}\n"
    pinned = json.loads(pybuild(root, "inspect", f"sha256:{imported.manifest_digest[7:]}"))[0]
    assert pinned["Descriptor"]["digest"] == imported.manifest_digest
    assert pinned["RootFS"]["Layers"] == imported.diff_ids
    assert pybuild(root, "fsck").startswith("ok: ")


def _tree(root: Path, *, owners: bool) -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            st = path.lstat()
            kind = stat.S_IFMT(st.st_mode)
            facts: list[object] = [kind, stat.S_IMODE(st.st_mode)]
            if owners:
                facts += [st.st_uid, st.st_gid]
            if stat.S_ISLNK(st.st_mode):
                facts.append(os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                facts += [hashlib.sha256(path.read_bytes()).hexdigest(), st.st_nlink, st.st_mtime]
            out[str(path.relative_to(root))] = tuple(facts)
    return out


def test_umoci_unpacks_the_same_tree_as_pybuild(imported: Imported, tmp_path: Path) -> None:
    umoci = _tool("umoci")
    root_user = require(os.geteuid() == 0, "root (to compare file owners)")
    bundle = tmp_path / "bundle"
    argv = [umoci, "unpack", "--image", f"{imported.root}:{REF}", str(bundle)]
    if not root_user:
        argv.insert(2, "--rootless")
    _run(*argv)
    store = Store.open(imported.root)
    (record,) = store.list_images()
    ours = tmp_path / "ours"
    ours.mkdir()
    for layer in store.load_image(record.descriptor).layers:
        with layer.open_compressed() as blob:
            apply_layer(blob, ours, expected_diff_id=layer.diff_id)
    theirs = _tree(bundle / "rootfs", owners=root_user)
    mine = _tree(ours, owners=root_user)
    assert sorted(mine) == sorted(theirs)
    assert mine == theirs
    assert mine["home/user/.profile"][1] == 0o600
    assert mine["tmp"][1] == 0o1777
