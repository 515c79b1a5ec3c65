"""Source text by line, and compiler-style rendering of errors and warnings.

:func:`render` turns a :class:`~builder.errors.BuildError` or a
:class:`~builder.errors.Diagnostic` into::

    error: unknown instruction: FORM (did you mean FROM?)
     --> Dockerfile:2:1
      |
    2 | FORM busybox
      | ^^^^

The gutter is as wide as the line number; carets sit under the span's columns (at least one);
tabs in the source line are kept in the caret line so the carets line up. A span over several
lines underlines its first line from the start column to the end of that line. A hint that the
message does not already contain is added as a ``= help:`` line, a diagnostic's rule as a
``= note:`` line.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from builder.errors import BuildError, Diagnostic, Level, Span


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceFile:
    """A file's physical lines: line endings removed, a leading BOM removed."""

    path: str
    lines: tuple[str, ...]

    @classmethod
    def from_text(cls, path: str, text: str) -> SourceFile:
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        if lines and lines[0].startswith("\ufeff"):
            lines[0] = lines[0][1:]
        return cls(path=path, lines=tuple(line.removesuffix("\r") for line in lines))

    def line(self, number: int) -> str | None:
        """Physical line ``number`` (1-based), or ``None`` past the end."""
        if 1 <= number <= len(self.lines):
            return self.lines[number - 1]
        return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _printable(text: str) -> str:
    """Replace undecodable input bytes (kept as lone surrogates) by U+FFFD, one for one."""
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)


def _display_width(ch: str) -> int:
    if ch.isascii():
        return 1
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


_ASCII_PAD: Final = {code: " " for code in range(128) if chr(code) != "\t"}  # tabs stay tabs


def _caret_line(line: str, start: int, end: int) -> str:
    """Padding up to column ``start`` then carets to column ``end`` (1-based, inclusive)."""
    if line.isascii():  # one column per character: no per-character width lookups
        return line[: start - 1].translate(_ASCII_PAD) + "^" * max(len(line[start - 1 : end]), 1)
    return _wide_caret_line(line, start, end)


def _wide_caret_line(line: str, start: int, end: int) -> str:
    """:func:`_caret_line` for any text: each character's display width looked up."""
    pad: list[str] = []
    for ch in line[: start - 1]:
        pad.append("\t" if ch == "\t" else " " * _display_width(ch))
    width = sum(max(_display_width(ch), 1) for ch in line[start - 1 : end])
    return "".join(pad) + "^" * max(width, 1)


def snippet(span: Span, source: SourceFile | None) -> list[str]:
    """The location and source lines of a diagnostic (without the message line)."""
    out: list[str] = []
    line_text = source.line(span.line) if source is not None else None
    gutter = len(str(span.line)) if line_text is not None else 1
    pad = " " * gutter
    out.append(f"{pad}--> {_printable(str(span))}")
    if line_text is None:
        return out
    start = max(span.column, 1)
    if span.end_column is not None and (span.end_line is None or span.end_line == span.line):
        end = max(span.end_column, start)
    elif span.end_line is not None and span.end_line > span.line:
        end = max(len(line_text.rstrip()), start)
    else:
        end = start
    if start > len(line_text) + 1:
        start = end = len(line_text) + 1
    out.append(f"{pad} |")
    out.append(f"{span.line} | {_printable(line_text)}".rstrip())
    out.append(f"{pad} | {_caret_line(line_text, start, end)}")
    return out


def render(problem: BuildError | Diagnostic, source: SourceFile | None = None) -> str:
    """The problem as compiler-style text, ending with a newline."""
    if isinstance(problem, Diagnostic):
        label = problem.level.value
        message = problem.message
        hint = None
        note = problem.rule or None
        if note and problem.url:
            note = f"{note} ({problem.url})"
    else:
        label = Level.ERROR.value
        message = problem.message
        hint = problem.hint if problem.hint and problem.hint not in message else None
        note = None
    lines = [f"{label}: {_printable(message)}"]
    span = problem.span
    if span is not None:
        src = source if source is not None and source.path == span.file else None
        lines.extend(snippet(span, src))
    pad = " " * (len(str(span.line)) if span is not None else 1)
    if hint:
        lines.append(f"{pad} = help: {_printable(hint)}")
    if note:
        lines.append(f"{pad} = note: {_printable(note)}")
    return "\n".join(lines) + "\n"


__all__ = ["SourceFile", "render", "snippet"]
