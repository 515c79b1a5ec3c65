"""COPY semantics: sources, globs, destinations, modes, owners, times, links, heredocs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from copykit import Inline, Step, mode_of, run, stage, tree, write

from builder.errors import ContextError, InvalidInstructionError, Span


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    write(root, "a.txt", "A")
    write(root, "b.txt", "B")
    write(root, "dir/one", "1")
    write(root, "dir/sub/two", "2", mode=0o600)
    return root


def test_file_into_directory_dest(ctx: Path, tmp_path: Path) -> None:
    res = run(ctx, Step(sources=("a.txt",), dest="/app/"), tmp_path / "out")
    assert tree(tmp_path / "out") == {"app": "dir", "app/a.txt": "A"}
    app = res.get("/app")
    assert app is not None
    assert (app.mode, app.uid, app.gid) == (0o755, 0, 0)


def test_file_to_new_path_is_renamed(ctx: Path, tmp_path: Path) -> None:
    run(ctx, Step(sources=("a.txt",), dest="/app"), tmp_path / "out")
    assert tree(tmp_path / "out") == {"app": "A"}
    run(ctx, Step(sources=("a.txt",), dest="/x/y/z.txt"), tmp_path / "out2")
    assert tree(tmp_path / "out2") == {"x": "dir", "x/y": "dir", "x/y/z.txt": "A"}


def test_file_into_existing_image_directory(ctx: Path, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "app").mkdir(parents=True)
    os.chmod(rootfs / "app", 0o750)
    os.chown(rootfs / "app", 7, 8)
    write(rootfs, "app/old", "old")
    res = run(ctx, Step(sources=("a.txt",), dest="/app"), tmp_path / "out", rootfs=rootfs)
    assert tree(tmp_path / "out") == {"app": "dir", "app/a.txt": "A"}
    app = res.get("/app")
    assert app is not None
    assert (app.mode, app.uid, app.gid) == (0o750, 7, 8)
    assert mode_of(tmp_path / "out" / "app") == 0o750
    assert (tmp_path / "out" / "app").stat().st_uid == 7


def test_directory_source_copies_contents(ctx: Path, tmp_path: Path) -> None:
    run(ctx, Step(sources=("dir",), dest="/dst"), tmp_path / "out")
    assert tree(tmp_path / "out") == {
        "dst": "dir",
        "dst/one": "1",
        "dst/sub": "dir",
        "dst/sub/two": "2",
    }
    assert mode_of(tmp_path / "out" / "dst" / "sub" / "two") == 0o600


def test_directory_contents_merge_with_image(ctx: Path, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    write(rootfs, "dst/keep", "k")
    write(rootfs, "dst/sub/other", "o")
    run(ctx, Step(sources=("dir/",), dest="/dst/"), tmp_path / "out", rootfs=rootfs)
    assert tree(tmp_path / "out") == {
        "dst": "dir",
        "dst/one": "1",
        "dst/sub": "dir",
        "dst/sub/two": "2",
    }


def test_whole_context(ctx: Path, tmp_path: Path) -> None:
    run(ctx, Step(sources=(".",), dest="/src/"), tmp_path / "out")
    assert set(tree(tmp_path / "out")) == {
        "src",
        "src/a.txt",
        "src/b.txt",
        "src/dir",
        "src/dir/one",
        "src/dir/sub",
        "src/dir/sub/two",
    }


@pytest.mark.parametrize(
    ("dest", "want"),
    [
        ("rel/", {"w": "dir", "w/rel": "dir", "w/rel/a.txt": "A"}),
        ("rel", {"w": "dir", "w/rel": "A"}),
        (".", {"w": "dir", "w/a.txt": "A"}),
        ("./", {"w": "dir", "w/a.txt": "A"}),
        ("sub/.", {"w": "dir", "w/sub": "dir", "w/sub/a.txt": "A"}),
        ("/abs", {"abs": "A"}),
    ],
)
def test_relative_dest_joins_workdir(
    ctx: Path, tmp_path: Path, dest: str, want: dict[str, str]
) -> None:
    run(ctx, Step(sources=("a.txt",), dest=dest, workdir="/w"), tmp_path / "out")
    assert tree(tmp_path / "out") == want


def test_source_dotdot_is_clamped_to_context_root(ctx: Path, tmp_path: Path) -> None:
    run(ctx, Step(sources=("../../a.txt", "/b.txt"), dest="/d/"), tmp_path / "out")
    assert tree(tmp_path / "out") == {"d": "dir", "d/a.txt": "A", "d/b.txt": "B"}


def test_wildcards_like_buildkit(tmp_path: Path) -> None:
    """BuildKit's testCopyWildcards."""
    root = tmp_path / "ctx"
    write(root, "foo.go", "foo-contents")
    write(root, "bar.go", "bar-contents")
    write(root, "sub/dir1/dir2/foo", "foo-contents")
    cases: list[tuple[tuple[str, ...], str, str, str]] = [
        (("*.go",), "/gofiles/", "gofiles/foo.go", "foo-contents"),
        (("*.go",), "/gofiles/", "gofiles/bar.go", "bar-contents"),
        (("f*.go",), "foo2.go", "foo2.go", "foo-contents"),
        (("sub/*",), "/subdest/", "subdest/dir2/foo", "foo-contents"),
        (("sub/*/dir2/foo",), "/subdest2/", "subdest2/foo", "foo-contents"),
        (("sub/*/dir2/foo",), "/subdest3/bar", "subdest3/bar", "foo-contents"),
        ((".",), "all/", "all/foo.go", "foo-contents"),
        (("sub/dir1/",), "subdest4", "subdest4/dir2/foo", "foo-contents"),
        (("sub/dir1/.",), "subdest5", "subdest5/dir2/foo", "foo-contents"),
        (("sub/dir1",), "subdest6", "subdest6/dir2/foo", "foo-contents"),
    ]
    for i, (sources, dest, path, content) in enumerate(cases):
        out = tmp_path / f"out{i}"
        run(root, Step(sources=sources, dest=dest), out)
        assert (out / path).read_text() == content, (sources, dest)


