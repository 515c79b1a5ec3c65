"""Rules fired while a stage is dispatched, with BuildKit's cases.

Ported from BuildKit's ``frontend/dockerfile/dockerfile_check_test.go``: testJSONArgsRecommended,
testWorkdirRelativePath, testUnmatchedVars, testAllTargetUnmarshal,
testMultipleInstructionsDisallowed, testLegacyKeyValueFormat, testSecretsUsedInArgOrEnv,
testExposeProtoCasing, testExposeInvalidFormat, testCopyIgnoredFiles,
testCopyIgnoredFileContextRoot, testBaseImagePlatformMismatch. Texts keep BuildKit's leading
newline so lines are BuildKit's. Where BuildKit builds on ``alpine``, the store's answer for
it is given by ``ALPINE`` (an image whose environment has PATH).
"""

from __future__ import annotations

import pytest

from builder.context.ignore import load_ignore_file
from builder.lint.inputs import BaseImage, LintInputs
from builder.oci.types import Platform
from tests.unit.lint.helpers import found

AMD64 = Platform.parse("linux/amd64")
ARM64 = Platform.parse("linux/arm64")


def alpine(ref: str, platform: Platform) -> BaseImage | None:
    if ref in ("alpine", "busybox"):
        return BaseImage(platform=platform, env=(("PATH", "/usr/bin:/bin"), ("HOME", "/root")))
    return None


ALPINE = LintInputs(base_image=alpine, target_platform=AMD64, build_platform=AMD64)
JSON = "JSON arguments recommended for {} to prevent unintended behavior related to OS signals"


def rule(rules: list[tuple[str, str, int]], name: str) -> list[tuple[str, str, int]]:
    return [f for f in rules if f[0] == name]


# --------------------------------------------------------------------------- JSONArgsRecommended


def test_json_args_recommended() -> None:
    assert found("\nFROM scratch\nCMD mycommand\n") == [
        ("JSONArgsRecommended", JSON.format("CMD"), 3)
    ]
    assert found("\nFROM scratch\nENTRYPOINT mycommand\n") == [
        ("JSONArgsRecommended", JSON.format("ENTRYPOINT"), 3)
    ]


@pytest.mark.parametrize(
    "text",
    [
        '\nFROM scratch\nSHELL ["/usr/bin/customshell"]\nCMD mycommand\n',
        '\nFROM scratch\nSHELL ["/usr/bin/customshell"]\nENTRYPOINT mycommand\n',
        '\nFROM scratch AS base\nSHELL ["/usr/bin/customshell"]\n\nFROM base\nCMD mycommand\n',
        '\nFROM scratch AS base\nSHELL ["/usr/bin/customshell"]\n\nFROM base\nENTRYPOINT x\n',
        '\nFROM scratch\nCMD ["mycommand"]\n',
    ],
)
def test_json_args_not_recommended_with_a_shell_or_json(text: str) -> None:
    assert found(text) == []


# --------------------------------------------------------------------------- WorkdirRelativePath


def test_workdir_relative_path() -> None:
    assert found("\nFROM scratch\nWORKDIR app/\n") == [
        (
            "WorkdirRelativePath",
            'Relative workdir "app/" can have unexpected results if the base image changes',
            3,
        )
    ]
    assert found("\nFROM scratch AS a\nWORKDIR /app\n\nFROM a AS b\nWORKDIR subdir/\n") == []
    assert found("\nFROM scratch\n# check=skip=WorkdirRelativePath\nWORKDIR app/\n") == []


def test_workdir_is_checked_after_expansion() -> None:
    assert found("FROM scratch\nARG D=/abs\nWORKDIR $D\nWORKDIR rel\n") == []
    # the base image's variables have their values
    assert found("FROM alpine\nWORKDIR $HOME\n", ALPINE) == []


# --------------------------------------------------------------------------- UndefinedVar


@pytest.mark.parametrize(
    "text",
    [
        "\nFROM scratch\nARG foo\nCOPY Dockerfile${foo} .\n",
        "\nFROM alpine AS base\nARG foo=Dockerfile\n\nFROM base\nCOPY $foo .\n",
        "\nFROM alpine\nRUN echo $PATH\n",
    ],
)
def test_undefined_var_negative(text: str) -> None:
    assert found(text, ALPINE) == []


def test_undefined_var_before_its_arg() -> None:
    text = "\nFROM alpine\nCOPY $foo .\nARG foo=bar\nRUN echo $foo\n"
    assert found(text, ALPINE) == [("UndefinedVar", "Usage of undefined variable '$foo'", 3)]


