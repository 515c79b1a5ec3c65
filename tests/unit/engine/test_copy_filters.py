"""--parents, --exclude and .dockerignore, ported from BuildKit's integration scenarios."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from copykit import Step, run, stage, tree, write

from builder.context.local import LocalContext
from builder.errors import ContextError


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """The ``base`` stage of BuildKit's testCopyRelativeParents."""
    root = tmp_path / "base"
    for d in ("a/b/c/d/e", "a/b2/c/d/e", "a/b/c2/d/e", "a/b/c2/d/e2"):
        (root / "test" / d).mkdir(parents=True)
    for f in ("a/b/c/d/foo", "a/b/c/d/e/bay", "a/b2/c/d/e/bar", "a/b/c2/d/e/baz"):
        write(root / "test", f, f)
    write(root / "test", "a/b/c2/d/e2/baz", "e2baz")
    return root


def _files(out: Path) -> set[str]:
    return set(tree(out))


@pytest.mark.parametrize(
    ("sources", "present", "absent"),
    [
        (("/test/a/b/./c/d",), {"out/c/d/e", "out/c/d/foo", "out/c/d/e/bay"}, {"out/a", "out/e"}),
        (("/test/a/b/c/d/.",), {"out/test/a/b/c/d/e", "out/test/a/b/c/d/foo"}, {"out/c"}),
        (("./test/a/b/c/d",), {"out/test/a/b/c/d/e", "out/test/a/b/c/d/foo"}, {"out/c"}),
        (("/test/a/./b/./c",), {"out/b/c/d/e", "out/b/c/d/foo"}, {"out/a"}),
        (("/test/a/./*/c",), {"out/b/c/d/e", "out/b2/c/d/e/bar"}, {"out/a", "out/b/c2"}),
        (
            ("/test/a/b*/./c/**/e",),
            {"out/c/d/e", "out/c/d/e/bay", "out/c/d/e/bar"},
            {"out/c/d/foo", "out/a"},
        ),
        (
            ("/test/a/b/c*/./d/**/baz", "/test/a/b*/./c/**/bar"),
            {"out/d/e/baz", "out/d/e2/baz", "out/c/d/e/bar"},
            {"out/d/e/bay", "out/c/d/foo"},
        ),
        (("/test/a/b2*/c",), {"out/test/a/b2/c/d/e/bar"}, {"out/a"}),
        (("/test/a/b/./zz*",), {"out"}, {"out/zz", "out/a"}),
    ],
)
def test_copy_parents(
    base: Path, tmp_path: Path, sources: tuple[str, ...], present: set[str], absent: set[str]
) -> None:
    out = tmp_path / "out"
    run(stage(base), Step(sources=sources, dest="/out/", parents=True), out)
    files = _files(out)
    assert present <= files, files
    assert not (absent & files), files


def test_copy_parents_missing_literal(base: Path, tmp_path: Path) -> None:
    with pytest.raises(ContextError, match='"/test/nonexistent-file": not found'):
        run(
            stage(base),
            Step(sources=("/test/nonexistent-file",), dest="/out/", parents=True),
            tmp_path / "out",
        )


def test_copy_parents_from_context(tmp_path: Path) -> None:
    """BuildKit's testCopyParents."""
    root = tmp_path / "ctx"
    write(root, "foo1/foo2/bar", "testing")
    write(root, "foo1/foo2/baz", "testing2")
    os.chmod(root / "foo1", 0o700)
    res = run(root, Step(sources=("foo1/foo2/bar",), dest="/", parents=True), tmp_path / "o1")
    assert tree(tmp_path / "o1") == {"foo1": "dir", "foo1/foo2": "dir", "foo1/foo2/bar": "testing"}
    foo1 = res.get("/foo1")
    assert foo1 is not None
    assert foo1.mode == 0o700
    step = Step(sources=("foo1/foo2/ba*",), dest=".", workdir="/test", parents=True)
    run(root, step, tmp_path / "o2")
    assert tree(tmp_path / "o2")["test/foo1/foo2/bar"] == "testing"
    assert tree(tmp_path / "o2")["test/foo1/foo2/baz"] == "testing2"


@pytest.fixture
def exclude_src(tmp_path: Path) -> Path:
    """The source tree of BuildKit's testExcludedFilesOnCopy."""
    root = tmp_path / "src"
    files = {
        "dir1/file-101.png": "2",
        "dir1/file-102.txt": "3",
        "dir1/file-103.jpeg": "4",
        "dir2/file-201.pdf": "6",
        "dir2/file-202.jpeg": "7",
        "dir2/file-203.png": "8",
        "dir3/file-301.mp3": "9",
        "dir3/file-302.mpeg": "10",
        "dir4/file-401.txt": "11",
    }
    for rel, data in files.items():
        write(root, rel, data, mode=0o600)
    os.symlink("file-401.txt", root / "dir4" / "file-402.txt")
    os.symlink("file-404.txt", root / "dir4" / "file-403.txt")
    return root


