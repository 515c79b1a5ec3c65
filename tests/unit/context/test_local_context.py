"""LocalContext: which ignore file applies, in-root reads, what the filter hides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.context.local import LocalContext
from builder.context.sourcefs import SourceFS
from builder.errors import ContextError


def _ctx(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "ctx"
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data)
    root.mkdir(exist_ok=True)
    return root


def test_root_dockerignore_is_used(tmp_path: Path) -> None:
    root = _ctx(tmp_path, {".dockerignore": "ba*\nDockerfile\n!bay\n", "bar": "", "bay": ""})
    ctx = LocalContext.open(root, root / "Dockerfile")
    assert ctx.ignore_file == root / ".dockerignore"
    assert ctx.excluded("bar")
    assert ctx.excluded("baz")
    assert not ctx.excluded("bay")
    assert ctx.excluded("Dockerfile")
    assert not ctx.excluded("foo")
    assert not ctx.excluded("")


def test_dockerfile_specific_ignore_replaces_root_one(tmp_path: Path) -> None:
    root = _ctx(
        tmp_path,
        {
            ".dockerignore": "foo\n",
            "Dockerfile.dockerignore": "bar\n",
            "Dockerfile2.dockerignore": "baz\n",
        },
    )
    one = LocalContext.open(root, root / "Dockerfile")
    assert one.ignore_file == root / "Dockerfile.dockerignore"
    assert one.excluded("bar")
    assert not one.excluded("foo")
    two = LocalContext.open(root, root / "Dockerfile2")
    assert two.excluded("baz")
    assert not two.excluded("foo")
    assert not two.excluded("bar")
    three = LocalContext.open(root, root / "Other")
    assert three.excluded("foo")
    assert not three.excluded("bar")


def test_dockerfile_outside_context(tmp_path: Path) -> None:
    root = _ctx(tmp_path, {".dockerignore": "a\n"})
    elsewhere = tmp_path / "ci" / "build.Dockerfile"
    elsewhere.parent.mkdir()
    elsewhere.write_text("FROM scratch\n")
    (tmp_path / "ci" / "build.Dockerfile.dockerignore").write_text("b\n")
    ctx = LocalContext.open(root, elsewhere)
    assert ctx.excluded("b")
    assert not ctx.excluded("a")
    assert LocalContext.open(root, tmp_path / "ci" / "none").excluded("a")


def test_no_ignore_file(tmp_path: Path) -> None:
    root = _ctx(tmp_path, {"a": ""})
    ctx = LocalContext.open(root)
    assert ctx.matcher is None
    assert ctx.ignore_file is None
    assert not ctx.excluded("a")


def test_empty_ignore_file_has_no_matcher(tmp_path: Path) -> None:
    root = _ctx(tmp_path, {".dockerignore": "# nothing\n\n"})
    assert LocalContext.open(root).matcher is None


def test_invalid_pattern_is_a_context_error_naming_it(tmp_path: Path) -> None:
    root = _ctx(tmp_path, {".dockerignore": "good\nbad[\n"})
    with pytest.raises(ContextError, match=r"\.dockerignore: invalid pattern 'bad\['"):
        LocalContext.open(root)
    root2 = _ctx(tmp_path / "x", {".dockerignore": "!\n"})
    with pytest.raises(ContextError, match="illegal exclusion pattern"):
        LocalContext.open(root2)


def test_symlinked_root_ignore_is_read_in_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    root = _ctx(tmp_path, {"etc/ignore": "inside\n"})
    os.symlink(str(outside), root / ".dockerignore")
    # /…/outside.txt resolves inside the context, where it does not exist: no ignore file
    ctx = LocalContext.open(root)
    assert ctx.matcher is None
    os.remove(root / ".dockerignore")
    os.symlink("/etc/ignore", root / ".dockerignore")  # absolute: clamped to the context
    ctx = LocalContext.open(root)
    assert ctx.excluded("inside")


def test_context_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="not found"):
        LocalContext.open(tmp_path / "missing")
    (tmp_path / "file").write_text("")
    with pytest.raises(ContextError, match="must be a directory"):
        LocalContext.open(tmp_path / "file")


def test_directory_patterns_exclude_contents(tmp_path: Path) -> None:
    root = _ctx(
        tmp_path,
        {
            ".dockerignore": "node_modules\n**/*.log\n/build/\n!build/keep\n",
            "node_modules/x/y.js": "",
            "a/b/c.log": "",
            "build/out": "",
            "build/keep": "",
        },
    )
    ctx = LocalContext.open(root)
    assert ctx.excluded("node_modules/x/y.js")
    assert ctx.excluded("a/b/c.log")
    assert ctx.excluded("x.log")
    assert ctx.excluded("build/out")
    assert not ctx.excluded("build/keep")


def test_source_view_hides_excluded_entries(tmp_path: Path) -> None:
    root = _ctx(
        tmp_path,
        {
            ".dockerignore": "secret\nhidden\n!hidden/visible\n",
            "secret": "s",
            "hidden/x": "",
            "hidden/visible": "",
            "gone/y": "",
        },
    )
    os.symlink("secret", root / "link-to-secret")
    os.symlink("hidden/x", root / "link-to-x")
    ctx = LocalContext.open(root)
    with SourceFS(ctx) as fs:
        assert fs.resolve("secret", follow=True) is None
        assert fs.resolve("link-to-secret", follow=True) is None
        assert fs.resolve("link-to-secret", follow=False) is not None
        assert fs.resolve("link-to-x", follow=True) is None
        hidden = fs.resolve("hidden", follow=True)
        assert hidden is not None
        assert hidden.is_dir
        assert fs.resolve("hidden/visible", follow=True) is not None
        assert fs.resolve("hidden/x", follow=True) is None
    with SourceFS(LocalContext.open(_ctx(tmp_path / "2", {".dockerignore": "gone\n"}))) as fs:
        (fs.source.root / "gone").mkdir()
        assert fs.resolve("gone", follow=True) is None


def test_resolve_clamps_dotdot_and_absolute_links(tmp_path: Path) -> None:
    root = _ctx(tmp_path, {"etc/passwd": "ctx-passwd", "d/f": "f"})
    os.symlink("../../../../etc/passwd", root / "d" / "up")
    os.symlink("/etc/passwd", root / "abs")
    ctx = LocalContext.open(root)
    with SourceFS(ctx) as fs:
        for path in ("../../etc/passwd", "d/up", "abs", "/../etc/passwd"):
            node = fs.resolve(path, follow=True)
            assert node is not None
            assert node.comps == ("etc", "passwd")
        assert fs.resolve("d/f/x", follow=True) is None
        assert fs.resolve("d/missing", follow=True) is None


def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    root = _ctx(tmp_path, {})
    os.symlink("b", root / "a")
    os.symlink("a", root / "b")
    with SourceFS(LocalContext.open(root)) as fs, pytest.raises(ContextError, match="levels"):
        fs.resolve("a", follow=True)


def test_dockerfile_ignore_inside_the_context_is_read_in_root(tmp_path: Path) -> None:
    outside = tmp_path / "host-patterns"
    outside.write_text("secret\n")
    root = _ctx(tmp_path, {".dockerignore": "root-rule\n"})
    (root / "Dockerfile.dockerignore").symlink_to(outside)  # resolves to ctx/<host path>: missing
    ctx = LocalContext.open(root, root / "Dockerfile")
    assert ctx.ignore_file == root / ".dockerignore"
    assert not ctx.excluded("secret")
    assert ctx.excluded("root-rule")
