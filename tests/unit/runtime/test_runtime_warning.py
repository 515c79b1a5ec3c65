"""The runc CVE warning reaches the user: ``open_machinery`` prints what ``Runc.check`` found,
as one ``warning:`` line on stderr, once per process (a fake runc on PATH reports an old
version; the real runc's check runs in the integration tests)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder import api
from builder.store import Store

FAKE_RUNC = "#!/bin/sh\necho 'runc version 1.1.0'\necho 'commit: v1.1.0-0-g0000000'\n"


def _fake_runc(directory: Path, script: str) -> None:
    directory.mkdir()
    path = directory / "runc"
    path.write_text(script)
    path.chmod(0o755)


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "_runtime_warned", set())


def test_old_runc_warns_once_naming_the_cves(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fresh_process: None,
) -> None:
    _fake_runc(tmp_path / "bin", FAKE_RUNC)
    monkeypatch.setattr(os, "geteuid", lambda: 0)  # Runc.check wants root; nothing runs here
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    store = Store.open(tmp_path / "store")
    api.open_machinery(store)
    api.open_machinery(store)  # a second stage, or `pybuild run` after a build: no repeat
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("warning: runc 1.1.0 is older than 1.1.12")
    for cve in ("CVE-2024-21626", "CVE-2025-31133", "CVE-2025-52565", "CVE-2025-52881"):
        assert cve in lines[0]


def test_no_warning_without_findings(
    capsys: pytest.CaptureFixture[str], fresh_process: None
) -> None:
    api.warn_runtime("runc", ())
    assert capsys.readouterr().err == ""


def test_each_runtime_warns_once(capsys: pytest.CaptureFixture[str], fresh_process: None) -> None:
    api.warn_runtime("runc", ("runc 1.0.0 is old", "and another"))
    api.warn_runtime("runc", ("runc 1.0.0 is old",))
    assert capsys.readouterr().err == "warning: runc 1.0.0 is old; and another\n"
