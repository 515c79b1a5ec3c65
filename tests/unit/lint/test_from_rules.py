"""FROM's base name and --platform, and the experimental description rule, with BuildKit's cases.

Ported from BuildKit's ``frontend/dockerfile/dockerfile_check_test.go``: testUndeclaredArg,
testRedundantTargetPlatform, testInvalidDefaultArgInFrom, testFromPlatformFlagConstDisallowed,
testDefinitionDescription.
"""

from __future__ import annotations

import pytest

from builder.lint.inputs import LintInputs
from tests.unit.lint.helpers import found


def rule(text: str, name: str, inputs: LintInputs | None = None) -> list[tuple[str, str, int]]:
    return [f for f in found(text, inputs) if f[0] == name]


@pytest.mark.parametrize(
    "text",
    [
        "\nARG base=scratch\nFROM $base\nCOPY Dockerfile .\n",
        "\nARG BUILDPLATFORM=linux/amd64\nFROM --platform=$BUILDPLATFORM scratch\n"
        "COPY Dockerfile .\n",
        "\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n",
        "\nARG DEBUG\nFROM scratch${DEBUG}\nCOPY Dockerfile .\n",
        "\nARG DEBUG\nFROM scra${DEBUG:-tch}\nCOPY Dockerfile .\n",
        '\nARG DEBUG=""\nFROM scratch${DEBUG-@bogus}\nCOPY Dockerfile .\n',
    ],
)
def test_undefined_arg_in_from_negative(text: str) -> None:
    assert rule(text, "UndefinedArgInFrom") == []


def test_undefined_arg_in_from() -> None:
    text = "\nFROM --platform=$BULIDPLATFORM scratch\nCOPY Dockerfile .\n"
    assert rule(text, "UndefinedArgInFrom") == [
        (
            "UndefinedArgInFrom",
            "FROM argument 'BULIDPLATFORM' is not declared (did you mean BUILDPLATFORM?)",
            2,
        )
    ]
    text = "\nARG MY_OS=linux\nARG MY_ARCH=amd64\nFROM --platform=linux/${MYARCH} busybox\n"
    assert rule(text, "UndefinedArgInFrom") == [
        ("UndefinedArgInFrom", "FROM argument 'MYARCH' is not declared (did you mean MY_ARCH?)", 4)
    ]
    text = "\nARG tag=latest\nFROM busybox:${tag}${version} AS b\nCOPY Dockerfile .\n"
    assert rule(text, "UndefinedArgInFrom") == [
        ("UndefinedArgInFrom", "FROM argument 'version' is not declared", 3)
    ]


REDUNDANT = "Setting platform to predefined {} in FROM is redundant as this is the default behavior"


def test_redundant_target_platform() -> None:
    assert found("\nFROM --platform=$TARGETPLATFORM scratch\n") == [
        ("RedundantTargetPlatform", REDUNDANT.format("$TARGETPLATFORM"), 2)
    ]
    assert found("\nFROM --platform=${TARGETPLATFORM} scratch\n") == [
        ("RedundantTargetPlatform", REDUNDANT.format("${TARGETPLATFORM}"), 2)
    ]
    assert (
        found("\n# check=skip=RedundantTargetPlatform\nFROM --platform=$TARGETPLATFORM scratch\n")
        == []
    )


def invalid(base: str) -> tuple[str, str, int]:
    message = f"Default value for ARG {base} results in empty or invalid base image name"
    return ("InvalidDefaultArgInFrom", message, 3)


def test_invalid_default_arg_in_from() -> None:
    args = LintInputs(build_args={"VERSION": "latest"})
    assert found("\nARG VERSION\nFROM busybox:$VERSION\n", args) == [invalid("busybox:$VERSION")]
    args = LintInputs(build_args={"IMAGE": "busybox:latest"})
    assert found("\nARG IMAGE\nFROM $IMAGE\n", args) == [invalid("$IMAGE")]
    args = LintInputs(build_args={"SFX": "box:latest"})
    assert found('\nARG SFX="box:"\nFROM busy${SFX}\n', args) == [invalid("busy${SFX}")]


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ('\nARG VERSION="latest"\nFROM busybox:${VERSION}\n', {"VERSION": "latest"}),
        (
            '\nARG BUSYBOX_VARIANT=""\nFROM busybox:stable${BUSYBOX_VARIANT}\n',
            {"BUSYBOX_VARIANT": "-musl"},
        ),
        (
            "\n\tARG BUSYBOX_VARIANT\n\tFROM busybox:stable${BUSYBOX_VARIANT}\n\t",
            {"BUSYBOX_VARIANT": "-musl"},
        ),
    ],
)
def test_valid_default_arg_in_from(text: str, args: dict[str, str]) -> None:
    assert found(text, LintInputs(build_args=args)) == []


def test_from_platform_flag_const_disallowed() -> None:
    assert found("\nFROM --platform=linux/amd64 scratch\n") == [
        (
            "FromPlatformFlagConstDisallowed",
            'FROM --platform flag should not use constant value "linux/amd64"',
            2,
        )
    ]
    assert found("\nFROM --platform=linux/amd64 scratch AS my_amd64_stage\n") == []
    assert found("\nFROM --platform=linux/amd64 scratch AS linux\n") == []


DESCRIPTION = "Comment for {} should follow the format: `# {} <description>`"


def test_definition_description_is_experimental() -> None:
    text = (
        "# check=skip=all;experimental=InvalidDefinitionDescription\n# foo this is the foo\n"
        "ARG foo=bar\n\n# base this is the base image\nFROM scratch AS base\n\n"
        "# version this is the version number\nARG version=latest\n\n# baz this is the baz\n"
        "ARG foo=baz bar=qux baz=quux\n#\nARG bit=bat\n\n"
        "# comment for something other than ARG or FROM\nCOPY Dockerfile .\n"
    )
    assert found(text) == []
    bad = "# bar\nARG foo=bar\n"
    assert found(bad) == []  # off unless asked for


def test_definition_description() -> None:
    text = (
        "# check=experimental=InvalidDefinitionDescription\n# bar this is the bar\nARG foo=bar\n"
        "# BasE this is the BasE image\nFROM scratch AS base\n# definitely a bad comment\n"
        "ARG version=latest\n# definitely a bad comment\nARG foo=baz bar=qux baz=quux\n"
    )
    assert found(text) == [
        ("InvalidDefinitionDescription", DESCRIPTION.format("ARG", "foo"), 3),
        ("InvalidDefinitionDescription", DESCRIPTION.format("FROM", "base"), 5),
        ("InvalidDefinitionDescription", DESCRIPTION.format("ARG", "version"), 7),
        ("InvalidDefinitionDescription", DESCRIPTION.format("ARG", "<arg_key>"), 9),
    ]
