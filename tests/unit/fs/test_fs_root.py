"""``builder.fs.root``: the one in-root walk, tested directly (callers: test_fs_breakouts)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.fs.root import (
    FileTooLargeError,
    NotRegularFileError,
    Root,
    resolve_components,
)


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "dir" / "sub").mkdir(parents=True)
    (r / "file").write_text("in root")
    os.symlink("/dir", r / "abs")
    os.symlink("../../../..", r / "dir" / "up")
    os.symlink("sub", r / "dir" / "rel")
    os.symlink("loop", r / "loop")
    os.symlink("/missing/x", r / "dangling")
    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "secret").write_text("host")
    os.symlink("../host", r / "escape")
    return r


@pytest.mark.parametrize(
    ("path", "comps", "exists"),
    [
        ("/", (), True),
        ("dir/sub", ("dir", "sub"), True),
        ("abs/sub", ("dir", "sub"), True),
        ("dir/rel", ("dir", "sub"), True),
        ("dir/up/dir", ("dir",), True),  # .. clamped at the root
        ("../../../dir/./sub/", ("dir", "sub"), True),
        ("escape/secret", ("host", "secret"), False),  # the in-root /host, not the host's
        ("dangling", ("missing", "x"), False),
        ("missing/../dir", ("dir",), True),  # a missing component cancels lexically
        ("missing/x/y", ("missing", "x", "y"), False),
    ],
)
def test_resolve(root: Path, path: str, comps: tuple[str, ...], exists: bool) -> None:
    with Root(root) as r:
        entry = r.resolve(path)
    assert entry.comps == comps
    assert (entry.st is not None) is exists
    assert entry.found <= len(comps)
    assert entry.path == "/" + "/".join(comps)


def test_resolve_without_following_the_final_link(root: Path) -> None:
    with Root(root) as r:
        entry = r.resolve("dir/rel", follow_final=False)
        assert entry.comps == ("dir", "rel")
        assert entry.st is not None
        assert stat.S_ISLNK(entry.st.st_mode)
        assert r.resolve("dir/rel/", follow_final=False).comps == ("dir", "rel")


def test_walk_errors(root: Path) -> None:
    with Root(root) as r:
        with pytest.raises(NotADirectoryError, match="'file' is not a directory"):
            r.resolve("file/x")
        with pytest.raises(OSError, match="too many levels of symbolic links") as info:
            r.resolve("loop")
        assert info.value.errno == errno.ELOOP
        assert r.resolve("file/..").comps == ()  # lexical, as every caller had it


def test_read_is_bounded_and_regular_only(root: Path, tmp_path: Path) -> None:
    os.mkfifo(root / "fifo")
    (root / "big").write_bytes(b"x" * 100)
    with Root(root) as r:
        assert r.read("escape/../file", limit=100) == b"in root"
        assert r.read("escape/secret", limit=100) is None
        assert r.read("file/x", limit=100) is None
        with pytest.raises(NotRegularFileError):
            r.read("fifo", limit=100)  # a naive open would block
        with pytest.raises(NotRegularFileError):
            r.read("dir", limit=100)
        with pytest.raises(FileTooLargeError):
            r.read("big", limit=99)
        assert r.read("big", limit=100) == b"x" * 100
    assert (tmp_path / "host" / "secret").read_text() == "host"


def test_mkdir_all_creates_in_root_with_owner(root: Path, tmp_path: Path) -> None:
    me = (os.getuid(), os.getgid())
    with Root(root) as r:
        made = r.mkdir_all("escape/new/deep", mode=0o750, owner=me)
        try:
            assert made.comps == ("host", "new", "deep")
            assert made.created == (("host",), ("host", "new"), ("host", "new", "deep"))
            assert _fd_path(made.fd) == str(root / "host" / "new" / "deep")
        finally:
            made.close()
        again = r.mkdir_all("/host/new/deep")
        again.close()
        assert again.created == ()
        with pytest.raises(NotADirectoryError):
            r.mkdir_all("file")
        with pytest.raises(NotADirectoryError):
            r.mkdir_all("file/x")
    assert sorted(os.listdir(tmp_path / "host")) == ["secret"]
    assert stat.S_IMODE((root / "host" / "new").stat().st_mode) == 0o750 & ~_umask()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_open_dir_refuses_symlinks_in_canonical_paths(root: Path) -> None:
    with Root(root) as r:
        # canonical paths never hold a symlink: refused (ELOOP/ENOTDIR), not followed
        with pytest.raises(OSError, match=r"Too many levels|Not a directory"):
            r.open_dir(("abs",))
        fd = r.open_dir(("dir", "sub"))
        try:
            assert _fd_path(fd) == str(root / "dir" / "sub")
        finally:
            os.close(fd)


def test_base_clamps_resolution_in_a_view() -> None:
    """The algorithm over any view (DestTree's layer-on-rootfs): ``base`` is the floor."""
    links = {("a", "l"): "../../../x", ("a", "abs"): "/y"}
    dirs = {(), ("a",), ("a", "x"), ("a", "y")}

    def lstat(comps: tuple[str, ...]) -> os.stat_result | None:
        if comps in links:
            return os.stat_result((stat.S_IFLNK | 0o777, 0, 0, 1, 0, 0, 0, 0, 0, 0))
        if comps in dirs:
            return os.stat_result((stat.S_IFDIR | 0o755, 0, 0, 1, 0, 0, 0, 0, 0, 0))
        return None

    got = resolve_components(["l", "f"], lstat=lstat, readlink=links.__getitem__, base=("a",))
    assert got.comps == ("a", "x", "f")
    assert got.st is None
    assert got.found == 2
    got = resolve_components(["abs"], lstat=lstat, readlink=links.__getitem__, base=("a",))
    assert got.comps == ("a", "y")
    assert got.st is not None


# --- property: whatever the links, nothing resolved or opened is outside the root -----------

NAMES = st.sampled_from(["a", "b", "c"])
TARGETS = st.sampled_from(
    ["..", "../..", "/", "/a", "../b", "a/../../..", "/../..", ".", "c/..", "HOST", "HOST/x"]
)
PATHS = st.lists(st.sampled_from(["a", "b", "c", "..", ".", ""]), max_size=8).map("/".join)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    links=st.lists(st.tuples(st.lists(NAMES, min_size=1, max_size=3), TARGETS), max_size=6),
    path=PATHS,
    follow=st.booleans(),
)
def test_resolve_never_leaves_the_root(
    tmp_path_factory: pytest.TempPathFactory,
    links: list[tuple[list[str], str]],
    path: str,
    follow: bool,
) -> None:
    base = tmp_path_factory.mktemp("prop")
    host = base / "host"
    host.mkdir()
    root = base / "root"
    root.mkdir()
    for parts, target in links:  # build the tree with plain paths: never through a link
        parent = root
        for name in parts[:-1]:
            parent = parent / name
            if os.path.islink(parent):
                break
            if not os.path.lexists(parent):
                parent.mkdir()
        else:
            link = parent / parts[-1]
            if parent.is_dir() and not os.path.lexists(link):
                os.symlink(target.replace("HOST", str(host)), link)
    real_root = os.path.realpath(root)
    errors: list[int | None] = []
    with Root(root) as r:
        try:
            entry = r.resolve(path, follow_final=follow)
        except (NotADirectoryError, OSError) as exc:
            errors.append(exc.errno)
            entry = None
        if entry is None:
            assert errors in ([errno.ELOOP], [errno.ENOTDIR])
            return
        assert all(c not in ("", ".", "..") for c in entry.comps)
        fd = r.open_dir(entry.comps[: entry.found if entry.st is None else len(entry.comps) - 1])
        try:
            where = _fd_path(fd)
            assert where == real_root or where.startswith(real_root + "/")
        finally:
            os.close(fd)
        if entry.st is not None and stat.S_ISDIR(entry.st.st_mode):
            made = r.mkdir_all(path)
            try:
                assert _fd_path(made.fd).startswith(real_root)
                assert made.created == ()
            finally:
                made.close()
    assert os.listdir(host) == []