def test_undefined_var_suggests_a_close_name() -> None:
    text = (
        "\nFROM alpine\nARG DIR_BINARIES=binaries/\nARG DIR_ASSETS=assets/\n"
        "ARG DIR_CONFIG=config/\nCOPY $DIR_ASSET .\n\t"
    )
    assert found(text, ALPINE) == [
        ("UndefinedVar", "Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)", 6)
    ]
    text = "\nFROM alpine\nENV PATH=$PAHT:/tmp/bin\n\t\t"
    assert found(text, ALPINE) == [
        ("UndefinedVar", "Usage of undefined variable '$PAHT' (did you mean $PATH?)", 3)
    ]


def test_undefined_var_in_every_stage_for_check() -> None:
    text = "\nFROM scratch AS first\nCOPY $foo .\n\nFROM scratch AS second\nCOPY $bar .\n"
    assert found(text) == [
        ("UndefinedVar", "Usage of undefined variable '$foo'", 3),
        ("UndefinedVar", "Usage of undefined variable '$bar'", 6),
    ]
    # a build of the last stage dispatches only that stage
    assert found(text, LintInputs(reachable=frozenset({1}))) == [
        ("UndefinedVar", "Usage of undefined variable '$bar'", 6)
    ]


def test_undefined_var_is_silent_when_the_base_image_is_unknown() -> None:
    assert found("FROM golang\nENV P=$GOPATH/bin\n") == []


# --------------------------------------------------------------------------- Multiple...


def multiple(name: str, line: int) -> tuple[str, str, int]:
    return (
        "MultipleInstructionsDisallowed",
        f"Multiple {name} instructions should not be used in the same stage because only the "
        "last one will be used",
        line,
    )


def test_multiple_instructions_disallowed() -> None:
    text = (
        '\nFROM scratch\nENTRYPOINT ["/myapp"]\nENTRYPOINT ["/myotherapp"]\nCMD ["/myapp"]\n'
        'CMD ["/myotherapp"]\nHEALTHCHECK CMD ["/myapp"]\nHEALTHCHECK CMD ["/myotherapp"]\n'
    )
    assert found(text) == [
        multiple("ENTRYPOINT", 3),
        multiple("CMD", 5),
        multiple("HEALTHCHECK", 7),
    ]
    text = (
        '\nFROM scratch\nENTRYPOINT ["/myapp"]\nCMD ["/myapp"]\nHEALTHCHECK CMD ["/myapp"]\n'
        "COPY <<EOF /a.txt\nHello, World!\nEOF\n"
        'ENTRYPOINT ["/myotherapp"]\nCMD ["/myotherapp"]\nHEALTHCHECK CMD ["/myotherapp"]\n'
    )
    assert found(text) == [
        multiple("ENTRYPOINT", 3),
        multiple("CMD", 4),
        multiple("HEALTHCHECK", 5),
    ]
    text = (
        '\nFROM scratch AS a\nENTRYPOINT ["/myapp"]\nCMD ["/myapp"]\nHEALTHCHECK CMD ["/myapp"]\n'
        '\nFROM a AS b\nENTRYPOINT ["/myotherapp"]\nCMD ["/myotherapp"]\n'
        'HEALTHCHECK CMD ["/myotherapp"]\n'
    )
    assert found(text) == []


# --------------------------------------------------------------------------- LegacyKeyValueFormat

LEGACY = '"{0} key=value" should be used instead of legacy "{0} key value" format'


def test_legacy_key_value_format() -> None:
    assert found("\nFROM scratch\nENV testkey value\nLABEL key value\n") == [
        ("LegacyKeyValueFormat", LEGACY.format("ENV"), 3),
        ("LegacyKeyValueFormat", LEGACY.format("LABEL"), 4),
    ]
    assert found("\nFROM scratch\nENV testkey=value\nLABEL key=value\n") == []
    text = (
        "\nFROM scratch\n# check=skip=LegacyKeyValueFormat\nENV testkey value\n"
        "# check=skip=LegacyKeyValueFormat\nLABEL key value\n"
    )
    assert found(text) == []


def test_legacy_key_value_format_only_in_reachable_stages_of_a_build() -> None:
    text = "\nFROM scratch AS a\n\nFROM a AS b\nENV testkey value\nLABEL key value\n\nFROM a AS c\n"
    assert len(found(text)) == 2  # check: every stage
    assert found(text, LintInputs(reachable=frozenset({0, 2}))) == []


# --------------------------------------------------------------------------- Secrets


