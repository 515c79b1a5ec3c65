"""Symlink breakouts, run against every caller of the one in-root mechanism.

Each caller resolves paths inside an image or context root through ``builder.fs.root``; the
same hostile tree is handed to all of them, so a hole in the shared walk (or a caller that
walks by itself again) fails here for every kind of access at once.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.context.sourcefs import DirectorySource, SourceFS
from builder.engine.chown import ChownResolver
from builder.engine.copy_dest import DestTree
from builder.engine.run import resolve_in_root
from builder.errors import BuildError
from builder.fs import paths
from builder.fs.root import Root
from builder.oci.layer_apply import apply_layer
from builder.runtime.users import read_file_in_root, resolve_user
from builder.snapshot.overlay import MountTarget, mkdir_in_root, prepare_mountpoints


@dataclass(frozen=True, slots=True)
class World:
    root: Path  # the image / context root
    host: Path  # a host directory beside it that nothing may touch
    scratch: Path  # where a caller may put its own output (a COPY layer directory)


@pytest.fixture
def world(tmp_path: Path) -> World:
    host = tmp_path / "outside"
    host.mkdir()
    (host / "secret").write_text("HOST SECRET")
    (host / "passwd").write_text("evil:x:0:0::/:/bin/sh\n")
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    (root / "outside").mkdir()
    (root / "outside" / "inside").write_text("in root")
    (root / "file").write_text("plain")
    os.symlink(str(host), root / "hostabs")  # the host path, read in-root: /tmp/.../outside
    os.symlink("/outside", root / "abs")
    os.symlink("../../../../../outside", root / "rel")
    os.symlink("../../../..", root / "dir" / "up")
    os.symlink("dir/up/rel", root / "deep")
    os.symlink("loop", root / "loop")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return World(root=root, host=host, scratch=scratch)


def _host_untouched(world: World) -> None:
    assert sorted(os.listdir(world.host)) == ["passwd", "secret"]
    assert (world.host / "secret").read_text() == "HOST SECRET"


# --- writers: create a directory at a path; return where it landed -------------------------


def _fs_mkdir_all(world: World, path: str) -> Path:
    with Root(world.root) as root:
        made = root.mkdir_all(path)
    made.close()
    return world.root.joinpath(*made.comps)


def _layer_apply(world: World, path: str) -> Path:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(path.strip("/") + "/")
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
    data.seek(0)
    apply_layer(data, world.root, same_owner=False)
    with Root(world.root) as root:
        return world.root.joinpath(*root.resolve(path).comps)


def _copy_destination(world: World, path: str) -> Path:
    tree = DestTree(world.scratch, world.root, now_ns=0)
    try:
        comps = tree.resolve(tuple(paths.split(path)))
        tree.mkdir_all(comps, mode=0o755, owner=None)
        tree.finish()
    finally:
        tree.close()
    return world.scratch.joinpath(*comps)


def _run_mount_target(world: World, path: str) -> Path:
    dests, _ = prepare_mountpoints(world.root, [MountTarget(destination=path)])
    return world.root / dests[0].lstrip("/")


def _workdir(world: World, path: str) -> Path:
    return world.root / mkdir_in_root(world.root, path).lstrip("/")


WRITERS: dict[str, Callable[[World, str], Path]] = {
    "fs.Root.mkdir_all": _fs_mkdir_all,
    "layer apply": _layer_apply,
    "COPY destination": _copy_destination,
    "RUN mount target": _run_mount_target,
    "WORKDIR (overlay mkdir)": _workdir,
}
ESCAPES = ["abs/x", "rel/x", "deep/x", "dir/up/rel/x", "dir/up/abs/x"]


@pytest.mark.parametrize("writer", list(WRITERS), ids=list(WRITERS))
@pytest.mark.parametrize("path", ESCAPES)
def test_writes_through_escaping_links_stay_in_root(world: World, writer: str, path: str) -> None:
    landed = WRITERS[writer](world, path)
    assert landed.name == "x"
    assert landed.parent.name == "outside"
    assert landed.parent.parent in (world.root, world.scratch)
    assert landed.is_dir()
    assert not landed.is_symlink()
    _host_untouched(world)


@pytest.mark.parametrize("writer", list(WRITERS), ids=list(WRITERS))
@pytest.mark.parametrize(
    ("path", "error"), [("file/x", "not a directory"), ("loop/x", "too many levels")]
)
def test_writes_through_files_and_loops_fail(
    world: World, writer: str, path: str, error: str
) -> None:
    with pytest.raises((BuildError, OSError), match=error):
        WRITERS[writer](world, path)
    _host_untouched(world)
    assert (world.root / "file").read_text() == "plain"


@pytest.mark.parametrize("writer", list(WRITERS), ids=list(WRITERS))
def test_a_host_path_is_a_path_inside_the_root(world: World, writer: str) -> None:
    landed = WRITERS[writer](world, "hostabs/x")
    base = world.scratch if writer == "COPY destination" else world.root
    assert landed == base.joinpath(*world.host.parts[1:], "x")
    assert landed.is_dir()
    _host_untouched(world)


# --- readers: read a file at a path; return its text or None -------------------------------


def _fs_read(world: World, path: str) -> str | None:
    with Root(world.root) as root:
        data = root.read(path, limit=1 << 20)
    return data.decode() if data is not None else None


def _context_source(world: World, path: str) -> str | None:
    with SourceFS(DirectorySource(root=world.root)) as fs:
        node = fs.resolve(path, follow=True)
        if node is None:
            return None
        fd = fs.open_file(node.comps)
    with os.fdopen(fd, "rb") as f:
        return f.read().decode()


def _run_bind_source(world: World, path: str) -> str | None:
    host = resolve_in_root(world.root, path)
    return host.read_text() if host is not None else None


def _user_file(world: World, path: str) -> str | None:
    return read_file_in_root(world.root, path)


READERS: dict[str, Callable[[World, str], str | None]] = {
    "fs.Root.read": _fs_read,
    "context source": _context_source,
    "RUN bind source": _run_bind_source,
    "user file read": _user_file,
}


@pytest.mark.parametrize("reader", list(READERS), ids=list(READERS))
@pytest.mark.parametrize("link", ["abs", "rel", "deep", "dir/up/rel", "hostabs"])
def test_reads_through_escaping_links_stay_in_root(world: World, reader: str, link: str) -> None:
    read = READERS[reader]
    assert read(world, f"{link}/secret") is None  # the host's file is never reached
    expected = None if link == "hostabs" else "in root"
    assert read(world, f"{link}/inside") == expected
    assert read(world, "file/x") is None
    _host_untouched(world)


# --- user lookups: /etc pointing out of the root --------------------------------------------


@pytest.mark.parametrize("etc", ["../outside", "../../../../outside", "/outside", "HOST"])
@pytest.mark.parametrize("lookup", ["USER", "COPY --chown"])
def test_user_lookup_never_reads_host_files(world: World, etc: str, lookup: str) -> None:
    os.symlink(str(world.host) if etc == "HOST" else etc, world.root / "etc")
    # /outside in the root has no passwd: "evil" exists only in the host's copy
    lookups = {
        "USER": lambda: resolve_user(world.root, "evil").uid,
        "COPY --chown": lambda: _chown_uid(world.root, "evil"),
    }
    with pytest.raises(BuildError, match="unable to find user evil"):
        lookups[lookup]()
    (world.root / "outside" / "passwd").write_text("evil:x:7:8::/:/bin/sh\n")
    if etc != "HOST":  # the in-root copy is found through the same links
        assert lookups[lookup]() == 7
    _host_untouched(world)
    assert stat.S_ISLNK((world.root / "etc").lstat().st_mode)


def _chown_uid(root: Path, name: str) -> int:
    owner = ChownResolver(root).resolve(name)
    assert owner is not None
    return owner.uid
