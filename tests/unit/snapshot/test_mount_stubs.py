"""Mount-point preparation and stub cleanup on plain directories (no mounts, no root needed).

The rootfs and the upper dir are the same directory here, so tests that keep pre-existing
empty directories clean with ``created`` only (``only_created``): in a real upper those
``parents`` are overlay copy-ups, exercised separately with explicit records.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import ExecutionError
from builder.fs.paths import clean_abs
from builder.snapshot.overlay import (
    MountStubs,
    MountTarget,
    StubParent,
    clean_upper,
    mkdir_in_root,
    overlay_extra_options,
    prepare_mountpoints,
)
from tests.conftest import require, try_setxattr


def only_created(stubs: MountStubs) -> MountStubs:
    return MountStubs(created=stubs.created)


def listing(root: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            out.append(str(Path(dirpath, name).relative_to(root)))
    return sorted(out)


def test_missing_targets_are_created_and_recorded(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    canonical, stubs = prepare_mountpoints(
        root,
        [
            MountTarget(destination="/proc"),
            MountTarget(destination="/etc/hosts", directory=False),
            MountTarget(destination="/run/secrets/tok", directory=False),
            MountTarget(destination="//cache/../cache/x/"),
        ],
    )
    assert canonical == ("/proc", "/etc/hosts", "/run/secrets/tok", "/cache/x")
    assert stubs.created == (
        ("proc",),
        ("etc", "hosts"),
        ("run",),
        ("run", "secrets"),
        ("run", "secrets", "tok"),
        ("cache",),
        ("cache", "x"),
    )
    assert [p.path for p in stubs.parents] == [("etc",)]
    assert (root / "etc" / "hosts").is_file()
    assert oct((root / "run" / "secrets").stat().st_mode & 0o777) == "0o755"
    clean_upper(root, only_created(stubs))
    assert listing(root) == ["etc"]
    clean_upper(root, stubs)  # etc/ is an empty, unchanged "copy-up" now: removed too
    assert listing(root) == []


def test_existing_targets_are_not_stubs(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc" / "hosts").write_text("")
    _, stubs = prepare_mountpoints(
        root,
        [MountTarget(destination="/proc"), MountTarget(destination="/etc/hosts", directory=False)],
    )
    assert stubs == MountStubs()
    clean_upper(root, stubs)
    assert listing(root) == ["etc", "etc/hosts", "proc"]


def test_symlinks_resolve_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink("/real", root / "abs")
    os.symlink("../../../../../../" + str(outside), root / "escape")
    canonical, stubs = prepare_mountpoints(
        root,
        [MountTarget(destination="/abs/m"), MountTarget(destination="/escape/m")],
    )
    assert canonical[0] == "/real/m"
    # the escaping link resolves in-root: to <root><outside path>, created inside the root
    assert canonical[1] == str(outside) + "/m"
    assert (root / str(outside).lstrip("/") / "m").is_dir()
    assert list(outside.iterdir()) == []
    clean_upper(root, only_created(stubs))
    assert listing(root) == ["abs", "escape", "real"]


def test_non_directory_on_the_path_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "file").write_text("x")
    with pytest.raises(ExecutionError, match="cannot mount on /file/x: 'file' is not a directory"):
        prepare_mountpoints(root, [MountTarget(destination="/file/x")])
    (root / "d").mkdir()
    with pytest.raises(ExecutionError, match="cannot mount a file on /d: it is a directory"):
        prepare_mountpoints(root, [MountTarget(destination="/d", directory=False)])
    with pytest.raises(ExecutionError, match="root directory is not a mount target"):
        prepare_mountpoints(root, [MountTarget(destination="/")])
    os.symlink("loop", root / "loop")
    with pytest.raises(ExecutionError, match="too many levels of symbolic links"):
        prepare_mountpoints(root, [MountTarget(destination="/loop/x")])


def test_cleanup_keeps_what_the_step_changed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    _, stubs = prepare_mountpoints(
        root,
        [
            MountTarget(destination="/a/b"),
            MountTarget(destination="/c", directory=False),
            MountTarget(destination="/d/e"),
        ],
    )
    (root / "a" / "other").write_text("made by the step")  # a/ is not empty any more
    (root / "c").write_text("written")  # the file stub got content
    os.rmdir(root / "d" / "e")
    os.symlink("/somewhere", root / "d" / "e")  # replaced by a symlink
    clean_upper(root, stubs)
    assert listing(root) == ["a", "a/other", "c", "d", "d/e"]


def test_cleanup_never_follows_a_replaced_parent(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    victim = tmp_path / "victim"
    (victim / "y").mkdir(parents=True)  # empty dir that a path-following cleaner would delete
    _, stubs = prepare_mountpoints(root, [MountTarget(destination="/x/y")])
    os.rename(root / "x", root / "x.old")
    os.symlink(str(victim), root / "x")
    clean_upper(root, stubs)
    assert (victim / "y").is_dir()
    assert os.path.islink(root / "x")


def test_copied_up_parents_are_removed_only_if_unchanged(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    for name in ("same", "chmodded", "nonempty", "opaque"):
        (upper / name).mkdir(parents=True)
    os.chmod(upper / "chmodded", 0o700)
    (upper / "nonempty" / "f").write_text("x")
    st = (upper / "same").stat()

    def parent(name: str) -> StubParent:
        return StubParent(path=(name,), mode=stat.S_IFDIR | 0o755, uid=st.st_uid, gid=st.st_gid)

    xattr = "trusted.overlay.opaque" if os.geteuid() == 0 else "user.overlay.opaque"
    opaque = require(try_setxattr(upper / "opaque", xattr), f"xattr {xattr} on {tmp_path}")
    stubs = MountStubs(parents=tuple(parent(n) for n in ("same", "chmodded", "nonempty", "opaque")))
    clean_upper(upper, stubs)
    expected = ["chmodded", "nonempty", "nonempty/f"]
    if opaque:
        expected.append("opaque")  # an opaque directory is a change, not a stub
    assert listing(upper) == expected


def test_parent_mtime_is_restored(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    _, stubs = prepare_mountpoints(root, [MountTarget(destination="/etc/hosts", directory=False)])
    (root / "etc" / "keep").write_text("x")
    os.utime(root / "etc", ns=(10**18, 10**18))
    clean_upper(root, stubs)
    assert (root / "etc").stat().st_mtime_ns == 10**18
    assert listing(root) == ["etc", "etc/keep"]


def test_merge_stubs() -> None:
    a = MountStubs(created=(("a",),), parents=(StubParent(path=("p",), mode=0, uid=0, gid=0),))
    b = MountStubs(
        created=(("a",), ("b",)),
        parents=(StubParent(path=("p",), mode=1, uid=0, gid=0),),
    )
    merged = a.merge(b)
    assert merged.created == (("a",), ("b",))
    assert [p.mode for p in merged.parents] == [0]


def test_mkdir_in_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "srv").mkdir(parents=True)
    os.symlink("/srv", root / "link")
    uid, gid = os.getuid(), os.getgid()
    assert mkdir_in_root(root, "/link/app/data", uid=uid, gid=gid) == "/srv/app/data"
    assert (root / "srv" / "app" / "data").is_dir()
    assert mkdir_in_root(root, "/", uid=uid, gid=gid) == "/"
    (root / "file").write_text("")
    with pytest.raises(ExecutionError, match="cannot create directory /file/x"):
        mkdir_in_root(root, "/file/x")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["a", "b", "c", "..", "."]), min_size=1, max_size=4),
        min_size=1,
        max_size=5,
    ),
    st.integers(min_value=0, max_value=10**6),
)
def test_prepare_then_clean_restores_the_tree(
    tmp_path_factory: pytest.TempPathFactory, paths: list[list[str]], salt: int
) -> None:
    root = tmp_path_factory.mktemp(f"prop{salt}")
    (root / "a").mkdir()
    (root / "a" / "keep").write_text("k")
    before = listing(root)
    targets = []
    for i, parts in enumerate(paths):
        dest = "/" + "/".join(parts)
        if clean_abs(dest) == "/" or clean_abs(dest) in ("/a/keep",):
            continue
        targets.append(MountTarget(destination=dest, directory=i % 2 == 0))
    try:
        _, stubs = prepare_mountpoints(root, targets)
    except ExecutionError:
        return  # a file stub is on the path of a later directory target: refused cleanly
    clean_upper(root, stubs)
    assert listing(root) == before


def test_extra_overlay_options_only_when_the_module_enables_them() -> None:
    options = overlay_extra_options()
    params = Path("/sys/module/overlay/parameters")
    for name in ("redirect_dir", "metacopy", "index"):
        try:
            on = (params / name).read_text().strip().upper() in ("Y", "ON", "1")
        except OSError:
            on = False
        assert (f"{name}=off" in options) is on
