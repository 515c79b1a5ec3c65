"""SECURITY.md §3 layer-extraction checklist: every hostile archive either fails with a
``LayerError`` naming the entry, or is contained in the rootfs. Each case asserts that nothing
outside the rootfs changed (a sentinel tree beside it, including a ``rootfs-evil`` sibling)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from tarcraft import build_tar, in_root, tree_state

from builder.errors import LayerError
from builder.oci.layer import apply_layer


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    """``(rootfs, outside)``; ``outside`` holds sentinels a breakout would touch."""
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host secret")
    (outside / "secret").chmod(0o600)
    (outside / "dir").mkdir()
    (outside / "dir" / "keep").write_text("keep me")
    evil = tmp_path / "rootfs-evil"
    evil.mkdir()
    (evil / "secret").write_text("sibling secret")
    return rootfs, outside


def _outside_state(tmp: Path) -> dict[str, tuple[int, int, int, str]]:
    state = tree_state(tmp)
    return {k: v for k, v in state.items() if not k.startswith("rootfs/") and k != "rootfs"}


def _apply(rootfs: Path, data: bytes) -> None:
    apply_layer(io.BytesIO(data), rootfs)


def _check(
    world: tuple[Path, Path],
    layers: list[bytes],
    *,
    error: str | None,
    setup: Callable[[Path, Path], None] | None = None,
) -> Path:
    rootfs, outside = world
    if setup is not None:
        setup(rootfs, outside)
    before = _outside_state(rootfs.parent)
    for data in layers[:-1]:
        _apply(rootfs, data)
    if error is None:
        _apply(rootfs, layers[-1])
    else:
        with pytest.raises(LayerError, match=error):
            _apply(rootfs, layers[-1])
    assert _outside_state(rootfs.parent) == before
    return rootfs


# -- names ----------------------------------------------------------------------------------


def test_dotdot_name_is_refused(world: tuple[Path, Path]) -> None:
    data = build_tar([("file", "../outside/dotdot", "pwn")])
    _check(world, [data], error=r"'\.\./outside/dotdot'.*escapes the root")
    assert not (world[1] / "dotdot").exists()


def test_slash_dotdot_name_is_refused(world: tuple[Path, Path]) -> None:
    data = build_tar([("file", "/../outside/slash-dotdot", "pwn")])
    _check(world, [data], error="slash-dotdot")


def test_inner_dotdot_name_is_refused(world: tuple[Path, Path]) -> None:
    data = build_tar([("dir", "a"), ("file", "a/../../outside/x", "pwn")])
    _check(world, [data], error="escapes the root")


def test_absolute_name_is_refused(world: tuple[Path, Path]) -> None:
    target = str(world[1] / "abs")
    data = build_tar([("file", target, "pwn")])
    _check(world, [data], error="absolute path")
    assert not Path(target).exists()


# -- symlinks -------------------------------------------------------------------------------


def test_write_through_absolute_symlink_stays_in_root(world: tuple[Path, Path]) -> None:
    rootfs, outside = world
    data = build_tar([("symlink", "x", str(outside / "dir")), ("file", "x/owned", "pwn")])
    _check(world, [data], error=None)
    landed = rootfs / str(outside / "dir").lstrip("/") / "owned"
    assert landed.read_text() == "pwn"
    assert (rootfs / "x").is_symlink()


def test_cross_layer_symlink_then_write(world: tuple[Path, Path]) -> None:
    """GNU tar CVE-2025-45582: L1 plants ``x -> ../../../../tmp/pwn``, L2 writes ``x/owned``."""
    rootfs, _ = world
    l1 = build_tar([("symlink", "x", "../../../../tmp/pwn")])
    l2 = build_tar([("file", "x/owned", "pwn")])
    _check(world, [l1, l2], error=None)
    assert (rootfs / "tmp" / "pwn" / "owned").read_text() == "pwn"


def test_symlink_parent_relative_escape_is_clamped(world: tuple[Path, Path]) -> None:
    rootfs, _ = world
    data = build_tar(
        [("dir", "a"), ("symlink", "a/up", "../../../outside"), ("file", "a/up/secret", "x")]
    )
    _check(world, [data], error=None)
    assert (rootfs / "outside" / "secret").read_text() == "x"


def test_symlink_loop_is_refused(world: tuple[Path, Path]) -> None:
    data = build_tar([("symlink", "a", "b"), ("symlink", "b", "a"), ("file", "a/x", "x")])
    _check(world, [data], error="too many levels of symbolic links")


def test_symlink_to_file_as_parent_is_refused(world: tuple[Path, Path]) -> None:
    data = build_tar([("file", "f", "x"), ("symlink", "l", "f"), ("file", "l/x", "x")])
    _check(world, [data], error="not a directory")


# -- hardlinks ------------------------------------------------------------------------------


def test_hardlink_to_sibling_prefix_dir_is_refused(world: tuple[Path, Path]) -> None:
    """moby TestUntarSiblingPrefixContained: ``rootfs`` vs ``rootfs-evil``."""
    data = build_tar([("link", "stolen", "../rootfs-evil/secret")])
    _check(world, [data], error="hardlink target")
    assert not (world[0] / "stolen").exists()


def test_hardlink_absolute_host_target_is_refused(world: tuple[Path, Path]) -> None:
    data = build_tar([("link", "stolen", str(world[1] / "secret"))])
    _check(world, [data], error="absolute path")


def test_hardlink_through_symlink_to_host_is_contained(world: tuple[Path, Path]) -> None:
    rootfs, outside = world
    data = build_tar([("symlink", "d", str(outside)), ("link", "stolen", "d/secret")])
    _check(world, [data], error="not found")
    assert not (rootfs / "stolen").exists()


def test_hardlink_to_directory_is_refused(world: tuple[Path, Path]) -> None:
    data = build_tar([("dir", "d"), ("link", "l", "d")])
    _check(world, [data], error="not linkable")


def test_hardlink_to_symlink_links_the_symlink(world: tuple[Path, Path]) -> None:
    rootfs, outside = world
    data = build_tar([("symlink", "s", str(outside / "secret")), ("link", "h", "s")])
    _check(world, [data], error=None)
    assert (rootfs / "h").is_symlink()
    assert os.readlink(rootfs / "h") == str(outside / "secret")


# -- metadata through links (CVE-2021-32760 shape) ------------------------------------------


def test_file_entry_replaces_symlink_not_its_target(world: tuple[Path, Path]) -> None:
    rootfs, outside = world

    def setup(root: Path, out: Path) -> None:
        (root / "link").symlink_to(out / "secret")

    data = build_tar([("file", "link", "new", "4777")])
    _check(world, [data], error=None, setup=setup)
    assert not (rootfs / "link").is_symlink()
    assert stat.S_IMODE((outside / "secret").stat().st_mode) == 0o600
    assert (outside / "secret").read_text() == "host secret"


def test_dir_entry_replaces_symlink_to_host_dir(world: tuple[Path, Path]) -> None:
    rootfs, outside = world

    def setup(root: Path, out: Path) -> None:
        (root / "d").symlink_to(out / "dir")

    data = build_tar([("dir", "d", "0777"), ("file", "d/keep", "overwritten")])
    _check(world, [data], error=None, setup=setup)
    assert (rootfs / "d").is_dir()
    assert not (rootfs / "d").is_symlink()
    assert (outside / "dir" / "keep").read_text() == "keep me"


def test_fifo_mode_not_applied_through_symlink(world: tuple[Path, Path]) -> None:
    rootfs, _outside = world

    def setup(root: Path, out: Path) -> None:
        (root / "p").symlink_to(out / "secret")

    data = build_tar([("fifo", "p")])
    _check(world, [data], error=None, setup=setup)
    assert stat.S_ISFIFO((rootfs / "p").lstat().st_mode)


# -- whiteouts ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [".wh.", ".wh..", ".wh...", "etc/.wh.."])
def test_malformed_whiteout_is_refused(world: tuple[Path, Path], name: str) -> None:
    def setup(root: Path, out: Path) -> None:
        (root / "etc").mkdir()
        (root / "etc" / "passwd").write_text("inside")

    _check(world, [build_tar([("file", name, "")])], error="invalid whiteout", setup=setup)
    assert (world[0] / "etc" / "passwd").read_text() == "inside"


def test_whiteout_through_symlink_parent_stays_in_root(world: tuple[Path, Path]) -> None:
    _rootfs, outside = world

    def setup(root: Path, out: Path) -> None:
        (root / "sym").symlink_to(out / "dir")

    _check(world, [build_tar([("file", "sym/.wh.keep", "")])], error=None, setup=setup)
    assert (outside / "dir" / "keep").exists()


def test_opaque_through_symlink_parent_stays_in_root(world: tuple[Path, Path]) -> None:
    _rootfs, outside = world

    def setup(root: Path, out: Path) -> None:
        (root / "sym").symlink_to(out / "dir")

    _check(world, [build_tar([("file", "sym/.wh..wh..opq", "")])], error=None, setup=setup)
    assert (outside / "dir" / "keep").exists()


def test_whiteout_removes_symlink_not_target(world: tuple[Path, Path]) -> None:
    rootfs, _outside = world

    def setup(root: Path, out: Path) -> None:
        (root / "link").symlink_to(out / "dir")

    _check(world, [build_tar([("file", ".wh.link", "")])], error=None, setup=setup)
    assert not (rootfs / "link").exists()
    assert not (rootfs / "link").is_symlink()


def test_whiteout_of_dotdot_component_is_refused(world: tuple[Path, Path]) -> None:
    _check(world, [build_tar([("file", "a/../.wh.outside", "")])], error="escapes the root")


# -- limits and malformed archives ----------------------------------------------------------


def test_decompression_bomb_hits_the_byte_cap(world: tuple[Path, Path]) -> None:
    from builder.oci.tarformat import TarLimits

    rootfs, _ = world
    import gzip

    bomb = gzip.compress(build_tar([("file", "zeros", "\0" * 2_000_000)]), compresslevel=9)
    assert len(bomb) < 20_000
    before = _outside_state(rootfs.parent)
    with pytest.raises(LayerError, match="limit exceeded"):
        apply_layer(io.BytesIO(bomb), rootfs, limits=TarLimits(max_bytes=1_000_000))
    assert _outside_state(rootfs.parent) == before


def test_too_many_entries_hits_the_entry_cap(world: tuple[Path, Path]) -> None:
    from builder.oci.tarformat import TarLimits

    rootfs, _ = world
    data = build_tar([("file", f"f{i}", "") for i in range(50)])
    with pytest.raises(LayerError, match="more than 10 entries: limit exceeded"):
        apply_layer(io.BytesIO(data), rootfs, limits=TarLimits(max_entries=10))


def test_huge_pax_header_is_refused(world: tuple[Path, Path]) -> None:
    info = tarfile.TarInfo("f")
    info.pax_headers = {"comment": "x" * 2_000_000}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info)
    _check(world, [buf.getvalue()], error="PAX header of .* bytes exceeds")


def test_truncated_layer_is_refused(world: tuple[Path, Path]) -> None:
    data = build_tar([("file", "big", "y" * 5000)])
    _check(world, [data[:2048]], error="truncated")


# -- containerd pkg/archive TestBreakouts, ported ---------------------------------------------
# Names lose their leading "/" (pybuild refuses absolute member names; separate tests above),
# "etc" is kept since every absolute symlink target resolves inside the rootfs.

Case = tuple[str, list[tuple[str, ...]], Callable[[Path], None] | None, str | None]


def _same_file(a: str, b: str) -> Callable[[Path], None]:
    def check(root: Path) -> None:
        assert os.path.samefile(in_root(root, a), in_root(root, b))

    return check


def _content(path: str, text: str) -> Callable[[Path], None]:
    def check(root: Path) -> None:
        assert (root / path).read_text() == text

    return check


def _absent(path: str) -> Callable[[Path], None]:
    def check(root: Path) -> None:
        assert not (root / path).exists()
        assert not (root / path).is_symlink()

    return check


def _all(*checks: Callable[[Path], None]) -> Callable[[Path], None]:
    def check(root: Path) -> None:
        for c in checks:
            c(root)

    return check


_PASSWD = [("dir", "etc", "0770"), ("file", "etc/passwd", "inside")]
BREAKOUTS: list[Case] = [
    (
        "SymlinkAbsolute",
        [("dir", "etc"), ("symlink", "localetc", "/etc"), ("file", "localetc/unbroken", "ok")],
        _content("etc/unbroken", "ok"),
        None,
    ),
    (
        "SymlinkUpAndOut",
        [
            ("dir", "etc"),
            ("dir", "dummy"),
            ("symlink", "localetc", "/dummy/../etc"),
            ("file", "localetc/unbroken", "ok"),
        ],
        _content("etc/unbroken", "ok"),
        None,
    ),
    (
        "SymlinkMultipleAbsolute",
        [
            ("dir", "etc"),
            ("dir", "dummy"),
            ("symlink", "dummy/etc", "/etc"),
            ("symlink", "localetc", "/dummy/etc"),
            ("file", "dummy/etc/unbroken", "ok"),
        ],
        _content("etc/unbroken", "ok"),
        None,
    ),
    (
        "SymlinkMultipleRelative",
        [
            ("dir", "etc"),
            ("dir", "dummy"),
            ("symlink", "dummy/etc", "/etc"),
            ("symlink", "localetc", "./dummy/etc"),
            ("file", "dummy/etc/unbroken", "ok"),
        ],
        _content("etc/unbroken", "ok"),
        None,
    ),
    (
        "SymlinkEmptyFile",
        [
            ("dir", "etc"),
            ("file", "etc/emptied", "notempty"),
            ("symlink", "localetc", "/etc"),
            ("file", "localetc/emptied", ""),
        ],
        _content("etc/emptied", ""),
        None,
    ),
    (
        "HardlinkRelative",
        [
            *_PASSWD,
            ("dir", "breakouts"),
            ("symlink", "breakouts/d1", "../../etc"),
            ("link", "breakouts/mypasswd", "breakouts/d1/passwd"),
        ],
        _same_file("breakouts/mypasswd", "etc/passwd"),
        None,
    ),
    (
        "HardlinkDownAndOut",
        [
            *_PASSWD,
            ("dir", "breakouts"),
            ("dir", "downandout"),
            ("symlink", "breakouts/d1", "../downandout/../../etc"),
            ("link", "breakouts/mypasswd", "breakouts/d1/passwd"),
        ],
        _same_file("breakouts/mypasswd", "etc/passwd"),
        None,
    ),
    (
        "HardlinkAbsolute",
        [*_PASSWD, ("symlink", "localetc", "/etc"), ("link", "localpasswd", "localetc/passwd")],
        _same_file("localpasswd", "etc/passwd"),
        None,
    ),
    (
        "HardlinkRelativeLong",
        [
            *_PASSWD,
            ("symlink", "localetc", "../../../../../../../etc"),
            ("link", "localpasswd", "localetc/passwd"),
        ],
        _same_file("localpasswd", "etc/passwd"),
        None,
    ),
    (
        "HardlinkRelativeUpAndOut",
        [
            *_PASSWD,
            ("symlink", "localetc", "upandout/../../../etc"),
            ("link", "localpasswd", "localetc/passwd"),
        ],
        _same_file("localpasswd", "etc/passwd"),
        None,
    ),
    (
        "HardlinkDirectRelative",
        [*_PASSWD, ("link", "localpasswd", "../../../../../etc/passwd")],
        None,
        "escapes the root",
    ),
    (
        "HardlinkDirectAbsolute",
        [*_PASSWD, ("link", "localpasswd", "/etc/passwd")],
        None,
        "absolute path",
    ),
    (
        "HardlinkDirectAbsoluteStripped",
        [*_PASSWD, ("link", "localpasswd", "etc/passwd")],
        _same_file("localpasswd", "etc/passwd"),
        None,
    ),
    (
        "SymlinkParentDirectory",
        [*_PASSWD, ("symlink", "..", "/etc/"), ("link", "localpasswd", "etc/passwd")],
        None,
        "escapes the root",
    ),
    (
        "SymlinkEmptyFilename",
        [*_PASSWD, ("symlink", "", "/etc/"), ("link", "localpasswd", "etc/passwd")],
        _same_file("localpasswd", "etc/passwd"),
        None,
    ),
    (
        "SymlinkParentRelative",
        [
            *_PASSWD,
            ("symlink", "localetc/sub/..", "/etc/"),
            ("link", "localetc/localpasswd", "etc/passwd"),
        ],
        None,
        "escapes the root",
    ),
    (
        "SymlinkSlashEnded",
        [*_PASSWD, ("dir", "localetc/", "0770"), ("link", "localetc/localpasswd", "etc/passwd")],
        _same_file("localetc/localpasswd", "etc/passwd"),
        None,
    ),
    (
        "HardlinkSymlinkBeforeCreateTarget",
        [
            ("dir", "etc", "0770"),
            ("symlink", "localpasswd", "/etc/passwd"),
            ("link", "localpasswd-dup", "localpasswd"),
            ("file", "etc/passwd", "after"),
        ],
        _same_file("localpasswd-dup", "etc/passwd"),
        None,
    ),
    (
        "HardlinkSymlinkRelative",
        [
            *_PASSWD,
            ("symlink", "passwdlink", "../../../../../etc/passwd"),
            ("link", "localpasswd", "passwdlink"),
        ],
        _all(
            _same_file("localpasswd", "etc/passwd"),
            lambda r: in_root(r, "localpasswd", follow_last=False).is_symlink(),
        ),
        None,
    ),
    (
        "HardlinkSymlinkAbsolute",
        [*_PASSWD, ("symlink", "passwdlink", "/etc/passwd"), ("link", "localpasswd", "passwdlink")],
        _all(
            _same_file("localpasswd", "etc/passwd"),
            lambda r: in_root(r, "localpasswd", follow_last=False).is_symlink(),
        ),
        None,
    ),
    (
        "WhiteoutRootParent",
        [("file", ".wh...", "")],
        None,
        "invalid whiteout",
    ),
    ("WhiteoutParent", [("file", "etc/.wh...", "")], None, "invalid whiteout"),
    ("WhiteoutRoot", [("file", ".wh..", "")], None, "invalid whiteout"),
    ("WhiteoutCurrentDirectory", [("file", "etc/.wh..", "")], None, "invalid whiteout"),
    (
        "WhiteoutDirectoryName",
        [("file", ".wh.etc/somefile", "non-empty")],
        _all(_content("etc/passwd", "all users"), _content(".wh.etc/somefile", "non-empty")),
        None,
    ),
    (
        "WhiteoutRelativePath",
        [("file", "dne/../.wh.etc", "")],
        None,
        "escapes the root",
    ),
]


def _etc_base(root: Path, *, link: str | None = None, target: str = "/etc") -> None:
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "passwd").write_text("all users")
    if link is not None:
        (root / link).symlink_to(target)


@pytest.mark.parametrize(
    ("name", "entries", "validate", "error"), BREAKOUTS, ids=[c[0] for c in BREAKOUTS]
)
def test_containerd_breakouts(
    world: tuple[Path, Path],
    name: str,
    entries: list[tuple[str, ...]],
    validate: Callable[[Path], None] | None,
    error: str | None,
) -> None:
    def setup(root: Path, out: Path) -> None:
        if name.startswith("Whiteout"):
            _etc_base(root)

    rootfs = _check(world, [build_tar(entries)], error=error, setup=setup)
    if validate is not None:
        validate(rootfs)
    assert not Path("/localetc").exists()


def test_breakout_symlink_override_directory(world: tuple[Path, Path]) -> None:
    def setup(root: Path, out: Path) -> None:
        _etc_base(root)
        (root / "localetc").mkdir()

    data = build_tar(
        [("symlink", "localetc", "/etc"), ("link", "localetc/localpasswd", "etc/passwd")]
    )
    rootfs = _check(world, [data], error=None, setup=setup)
    _same_file("localetc/localpasswd", "etc/passwd")(rootfs)


def test_breakout_symlink_override_directory_relative(world: tuple[Path, Path]) -> None:
    def setup(root: Path, out: Path) -> None:
        _etc_base(root)
        (root / "localetc").mkdir()

    data = build_tar(
        [("symlink", "localetc", "../../etc"), ("link", "localetc/localpasswd", "etc/passwd")]
    )
    rootfs = _check(world, [data], error=None, setup=setup)
    _same_file("localetc/localpasswd", "etc/passwd")(rootfs)


def test_breakout_directory_override_symlink(world: tuple[Path, Path]) -> None:
    def setup(root: Path, out: Path) -> None:
        _etc_base(root, link="localetc")

    data = build_tar([("dir", "localetc/"), ("link", "localetc/localpasswd", "etc/passwd")])
    rootfs = _check(world, [data], error=None, setup=setup)
    assert not (rootfs / "localetc").is_symlink()
    _same_file("localetc/localpasswd", "etc/passwd")(rootfs)


def test_breakout_directory_override_symlink_and_hardlink(world: tuple[Path, Path]) -> None:
    def setup(root: Path, out: Path) -> None:
        _etc_base(root, link="localetc", target="etc")
        os.link(root / "etc" / "passwd", root / "etc" / "localpasswd")

    data = build_tar([("dir", "localetc/"), ("file", "localetc/localpasswd", "different")])
    rootfs = _check(world, [data], error=None, setup=setup)
    assert not os.path.samefile(rootfs / "localetc" / "localpasswd", rootfs / "etc" / "passwd")
    assert (rootfs / "etc" / "passwd").read_text() == "all users"


def test_breakout_whiteout_symlink(world: tuple[Path, Path]) -> None:
    def setup(root: Path, out: Path) -> None:
        _etc_base(root, link="localetc")

    rootfs = _check(world, [build_tar([("file", ".wh.localetc", "")])], error=None, setup=setup)
    _all(_content("etc/passwd", "all users"), _absent("localetc"))(rootfs)


def test_breakout_whiteout_symlink_path(world: tuple[Path, Path]) -> None:
    def setup(root: Path, out: Path) -> None:
        _etc_base(root, link="localetc")
        (root / "etc" / "whitedout").write_text("ahhhh whiteout")

    data = build_tar([("file", "localetc/.wh.whitedout", "")])
    rootfs = _check(world, [data], error=None, setup=setup)
    _all(_content("etc/passwd", "all users"), _absent("etc/whitedout"))(rootfs)


def test_breakout_whiteout_dead_symlink_parent(world: tuple[Path, Path]) -> None:
    def setup(root: Path, out: Path) -> None:
        _etc_base(root, link="localetc", target="/dne")

    data = build_tar([("file", "localetc/.wh.etc", "")])
    rootfs = _check(world, [data], error=None, setup=setup)
    _content("etc/passwd", "all users")(rootfs)
    assert not (rootfs / "dne").exists()


def test_breakout_hardlink_symlink_chmod(world: tuple[Path, Path]) -> None:
    """A symlink named by an absolute host path, then a hardlink to it: refused, perms kept."""
    _, outside = world
    perm400 = outside / "perm400"
    perm400.write_text("...")
    perm400.chmod(0o400)
    also = outside / "also-exists-outside-root"
    also.write_text("...")
    data = build_tar([("symlink", str(also), str(perm400)), ("link", "sketchylink", str(also))])
    _check(world, [data], error="absolute path")
    assert stat.S_IMODE(perm400.lstat().st_mode) == 0o400
