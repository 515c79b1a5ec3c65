"""Command-line entry point: ``pybuild [COMMAND] ...``.

Only this module (and the ``builder.commands`` modules it loads) prints or exits. Sub-commands are
imported lazily so that ``pybuild`` starts fast: each lives in ``builder/commands/<name>.py`` and
exposes ``HELP: str``, ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Protocol, cast

from builder import __version__, debug
from builder.errors import BuildError, Interrupted

# command name -> module under builder.commands; order is the order of `pybuild --help`.
COMMANDS: dict[str, str] = {
    "build": "build",
    "run": "run",
    "ps": "ps",
    "exec": "exec_",
    "logs": "logs",
    "stop": "stop",
    "start": "start",
    "restart": "restart",
    "kill": "kill",
    "rm": "rm",
    "port": "port",
    "container": "container",
    "images": "images",
    "inspect": "inspect",
    "history": "history",
    "tag": "tag",
    "rmi": "rmi",
    "save": "save",
    "load": "load",
    "import": "import_",
    "pull": "pull",
    "push": "push",
    "login": "login",
    "logout": "logout",
    "prune": "prune",
    "fsck": "fsck",
    "parse": "parse",
    "check": "check",
    "fmt": "fmt",
}
DEFAULT_COMMAND = "build"


class CommandModule(Protocol):
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, sized as ``shutil.get_terminal_size`` would size it, without
    importing shutil (and the compression modules it loads) in every command: argparse makes a
    formatter for each ``add_argument``, not only for ``--help``."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _terminal_columns() - 2  # as argparse does with shutil's answer
        super().__init__(prog, indent_increment, max_help_position, width)


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: ``$COLUMNS``, else stdout's terminal, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def _load(name: str) -> CommandModule:
    module: ModuleType = importlib.import_module(f"builder.commands.{COMMANDS[name]}")
    return cast(CommandModule, module)


def _top_help() -> str:
    lines = ["usage: pybuild [COMMAND] [OPTIONS] ...", "", "Commands:"]
    lines += [f"  {name}" for name in COMMANDS]
    lines.append("")
    lines.append("Run 'pybuild COMMAND --help' for more information on a command.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # the reader went away (`pybuild images | head`): not an error worth a traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so containers, mounts and temp dirs are cleaned up."""
    raise Interrupted(signum)


def _main(argv: Sequence[str] | None) -> int:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    try:
        prepared = _prepare(argv)
    except KeyboardInterrupt as stop:
        # Before the command started there is nothing to clean up or report: exit as the signal
        # would have ended the process (a command such as `run` handles signals itself).
        return 128 + (stop.signum if isinstance(stop, Interrupted) else signal.SIGINT)
    if isinstance(prepared, int):
        return prepared
    module, args = prepared
    try:
        return module.run(args)
    except BuildError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ERROR: interrupted", file=sys.stderr)
        return 130
    except OSError as err:
        # a full disk where no step or store write named what it was doing: still one line
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f": {err.filename}" if err.filename else ""
        print(f"ERROR: no space left on device{where}", file=sys.stderr)
        return 1


def _unknown_command(word: str) -> bool:
    """A first word that names no command, no existing build context and no URL: docker's
    "is not a docker command" (``pybuild ps`` is never a build of a directory named ps, and a
    typo is not taken for a context)."""
    if word.startswith(("-", "git@")) or "://" in word:
        return False
    return not os.path.exists(word)


def _prepare(argv: Sequence[str] | None) -> tuple[CommandModule, argparse.Namespace] | int:
    """The command to run and its arguments, or the exit status when there is none to run."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace" if stream is sys.stderr else "surrogateescape")
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in ("-D", "--debug"):  # docker's global flag
        os.environ[debug.ENV] = "1"
        args_list = args_list[1:]
    if args_list and args_list[0] in ("-h", "--help"):
        print(_top_help())
        return 0
    if args_list and args_list[0] in ("--version", "version"):
        print(f"pybuild version {__version__}")
        return 0
    if args_list and args_list[0] in COMMANDS:
        name, rest = args_list[0], args_list[1:]
    elif args_list and _unknown_command(args_list[0]):
        print(
            f"pybuild: '{args_list[0]}' is not a pybuild command.\nSee 'pybuild --help'",
            file=sys.stderr,
        )
        return 1
    elif DEFAULT_COMMAND in COMMANDS:
        name, rest = DEFAULT_COMMAND, args_list
    else:
        print(_top_help(), file=sys.stderr)
        return 2
    try:
        module = _load(name)
    except ModuleNotFoundError as err:
        if err.name != f"builder.commands.{COMMANDS[name]}":
            raise
        print(f"pybuild: '{name}' is not available in this version", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(
        prog=f"pybuild {name}", description=module.HELP, formatter_class=_HelpFormatter
    )
    module.add_arguments(parser)
    return module, parser.parse_args(rest)
