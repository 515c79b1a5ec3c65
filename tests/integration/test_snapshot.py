"""Layer directories (overlay lower form) and overlayfs mounts (root required; never skipped)."""

from __future__ import annotations

import io
import os
import shutil
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest

from builder.digest import Digest
from builder.errors import DigestMismatchError, ExecutionError
from builder.oci.descriptor import Descriptor
from builder.oci.layer_apply import apply_layer, list_entries
from builder.oci.layer_write import LayerEntry
from builder.oci.tarformat import EntryType
from builder.snapshot import LayerDirs, Overlay, mounts_under
from builder.snapshot.overlay import bind_mount, mount_persistent, unmount
from builder.store import Store, StoreLayer

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _root_only() -> None:
    if os.geteuid() != 0:
        pytest.fail("overlayfs tests need root (CAP_SYS_ADMIN); run them as root", pytrace=False)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store")
    yield s
    assert mounts_under(tmp_path) == ()


def file(path: str, data: bytes = b"", mode: int = 0o644) -> LayerEntry:
    return LayerEntry(path=path, data=data, size=len(data), mode=mode, mtime_ns=10**18)


def directory(path: str, mode: int = 0o755) -> LayerEntry:
    return LayerEntry(path=path, type=EntryType.DIR, mode=mode, mtime_ns=10**18)


