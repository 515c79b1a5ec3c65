"""``pybuild check --fix`` and ``--diff``: what is rewritten, what is kept, what is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.cli import main
from tests.unit.lint.helpers import run


def fixed(text: str) -> str:
    return run(text).fixed()


def test_casing_follows_the_majority_and_as_follows_from() -> None:
    text = "from alpine as Build\nrun make\nCOPY a b\nFROM build AS final\nuser x\n"
    assert fixed(text) == "from alpine as build\nrun make\ncopy a b\nfrom build as final\nuser x\n"
    # a tie goes to upper case, as in BuildKit
    assert fixed("from a\nRUN x\n") == "FROM a\nRUN x\n"
    text = "FROM alpine as base\nRUN make\ncopy a b\n"
    assert fixed(text) == "FROM alpine AS base\nRUN make\nCOPY a b\n"


def test_as_is_found_after_a_flag_value_with_blanks() -> None:
    text = 'from --platform="a b" alpine AS Base\nrun x\n'
    assert fixed(text) == 'from --platform="a b" alpine as base\nrun x\n'


def test_mixed_case_keywords_take_the_majority() -> None:
    assert fixed("From scratch\nCopy a b\nRUN x\n") == "FROM scratch\nCOPY a b\nRUN x\n"


def test_legacy_key_value() -> None:
    assert fixed("FROM scratch\nENV key the value\nLABEL a b\n") == (
        'FROM scratch\nENV key="the value"\nLABEL a=b\n'
    )


def test_shell_form_to_json_only_when_safe() -> None:
    text = (
        "FROM scratch\nCMD echo hi\n"
        "FROM scratch\nCMD echo $HOME\n"
        "FROM scratch\nCMD a && b\n"
        "FROM scratch\nCMD echo 'x y'\n"
        "FROM scratch\nENTRYPOINT serve --port=80\n"
        'FROM scratch\nENTRYPOINT serve\nCMD ["--debug"]\n'
    )
    assert fixed(text) == (
        'FROM scratch\nCMD ["echo", "hi"]\n'
        "FROM scratch\nCMD echo $HOME\n"
        "FROM scratch\nCMD a && b\n"
        "FROM scratch\nCMD echo 'x y'\n"
        'FROM scratch\nENTRYPOINT ["serve", "--port=80"]\n'
        'FROM scratch\nENTRYPOINT serve\nCMD ["--debug"]\n'
    )


def test_no_conversion_after_a_shell_instruction() -> None:
    text = 'FROM scratch\nSHELL ["/bin/bash", "-c"]\nCMD echo hi\n'
    assert fixed(text) == text


def test_comments_blank_lines_and_other_lines_are_kept() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n\n# the base\nfrom alpine\n\n"
        "run apk add \\\n    # a tool\n    curl\n"
        "ENV a \\\n  # inside\n  b\n"
        "  label  x=1\n"
    )
    assert fixed(text) == (
        "# syntax=docker/dockerfile:1\n\n# the base\nfrom alpine\n\n"
        "run apk add \\\n    # a tool\n    curl\n"
        "  # inside\nenv a=b\n"
        "  label  x=1\n"
    )


def test_skipped_rules_are_not_fixed() -> None:
    text = "# check=skip=ConsistentInstructionCasing,LegacyKeyValueFormat\nfrom a\nENV k v\n"
    assert fixed(text) == text


def test_backtick_escape_and_crlf() -> None:
    text = "# escape=`\r\nfrom a\r\nENV k v\r\nRUN x\r\n"
    assert fixed(text) == "# escape=`\r\nFROM a\r\nENV k=v\r\nRUN x\r\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "Dockerfile"
    path.write_text(text, encoding="utf-8")
    return path


def test_diff_changes_nothing_and_exits_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "FROM a as b\nENV k v\n")
    assert main(["check", "--root", str(tmp_path / "none"), "--diff", "-f", str(path)]) == 1
    out = capsys.readouterr().out
    assert out == (
        f"--- {path}\n+++ {path}\n@@ -1,2 +1,2 @@\n-FROM a as b\n-ENV k v\n+FROM a AS b\n+ENV k=v\n"
    )
    assert path.read_text() == "FROM a as b\nENV k v\n"


def test_fix_writes_the_file_then_checks_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "FROM a as b\nENV k v\nCMD run it\n")
    path.chmod(0o640)
    assert main(["check", "--root", str(tmp_path / "none"), "--fix", "-f", str(path)]) == 0
    out, err = capsys.readouterr()
    assert path.read_text() == 'FROM a AS b\nENV k=v\nCMD ["run", "it"]\n'
    assert path.stat().st_mode & 0o777 == 0o640
    assert out == "OK: 3 instructions, 1 stage\n"
    assert err == ""
    assert main(["check", "--root", str(tmp_path / "none"), "--diff", "-f", str(path)]) == 0
    assert capsys.readouterr().out == ""


def test_fix_refuses_a_file_with_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "from a\nWORKDIR\n")
    assert main(["check", "--root", str(tmp_path / "none"), "--fix", "-f", str(path)]) == 1
    assert "cannot fix a Dockerfile that has errors" in capsys.readouterr().err
    assert path.read_text() == "from a\nWORKDIR\n"
