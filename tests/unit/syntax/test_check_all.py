"""``check`` collects every problem of a file in one run; ``to_ir`` stops at the first."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import (
    BuildError,
    DockerfileError,
    InvalidInstructionError,
    Span,
    StageError,
    UnknownInstructionError,
)
from builder.syntax.parser import parse
from builder.syntax.transform import analyze, check, to_ir

THREE_ERRORS = """\
FROM alpine AS build
RUN --mount=type=cache,target=/x,sharing=lockd make
COPY --chwn=1 app /app
FORM busybox
"""


def test_three_different_errors_are_all_reported() -> None:
    errors = check(parse(THREE_ERRORS))
    assert [(type(e), e.message) for e in errors] == [
        (InvalidInstructionError, 'unsupported sharing value "lockd" (did you mean locked?)'),
        (InvalidInstructionError, "unknown flag: --chwn (did you mean chown?)"),
        (UnknownInstructionError, "unknown instruction: FORM (did you mean FROM?)"),
    ]
    assert [e.span for e in errors] == [
        Span(file="Dockerfile", line=2, column=5, end_line=2, end_column=46),
        Span(file="Dockerfile", line=3, column=6, end_line=3, end_column=13),
        Span(file="Dockerfile", line=4, column=1, end_line=4, end_column=4),
    ]
    assert all(isinstance(e, BuildError) for e in errors)


def test_to_ir_raises_the_first() -> None:
    with pytest.raises(InvalidInstructionError) as info:
        to_ir(parse(THREE_ERRORS))
    assert info.value.message.startswith('unsupported sharing value "lockd"')


def test_analyze_gives_no_ir_when_there_are_errors() -> None:
    result = analyze(parse(THREE_ERRORS))
    assert result.dockerfile is None
    assert len(result.errors) == 3
    assert result.instruction_count == 4


def test_a_failed_from_still_opens_a_stage() -> None:
    """No cascade of "no build stage" errors after a bad FROM."""
    errors = check(parse("FROM a b\nRUN true\nWORKDIR\n"))
    assert [e.message for e in errors] == [
        "FROM requires either one or three arguments",
        "WORKDIR requires exactly one argument",
    ]


def test_instructions_before_from_are_reported_once() -> None:
    errors = check(parse("RUN a\nRUN b\nFROM x\n"))
    assert [(type(e), e.message) for e in errors] == [
        (StageError, "no build stage in current context")
    ]


def test_stage_errors_and_instruction_errors_together() -> None:
    text = "FROM a AS x\nFROM b AS 2x\nFROM c AS X\nONBUILD MAINTAINER me\nUSER\n"
    errors = check(parse(text))
    assert [e.message for e in errors] == [
        'invalid name for build stage: "2x", name can\'t start with a number or contain symbols',
        "MAINTAINER isn't allowed as an ONBUILD trigger",
        "USER requires exactly one argument",
    ]
    assert all(isinstance(e, DockerfileError) and e.span is not None for e in errors)
    assert [e.span.line for e in errors if e.span] == [2, 4, 5]


def test_valid_file_has_no_problems_and_keeps_parser_warnings() -> None:
    result = analyze(parse("FROM a\nRUN echo \\\n\n  hi\n"))
    assert result.errors == ()
    assert result.dockerfile is not None
    assert [w.rule for w in result.warnings] == ["NoEmptyContinuation"]
    assert result.dockerfile.diagnostics == result.warnings


_KEYWORDS = st.sampled_from(
    (
        *("FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "LABEL", "ONBUILD", "HEALTHCHECK"),
        *("EXPOSE", "VOLUME", "USER", "WORKDIR", "SHELL", "STOPSIGNAL", "MAINTAINER", "CMD"),
        *("ENTRYPOINT", "FORM", "from", "Run", "NONE"),
    )
)
_FLAGS = st.sampled_from(
    (
        *("", "--link", "--from=a", "--from=$X", "--chown=1", "--mount=type=cache,target=/x"),
        *("--mount=type=secret", "--network=host", "--interval=1ns", "--retries=-1", "--nope"),
        *("--platform=linux/amd64", "--mount=type=$T,mode=$M", "--", "--chmod"),
    )
)
_WORDS = st.sampled_from(
    ["a", "b", "AS", "as", "x=1", "=", "CMD", "NONE", "<<EOF", '["a"]', "[]", "$X", "9x", "--x"]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_KEYWORDS, _FLAGS, st.lists(_WORDS, max_size=4)), min_size=1, max_size=8))
def test_check_never_crashes_and_agrees_with_to_ir(
    lines: list[tuple[str, str, list[str]]],
) -> None:
    text = "".join(f"{kw} {flag} {' '.join(words)}\n" for kw, flag, words in lines)
    text = text.replace("<<EOF\n", "<<EOF\nbody\nEOF\n")
    try:
        ast = parse(text)
    except BuildError:
        return
    result = analyze(ast)
    for err in result.errors:
        assert isinstance(err, DockerfileError)
        assert err.span is not None
        assert err.span.end_column is None or err.span.end_column >= err.span.column
    if result.errors:
        with pytest.raises(DockerfileError) as info:
            to_ir(ast)
        assert info.value.message == result.errors[0].message
    else:
        assert to_ir(ast) == result.dockerfile