def test_copy_exclude_like_buildkit(exclude_src: Path, tmp_path: Path) -> None:
    builders = {
        "1": Step(sources=(".",), dest="/1", excludes=("*/*.png", "*/*.jpeg")),
        "2": Step(sources=(".",), dest="/2", excludes=("*/*.pdf", "*/*.txt")),
        "3": Step(sources=("dir3/",), dest="/3/", excludes=("*.mp3",), is_add=True),
        "4": Step(
            sources=("dir*",),
            dest="/4/",
            excludes=("*.mp3", "*.jpeg", "*.png", "*.pdf", "*.txt"),
        ),
        "5": Step(
            sources=("dir*",),
            dest="/5",
            excludes=("*.mp*", "*.jpeg", "*.png", "*.pdf"),
            is_add=True,
        ),
        "6": Step(sources=("dir*",), dest="/6", excludes=("*",), is_add=True),
    }
    got: dict[str, str] = {}
    for name, step in builders.items():
        out = tmp_path / f"b{name}"
        run(exclude_src, step, out)
        got.update({f"builder{name}/{k}": v for k, v in tree(out).items()})
    expected = {
        "builder1/1/dir1/file-102.txt": "3",
        "builder1/1/dir2/file-201.pdf": "6",
        "builder1/1/dir3/file-301.mp3": "9",
        "builder1/1/dir3/file-302.mpeg": "10",
        "builder1/1/dir4/file-401.txt": "11",
        "builder1/1/dir4/file-402.txt": "-> file-401.txt",
        "builder1/1/dir4/file-403.txt": "-> file-404.txt",
        "builder2/2/dir1/file-101.png": "2",
        "builder2/2/dir1/file-103.jpeg": "4",
        "builder2/2/dir2/file-202.jpeg": "7",
        "builder2/2/dir2/file-203.png": "8",
        "builder2/2/dir3/file-301.mp3": "9",
        "builder2/2/dir3/file-302.mpeg": "10",
        "builder3/3/file-302.mpeg": "10",
        "builder4/4/file-302.mpeg": "10",
        "builder5/5/file-102.txt": "3",
        "builder5/5/file-401.txt": "11",
        "builder5/5/file-402.txt": "-> file-401.txt",
        "builder5/5/file-403.txt": "-> file-404.txt",
    }
    files = {k: v for k, v in got.items() if v != "dir"}
    assert files == expected
    assert got["builder6/6"] == "dir"  # everything excluded: an empty directory
    assert not any(k.startswith("builder6/6/") for k in got)


def test_exclude_skips_matching_glob_files(tmp_path: Path) -> None:
    """The documented ``COPY --exclude=*.txt hom* /mydir/`` (moby/buildkit#5489)."""
    root = tmp_path / "ctx"
    for name in ("home.txt", "home.md", "homer", "other"):
        write(root, name, name)
    run(root, Step(sources=("hom*",), dest="/mydir/", excludes=("*.txt",)), tmp_path / "out")
    assert tree(tmp_path / "out") == {
        "mydir": "dir",
        "mydir/home.md": "home.md",
        "mydir/homer": "homer",
    }


def test_exclude_with_exception(exclude_src: Path, tmp_path: Path) -> None:
    step = Step(sources=(".",), dest="/x/", excludes=("dir1", "!dir1/file-102.txt"))
    res = run(exclude_src, step, tmp_path / "out")
    files = tree(tmp_path / "out")
    assert files["x/dir1/file-102.txt"] == "3"
    assert "x/dir1/file-101.png" not in files
    dir1 = res.get("/x/dir1")
    assert dir1 is not None


def test_invalid_exclude_pattern(exclude_src: Path, tmp_path: Path) -> None:
    with pytest.raises(ContextError, match=r"--exclude: invalid pattern '\[oops'"):
        run(exclude_src, Step(sources=(".",), dest="/", excludes=("[oops",)), tmp_path / "o")


def test_dockerignore_like_buildkit(tmp_path: Path) -> None:
    """BuildKit's testDockerignore."""
    root = tmp_path / "ctx"
    for name in ("Dockerfile", "foo", "bar", "baz", "bay"):
        write(root, name, f"{name}-contents")
    write(root, ".dockerignore", "\nba*\nDockerfile\n!bay\n.dockerignore\n")
    ctx = LocalContext.open(root, root / "Dockerfile")
    run(ctx, Step(sources=(".",), dest="."), tmp_path / "out")
    assert tree(tmp_path / "out") == {"foo": "foo-contents", "bay": "bay-contents"}


