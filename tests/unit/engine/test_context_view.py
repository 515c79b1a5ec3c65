"""Which context entries a bind mount hides: BuildKit's walk of .dockerignore patterns."""

from __future__ import annotations

from pathlib import Path

from builder.context.ignore import PatternMatcher
from builder.engine.context_view import hidden_entries


def _tree(root: Path, names: list[str]) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def test_ignored_directories_are_hidden_whole_unless_an_exception_reaches_inside(
    tmp_path: Path,
) -> None:
    _tree(tmp_path, ["a.txt", "node_modules/x/y.js", "logs/1.log", "logs/keep.log", "src/a.py"])
    matcher = PatternMatcher.compile(["node_modules", "logs", "!logs/keep.log", "**/*.py"])
    assert hidden_entries(tmp_path, matcher) == ("logs/1.log", "node_modules", "src/a.py")


def test_nothing_ignored_hides_nothing(tmp_path: Path) -> None:
    _tree(tmp_path, ["a", "b/c"])
    assert hidden_entries(tmp_path, PatternMatcher.compile(["absent"])) == ()