def test_glob_does_not_cross_slash_and_matches_in_order(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "a/x.txt", "ax")
    write(root, "b.txt", "b")
    write(root, "[x].txt", "bracket")
    run(root, Step(sources=("*.txt",), dest="/d/"), tmp_path / "o1")
    assert tree(tmp_path / "o1") == {"d": "dir", "d/b.txt": "b", "d/[x].txt": "bracket"}
    run(root, Step(sources=("[[]x].txt",), dest="/d/"), tmp_path / "o2")
    assert tree(tmp_path / "o2") == {"d": "dir", "d/[x].txt": "bracket"}
    run(root, Step(sources=("?.txt",), dest="/one"), tmp_path / "o3")
    assert tree(tmp_path / "o3") == {"one": "b"}


def test_unmatched_glob_is_not_an_error(ctx: Path, tmp_path: Path) -> None:
    """BuildKit's testEmptyWildcard."""
    run(ctx, Step(sources=("a.txt", "nomatch*"), dest="/"), tmp_path / "out")
    assert tree(tmp_path / "out") == {"a.txt": "A"}
    run(ctx, Step(sources=("nomatch*",), dest="/d/"), tmp_path / "out2")
    assert tree(tmp_path / "out2") == {}


def test_missing_literal_source_is_an_error(ctx: Path, tmp_path: Path) -> None:
    with pytest.raises(ContextError) as info:
        run(ctx, Step(sources=("a.txt", "missing/x"), dest="/d/"), tmp_path / "out")
    assert 'failed to calculate checksum of ref context: "/missing/x": not found' in str(info.value)
    assert info.value.span == Span(file="Dockerfile", line=3)
    assert str(info.value).startswith("Dockerfile:3:1: ")


def test_bad_glob_is_an_error(ctx: Path, tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="syntax error in pattern"):
        run(ctx, Step(sources=("a[",), dest="/d/"), tmp_path / "out")


def test_several_files_need_a_directory_destination(ctx: Path, tmp_path: Path) -> None:
    msg = "When using COPY with more than one source file, the destination must be a directory"
    with pytest.raises(ContextError, match=msg):
        run(ctx, Step(sources=("a.txt", "b.txt"), dest="/x"), tmp_path / "o1")
    with pytest.raises(ContextError, match=msg):
        run(ctx, Step(sources=("*.txt",), dest="/x"), tmp_path / "o2")
    add = Step(sources=("a.txt", "b.txt"), dest="/x", is_add=True)
    with pytest.raises(ContextError, match="When using ADD with more than one source"):
        run(ctx, add, tmp_path / "o3")
    run(ctx, Step(sources=("a.txt", "b.txt"), dest="/x/"), tmp_path / "o4")
    assert tree(tmp_path / "o4") == {"x": "dir", "x/a.txt": "A", "x/b.txt": "B"}
    rootfs = tmp_path / "rootfs"
    (rootfs / "x").mkdir(parents=True)
    run(ctx, Step(sources=("a.txt", "b.txt"), dest="/x"), tmp_path / "o5", rootfs=rootfs)
    assert tree(tmp_path / "o5") == {"x": "dir", "x/a.txt": "A", "x/b.txt": "B"}
    # directories merge: BuildKit accepts this without a trailing slash
    run(ctx, Step(sources=("dir", "dir/sub"), dest="/m"), tmp_path / "o6")
    assert tree(tmp_path / "o6")["m/two"] == "2"


