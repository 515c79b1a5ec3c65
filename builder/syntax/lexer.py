"""The pre-pass: physical lines -> logical instruction lines, as BuildKit's line scanner does it.

Reads parser directives, strips a UTF-8 BOM, joins continuation lines (dropping comments and
empty lines inside them, keeping indentation), and captures heredoc bodies, which need to know
the instruction they belong to. The logical lines then go to the Lark grammar.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from builder.errors import Diagnostic, Level, ParseError, Span
from builder.syntax.ast import Comment, Directive, Heredoc
from builder.syntax.directives import DirectiveScanner, DirectiveSyntaxError
from builder.syntax.gotext import GO_SPACE, trim_left_space, utf8_len
from builder.syntax.heredoc import HeredocSyntaxError, Marker

# Given a logical line and the escape character: its heredoc markers ([] when the instruction
# cannot hold heredocs). May raise HeredocSyntaxError.
HeredocProbe = Callable[[str, str], Sequence[Marker]]

MAX_LINE_BYTES = 65535  # bufio.MaxScanTokenSize - 1
HEREDOC_KEYWORDS = frozenset({"add", "copy", "run"})
_PHYSICAL_LINE = re.compile(r"[^\n]*\n|[^\n]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class LogicalLine:
    text: str  # joined, as BuildKit hands it to the instruction parser
    start_line: int
    end_line: int
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(slots=True, kw_only=True)
class Scan:
    """The result of the pre-pass (filled while scanning, then read by the parser)."""

    path: str
    lines: list[LogicalLine] = field(default_factory=list)
    escape: str = "\\"
    directives: list[Directive] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    # An error met while scanning, raised only after every earlier instruction has been
    # parsed, because BuildKit reports the first error in file order.
    pending_error: ParseError | None = None
    # True when pending_error is the scanner's own (a too-long line), which BuildKit reports
    # only after checking that the file has instructions at all.
    pending_after_empty_check: bool = False
    last_line: int = 0


def _is_comment(line: str) -> bool:
    return trim_left_space(line).startswith("#")


def _trim_newline(line: str) -> str:
    return line.rstrip("\r\n")


def _continuation(line: str, escape: str) -> tuple[str, bool]:
    """Strip a trailing escape character; return (text, is_end_of_line)."""
    stripped = line.rstrip(" \t")
    if not stripped.endswith(escape):
        return line, True
    if len(stripped) == 1:
        return "", False
    if stripped[-2] == escape:
        return line, True
    return stripped[:-1], False


def scan(text: str, path: str, *, heredoc_probe: HeredocProbe) -> Scan:
    """Run BuildKit's scanning loop over ``text``."""
    result = Scan(path=path)
    physical = _PHYSICAL_LINE.findall(text)
    if physical and physical[0].startswith("\ufeff"):
        physical[0] = physical[0][1:]
    directives = DirectiveScanner()
    escape = "\\"
    total = len(physical)
    i = 0  # index of the next physical line; i is also the count of lines consumed

    def too_long(raw: str) -> bool:
        limit = MAX_LINE_BYTES + (1 if raw.endswith("\n") else 0)
        return len(raw) > limit // 4 and utf8_len(raw) > limit

    def fail(message: str, line: int) -> None:
        result.pending_error = ParseError(message, span=Span(file=path, line=max(line, 1)))

    while i < total:
        raw = physical[i]
        if too_long(raw):
            fail(f"dockerfile line greater than max allowed size of {MAX_LINE_BYTES}", i + 1)
            result.pending_after_empty_check = True
            break
        token = _trim_newline(raw).lstrip(GO_SPACE)
        lineno = i + 1
        try:
            directive = directives.feed(token, lineno)
        except DirectiveSyntaxError as err:
            fail(str(err), lineno)
            break
        if directive is not None:
            result.directives.append(directive)
            if directive.name == "escape":
                escape = directive.value
                result.escape = escape
        is_comment = token.startswith("#")
        if is_comment:
            if directive is None:
                result.comments.append(Comment(line=lineno, text=token[1:].strip(GO_SPACE)))
            token = ""
        i += 1
        start_line = i
        body, end = _continuation(token, escape)
        if end and body == "":
            continue
        parts = [body]
        empty_continuation = False
        while not end and i < total:
            raw = physical[i]
            if too_long(raw):
                break
            i += 1
            if _is_comment(raw):
                result.comments.append(
                    Comment(line=i, text=trim_left_space(_trim_newline(raw))[1:].strip(GO_SPACE))
                )
                continue
            piece = _trim_newline(raw)
            if piece.lstrip(GO_SPACE) == "":
                empty_continuation = True
                continue
            piece, end = _continuation(piece, escape)
            parts.append(piece)
        line = "".join(parts)
        if empty_continuation:
            result.warnings.append(
                Diagnostic(
                    level=Level.WARNING,
                    rule="NoEmptyContinuation",
                    message=f"Empty continuation line found in: {line}",
                    span=Span(file=path, line=i),
                    url="https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/",
                )
            )
        heredocs: list[Heredoc] = []
        if "<<" in line:
            try:
                markers = heredoc_probe(line, escape)
            except HeredocSyntaxError as err:
                result.lines.append(LogicalLine(text=line, start_line=start_line, end_line=i))
                fail(str(err), start_line)
                break
            for marker in markers:
                chunks: list[str] = []
                terminated = False
                while i < total:
                    raw = physical[i]
                    if too_long(raw):
                        break
                    i += 1
                    candidate = _trim_newline(raw)
                    if marker.chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == marker.name:
                        terminated = True
                        break
                    chunks.append(raw)
                if not terminated:
                    result.lines.append(LogicalLine(text=line, start_line=start_line, end_line=i))
                    fail("unterminated heredoc", start_line)
                    result.last_line = i
                    return result
                heredocs.append(
                    Heredoc(
                        name=marker.name,
                        file_descriptor=marker.file_descriptor,
                        expand=marker.expand,
                        chomp=marker.chomp,
                        content="".join(chunks),
                    )
                )
        result.lines.append(
            LogicalLine(text=line, start_line=start_line, end_line=i, heredocs=tuple(heredocs))
        )
        if i < total and too_long(physical[i]) and result.pending_error is None:
            fail(f"dockerfile line greater than max allowed size of {MAX_LINE_BYTES}", i + 1)
            result.pending_after_empty_check = True
            break
    result.last_line = i
    return result
