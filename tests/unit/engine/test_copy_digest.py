"""copy_source_digest: exactly the files a COPY reads, content and metadata, never mtime."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from copykit import Inline, Step, stage, write

from builder.context.checksum import RACY_NS, ContentCache
from builder.context.local import LocalContext
from builder.engine.copy_digest import copy_source_digest
from builder.errors import ContextError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "ctx"
    write(r, "src/app.py", "print(1)\n")
    write(r, "src/lib/util.py", "x = 1\n")
    write(r, "README.md", "readme")
    write(r, "notes.txt", "notes")
    return r


def _digest(root: Path, step: Step, **kw: Any) -> Any:
    return copy_source_digest(LocalContext.open(root, **kw), step)


def test_digest_lists_files_read(root: Path) -> None:
    got = _digest(root, Step(sources=("src",), dest="/app/"))
    assert [name for name, _ in got.files] == [
        "/src",
        "/src/app.py",
        "/src/lib",
        "/src/lib/util.py",
    ]
    glob = _digest(root, Step(sources=("*.md", "*.nothing"), dest="/d/"))
    assert [name for name, _ in glob.files] == ["/README.md"]


def test_digest_is_stable_and_ignores_mtime(root: Path) -> None:
    step = Step(sources=("src", "README.md"), dest="/app/")
    first = _digest(root, step)
    os.utime(root / "src" / "app.py", ns=(1, 1))
    os.utime(root / "src", ns=(2, 2))
    assert _digest(root, step) == first


def test_digest_changes_with_content_mode_and_names(root: Path) -> None:
    step = Step(sources=("src",), dest="/app/")
    base = _digest(root, step)
    (root / "src" / "app.py").write_text("print(2)\n")
    changed = _digest(root, step)
    assert changed.digest != base.digest
    diff = {n for (n, d), (_, d0) in zip(changed.files, base.files, strict=True) if d != d0}
    assert diff == {"/src/app.py"}
    os.chmod(root / "src" / "lib" / "util.py", 0o755)
    assert _digest(root, step).digest != changed.digest
    os.rename(root / "src" / "lib" / "util.py", root / "src" / "lib" / "utils.py")
    assert "/src/lib/utils.py" in [n for n, _ in _digest(root, step).files]


def test_files_not_read_do_not_matter(root: Path) -> None:
    step = Step(sources=("src",), dest="/app/")
    base = _digest(root, step)
    (root / "notes.txt").write_text("different")
    write(root, "other/new", "new")
    assert _digest(root, step) == base


def test_dockerignore_and_exclude_shape_the_digest(root: Path) -> None:
    step = Step(sources=(".",), dest="/app/")
    full = _digest(root, step)
    write(root, ".dockerignore", "notes.txt\n.dockerignore\n")
    ignored = _digest(root, step)
    assert "/notes.txt" not in [n for n, _ in ignored.files]
    (root / "notes.txt").write_text("changed, but ignored")
    assert _digest(root, step) == ignored
    assert ignored.digest != full.digest
    excl = _digest(root, Step(sources=(".",), dest="/app/", excludes=("src/lib",)))
    assert not any(n.startswith("/src/lib") for n, _ in excl.files)


def test_owner_of_context_files_does_not_matter(root: Path) -> None:
    step = Step(sources=("src",), dest="/app/")
    base = _digest(root, step)
    os.chown(root / "src" / "app.py", 1000, 1000)
    assert _digest(root, step) == base


def test_owner_of_stage_files_matters(tmp_path: Path) -> None:
    src = tmp_path / "stage"
    write(src, "bin/tool", "t")
    step = Step(sources=("/bin/tool",), dest="/usr/bin/")
    base = copy_source_digest(stage(src), step)
    os.chown(src / "bin" / "tool", 1000, 1000)
    assert copy_source_digest(stage(src), step).digest != base.digest


def test_symlink_targets_matter_not_their_content(root: Path) -> None:
    os.symlink("app.py", root / "src" / "link")
    step = Step(sources=("src",), dest="/app/")
    base = _digest(root, step)
    os.remove(root / "src" / "link")
    os.symlink("lib/util.py", root / "src" / "link")
    assert _digest(root, step).digest != base.digest


def test_followed_source_symlink_hashes_the_target(root: Path) -> None:
    os.symlink("src/app.py", root / "entry")
    step = Step(sources=("entry",), dest="/e")
    base = _digest(root, step)
    assert [n for n, _ in base.files] == ["/entry"]
    (root / "src" / "app.py").write_text("print(3)\n")
    assert _digest(root, step).digest != base.digest


def test_missing_literal_source(root: Path) -> None:
    with pytest.raises(ContextError, match='"/nope": not found'):
        _digest(root, Step(sources=("nope",), dest="/"))


def test_inline_files_count(root: Path) -> None:
    one = _digest(root, Step(inline_files=(Inline(name="EOF", data="a"),), dest="/f"))
    two = _digest(root, Step(inline_files=(Inline(name="EOF", data="b"),), dest="/f"))
    mode = _digest(root, Step(inline_files=(Inline(name="EOF", data="a", mode=0o755),), dest="/f"))
    assert len({one.digest, two.digest, mode.digest}) == 3
    assert [n for n, _ in one.files] == ["<<EOF"]


def test_parents_changes_the_names(root: Path) -> None:
    plain = _digest(root, Step(sources=("src/lib",), dest="/d/"))
    parents = _digest(root, Step(sources=("src/lib",), dest="/d/", parents=True))
    assert [n for n, _ in parents.files] == ["/", "/src", "/src/lib", "/src/lib/util.py"]
    assert plain.digest != parents.digest


def test_unchanged_context_files_are_not_reopened(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    step = Step(sources=("src",), dest="/app/")
    future = time.time_ns() + 10 * RACY_NS

    def context() -> LocalContext:
        ctx = LocalContext.open(root, state_dir=state)
        clocked = ContentCache(state, clock=lambda: future)
        return LocalContext(root=ctx.root, matcher=ctx.matcher, content_cache=clocked)

    first_ctx = context()
    first = copy_source_digest(first_ctx, step)
    first_ctx.close()
    assert first_ctx.content_cache.hashed == 2

    opened: list[str] = []
    real = os.open

    def counting(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        opened.append(os.fsdecode(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting)
    second_ctx = context()
    assert copy_source_digest(second_ctx, step) == first
    assert second_ctx.content_cache.hashed == 0
    assert "app.py" not in opened
    assert "util.py" not in opened
    (root / "src" / "app.py").write_text("print('changed')\n")
    third = copy_source_digest(second_ctx, step)
    assert second_ctx.content_cache.hashed == 1
    assert opened.count("app.py") == 1
    assert "util.py" not in opened
    assert third.digest != first.digest
    second_ctx.close()
