"""The checklist's outcome checks themselves fail when they should (a check that cannot fail
proves nothing)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from advkit import Result, Sentinels, assert_clean_error


@pytest.mark.parametrize(
    "result",
    [
        Result(0, "", ""),
        Result(1, "", "Traceback (most recent call last):\nERROR: x\n"),
        Result(1, "", "ERROR: one\nERROR: two\n"),
        Result(1, "", "something went wrong\n"),
        Result(137, "", "ERROR: killed\n"),
        Result(1, "", "ERROR: Dockerfile:2:1: bad\n"),  # names no "Dockerfile:3"
    ],
)
def test_clean_error_rejects(result: Result) -> None:
    with pytest.raises(AssertionError):
        assert_clean_error(result, must_name="Dockerfile:3")


def test_clean_error_returns_the_line() -> None:
    result = Result(1, "", "#1 step output\nERROR: Dockerfile:3:1: bad thing\n")
    assert (
        assert_clean_error(result, must_name="Dockerfile:3") == "ERROR: Dockerfile:3:1: bad thing"
    )


@pytest.mark.parametrize("change", ["content", "mode", "new", "removed", "absent", "mtime"])
def test_sentinels_notice(tmp_path: Path, change: str) -> None:
    pwn = tmp_path / "pwn"
    watch = Sentinels.create(tmp_path / "s", absent=(pwn,))
    try:
        watch.check()
        target = watch.trees[1] / "secret"
        match change:
            case "content":
                target.write_bytes(b"changed")
            case "mode":
                os.chmod(target, 0o644)
            case "new":
                (watch.trees[0] / "private" / "added").write_bytes(b"")
            case "removed":
                (watch.trees[0] / "link").unlink()
            case "absent":
                pwn.write_bytes(b"")
            case "mtime":
                os.utime(target, ns=(0, 0))
        with pytest.raises(AssertionError):
            watch.check()
    finally:
        watch.remove()
