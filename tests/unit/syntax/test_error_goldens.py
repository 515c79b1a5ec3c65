"""Golden diagnostics: ``tests/golden/errors/<case>/Dockerfile`` checked with ``pybuild check``
must print exactly ``expected.txt`` to stderr and exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.cli import main

CASES_DIR = Path(__file__).resolve().parents[2] / "golden" / "errors"
CASES = sorted(p for p in CASES_DIR.iterdir() if p.is_dir())


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 25
    for case in CASES:
        assert (case / "Dockerfile").is_file(), case
        assert (case / "expected.txt").is_file(), case


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_error_golden(
    case: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(case)
    code = main(["check", "-f", "Dockerfile"])
    out, err = capsys.readouterr()
    expected = (case / "expected.txt").read_text(encoding="utf-8")
    assert err == expected
    assert code == 1
    assert out == ""
