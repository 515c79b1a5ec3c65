"""Stage names, FROM/AS casing, instruction casing, MAINTAINER and empty continuations.

Cases ported from BuildKit's ``frontend/dockerfile/dockerfile_check_test.go`` (testStageName,
testConsistentInstructionCasing, testDuplicateStageName, testReservedStageName,
testMaintainerDeprecated, testNoEmptyContinuation); each text keeps BuildKit's leading newline so
the expected line numbers are BuildKit's.
"""

from __future__ import annotations

import pytest

from builder.errors import Span
from builder.syntax.parser import parse
from builder.syntax.transform import analyze
from tests.unit.lint.helpers import found, run

CASING = "Command '{}' should match the case of the command majority ({})"


def test_stage_name_casing_and_from_as_casing() -> None:
    text = (
        "\n# warning: stage name should be lowercase\n#\nFROM scratch AS BadStageName\n\n"
        "# warning: 'as' should match 'FROM' cmd casing.\n#\nFROM scratch as base2\n\n"
        "FROM scratch AS base3\n"
    )
    assert found(text) == [
        ("StageNameCasing", "Stage name 'BadStageName' should be lowercase", 4),
        ("FromAsCasing", "'as' and 'FROM' keywords' casing do not match", 8),
    ]


def test_from_as_casing_lowercase_from() -> None:
    text = "\n# warning\n#\nfrom scratch AS base\n\nfrom scratch as base2\n"
    assert found(text) == [("FromAsCasing", "'AS' and 'from' keywords' casing do not match", 4)]


def test_stage_name_finding_points_at_the_name() -> None:
    result = run("FROM a AS Build\nfrom b AS c\nFROM c as d\n")
    first, second = [f for f in result.findings if f.rule != "ConsistentInstructionCasing"][:2]
    assert first.url == "https://docs.docker.com/go/dockerfile/rule/stage-name-casing/"
    assert first.span == Span(file="Dockerfile", line=1, column=11, end_line=1, end_column=15)
    assert second.span == Span(file="Dockerfile", line=2, column=8, end_line=2, end_column=9)


def test_no_empty_continuation() -> None:
    text = "\nFROM scratch\n# warning: empty continuation line\nCOPY Dockerfile \\\n\n.\n"
    text += "COPY Dockerfile \\\n.\n"
    result = run(text)
    assert [(f.rule, f.message, f.span.line if f.span else 0) for f in result.findings] == [
        ("NoEmptyContinuation", "Empty continuation line", 6)
    ]
    assert result.findings[0].url == (
        "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\n#\n#\nFrom scratch as base\nFROM scratch AS base2\n", [("From", "uppercase", 4)]),
        (
            "\nFROM scratch\n# w\ncopy Dockerfile /foo\nCOPY Dockerfile /bar\n",
            [("copy", "uppercase", 4)],
        ),
        ("\n#\n#\nfrOM scratch as base\nfrom scratch as base2\n", [("frOM", "lowercase", 4)]),
        (
            "\nfrom scratch\n# w\nCOPY Dockerfile /foo\ncopy Dockerfile /bar\n",
            [("COPY", "lowercase", 4)],
        ),
        (
            "\n#\n#\nfrom scratch\nCOPY Dockerfile /foo\nCOPY Dockerfile /bar\n"
            "COPY Dockerfile /baz\n",
            [("from", "uppercase", 4)],
        ),
        (
            "\n#\n#\nFROM scratch\ncopy Dockerfile /foo\ncopy Dockerfile /bar\n"
            "copy Dockerfile /baz\n",
            [("FROM", "lowercase", 4)],
        ),
        ("\nfrom scratch\ncopy Dockerfile /foo\ncopy Dockerfile /bar\n", []),
        ("\nFROM scratch\nCOPY Dockerfile /foo\nCOPY Dockerfile /bar\n", []),
        ("\nFROM alpine\nRUN <<'EOT'\nenv\nEOT\n", []),
    ],
)
def test_consistent_instruction_casing(text: str, expected: list[tuple[str, str, int]]) -> None:
    got = [f for f in found(text) if f[0] == "ConsistentInstructionCasing"]
    assert got == [
        ("ConsistentInstructionCasing", CASING.format(word, casing), line)
        for word, casing, line in expected
    ]


def test_global_args_do_not_count_for_casing() -> None:
    assert found("arg x=1\narg y=2\nFROM scratch\nCOPY a b\n") == []


def test_duplicate_stage_name() -> None:
    assert found("\nFROM scratch AS b\nFROM scratch AS b\n") == [
        ("DuplicateStageName", 'Duplicate stage name "b", stage names should be unique', 3)
    ]
    assert found("\nFROM scratch AS b1\nFROM scratch AS b2\n") == []


def test_duplicate_stage_name_is_case_insensitive_and_a_warning() -> None:
    result = run("FROM a AS one\nFROM b AS One\n")
    rules = [f.rule for f in result.findings]
    assert rules == ["StageNameCasing", "DuplicateStageName"]
    assert result.failure() is None


def test_reserved_stage_name() -> None:
    message = 'Stage name should not use the same name as reserved stage "{}"'
    assert found("\nFROM scratch AS scratch\nFROM scratch AS context\n") == [
        ("ReservedStageName", message.format("scratch"), 2),
        ("ReservedStageName", message.format("context"), 3),
    ]
    assert found("\nFROM scratch\nFROM scratch AS a\n") == []


def test_maintainer_deprecated() -> None:
    assert found("\nFROM scratch\nMAINTAINER me@example.org\n") == [
        ("MaintainerDeprecated", "Maintainer instruction is deprecated in favor of using label", 3)
    ]
    assert found('\nFROM scratch\nLABEL org.opencontainers.image.authors="me@example.org"\n') == []


def test_parse_time_findings_survive_errors_elsewhere() -> None:
    result = run("FROM a AS Base\nWORKDIR\n")
    assert [f.rule for f in result.findings] == ["StageNameCasing"]


def test_warnings_before_error() -> None:
    """BuildKit's testWarningsBeforeError: the warnings before an unknown instruction stay."""
    text = "\nFROM scratch AS BadStageName\nMAINTAINER me@example.org\nBADCMD\n"
    assert found(text) == [
        ("StageNameCasing", "Stage name 'BadStageName' should be lowercase", 2),
        ("MaintainerDeprecated", "Maintainer instruction is deprecated in favor of using label", 3),
    ]
    ast = parse(text, path="Dockerfile")
    (error,) = analyze(ast).errors
    assert (error.message, error.span.line if error.span else 0) == (
        "unknown instruction: BADCMD",
        4,
    )
