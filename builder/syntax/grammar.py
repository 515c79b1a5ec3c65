"""The grammar side of the parser: ``grammar/dockerfile.lark`` run over the logical lines.

The grammar reads the logical lines that the pre-pass produced, one token per line: each line
matches one instruction terminal (its keyword, any case), ``UNKNOWN`` (another keyword) or
``BLANK``, and ``lines: lines? (TERMINAL | ...)`` accepts any sequence of them. So running the
grammar is lexing: this module matches the lines with the grammar's terminals, compiled by Lark
into one alternation of named groups in the order Lark's lexer tries them, and generated into
:mod:`builder.syntax._line_terminals` (``make grammar``), then splits each line into keyword,
flags and arguments (BuildKit's splitCommand and line parsers, :mod:`builder.syntax.lineparse`).
Lark itself is not loaded at run time (its import and LALR loop cost ~50 ms of every
``pybuild`` start); :mod:`builder.syntax.lark_grammar` runs the same grammar through Lark's
LALR parser, regenerates the terminals, and the tests check both give the same results.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from builder.errors import ParseError, Span
from builder.syntax._line_terminals import FLAGS, PATTERN
from builder.syntax.gotext import GO_SPACE, RE_WHITESPACE, trim_space
from builder.syntax.lineparse import (
    LINE_PARSERS,
    LineSyntaxError,
    extract_flags,
    parse_args,
    split_command,
)
from builder.syntax.tree import Node

# The grammar's instruction terminals (UNKNOWN is any other keyword); BLANK is an empty line.
TERMINALS = (
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR", "UNKNOWN",
)  # fmt: skip

# What one logical line parses to: keyword as written, flag words, BuildKit's Next values,
# whether they are JSON, and the instruction nested in ONBUILD. Or the error to report.
Parsed = tuple[str, tuple[str, ...], tuple[str, ...], bool, Node | None]
ParsedLine = Parsed | LineSyntaxError

_SEP = "\t\v\f\r "  # the grammar's _SEP between keyword and arguments (BuildKit's reWhitespace)
BLANK: Parsed = ("", (), ("",), False, None)  # BuildKit's node for a blank logical line
_MATCH = re.compile(PATTERN, FLAGS).match


def parse_lines(lines: Sequence[str], escape: str, path: str) -> list[ParsedLine]:
    """Run the grammar over the trimmed logical lines (a blank one is BLANK): a result each."""
    data = "\n".join(lines) + "\n"
    match = _MATCH
    out: list[ParsedLine] = []
    pos = 0
    end = len(data)
    while pos < end:
        found = match(data, pos)
        if found is None:  # the grammar accepts every line; this is a bug guard
            raise ParseError(
                f"internal parser error: no instruction terminal matches {data[pos : pos + 40]!r}",
                span=Span(file=path, line=1),
            )
        pos = found.end()
        kind = found.lastgroup or ""
        out.append(BLANK if kind == "BLANK" else split_line(kind, found.group(), escape))
    return out


def grammar_text() -> str:
    """The grammar shipped in the wheel, or the one in a source checkout."""
    # beside the package on disk (a wheel installs it there); importlib.resources is not
    # imported for this, it costs ~9 ms of start-up
    shipped = Path(__file__).resolve().parents[1] / "_grammar" / "dockerfile.lark"
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8")
    source = Path(__file__).resolve().parents[2] / "grammar" / "dockerfile.lark"
    return source.read_text(encoding="utf-8")


def split_line(kind: str, token: str, escape: str) -> ParsedLine:
    """One logical line (with its newline) that matched terminal ``kind``, split as BuildKit's
    splitCommand and line parsers do: keyword, flags, arguments, or the error to report."""
    if kind == "UNKNOWN":
        parts = RE_WHITESPACE.split(token[:-1], maxsplit=1)
        keyword, rest = parts[0], parts[1] if len(parts) == 2 else ""
    else:  # the terminal matched the keyword, so the keyword is as long as its name
        keyword, rest = token[: len(kind)], token[len(kind) : -1].lstrip(_SEP)
    try:
        # The line is trimmed, so only the left of the arguments may need trimming.
        if rest.startswith("--"):
            flag_words, rest = extract_flags(rest, escape)
            flags, rest = tuple(flag_words), trim_space(rest)
        else:
            flags, rest = (), rest.lstrip(GO_SPACE)
        # Dispatch on the lower-cased keyword, as BuildKit does: a terminal's `(?i:...)`
        # also accepts case variants such as "ſ" that do not lower-case to the keyword.
        lower = keyword.lower()
        split = LINE_PARSERS.get(lower)
        if split is not None:
            args, is_json = split(rest, escape)
            return keyword, flags, args, is_json, None
        return _split_args(keyword, flags, rest, escape)  # ONBUILD, unknown keywords
    except LineSyntaxError as err:
        return err


def _split_args(keyword: str, flags: tuple[str, ...], rest: str, escape: str) -> Parsed:
    """An instruction's arguments, split the way BuildKit's line parser for it does."""
    lower = keyword.lower()
    if lower != "onbuild":
        args, is_json = parse_args(lower, rest, escape)
        return keyword, flags, args, is_json, None
    sub = None
    if rest:
        sub_keyword, sub_flags, sub_rest = split_command(rest, escape)
        cmd, inner_flags, args, is_json, inner = _split_args(
            sub_keyword, tuple(sub_flags), sub_rest, escape
        )
        sub = Node(cmd=cmd, flags=inner_flags, args=args, sub=inner, json=is_json, original=rest)
    return keyword, flags, (), False, sub