def test_secrets_used_in_arg_or_env() -> None:
    text = (
        "# check=skip=InvalidDefinitionDescription\n\nFROM scratch\nARG SECRET_PASSPHRASE\n"
        "ENV SUPER_Secret=foo\nENV password=bar secret=baz\n"
        "ARG super_duper_secret_token=foo auth=bar\nENV apikey=bar sunflower=foo\nENV git_key=\n"
        "ENV PUBLIC_KEY=\nARG public_token\nARG SECRET_PASSPHRASE_FILE\n"
        "ENV password_file=bar secret_File=baz\nARG AUTH_MODULE_VERSION\n"
        "# check=skip=SecretsUsedInArgOrEnv // allow secret in environment\nENV password=bar\n"
        "# check=skip=SecretsUsedInArgOrEnv // allow secret in arg\nARG password\n"
        "# check=skip=all // is local to only this instruction\nENV alternate_password=bar\n"
        "# check=skip=all // is local to only this instruction\nARG alternate_password\n"
    )
    message = 'Do not use ARG or ENV instructions for sensitive data ({} "{}")'
    got = sorted(found(text), key=lambda f: (f[2], f[1]))
    assert got == [
        ("SecretsUsedInArgOrEnv", message.format(kind, key), line)
        for kind, key, line in [
            ("ARG", "SECRET_PASSPHRASE", 4),
            ("ENV", "SUPER_Secret", 5),
            ("ENV", "password", 6),
            ("ENV", "secret", 6),
            ("ARG", "auth", 7),
            ("ARG", "super_duper_secret_token", 7),
            ("ENV", "apikey", 8),
            ("ENV", "git_key", 9),
        ]
    ]


# --------------------------------------------------------------------------- EXPOSE


def test_expose_proto_casing() -> None:
    message = "Defined protocol '{}' in EXPOSE instruction should be lowercase"
    assert found("\nFROM scratch\nEXPOSE 80/TcP 8080/TCP 8080/udp\n") == [
        ("ExposeProtoCasing", message.format("80/TcP"), 3),
        ("ExposeProtoCasing", message.format("8080/TCP"), 3),
    ]


def test_expose_invalid_format() -> None:
    message = "EXPOSE instruction should not define an IP address or host-port mapping, found '{}'"
    text = "\nFROM scratch\nEXPOSE 127.0.0.1:80:80 [::1]:8080:8080 5000:5000 8000\n"
    assert sorted(found(text)) == sorted(
        ("ExposeInvalidFormat", message.format(port), 3)
        for port in ("127.0.0.1:80:80", "[::1]:8080:8080", "5000:5000")
    )


# --------------------------------------------------------------------------- CopyIgnoredFile


def ignoring(text: str) -> LintInputs:
    return LintInputs(ignore=load_ignore_file(text, name=".dockerignore"))


def test_copy_ignored_file() -> None:
    inputs = ignoring("\nDockerfile\n")
    text = "\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /windy\n"
    assert found(text, inputs) == [
        (
            "CopyIgnoredFile",
            'Attempting to Copy file "Dockerfile" that is excluded by .dockerignore',
            3,
        ),
        (
            "CopyIgnoredFile",
            'Attempting to Add file "Dockerfile" that is excluded by .dockerignore',
            4,
        ),
    ]
    skipped = "# check=skip=CopyIgnoredFile\n\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /w\n"
    assert found(skipped, inputs) == []


def test_copy_ignored_file_negative_cases() -> None:
    text = (
        "\nFROM scratch AS base\nCOPY Dockerfile /foobar\nADD Dockerfile /windy\n\n"
        "FROM base\nCOPY --from=base /foobar /Dockerfile\n"
    )
    assert found(text, ignoring("\nfoobar\n")) == []
    with_exception = ignoring("\n**\n!Dockerfile\n")
    assert found("\nFROM scratch\nCOPY ./Dockerfile .\n", with_exception) == []
    assert found("\nFROM scratch\nCOPY . .\n\t", with_exception) == []


def test_copy_ignored_file_context_root() -> None:
    text = "\nFROM scratch\nCOPY . .\n"
    assert found(text, ignoring("\n.*\n")) == []
    assert found(text, ignoring("\n*\n")) == [
        ("CopyIgnoredFile", 'Attempting to Copy file "." that is excluded by .dockerignore', 3)
    ]


def test_copy_ignored_file_skips_urls() -> None:
    text = "FROM scratch\nADD https://example.com/Dockerfile /x\n"
    assert found(text, ignoring("Dockerfile\n")) == []


# --------------------------------------------------------------------------- base image platform


def test_invalid_base_image_platform() -> None:
    def store(ref: str, platform: Platform) -> BaseImage | None:
        return BaseImage(platform=ARM64) if ref == "localhost:5000/img:latest" else None

    inputs = LintInputs(base_image=store, target_platform=AMD64)
    text = "\nFROM localhost:5000/img:latest\nENV foo=bar\n\t"
    assert found(text, inputs) == [
        (
            "InvalidBaseImagePlatform",
            'Base image localhost:5000/img:latest was pulled with platform "linux/arm64", '
            'expected "linux/amd64" for current build',
            2,
        )
    ]
    same = LintInputs(base_image=store, target_platform=ARM64)
    assert found(text, same) == []
    assert found("FROM --platform=linux/arm64 localhost:5000/img:latest AS arm64\n", inputs) == []