def tree(root: Path) -> dict[str, tuple[str, str]]:
    """A comparable snapshot of a tree: kind, mode and content/target of every entry."""
    out: dict[str, tuple[str, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            rel = str(full.relative_to(root))
            st = full.lstat()
            mode = oct(stat.S_IMODE(st.st_mode))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", mode)
            elif stat.S_ISCHR(st.st_mode):
                out[rel] = ("chr", f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}")
            else:
                out[rel] = ("file", mode + ":" + full.read_bytes().decode(errors="replace"))
    return out


STACK: tuple[tuple[LayerEntry, ...], ...] = (
    (
        directory("etc"),
        file("etc/passwd", b"root"),
        file("etc/group", b"g"),
        directory("opt"),
        directory("opt/app"),
        file("opt/app/old", b"old"),
        directory("var"),
        directory("var/cache"),
        file("var/cache/c", b"c"),
        file("replace-me", b"file"),
        LayerEntry(path="link", type=EntryType.SYMLINK, linkname="etc/passwd", mtime_ns=10**18),
    ),
    (
        directory("etc"),
        LayerEntry.whiteout("etc/group"),
        directory("opt"),
        directory("opt/app"),
        LayerEntry.opaque("opt/app"),
        file("opt/app/new", b"new"),
        LayerEntry.whiteout("var/cache"),
        LayerEntry.whiteout("replace-me"),
        directory("replace-me", 0o700),
        file("replace-me/inner", b"i"),
    ),
    (
        directory("etc"),
        file("etc/passwd", b"root2", 0o600),
        directory("var"),
        directory("var/cache"),
        file("var/cache/fresh", b"f"),
    ),
)


def write_stack(store: Store) -> list[StoreLayer]:
    return [store.write_layer(list(entries)) for entries in STACK]


# --------------------------------------------------------------------------- LayerDirs


def test_ensure_extracts_overlay_lower_form(store: Store) -> None:
    layers = write_stack(store)
    dirs = LayerDirs(store, durable=False)
    lowers = dirs.ensure(layers)
    assert lowers == tuple(
        store.snapshot_dir(tuple(la.diff_id for la in layers[: i + 1])) for i in range(3)
    )
    second = lowers[1]
    group = (second / "etc" / "group").lstat()
    assert stat.S_ISCHR(group.st_mode)
    assert group.st_rdev == 0
    assert os.getxattr(second / "opt" / "app", "trusted.overlay.opaque") == b"y"
    # a directory replacing a whited-out entry of the same layer hides the lower one
    assert os.getxattr(second / "replace-me", "trusted.overlay.opaque") == b"y"
    assert stat.S_ISCHR((second / "var" / "cache").lstat().st_mode)
    assert sorted(os.listdir(lowers[0])) == ["etc", "link", "opt", "replace-me", "var"]
    assert oct(lowers[0].stat().st_mode & 0o7777) == "0o755"


def test_overlay_of_layer_dirs_equals_sequential_apply(store: Store, tmp_path: Path) -> None:
    layers = write_stack(store)
    lowers = LayerDirs(store, durable=False).ensure(layers)
    expected = tmp_path / "applied"
    expected.mkdir()
    for layer in layers:
        with layer.open_compressed() as f:
            apply_layer(f, expected)
    with Overlay(tmp_path).mount(lowers, None) as merged:
        assert tree(merged) == tree(expected)
        assert (merged / "etc" / "passwd").read_bytes() == b"root2"
        assert not (merged / "etc" / "group").exists()
        assert sorted(os.listdir(merged / "opt" / "app")) == ["new"]
        assert sorted(os.listdir(merged / "var" / "cache")) == ["fresh"]
        with pytest.raises(OSError, match="Read-only file system"):
            (merged / "x").write_text("no")


def test_ensure_is_idempotent_and_concurrent_callers_extract_once(store: Store) -> None:
    (layer,) = write_stack(store)[:1]
    opened = []
    lock = threading.Lock()

    @dataclass(frozen=True)
    class Counting:
        inner: StoreLayer

        @property
        def descriptor(self) -> Descriptor:
            return self.inner.descriptor

        @property
        def diff_id(self) -> Digest:
            return self.inner.diff_id

        def open_compressed(self) -> BinaryIO:
            with lock:
                opened.append(1)
            return self.inner.open_compressed()

    dirs = LayerDirs(store, durable=False)
    results: list[tuple[Path, ...]] = []
    threads = [
        threading.Thread(target=lambda: results.append(dirs.ensure([Counting(layer)])))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6
    assert len(set(results)) == 1
    assert len(opened) == 1
    assert dirs.ensure([Counting(layer)]) == results[0]
    assert len(opened) == 1


def test_ensure_rejects_wrong_diff_id_and_keeps_nothing(store: Store) -> None:
    (layer,) = write_stack(store)[:1]

    @dataclass(frozen=True)
    class Lying:
        diff_id: Digest

        @property
        def descriptor(self) -> Descriptor:
            return layer.descriptor

        def open_compressed(self) -> BinaryIO:
            return layer.open_compressed()

    wrong = Digest.of_bytes(b"something else")
    dirs = LayerDirs(store, durable=False)
    with pytest.raises(DigestMismatchError):
        dirs.ensure([Lying(diff_id=wrong)])
    assert not dirs.has((wrong,))
    assert [p.name for p in dirs.root.iterdir()] == []


def test_durable_extraction_and_adopt(store: Store, tmp_path: Path) -> None:
    layers = write_stack(store)
    dirs = LayerDirs(store)  # durable: syncfs before rename
    lowers = dirs.ensure(layers[:1])
    with dirs.scratch_dir() as upper:
        assert oct(upper.stat().st_mode & 0o7777) == "0o755"
        assert list(upper.iterdir()) == []
        with Overlay().mount(lowers, upper) as merged:
            (merged / "new").write_text("n")
            os.unlink(merged / "etc" / "group")
        new = store.write_layer(upper, overlay=True)
        with new.open_compressed() as f:
            assert [h.name for h in list_entries(f)] == ["etc/", "etc/.wh.group", "new"]
        chain = (layers[0].diff_id, new.diff_id)
        adopted = dirs.adopt(chain, upper)
        assert not upper.exists()
    assert adopted == store.snapshot_dir(chain)
    assert dirs.ensure([layers[0], new]) == (lowers[0], adopted)
    with dirs.scratch_dir() as again:
        (again / "other").write_text("x")
        assert dirs.adopt(chain, again) == adopted  # first one wins, duplicate discarded
        assert not again.exists()
    assert (adopted / "new").read_text() == "n"
    assert dirs.remove(chain)
    assert not dirs.has(chain)


def test_scratch_dir_is_removed_on_error(store: Store) -> None:
    dirs = LayerDirs(store, durable=False)
    seen: list[Path] = []

    def body() -> None:
        with dirs.scratch_dir() as scratch:
            seen.append(scratch)
            (scratch / "sub").mkdir()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        body()
    assert not seen[0].exists()


def test_reap_removes_only_abandoned_temp_dirs(store: Store, tmp_path: Path) -> None:
    dirs = LayerDirs(store, durable=False)
    abandoned = dirs.root / ".scratch-dead"
    (abandoned / "m").mkdir(parents=True)
    source = tmp_path / "src"
    source.mkdir()
    (source / "precious").write_text("keep")
    stack = bind_mount(source, abandoned / "m", readonly=True)
    stack.__enter__()  # simulate a build killed while a mount was live
    try:
        with dirs.scratch_dir() as alive:
            removed = dirs.reap()
            assert removed == (abandoned,)
            assert alive.exists()
        assert (source / "precious").read_text() == "keep"
        assert mounts_under(dirs.root) == ()
    finally:
        if mounts_under(abandoned):
            stack.__exit__(None, None, None)


# --------------------------------------------------------------------------- Overlay


def make_layer_dirs(base: Path, count: int) -> list[Path]:
    out = []
    for i in range(count):
        d = base / f"a-rather-long-layer-directory-name-to-overflow-a-page-{i:04d}"
        d.mkdir(parents=True)
        (d / f"f{i}").write_text(str(i))
        (d / "common").write_text(str(i))
        out.append(d)
    return out


def test_overlay_with_120_lowers(tmp_path: Path) -> None:
    lowers = make_layer_dirs(tmp_path / "layers", 120)
    assert sum(len(str(p)) + 1 for p in lowers) > 4096  # absolute paths would not fit a page
    os.mknod(lowers[-1] / "f3", stat.S_IFCHR, os.makedev(0, 0))  # top layer deletes f3
    before = mounts_under(tmp_path)
    with Overlay(tmp_path).mount(lowers, None) as merged:
        names = set(os.listdir(merged))
        assert names == {f"f{i}" for i in range(120) if i != 3} | {"common"}
        assert (merged / "common").read_text() == "119"
        assert (merged / "f0").read_text() == "0"
        assert len(mounts_under(tmp_path)) == len(before) + 1
    assert mounts_under(tmp_path) == before
    assert [p.name for p in tmp_path.iterdir()] == ["layers"]  # private dir removed


def test_overlay_upper_gets_changes_and_whiteouts(tmp_path: Path) -> None:
    lowers = make_layer_dirs(tmp_path / "layers", 3)
    (lowers[0] / "dir").mkdir()
    (lowers[0] / "dir" / "lower-only").write_text("x")
    upper = tmp_path / "upper"
    upper.mkdir()
    with Overlay().mount(lowers, upper) as merged:
        (merged / "common").write_text("changed")
        os.unlink(merged / "f1")
        shutil.rmtree(merged / "dir")
        (merged / "dir").mkdir()
        (merged / "dir" / "fresh").write_text("y")
    assert (upper / "common").read_text() == "changed"
    assert stat.S_ISCHR((upper / "f1").lstat().st_mode)
    assert os.getxattr(upper / "dir", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(upper)) == ["common", "dir", "f1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layers", "upper"]


def _super_options(mountpoint: Path) -> list[str]:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(mountpoint):
            return fields[fields.index("-") + 3].split(",")
    raise AssertionError(f"{mountpoint} is not mounted")


def test_a_step_overlay_is_volatile_and_a_container_root_is_not(tmp_path: Path) -> None:
    lowers = make_layer_dirs(tmp_path / "layers", 1)
    upper = tmp_path / "upper"
    upper.mkdir()
    with Overlay().mount(lowers, upper) as merged:
        # unmounting a step's overlay must not sync the whole upper filesystem
        assert {"volatile", "fsync=volatile"} & set(_super_options(merged))  # 6.x shows the latter
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layers", "upper"]  # work dir gone
    root, work = tmp_path / "root", tmp_path / "work"
    root.mkdir()
    work.mkdir()
    container_upper = tmp_path / "cupper"
    container_upper.mkdir()
    mount_persistent(lowers, container_upper, work_parent=work, merged=root)
    try:
        options = set(_super_options(root))
        assert not {"volatile", "fsync=volatile"} & options  # a container's writes outlive a crash
    finally:
        unmount(str(root))


def test_layer_from_upper_lists_the_right_entries(store: Store, tmp_path: Path) -> None:
    lowers = make_layer_dirs(tmp_path / "layers", 2)
    (lowers[0] / "dir").mkdir()
    (lowers[0] / "dir" / "old").write_text("x")
    upper = tmp_path / "upper"
    upper.mkdir()
    with Overlay().mount(lowers, upper) as merged:
        os.unlink(merged / "f0")
        shutil.rmtree(merged / "dir")
        (merged / "dir").mkdir()
        (merged / "dir" / "new").write_text("n")
        (merged / "added").write_text("a")
    layer = store.write_layer(upper, overlay=True)
    with layer.open_compressed() as f:
        entries = [(h.name, h.type) for h in list_entries(f)]
    assert entries == [
        (".wh.f0", EntryType.FILE),
        ("added", EntryType.FILE),
        ("dir/", EntryType.DIR),
        ("dir/.wh..wh..opq", EntryType.FILE),
        ("dir/new", EntryType.FILE),
    ]
    raw = io.BytesIO()
    with layer.open_compressed() as f:
        raw.write(f.read())
    assert b"trusted.overlay" not in raw.getvalue()


def test_overlay_unmounts_when_the_body_raises(tmp_path: Path) -> None:
    lowers = make_layer_dirs(tmp_path / "layers", 2)
    upper = tmp_path / "upper"
    upper.mkdir()
    before = mounts_under(tmp_path)

    def body() -> None:
        with Overlay().mount(lowers, upper) as merged:
            (merged / "x").write_text("1")
            assert len(mounts_under(tmp_path)) == len(before) + 1
            raise ValueError("inside")

    with pytest.raises(ValueError, match="inside"):
        body()
    assert mounts_under(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layers", "upper"]


def test_busy_overlay_is_detached(tmp_path: Path) -> None:
    lowers = make_layer_dirs(tmp_path / "layers", 1)
    before = mounts_under(tmp_path)
    with Overlay(tmp_path).mount(lowers, None) as merged:
        fd = os.open(merged / "f0", os.O_RDONLY)  # keeps the mount busy
    try:
        assert mounts_under(tmp_path) == before  # lazily detached, not left mounted
        assert os.read(fd, 10) == b"0"
    finally:
        os.close(fd)


def test_scratch_overlays(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    with Overlay().mount([], upper) as merged:
        assert os.listdir(merged) == []
        (merged / "a").write_text("a")
    assert os.listdir(upper) == ["a"]
    with Overlay(tmp_path).mount([], None) as merged:
        assert os.listdir(merged) == []
    single = make_layer_dirs(tmp_path / "one", 1)
    os.mknod(single[0] / "gone", stat.S_IFCHR, os.makedev(0, 0))
    with Overlay(tmp_path).mount(single, None) as merged:
        assert sorted(os.listdir(merged)) == ["common", "f0"]  # whiteout not visible
    assert mounts_under(tmp_path) == ()


def test_too_many_lowers_is_a_clear_error(tmp_path: Path) -> None:
    lowers = make_layer_dirs(tmp_path / "layers", 300)
    with (
        pytest.raises(ExecutionError, match=r"too many layers to mount \(300\)"),
        Overlay(tmp_path).mount(lowers, None),
    ):
        pass
    assert mounts_under(tmp_path) == ()
    assert [p.name for p in tmp_path.iterdir()] == ["layers"]
