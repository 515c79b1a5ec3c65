"""The Lark side of the parser: the grammar, its lexer mode and its inline transformer.

``grammar/dockerfile.lark`` reads the logical lines that the pre-pass produced, one token per
line. :class:`LineLexer` is the lexer mode and :class:`_Instructions` the transformer that splits
each token into keyword, flags and arguments (BuildKit's splitCommand and line parsers, from
:mod:`builder.syntax.lineparse`) as the LALR parser shifts it. This module imports Lark, so the
parser imports it on first use.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from lark import Lark, Token, Transformer
from lark.common import LexerConf
from lark.exceptions import LarkError, LexError
from lark.lexer import Lexer

from builder.errors import ParseError, Span
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
_BLANK: Parsed = ("", (), ("",), False, None)  # BuildKit's node for a blank logical line


def parse_lines(lines: Sequence[str], escape: str, path: str) -> list[ParsedLine]:
    """Run the grammar over the trimmed logical lines (a blank one is BLANK): a result each."""
    try:
        parsed = parser_for(escape).parse("\n".join(lines) + "\n")
    except LarkError as err:  # the grammar accepts every line; this is a bug guard
        raise ParseError(f"internal parser error: {err}", span=Span(file=path, line=1)) from None
    return cast(list[ParsedLine], parsed)  # what _Instructions.start returns


def grammar_text() -> str:
    """The grammar shipped in the wheel, or the one in a source checkout."""
    # beside the package on disk (a wheel installs it there); importlib.resources is not
    # imported for this, it costs ~9 ms of start-up
    shipped = Path(__file__).resolve().parents[1] / "_grammar" / "dockerfile.lark"
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8")
    source = Path(__file__).resolve().parents[2] / "grammar" / "dockerfile.lark"
    return source.read_text(encoding="utf-8")


@functools.cache
def parser_for(escape: str) -> Lark:
    """The LALR parser for instructions whose escape character is ``escape`` (``\\`` or `````).

    Its transformer runs inline: the method named after a terminal is called on each token as
    the parser shifts it, the one named after a rule on each reduction. Only the transformer
    depends on the escape character. Lark caches the analysed grammar on disk (``cache=True``),
    so a new process only loads it.
    """
    transformer = _Instructions(escape)
    parser = Lark(
        grammar_text(), parser="lalr", lexer=LineLexer, cache=True, transformer=transformer
    )
    names = {t.name for t in parser.terminals}
    if names != {*TERMINALS, "BLANK"}:  # each terminal needs its transformer method
        raise RuntimeError(f"the grammar's terminals {sorted(names)} are not grammar.TERMINALS")
    return parser


class _Instructions(Transformer[Token, list[ParsedLine]]):
    """Splits each instruction token as BuildKit's splitCommand and line parsers do.

    A token is a whole logical line with its newline: the keyword (its terminal's name, in any
    case), the separator, then flags and arguments.
    """

    def __init__(self, escape: str) -> None:
        super().__init__()
        self.escape = escape
        for name in TERMINALS:  # Lark calls the method named after each terminal
            setattr(self, name, self.instruction)
        self.BLANK = self.blank

    def start(self, children: list[list[ParsedLine]]) -> list[ParsedLine]:
        return children[0] if children else []

    def lines(self, children: list[Any]) -> list[ParsedLine]:
        """``lines: lines? LINE``: append each line's result to one list as it is reduced."""
        if len(children) == 1:
            return children  # a new list from Lark: the first line's result
        acc: list[ParsedLine] = children[0]
        acc.append(children[1])
        return acc

    def blank(self, token: Token) -> ParsedLine:
        return _BLANK

    def instruction(self, token: Token) -> ParsedLine:
        kind = token.type
        if kind == "UNKNOWN":
            parts = RE_WHITESPACE.split(token[:-1], maxsplit=1)
            keyword, rest = parts[0], parts[1] if len(parts) == 2 else ""
        else:  # the terminal matched the keyword, so the keyword is as long as its name
            keyword, rest = token[: len(kind)], token[len(kind) : -1].lstrip(_SEP)
        try:
            # The line is trimmed, so only the left of the arguments may need trimming.
            if rest.startswith("--"):
                flag_words, rest = extract_flags(rest, self.escape)
                flags, rest = tuple(flag_words), trim_space(rest)
            else:
                flags, rest = (), rest.lstrip(GO_SPACE)
            # Dispatch on the lower-cased keyword, as BuildKit does: a terminal's `(?i:...)`
            # also accepts case variants such as "ſ" that do not lower-case to the keyword.
            lower = keyword.lower()
            split = LINE_PARSERS.get(lower)
            if split is not None:
                args, is_json = split(rest, self.escape)
                return keyword, flags, args, is_json, None
            return _split_args(keyword, flags, rest, self.escape)  # ONBUILD, unknown keywords
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


class LineLexer(Lexer):
    """Lark's lexer mode for this grammar, in which every token is a whole line.

    It matches the grammar's terminals, as Lark compiled them, in the order Lark's basic lexer
    tries them (priority, then longest pattern), with one alternation of named groups as that
    lexer does. It leaves out what the basic lexer does per token and this grammar does not need:
    line and column counting (the pre-pass knows every line's place) and Token's general
    constructor, which costs more than the match.
    """

    def __init__(self, conf: LexerConf) -> None:
        terminals = sorted(
            conf.terminals,
            key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name),
        )
        pattern = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in terminals)
        self._match = re.compile(pattern, conf.g_regex_flags).match

    def lex(self, data: str) -> Iterator[Token]:  # type: ignore[override]  # Lark's custom lexer API
        match = self._match
        pos = 0
        end = len(data)
        while pos < end:
            found = match(data, pos)
            if found is None:  # every line matches some terminal; this is a bug guard
                raise LexError(f"no instruction terminal matches {data[pos : pos + 40]!r}")
            pos = found.end()
            yield _LineToken(found.lastgroup or "", found.group())


class _LineToken(Token):
    """A :class:`lark.Token` without a position, built in one step."""

    __slots__ = ()

    def __new__(cls, kind: str, value: str) -> _LineToken:
        token = str.__new__(cls, value)
        token.type = kind
        token.value = value
        token.start_pos = token.line = token.column = None
        token.end_line = token.end_column = token.end_pos = None
        return token