def test_dockerignore_override_per_dockerfile(tmp_path: Path) -> None:
    """BuildKit's testDockerignoreOverride."""
    root = tmp_path / "ctx"
    write(root, "foo", "c")
    write(root, "bar", "c")
    write(root, "Dockerfile.dockerignore", "bar\n")
    write(root, "Dockerfile2.dockerignore", "foo\n")
    one = LocalContext.open(root, root / "Dockerfile")
    run(one, Step(sources=("foo", "bar*"), dest="/x/"), tmp_path / "o1")
    assert tree(tmp_path / "o1") == {"x": "dir", "x/foo": "c"}
    two = LocalContext.open(root, root / "Dockerfile2")
    run(two, Step(sources=("bar", "foo*"), dest="/x/"), tmp_path / "o2")
    assert tree(tmp_path / "o2") == {"x": "dir", "x/bar": "c"}


def test_excluded_files_are_invisible(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "app/main.py", "main")
    write(root, "app/secret.key", "KEY")
    write(root, "app/cache/x", "x")
    write(root, "keep/.env", "ENV")
    os.symlink("app/secret.key", root / "key-link")
    os.symlink("app", root / "app-link")
    write(root, ".dockerignore", "**/*.key\napp/cache\n**/.env\n")
    ctx = LocalContext.open(root)
    # via a parent directory
    run(ctx, Step(sources=("app",), dest="/a/"), tmp_path / "o1")
    assert tree(tmp_path / "o1") == {"a": "dir", "a/main.py": "main"}
    # through a symlink naming the excluded file
    with pytest.raises(ContextError, match='"/key-link": not found'):
        run(ctx, Step(sources=("key-link",), dest="/k"), tmp_path / "o2")
    # through a symlinked directory
    with pytest.raises(ContextError, match=r'"/app-link/secret\.key": not found'):
        run(ctx, Step(sources=("app-link/secret.key",), dest="/k"), tmp_path / "o3")
    # globs do not see them; a matched symlink to an excluded file is dangling (BuildKit too)
    run(ctx, Step(sources=("app/*", "app-l*"), dest="/g/"), tmp_path / "o4")
    assert tree(tmp_path / "o4") == {"g": "dir", "g/main.py": "main"}
    with pytest.raises(ContextError, match='"/key-link": not found'):
        run(ctx, Step(sources=("*-link",), dest="/g/"), tmp_path / "o6")
    # a whole-context copy: the symlink itself is copied as a symlink
    run(ctx, Step(sources=(".",), dest="/all/"), tmp_path / "o5")
    files = tree(tmp_path / "o5")
    assert "all/app/secret.key" not in files
    assert "all/app/cache" not in files
    assert "all/keep/.env" not in files
    assert files["all/key-link"] == "-> app/secret.key"
    assert files["all/keep"] == "dir"


def test_excluded_directory_with_exception_is_materialized(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "build/out.bin", "bin")
    write(root, "build/keep/me", "me")
    os.chmod(root / "build", 0o711)
    write(root, ".dockerignore", "build\n!build/keep\n")
    ctx = LocalContext.open(root)
    res = run(ctx, Step(sources=(".",), dest="/s/"), tmp_path / "out")
    files = tree(tmp_path / "out")
    assert files["s/build/keep/me"] == "me"
    assert "s/build/out.bin" not in files
    build = res.get("/s/build")
    assert build is not None
    assert build.mode == 0o711
    # copying the excluded directory itself reaches only the exception
    run(ctx, Step(sources=("build",), dest="/b/"), tmp_path / "o2")
    assert tree(tmp_path / "o2") == {"b": "dir", "b/keep": "dir", "b/keep/me": "me"}
    with pytest.raises(ContextError, match=r'"/build/out\.bin": not found'):
        run(ctx, Step(sources=("build/out.bin",), dest="/b/"), tmp_path / "o3")


def test_excluded_directories_without_exceptions_below_are_not_walked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builder.engine.copy_sources as copy_module
    from builder.context import sourcefs as sourcefs_module

    root = tmp_path / "ctx"
    write(root, "src/main.py", "m")
    write(root, "node_modules/pkg/index.js", "js")
    write(root, ".dockerignore", "*\n!src\n")
    skipped = (root / "node_modules").stat().st_ino
    scanned: list[int] = []
    real_scan = sourcefs_module.scan

    def spy(fd: int) -> list[tuple[str, os.stat_result]]:
        scanned.append(os.fstat(fd).st_ino)
        return real_scan(fd)

    monkeypatch.setattr(copy_module, "scan", spy)
    monkeypatch.setattr(sourcefs_module, "scan", spy)
    run(LocalContext.open(root), Step(sources=(".",), dest="/app/"), tmp_path / "out")
    assert tree(tmp_path / "out") == {"app": "dir", "app/src": "dir", "app/src/main.py": "m"}
    assert scanned
    assert skipped not in scanned
