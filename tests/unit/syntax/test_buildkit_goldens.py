"""BuildKit's own parser golden data, vendored unchanged in tests/golden/buildkit."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import ParseError
from builder.syntax.lineparse import parse_words
from builder.syntax.parser import parse
from tests.conftest import BUILDKIT_GOLDEN

PARSER = BUILDKIT_GOLDEN / "parser"
POSITIVE = sorted(p for p in (PARSER / "testfiles").iterdir() if p.is_dir())
NEGATIVE = sorted(p for p in (PARSER / "testfiles-negative").iterdir() if p.is_dir())


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", "surrogateescape")


def test_golden_sets_are_complete() -> None:
    assert len(POSITIVE) >= 33
    assert len(NEGATIVE) == 4


@pytest.mark.parametrize("case", POSITIVE, ids=lambda p: p.name)
def test_testfiles_dump_matches_result(case: Path) -> None:
    ast = parse(_read(case / "Dockerfile"), path=str(case / "Dockerfile"))
    expected = _read(case / "result").replace("\r\n", "\n")
    assert ast.dump() == expected


@pytest.mark.parametrize("case", NEGATIVE, ids=lambda p: p.name)
def test_testfiles_negative_fail(case: Path) -> None:
    with pytest.raises(ParseError) as info:
        parse(_read(case / "Dockerfile"), path="Dockerfile")
    assert info.value.span is not None
    assert info.value.message


def test_testfile_line_numbers() -> None:
    """BuildKit's TestParseIncludesLineNumbers."""
    ast = parse(_read(PARSER / "testfile-line" / "Dockerfile"))
    assert [(n.start_line, n.end_line) for n in ast.nodes] == [(5, 5), (11, 12), (17, 31)]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("foo", ["foo"]),
        ("foo bar", ["foo", "bar"]),
        ("foo\\ bar", ["foo\\ bar"]),
        ("foo=bar", ["foo=bar"]),
        ("foo bar 'abc xyz'", ["foo", "bar", "'abc xyz'"]),
        ('foo bar "abc xyz"', ["foo", "bar", '"abc xyz"']),
        ("àöû", ["àöû"]),
        ('föo bàr "âbc xÿz"', ["föo", "bàr", '"âbc xÿz"']),
    ],
)
def test_parse_words(text: str, words: list[str]) -> None:
    """BuildKit's TestParseWords."""
    assert parse_words(text, "\\") == words


def test_empty_continuation_lines_warn() -> None:
    """BuildKit's TestParseWarnsOnEmptyContinutationLine."""
    text = (
        "\nFROM alpine:3.6\n\nRUN valid \\\n    continuation\n\n"
        "RUN something \\\n\n    following \\\n\n    more\n\n"
        "RUN another \\\n\n    thing\n\n"
        "RUN non-indented \\\n# this is a comment\n   after-comment\n\n"
        "RUN indented \\\n    # this is an indented comment\n    comment\n\t"
    )
    ast = parse(text)
    assert [w.rule for w in ast.warnings] == ["NoEmptyContinuation"] * 2
    assert "Empty continuation line found in" in ast.warnings[0].message
    assert "RUN something     following     more" in ast.warnings[0].message
    assert "RUN another     thing" in ast.warnings[1].message
    assert ast.nodes[-1].args == ("indented     comment",)


def test_scanner_error_for_overlong_line() -> None:
    """BuildKit's TestParseReturnsScannerErrors."""
    label = "a" * 65536
    with pytest.raises(ParseError) as info:
        parse(f"\n\t\tFROM image\n\t\tLABEL test={label}\n")
    assert info.value.message == "dockerfile line greater than max allowed size of 65535"
    assert info.value.span is not None
    assert info.value.span.line == 3
