"""Heredoc markers (``<<EOF``, ``<<-EOF``, ``3<<"EOF"``) in RUN, COPY and ADD lines."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from builder.errors import ExpansionError
from builder.syntax.expand import Lexer
from builder.syntax.gotext import GO_SPACE

_HEREDOC_RE = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)\Z", re.S)

# Text the shell lexer would copy unchanged: no "$", quotes or backslash (BuildKit lexes heredoc
# words with the escape character "\" whatever the directive says) and no leading BOM (which the
# lexer drops). "<" is interpreted, but only to keep the blanks after "<<" in the same word.
_LEXER_SPECIAL = re.compile("[$'\"\\\\]|\\A\ufeff")
_SPACE_CLASS = re.escape(GO_SPACE)
# The words heredocsFromLine's lexer makes of such a line: runs of non-blanks, where "<<" takes
# the blanks ([\t\r ]) right after it into its word.
_PLAIN_WORDS = re.compile(f"(?:<<[\\t\\r ]*|[^{_SPACE_CLASS}])+").findall
# A heredoc name that is one plain word: its words with and without raw quotes are itself.
_PLAIN_NAME = re.compile(f"[^$'\"\\\\\ufeff{_SPACE_CLASS}]+").fullmatch


@dataclass(frozen=True, slots=True, kw_only=True)
class Marker:
    name: str
    file_descriptor: int
    expand: bool
    chomp: bool


class HeredocSyntaxError(Exception):
    """A heredoc marker that cannot be lexed; located by the caller."""


def parse_marker(word: str) -> Marker | None:
    """BuildKit's ``ParseHeredoc`` for one word of a line."""
    match = _HEREDOC_RE.match(word)
    if match is None or not match.group(3):
        return None
    fd_text, chomp, rest = match.groups()
    if _PLAIN_NAME(rest) is not None:
        # Fast path: nothing to lex, so the name is `rest` and, having no quotes, it expands.
        return Marker(name=rest, file_descriptor=_fd(fd_text), expand=True, chomp=chomp == "-")

    try:
        words = _lexer(raw_quotes=False, raw_escapes=False).process_words(rest, {})
        if len(words) != 1:
            return None
        raw = _lexer(raw_quotes=True, raw_escapes=False).process_words(rest, {})
    except ExpansionError as err:
        raise HeredocSyntaxError(err.message) from None
    if len(raw) != len(words):
        raise HeredocSyntaxError(
            f"internal lexing of heredoc produced inconsistent results: {rest}"
        )
    name = words[0]

    def quotes(s: str) -> int:
        return s.count("'") + s.count('"')

    return Marker(
        name=name,
        file_descriptor=_fd(fd_text),
        expand=quotes(name) == quotes(raw[0]),
        chomp=chomp == "-",
    )


def markers_in_line(line: str) -> list[Marker]:
    """Every heredoc marker in a logical line, in order (BuildKit's ``heredocsFromLine``)."""
    if _LEXER_SPECIAL.search(line) is None:
        words = _PLAIN_WORDS(line)  # fast path: what the lexer below would return
    else:
        try:
            words = _lexer(raw_quotes=True, raw_escapes=True).process_words(line, {})
        except ExpansionError:
            words = []
    markers = []
    for word in words:
        if "<<" in word:  # parse_marker finds nothing in any other word
            marker = parse_marker(word)
            if marker is not None:
                markers.append(marker)
    return markers


@functools.cache
def _lexer(*, raw_quotes: bool, raw_escapes: bool) -> Lexer:
    """BuildKit's heredoc lexers (escape character "\\", unset variables kept), made once."""
    return Lexer(raw_quotes=raw_quotes, raw_escapes=raw_escapes, skip_unset_env=True)


def _fd(digits: str) -> int:
    if not digits:
        return 0
    if len(digits) > 20:  # Go's ParseUint saturates on overflow
        return 2**64 - 1
    return min(int(digits), 2**64 - 1)