def test_later_sources_overwrite_earlier(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "one/f", "first")
    write(root, "two/f", "second")
    run(root, Step(sources=("one", "two"), dest="/d/"), tmp_path / "out")
    assert tree(tmp_path / "out") == {"d": "dir", "d/f": "second"}


def test_modes_preserved_owner_is_root_for_context(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "tool", "#!/bin/sh\n", mode=0o751)
    os.chown(root / "tool", 4321, 4321)
    res = run(root, Step(sources=("tool",), dest="/bin/"), tmp_path / "out")
    out = tmp_path / "out" / "bin" / "tool"
    assert mode_of(out) == 0o751
    assert (out.stat().st_uid, out.stat().st_gid) == (0, 0)
    item = res.get("/bin/tool")
    assert item is not None
    assert (item.mode, item.uid, item.gid) == (0o751, 0, 0)


def test_stage_source_keeps_owners(tmp_path: Path) -> None:
    src = tmp_path / "stage"
    write(src, "app/bin", "b", mode=0o700)
    os.chown(src / "app" / "bin", 1234, 5678)
    res = run(stage(src), Step(sources=("/app/bin",), dest="/usr/local/bin/"), tmp_path / "out")
    item = res.get("/usr/local/bin/bin")
    assert item is not None
    assert (item.uid, item.gid, item.mode) == (1234, 5678, 0o700)
    st = (tmp_path / "out" / "usr/local/bin/bin").stat()
    assert (st.st_uid, st.st_gid) == (1234, 5678)


def test_setuid_and_sticky_bits_kept(tmp_path: Path) -> None:
    src = tmp_path / "stage"
    write(src, "su", "x", mode=0o4755)
    (src / "tmp").mkdir()
    os.chmod(src / "tmp", 0o1777)
    run(stage(src), Step(sources=("/su", "/tmp"), dest="/d/"), tmp_path / "out")
    assert mode_of(tmp_path / "out" / "d" / "su") == 0o4755


def test_mtimes_kept_and_clamped(ctx: Path, tmp_path: Path) -> None:
    os.utime(ctx / "a.txt", ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    os.utime(ctx / "b.txt", ns=(5_000_000_000, 5_000_000_000))
    run(ctx, Step(sources=("a.txt", "b.txt"), dest="/d/"), tmp_path / "o1")
    assert (tmp_path / "o1/d/a.txt").stat().st_mtime_ns == 1_000_000_000_000_000_000
    run(ctx, Step(sources=("a.txt", "b.txt"), dest="/d/"), tmp_path / "o2", epoch=100)
    assert (tmp_path / "o2/d/a.txt").stat().st_mtime_ns == 100_000_000_000
    assert (tmp_path / "o2/d/b.txt").stat().st_mtime_ns == 5_000_000_000
    assert (tmp_path / "o2/d").stat().st_mtime_ns == 100_000_000_000


def test_directory_times_come_from_source(ctx: Path, tmp_path: Path) -> None:
    os.utime(ctx / "dir" / "sub", ns=(7_000_000_000, 7_000_000_000))
    os.utime(ctx / "dir", ns=(9_000_000_000, 9_000_000_000))
    run(ctx, Step(sources=("dir",), dest="/dst"), tmp_path / "out")
    assert (tmp_path / "out/dst/sub").stat().st_mtime_ns == 7_000_000_000
    # the destination dir keeps its own metadata, but takes the source dir's times
    assert (tmp_path / "out/dst").stat().st_mtime_ns == 9_000_000_000


def test_hardlinks_inside_a_source_are_kept(tmp_path: Path) -> None:
    src = tmp_path / "stage"
    write(src, "d/a", "same")
    os.link(src / "d" / "a", src / "d" / "b")
    res = run(stage(src), Step(sources=("/d",), dest="/x"), tmp_path / "out")
    a, b = tmp_path / "out/x/a", tmp_path / "out/x/b"
    assert a.stat().st_ino == b.stat().st_ino
    item = res.get("/x/b")
    assert item is not None
    assert item.kind == "hardlink"


def test_symlinks_are_copied_not_followed_inside_directories(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "d/target", "t")
    os.symlink("target", root / "d" / "rel")
    os.symlink("/nonexistent/abs", root / "d" / "dangling")
    run(root, Step(sources=("d",), dest="/x/"), tmp_path / "out")
    assert tree(tmp_path / "out") == {
        "x": "dir",
        "x/target": "t",
        "x/rel": "-> target",
        "x/dangling": "-> /nonexistent/abs",
    }


def test_symlink_source_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "real/f", "F")
    os.symlink("real", root / "linkdir")
    os.symlink("real/f", root / "linkfile")
    run(root, Step(sources=("linkfile", "linkdir"), dest="/d/"), tmp_path / "out")
    assert tree(tmp_path / "out") == {"d": "dir", "d/linkfile": "F", "d/f": "F"}


