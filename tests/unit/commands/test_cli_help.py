"""The commands' help: laid out for the terminal as argparse would, without loading shutil."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from builder import cli


@pytest.mark.parametrize("columns", ["", "57", "200", "junk", "-3"])
def test_width_is_the_one_shutil_gives(monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    assert cli._terminal_columns() == shutil.get_terminal_size().columns


def test_help_is_laid_out_as_argparse_lays_it_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from builder.commands import build

    monkeypatch.setenv("COLUMNS", "60")
    ours = argparse.ArgumentParser(prog="pybuild build", formatter_class=cli._HelpFormatter)
    stock = argparse.ArgumentParser(prog="pybuild build")
    for parser in (ours, stock):
        build.add_arguments(parser)
    assert ours.format_help() == stock.format_help()
    assert "--build-arg" in ours.format_help()


def test_a_build_command_line_loads_no_shutil() -> None:
    probe = (
        "import sys\n"
        "from builder import cli\n"
        "cli._prepare(['build', '-t', 'x', '.'])\n"
        "print('shutil' in sys.modules)\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert loaded.strip() == "False"
