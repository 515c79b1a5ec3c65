"""Checklist cases 1-4 (docs/SECURITY.md section 3, Parser): hostile Dockerfile text through the
real CLI ends in one error line naming the Dockerfile line, and the store stays consistent."""

from __future__ import annotations

from pathlib import Path

import pytest
from advkit import Sentinels, assert_clean_error, assert_store_consistent, rerun_succeeds
from enginekit import Builder

from builder.errors import ExpansionError
from builder.syntax.expand import Lexer
from tests.conftest import BUILDKIT_GOLDEN
from tests.unit.syntax.test_expand import ENV_VAR_ROWS, ENV_VAR_TEST_ENV, WORDS_ROWS

pytestmark = pytest.mark.integration

GOOD = "FROM busybox\nRUN echo adversarial-parse-ok > /ok\n"
NEGATIVE = sorted(p for p in (BUILDKIT_GOLDEN / "parser" / "testfiles-negative").iterdir())


def _fails_cleanly(pb: Builder, dockerfile: str | bytes, line: int, message: str) -> None:
    ctx = pb.context(
        {"Dockerfile": dockerfile.encode() if isinstance(dockerfile, str) else dockerfile}
    )
    built = pb.build(None, context_dir=ctx, check=False)
    error = assert_clean_error(built, must_name=f"Dockerfile:{line}:")
    assert message in error
    assert not pb.tagged(built.tag)
    assert_store_consistent(pb.store_root)


def test_case_01_line_over_65535_bytes(pb: Builder, sentinels: Sentinels) -> None:
    _fails_cleanly(
        pb,
        "FROM busybox\nRUN echo " + "a" * 70000 + "\n",
        2,
        "line greater than max allowed size of 65535",
    )
    rerun_succeeds(pb, GOOD)


DOUBLING = "FROM busybox\nENV a=" + "x" * 60000 + "\n" + ("ENV a=" + "$a" * 30 + "\n") * 2


@pytest.mark.parametrize(
    ("dockerfile", "line", "message"),
    [
        pytest.param(
            "FROM busybox\nENV x=" + "${a:-" * 5000 + "v" + "}" * 5000 + "\n",
            2,
            "expansion too deep",
            id="nested-5000",
        ),
        pytest.param(
            "FROM busybox\nENV x=" + "${a:-" * 10000 + "\n", 2, "expansion too deep", id="unclosed"
        ),
        # a value that grows 30-fold on each ENV ends at the result-size cap, not in a MemoryError
        pytest.param(DOUBLING, 4, "expansion result too large", id="growing-30x"),
    ],
)
def test_case_02_deep_or_huge_expansion(
    pb: Builder, sentinels: Sentinels, dockerfile: str, line: int, message: str
) -> None:
    _fails_cleanly(pb, dockerfile, line, message)
    rerun_succeeds(pb, GOOD)


def test_case_02_arithmetic_shaped_input_is_literal(pb: Builder) -> None:
    # BuildKit's lexer has no arithmetic: `$((` is literal text, kept as written, at once
    value = "$((" * 10000 + "1" + "))" * 10000
    built = pb.build(f"FROM busybox\nENV x={value}\n")
    assert [e for e in built.config["Env"] if e.startswith("x=")] == ["x=" + value]


