"""Compiler-style rendering of errors and warnings (``builder.syntax.source``)."""

from __future__ import annotations

from builder.errors import (
    BuildError,
    Diagnostic,
    InvalidInstructionError,
    Level,
    Span,
    UnknownInstructionError,
)
from builder.syntax.source import SourceFile, render

SOURCE = SourceFile.from_text("Dockerfile", "FROM alpine\nFORM busybox\n\tRUN\tx\n")


def test_the_reference_layout() -> None:
    err = UnknownInstructionError(
        "unknown instruction: FORM (did you mean FROM?)",
        span=Span(file="Dockerfile", line=2, column=1, end_line=2, end_column=4),
        hint="did you mean FROM?",
    )
    assert render(err, SOURCE) == (
        "error: unknown instruction: FORM (did you mean FROM?)\n"
        " --> Dockerfile:2:1\n"
        "  |\n"
        "2 | FORM busybox\n"
        "  | ^^^^\n"
    )


def test_hint_not_in_message_is_a_help_line() -> None:
    err = BuildError(
        "bad thing", span=Span(file="Dockerfile", line=1, column=6), hint="try another"
    )
    assert render(err, SOURCE) == (
        "error: bad thing\n"
        " --> Dockerfile:1:6\n"
        "  |\n"
        "1 | FROM alpine\n"
        "  |      ^\n"
        "  = help: try another\n"
    )


def test_no_span_is_just_the_message() -> None:
    assert render(BuildError("plain")) == "error: plain\n"


def test_span_without_source_text() -> None:
    err = InvalidInstructionError("x", span=Span(file="other", line=7, column=3))
    assert render(err, SOURCE) == "error: x\n --> other:7:3\n"
    assert render(err) == "error: x\n --> other:7:3\n"


def test_line_past_the_end() -> None:
    err = InvalidInstructionError("x", span=Span(file="Dockerfile", line=99))
    assert render(err, SOURCE) == "error: x\n --> Dockerfile:99:1\n"


def test_tabs_are_kept_under_the_line() -> None:
    err = InvalidInstructionError(
        "x", span=Span(file="Dockerfile", line=3, column=6, end_line=3, end_column=6)
    )
    assert render(err, SOURCE).splitlines()[-2:] == ["3 | \tRUN\tx", "  | \t   \t^"]


def test_multi_line_span_underlines_to_the_end_of_the_first_line() -> None:
    err = InvalidInstructionError("x", span=Span(file="Dockerfile", line=2, column=6, end_line=3))
    assert render(err, SOURCE).splitlines()[-1] == "  |      ^^^^^^^"


def test_gutter_grows_with_the_line_number() -> None:
    source = SourceFile.from_text("Dockerfile", "RUN x\n" * 120)
    err = InvalidInstructionError(
        "x", span=Span(file="Dockerfile", line=100, column=1, end_line=100, end_column=3)
    )
    assert render(err, source) == (
        "error: x\n   --> Dockerfile:100:1\n    |\n100 | RUN x\n    | ^^^\n"
    )


def test_warning_with_rule() -> None:
    warning = Diagnostic(
        level=Level.WARNING,
        rule="StageNameCasing",
        message="Stage name 'A' should be lowercase",
        span=Span(file="Dockerfile", line=1, column=6, end_line=1, end_column=11),
        url="https://docs.docker.com/go/dockerfile/rule/stage-name-casing/",
    )
    assert render(warning, SOURCE) == (
        "warning: Stage name 'A' should be lowercase\n"
        " --> Dockerfile:1:6\n"
        "  |\n"
        "1 | FROM alpine\n"
        "  |      ^^^^^^\n"
        "  = note: StageNameCasing "
        "(https://docs.docker.com/go/dockerfile/rule/stage-name-casing/)\n"
    )


def test_wide_characters_and_bad_bytes() -> None:
    source = SourceFile.from_text("Dockerfile", "\ufeffLABEL 名前=x \udcff y\n")
    assert source.line(1) == "LABEL 名前=x \udcff y"
    err = InvalidInstructionError(
        "m", span=Span(file="Dockerfile", line=1, column=9, end_line=1, end_column=11)
    )
    lines = render(err, source).splitlines()
    assert lines[-2] == "1 | LABEL 名前=x \ufffd y"
    assert lines[-1] == "  |           ^^^"


def test_crlf_and_missing_final_newline() -> None:
    source = SourceFile.from_text("Dockerfile", "FROM a\r\nRUN b")
    assert source.lines == ("FROM a", "RUN b")
    assert SourceFile.from_text("Dockerfile", "").lines == ()