def test_file_cannot_replace_directory(ctx: Path, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "d" / "a.txt").mkdir(parents=True)
    with pytest.raises(ContextError, match=r"cannot replace to directory /d/a\.txt with file"):
        run(ctx, Step(sources=("a.txt",), dest="/d/"), tmp_path / "out", rootfs=rootfs)


def test_directory_cannot_replace_file(ctx: Path, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    write(rootfs, "dst/sub", "file")
    with pytest.raises(ContextError, match="cannot copy to non-directory: /dst/sub"):
        run(ctx, Step(sources=("dir",), dest="/dst"), tmp_path / "out", rootfs=rootfs)


def test_file_replaces_image_file_and_symlink(ctx: Path, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    write(rootfs, "d/a.txt", "old")
    os.symlink("/elsewhere", rootfs / "d" / "b.txt")
    run(ctx, Step(sources=("a.txt", "b.txt"), dest="/d/"), tmp_path / "out", rootfs=rootfs)
    assert tree(tmp_path / "out") == {"d": "dir", "d/a.txt": "A", "d/b.txt": "B"}


def test_heredoc_sources(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    root.mkdir()
    step = Step(inline_files=(Inline(name="EOF", data="hello\n"),), dest="/etc/motd")
    res = run(root, step, tmp_path / "o1")
    assert tree(tmp_path / "o1") == {"etc": "dir", "etc/motd": "hello\n"}
    assert mode_of(tmp_path / "o1" / "etc" / "motd") == 0o644
    item = res.get("/etc/motd")
    assert item is not None
    assert (item.uid, item.gid) == (0, 0)
    two = Step(
        inline_files=(Inline(name="a.sh", data="a", mode=0o755), Inline(name="b", data="\udcff")),
        dest="/d/",
    )
    run(root, two, tmp_path / "o2")
    assert tree(tmp_path / "o2") == {"d": "dir", "d/a.sh": "a", "d/b": "\ufffd"}
    assert mode_of(tmp_path / "o2" / "d" / "a.sh") == 0o755


def test_chown_numeric_and_by_name(ctx: Path, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    write(rootfs, "etc/passwd", "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n")
    write(rootfs, "etc/group", "root:x:0:\nstaff:x:50:app\n")
    cases = {
        "1234": (1234, 1234),
        "1234:42": (1234, 42),
        "app": (1000, 1001),
        "app:staff": (1000, 50),
        "root:staff": (0, 50),
        "app:7": (1000, 7),
        ":staff": (0, 50),
    }
    for i, (spec, ids) in enumerate(cases.items()):
        out = tmp_path / f"o{i}"
        res = run(ctx, Step(sources=("dir",), dest="/new/deep", chown=spec), out, rootfs=rootfs)
        for path in ("/new/deep/one", "/new/deep/sub", "/new/deep/sub/two", "/new/deep"):
            item = res.get(path)
            assert item is not None, (spec, path)
            assert (item.uid, item.gid) == ids, (spec, path)
        # parents BuildKit creates are owned by the --chown user too
        new = res.get("/new")
        assert new is not None
        assert (new.uid, new.gid) == ids
        st = (out / "new" / "deep" / "one").stat()
        assert (st.st_uid, st.st_gid) == ids


def test_chown_unknown_names(ctx: Path, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    write(rootfs, "etc/passwd", "root:x:0:0::/root:/bin/sh\n")
    with pytest.raises(ContextError, match="unable to find user nobody"):
        run(ctx, Step(sources=("a.txt",), dest="/", chown="nobody"), tmp_path / "o", rootfs=rootfs)
    with pytest.raises(ContextError, match="unable to find group grp"):
        run(ctx, Step(sources=("a.txt",), dest="/", chown="0:grp"), tmp_path / "o", rootfs=rootfs)


def test_chmod_octal_applies_to_what_is_copied_not_to_created_parents(
    ctx: Path, tmp_path: Path
) -> None:
    res = run(ctx, Step(sources=("dir",), dest="/p/q/", chmod="0750"), tmp_path / "out")
    modes = {item.path: item.mode for item in res.items}
    # fsutil creates missing parents (here /p/q/ itself) 0755 with MkdirAll
    assert modes == {
        "/p": 0o755,
        "/p/q": 0o755,
        "/p/q/one": 0o750,
        "/p/q/sub": 0o750,
        "/p/q/sub/two": 0o750,
    }
    assert mode_of(tmp_path / "out" / "p") == 0o755
    assert mode_of(tmp_path / "out" / "p" / "q" / "sub" / "two") == 0o750
    # a directory source's top directory is copied, so it gets --chmod (or keeps its mode)
    os.chmod(ctx / "dir", 0o700)
    res = run(ctx, Step(sources=("dir",), dest="/x/new", chmod="0750"), tmp_path / "o3")
    modes = {item.path: item.mode for item in res.items}
    assert (modes["/x"], modes["/x/new"], modes["/x/new/one"]) == (0o755, 0o750, 0o750)
    res = run(ctx, Step(sources=("dir",), dest="/x/new"), tmp_path / "o4")
    modes = {item.path: item.mode for item in res.items}
    assert (modes["/x"], modes["/x/new"], modes["/x/new/one"]) == (0o755, 0o700, 0o644)
    res = run(ctx, Step(sources=("a.txt",), dest="/s/", chmod="4755"), tmp_path / "o2")
    item = res.get("/s/a.txt")
    assert item is not None
    assert item.mode == 0o4755
    dir_item = res.get("/s")
    assert dir_item is not None
    assert dir_item.mode == 0o755


def test_chmod_symbolic(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "d/exe", "x", mode=0o700)
    write(root, "d/data", "d", mode=0o600)
    os.chmod(root / "d", 0o700)
    res = run(root, Step(sources=("d",), dest="/t/", chmod="u=rwX,go=rX"), tmp_path / "out")
    modes = {item.path: item.mode for item in res.items}
    assert modes["/t/exe"] == 0o755
    assert modes["/t/data"] == 0o644
    assert modes["/t"] == 0o755  # the created destination: 0755 for symbolic modes
    res = run(root, Step(sources=("d/data",), dest="/f", chmod="+x"), tmp_path / "o2")
    item = res.get("/f")
    assert item is not None
    assert item.mode == 0o711


def test_invalid_chmod(ctx: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInstructionError, match="invalid chmod parameter: '999'"):
        run(ctx, Step(sources=("a.txt",), dest="/", chmod="999"), tmp_path / "o")


def test_link_copies_without_the_image(ctx: Path, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    os.symlink("/etc", rootfs / "app")
    run(ctx, Step(sources=("a.txt",), dest="/app/", link=True), tmp_path / "o1", rootfs=rootfs)
    assert tree(tmp_path / "o1") == {"app": "dir", "app/a.txt": "A"}
    run(ctx, Step(sources=("a.txt",), dest="/app/"), tmp_path / "o2", rootfs=rootfs)
    assert tree(tmp_path / "o2") == {"etc": "dir", "etc/a.txt": "A"}


def test_non_utf8_names(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    root.mkdir()
    raw = os.fsencode(root) + b"/caf\xe9-\xff.txt"
    with open(raw, "wb") as fh:
        fh.write(b"latin1")
    res = run(root, Step(sources=(".",), dest="/x/"), tmp_path / "out")
    written = os.listdir(os.fsencode(tmp_path / "out" / "x"))
    assert written == [b"caf\xe9-\xff.txt"]
    assert [item.path for item in res.items] == ["/x", "/x/" + os.fsdecode(b"caf\xe9-\xff.txt")]


def test_deep_trees(tmp_path: Path) -> None:
    depth = 90  # deeper than the destination's directory fd cache
    root = tmp_path / "ctx"
    rel = "/".join(f"d{i}" for i in range(depth))
    write(root, f"{rel}/leaf", "leaf")
    rootfs = tmp_path / "rootfs"
    write(rootfs, f"dst/{rel}/old", "old")
    res = run(root, Step(sources=(".",), dest="/dst/"), tmp_path / "out", rootfs=rootfs)
    assert (tmp_path / "out" / "dst" / rel / "leaf").read_text() == "leaf"
    assert not (tmp_path / "out" / "dst" / rel / "old").exists()
    assert len([i for i in res.items if i.kind == "dir"]) == depth + 1
