"""``pybuild check`` through ``builder.cli.main``: exit codes and output."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from builder.cli import main


def write(tmp_path: Path, text: str | bytes, name: str = "Dockerfile") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def test_valid_file_prints_ok(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "ARG V=1\nFROM alpine:$V AS a\nRUN true\nFROM a\nCOPY --from=a / /\n")
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 0
    out, err = capsys.readouterr()
    assert out == "OK: 5 instructions, 2 stages\n"
    assert err == ""


def test_singular_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "FROM scratch\n", name="one.Dockerfile")
    assert main(["check", "-f", str(path)]) == 0
    assert capsys.readouterr().out == "OK: 1 instruction, 1 stage\n"


def test_warnings_only_exit_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "FROM alpine\nMAINTAINER me\n")
    assert main(["check", "--file", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == "OK: 2 instructions, 1 stage\n"
    assert err == (
        "warning: Maintainer instruction is deprecated in favor of using label\n"
        f" --> {path}:2:1\n"
        "  |\n"
        "2 | MAINTAINER me\n"
        "  | ^^^^^^^^^^\n"
        "  = note: MaintainerDeprecated "
        "(https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/)\n"
    )


def test_errors_exit_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "FROM alpine\nFORM busybox\n")
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "error: unknown instruction: FORM (did you mean FROM?)\n"
        " --> Dockerfile:2:1\n"
        "  |\n"
        "2 | FORM busybox\n"
        "  | ^^^^\n"
        "\n"
        "check failed: 1 error\n"
    )


def test_parse_errors_are_reported_the_same_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "# escape=x\nFROM a\n")
    assert main(["check", "-f", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: invalid escape token 'x' does not match ` or \\\n")
    assert f" --> {path}:1:" in err
    assert err.endswith("\ncheck failed: 1 error\n")


def test_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "# only a comment\n")
    assert main(["check", "-f", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: file with no instructions\n")


def test_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["check", "-f", "nope"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "ERROR: open nope: No such file or directory\n"


def test_directory_instead_of_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Dockerfile").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 1
    assert capsys.readouterr().err == "ERROR: open Dockerfile: Is a directory\n"


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = io.BytesIO(b"FROM a\nRUN --network=bridge true\n")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(data))
    assert main(["check", "-f", "-"]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: invalid network mode "bridge"\n --> <stdin>:2:5\n')


def test_undecodable_bytes_do_not_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, b"FROM a\nF\xffOOBAR x\n")
    assert main(["check", "-f", str(path)]) == 1
    err = capsys.readouterr().err
    assert "error: unknown instruction: F\ufffdOOBAR\n" in err
    assert "2 | F\ufffdOOBAR x\n  | ^^^^^^^\n" in err
    err.encode("utf-8")  # printable


def test_all_problems_are_listed_in_file_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        "FROM a AS Base\nCOPY --chwn=1 a b\nWORKDIR\nHEALTHCHECK --retries=-1 CMD x\n",
    )
    assert main(["check", "-f", str(path)]) == 1
    err = capsys.readouterr().err
    headlines = [line for line in err.splitlines() if line.startswith(("error:", "warning:"))]
    assert headlines == [
        "warning: Stage name 'Base' should be lowercase",
        "error: unknown flag: --chwn (did you mean chown?)",
        "error: WORKDIR requires exactly one argument",
        "error: --retries cannot be negative (-1)",
    ]
    assert err.endswith("\ncheck failed: 3 errors, 1 warning\n")


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", "--help"])
    assert info.value.code == 0
    assert "--file" in capsys.readouterr().out
