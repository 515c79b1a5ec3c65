"""Build checks during a build: warnings at the end, error=true, the build arg, --check."""

from __future__ import annotations

import pytest
from enginekit import Builder

pytestmark = pytest.mark.integration

JSON_CMD = (
    "JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior "
    "related to OS signals (line {})"
)


def test_warnings_are_printed_at_the_end(pb: Builder) -> None:
    built = pb.build("FROM busybox\nCMD echo hi\n")
    assert built.returncode == 0
    assert built.stderr.endswith("\n1 warning found:\n - " + JSON_CMD.format(2) + "\n")
    assert pb.tagged(built.tag)


def test_error_true_fails_the_build_before_it_runs(pb: Builder) -> None:
    built = pb.build("# check=error=true\nFROM busybox\nRUN touch /ran\nCMD echo hi\n", check=False)
    assert built.returncode == 1
    assert "lint violation found for rules: JSONArgsRecommended" in built.stderr
    assert "Dockerfile:4" in built.stderr
    assert "RUN touch /ran" not in built.stderr  # no step started
    assert " - " + JSON_CMD.format(4) in built.stderr
    assert not pb.tagged(built.tag)


def test_build_arg_replaces_the_directive(pb: Builder) -> None:
    built = pb.build(
        "# check=error=true\nFROM busybox\nCMD echo hi\n",
        args=["--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all"],
    )
    assert built.returncode == 0
    assert "warning" not in built.stderr


def test_unreachable_stages_are_not_checked_in_a_build(pb: Builder) -> None:
    dockerfile = "FROM busybox AS a\n\nFROM a AS b\nENV testkey value\n\nFROM a AS c\n"
    built = pb.build(dockerfile)
    assert "LegacyKeyValueFormat" not in built.stderr
    built = pb.build(dockerfile, args=["--target", "b"])
    assert "LegacyKeyValueFormat" in built.stderr


def test_check_flag_runs_the_checks_and_builds_nothing(pb: Builder) -> None:
    ctx = pb.context({"Dockerfile": "FROM busybox\nRUN false\nCMD echo hi\n"})
    tag = pb.new_tag()
    proc = pb.cli("build", "--check", "-t", tag, str(ctx))
    assert proc.returncode == 0
    assert proc.stdout == "OK: 3 instructions, 1 stage\n"
    assert "note: JSONArgsRecommended" in proc.stderr
    assert not pb.tagged(tag)
    (ctx / "Dockerfile").write_text("# check=error=true\nFROM busybox\nCMD echo hi\n")
    proc = pb.cli("build", "--check", str(ctx))
    assert proc.returncode == 1
    assert "error: lint violation found for rules: JSONArgsRecommended" in proc.stderr
