"""Heredoc markers (``<<EOF``, ``<<-EOF``, ``3<<"EOF"``) in RUN, COPY and ADD lines."""

from __future__ import annotations

import re
from dataclasses import dataclass

from builder.errors import ExpansionError

_HEREDOC_RE = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)\Z", re.S)


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
    from builder.syntax.expand import Lexer

    match = _HEREDOC_RE.match(word)
    if match is None or not match.group(3):
        return None
    fd_text, chomp, rest = match.groups()
    try:
        words = Lexer(skip_unset_env=True).process_words(rest, {})
        if len(words) != 1:
            return None
        raw = Lexer(skip_unset_env=True, raw_quotes=True).process_words(rest, {})
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
    from builder.syntax.expand import Lexer

    try:
        words = Lexer(raw_quotes=True, raw_escapes=True, skip_unset_env=True).process_words(
            line, {}
        )
    except ExpansionError:
        words = []
    markers = []
    for word in words:
        marker = parse_marker(word)
        if marker is not None:
            markers.append(marker)
    return markers


def _fd(digits: str) -> int:
    if not digits:
        return 0
    if len(digits) > 20:  # Go's ParseUint saturates on overflow
        return 2**64 - 1
    return min(int(digits), 2**64 - 1)