HOSTILE_TEXT = [
    pytest.param(b"FROM busybox\nRUN echo a\0b\n", 2, "RUN contains a NUL byte", id="nul-run"),
    pytest.param(b"FROM busybox\nCOPY a\0b /x\n", 2, "COPY contains a NUL byte", id="nul-copy"),
    pytest.param(b"FROM busybox\nENV a=b\0c\n", 2, "ENV contains a NUL byte", id="nul-env"),
    pytest.param(
        b"FROM busybox\nRUN echo \xff\xfe\n", 2, "RUN contains invalid UTF-8", id="utf8-run"
    ),
    pytest.param(
        b"FROM busybox\nLABEL a=\xc3\n", 2, "LABEL contains invalid UTF-8", id="utf8-label"
    ),
    pytest.param(
        b"FROM busybox\nARG a=\xff\nRUN echo $a\n", 2, "ARG contains invalid UTF-8", id="utf8-arg"
    ),
    pytest.param(
        b"FROM busybox\nCOPY <<EOF /f\n\xff\nEOF\n",
        2,
        "COPY contains invalid UTF-8",
        id="utf8-heredoc",
    ),
    pytest.param(b"FROM busybox\nF\xffOM x\n", 2, "unknown instruction", id="utf8-keyword"),
    pytest.param(
        "FROM busybox\n\ufeffRUN true\n".encode(), 2, "unknown instruction", id="bom-mid-file"
    ),
    pytest.param(
        b"FROM busybox\nRUN <<EOF\necho hi\n", 2, "unterminated heredoc", id="unterminated-heredoc"
    ),
    pytest.param(b"# escape=x\nFROM busybox\n", 1, "invalid escape token 'x'", id="bad-escape"),
    pytest.param(
        b"FROM busybox\nFOO bar\n", 2, "unknown instruction: FOO", id="unknown-instruction"
    ),
    pytest.param(b"RUN true\n", 1, "no build stage in current context", id="missing-from"),
    *(
        pytest.param((case / "Dockerfile").read_bytes(), line, message, id=case.name)
        for case, line, message in zip(
            NEGATIVE,
            (1, 3, 3, 1),
            (
                "file with no instructions",
                "ENV must have two arguments",
                "file with no instructions",
                "arrays must be comprised of strings only",
            ),
            strict=True,
        )
    ),
]


@pytest.mark.parametrize(("dockerfile", "line", "message"), HOSTILE_TEXT)
def test_case_03_hostile_dockerfile_text(
    pb: Builder, sentinels: Sentinels, dockerfile: bytes, line: int, message: str
) -> None:
    _fails_cleanly(pb, dockerfile, line, message)


def test_case_03_leading_bom_is_stripped_as_docker_does(pb: Builder) -> None:
    # BuildKit strips one UTF-8 BOM at the start of the file: this is not an error
    built = pb.build("\ufeff" + GOOD)
    assert built.files["/ok"].text == "adversarial-parse-ok\n"
    assert_store_consistent(pb.store_root)


def test_case_04_buildkit_shell_tables_pass_completely() -> None:
    """Every row of envVarTest and wordsTest, error rows included (each raises pybuild's
    ExpansionError, nothing else)."""
    lexer = Lexer()
    failed = []
    for number, source, expected in ENV_VAR_ROWS:
        try:
            got = lexer.process_word(source, ENV_VAR_TEST_ENV)
        except ExpansionError:
            got = "error"
        if got != expected:
            failed.append(f"envVarTest:{number}: {source!r} -> {got!r}, want {expected!r}")
    for number, source, words, env in WORDS_ROWS:
        try:
            got_words = lexer.process_words(source, env)
        except ExpansionError:
            got_words = ["error"]
        if got_words != words:
            failed.append(f"wordsTest:{number}: {source!r} -> {got_words!r}, want {words!r}")
    assert len(ENV_VAR_ROWS) == 228
    assert len(WORDS_ROWS) == 24
    assert failed == []


def test_case_04_error_row_through_the_cli(pb: Builder, sentinels: Sentinels) -> None:
    # envVarTest's `${XXX:?}`-style error rows end the build at the line that holds them
    _fails_cleanly(pb, "FROM busybox\nENV a=1\nWORKDIR /${UNSET:?need UNSET}\n", 3, "need UNSET")
    rerun_succeeds(pb, GOOD)


def test_golden_negative_set_is_complete() -> None:
    assert [p.name for p in NEGATIVE] == [
        "empty_dockerfile",
        "env_no_value",
        "only_comments",
        "shykes-nested-json",
    ]
    assert all(isinstance(p, Path) for p in NEGATIVE)
