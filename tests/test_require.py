"""The suite's ``require``: an unmet need fails a test under CI and is reported elsewhere."""

from __future__ import annotations

import pytest

from tests import conftest


def test_unmet_need_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "CI", True)
    with pytest.raises(pytest.fail.Exception, match="this test needs root"):
        conftest.require(False, "root")
    assert conftest.require(True, "root") is True


def test_unmet_need_is_reported_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "CI", False)
    assert conftest.require(False, "root") is False
