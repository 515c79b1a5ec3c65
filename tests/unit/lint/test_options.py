"""The check options: directive, build arg, per-instruction comments, error=true.

Ported from BuildKit's testRuleCheckOption (``dockerfile_check_test.go``) and
``linter.ParseLintOptions``.
"""

from __future__ import annotations

import pytest

from builder.lint.config import CheckConfig, CheckOptionError, parse_check_options
from builder.lint.inputs import LintInputs
from builder.lint.runner import lint
from builder.syntax.parser import parse
from builder.syntax.transform import analyze
from tests.unit.lint.helpers import run

CASING = "#check={}\nFROM scratch as base\ncopy Dockerfile .\n"


@pytest.mark.parametrize(
    "options",
    [
        "skip=all",
        "skip=all;error=true",
        "skip=ConsistentInstructionCasing,FromAsCasing",
        "skip=ConsistentInstructionCasing,FromAsCasing;error=true",
    ],
)
def test_skipped_rules_are_silent(options: str) -> None:
    result = run(CASING.format(options))
    assert result.findings == ()
    assert result.failure() is None


def test_error_true_turns_a_warning_into_a_failure() -> None:
    result = run(CASING.format("skip=ConsistentInstructionCasing"))
    assert [f.rule for f in result.findings] == ["FromAsCasing"]
    assert result.failure() is None
    result = run(CASING.format("skip=ConsistentInstructionCasing;error=true"))
    assert [f.rule for f in result.findings] == ["FromAsCasing"]
    assert result.failure() == "lint violation found for rules: FromAsCasing"


def test_build_arg_replaces_the_directive() -> None:
    arg = LintInputs(check="skip=ConsistentInstructionCasing;error=true")
    result = run(CASING.format("skip=all"), arg)
    assert [f.rule for f in result.findings] == ["FromAsCasing"]
    assert result.failure() == "lint violation found for rules: FromAsCasing"
    result = run(CASING.format("error=true"), LintInputs(check="skip=all"))
    assert result.findings == ()
    assert result.failure() is None


def test_failure_names_each_rule_once() -> None:
    result = run("# check=error=true\nFROM a AS B\nFROM b AS C\ncmd x\n")
    assert result.failure() == (
        "lint violation found for rules: StageNameCasing, ConsistentInstructionCasing, "
        "JSONArgsRecommended"
    )


def test_parse_check_options() -> None:
    assert parse_check_options("") == CheckConfig()
    assert parse_check_options(" skip = A, B ; error = 1 ") == CheckConfig(
        skip=frozenset({"A", "B"}), error=True
    )
    assert parse_check_options("experimental=all;skip=all") == CheckConfig(
        experimental_all=True, skip_all=True
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("skip", 'invalid check option "skip"'),
        ("bogus=1", 'invalid check option "bogus"'),
        (
            "error=maybe",
            'failed to parse check option "error=maybe": strconv.ParseBool: parsing "maybe": '
            "invalid syntax",
        ),
    ],
)
def test_bad_check_options(text: str, message: str) -> None:
    with pytest.raises(CheckOptionError) as info:
        parse_check_options(text)
    assert info.value.message == message


def test_bad_directive_is_an_error_at_lint_time() -> None:
    ast = parse("# check=nope\nFROM scratch\n", path="Dockerfile")
    with pytest.raises(CheckOptionError):
        lint(ast, analyze(ast))
