"""The built wheel ships the grammar and the typing marker (pypa/build style)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_wheel_contains_grammar_and_py_typed(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("pybuild-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "builder/_grammar/dockerfile.lark" in names
    assert "builder/py.typed" in names
    assert "builder/syntax/parser.py" in names
    # the default seccomp profile of RUN steps, with its source and licence
    assert "builder/runtime/seccomp.json" in names
    assert "builder/runtime/seccomp.NOTICE" in names
    shipped = zipfile.ZipFile(wheel).read("builder/_grammar/dockerfile.lark").decode()
    assert shipped == (REPO / "grammar" / "dockerfile.lark").read_text()
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "pybuild = builder.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
