"""``pybuild fmt``: print, ``-w`` (atomic, keeps the mode), ``--check``, errors as one line."""

from __future__ import annotations

import io
import stat
import sys
from pathlib import Path

import pytest

from builder.cli import main
from builder.commands import fmt as fmt_command

MESSY = "from alpine as Build\nrun  echo hi\nENV a b c\n"
CLEAN = 'FROM alpine AS build\nRUN echo hi\nENV a="b c"\n'


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_prints_the_formatted_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "Dockerfile", MESSY)
    assert main(["fmt", str(path)]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == (CLEAN, "")
    assert path.read_text(encoding="utf-8") == MESSY


def test_write_rewrites_in_place_keeping_the_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "Dockerfile", MESSY, 0o640)
    assert main(["fmt", "-w", str(path)]) == 0
    assert capsys.readouterr() == ("", "")
    assert path.read_text(encoding="utf-8") == CLEAN
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dockerfile"]  # no temporary left


def test_write_leaves_a_formatted_file_alone(tmp_path: Path) -> None:
    path = write(tmp_path / "Dockerfile", CLEAN)
    before = path.stat()
    assert main(["fmt", "-w", str(path)]) == 0
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_write_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    target = write(tmp_path / "real.Dockerfile", MESSY)
    link = tmp_path / "Dockerfile"
    link.symlink_to(target.name)
    assert main(["fmt", "-w", str(link)]) == 0
    assert link.is_symlink()
    assert target.read_text(encoding="utf-8") == CLEAN


def test_write_keeps_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"from a\nrun echo \xff\n")
    assert main(["fmt", "-w", str(path)]) == 0
    assert path.read_bytes() == b"FROM a\nRUN echo \xff\n"


def test_check_reports_an_unformatted_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "Dockerfile", MESSY)
    assert main(["fmt", "--check", str(path)]) == 1
    assert capsys.readouterr() == (f"{path}\n", "")
    assert path.read_text(encoding="utf-8") == MESSY


def test_check_accepts_a_formatted_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "Dockerfile", CLEAN)
    assert main(["fmt", "--check", str(path)]) == 0
    assert capsys.readouterr() == ("", "")


def test_check_and_write_exclude_each_other(tmp_path: Path) -> None:
    path = write(tmp_path / "Dockerfile", MESSY)
    with pytest.raises(SystemExit) as info:
        main(["fmt", "--check", "-w", str(path)])
    assert info.value.code == 2
    assert path.read_text(encoding="utf-8") == MESSY


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("FROM a\nFOO x\n", 2, "unknown instruction: FOO (did you mean FROM?)"),
        ("FROM a\nRUN <<EOF\nx\n", 2, "unterminated heredoc"),
        ("RUN x\n", 1, "no build stage in current context"),
        ("FROM a\nCOPY --bogus=1 a b\n", 2, "unknown flag: --bogus"),
        ("# comment only\n", 1, "file with no instructions"),
    ],
)
def test_errors_are_one_located_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, message: str
) -> None:
    path = write(tmp_path / "Dockerfile", text)
    assert main(["fmt", "-w", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"{path}:{line}: {message}\n"
    assert path.read_text(encoding="utf-8") == text


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    assert main(["fmt", str(missing)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"open {missing}: No such file or directory\n"


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", _Stdin(MESSY.encode()))
    assert main(["fmt", "-"]) == 0
    assert capsys.readouterr() == (CLEAN, "")


def test_stdin_check_and_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", _Stdin(MESSY.encode()))
    assert main(["fmt", "--check", "-"]) == 1
    assert capsys.readouterr() == ("<stdin>\n", "")
    monkeypatch.setattr(sys, "stdin", _Stdin(b"FROM a\nBADXYZ\n"))
    assert main(["fmt", "-"]) == 1
    assert capsys.readouterr().err == "<stdin>:2: unknown instruction: BADXYZ\n"


def test_write_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fmt", "-w", "-"]) == 2
    assert "needs a file" in capsys.readouterr().err


def test_write_failure_is_one_line_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "Dockerfile", MESSY)

    def refuse(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fmt_command.os, "replace", refuse)
    assert main(["fmt", "-w", str(path)]) == 1
    assert capsys.readouterr() == ("", f"{path}: cannot write: Permission denied\n")
    assert path.read_text(encoding="utf-8") == MESSY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dockerfile"]
