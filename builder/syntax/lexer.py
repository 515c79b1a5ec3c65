"""The pre-pass: physical lines -> logical instruction lines, as BuildKit's line scanner does it.

Reads parser directives, strips a UTF-8 BOM, joins continuation lines (dropping comments and
empty lines inside them, keeping indentation), and captures heredoc bodies, which need to know
the instruction they belong to. The logical lines then go to the Lark grammar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from builder.errors import Diagnostic, Level, ParseError, Span
from builder.syntax.directives import DirectiveScanner, DirectiveSyntaxError
from builder.syntax.gotext import GO_SPACE, trim_space, utf8_len
from builder.syntax.heredoc import HeredocSyntaxError, Marker
from builder.syntax.tree import Comment, Directive, Heredoc

# Given a logical line and the escape character: its heredoc markers ([] when the instruction
# cannot hold heredocs). May raise HeredocSyntaxError.
HeredocProbe = Callable[[str, str], Sequence[Marker]]

MAX_LINE_BYTES = 65535  # bufio.MaxScanTokenSize - 1
HEREDOC_KEYWORDS = frozenset({"add", "copy", "run"})

# One logical line: (text as BuildKit hands it to the instruction parser, first physical line,
# last physical line, heredocs, breaks). ``breaks`` are the offsets in the text where a physical
# line ended in an escape-newline (dropped in the text), for the formatter. A plain tuple, not a
# dataclass: the pre-pass makes one per instruction, and building a frozen dataclass costs more
# than the rest of the fast path.
LogicalLine = tuple[str, int, int, tuple[Heredoc, ...], tuple[int, ...]]


@dataclass(slots=True, kw_only=True)
class Scan:
    """The result of the pre-pass (filled while scanning, then read by the parser)."""

    path: str
    lines: list[LogicalLine] = field(default_factory=list)
    # The text of each logical line trimmed on both sides (Go's strings.TrimSpace), which is
    # what the grammar reads. Blank ones (a continuation of nothing) are kept here too.
    trimmed: list[str] = field(default_factory=list)
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


def _too_long(line: str) -> bool:
    """Whether bufio.Scanner rejects the physical line ``line`` (given without its newline).

    Its limit is MAX_LINE_BYTES + 1 bytes with the newline, MAX_LINE_BYTES without one; either
    way the line itself must have more than MAX_LINE_BYTES bytes, so more than a quarter of that
    in characters (a character is at most 4 UTF-8 bytes).
    """
    return len(line) > MAX_LINE_BYTES // 4 and utf8_len(line) > MAX_LINE_BYTES


def scan(text: str, path: str, *, heredoc_probe: HeredocProbe) -> Scan:
    """Run BuildKit's scanning loop over ``text``.

    Physical lines are handled without their newline. BuildKit's ``trimNewline`` removes the
    newline and any carriage returns before it, which is ``line.rstrip("\\r")`` here.
    """
    result = Scan(path=path)
    physical = text.split("\n")
    if physical[-1] == "":  # the text ends with a newline (or is empty): no line after it
        physical.pop()
    if physical and physical[0].startswith("\ufeff"):
        physical[0] = physical[0][1:]
    total = len(physical)
    lines = result.lines
    trimmed = result.trimmed
    comments = result.comments
    directives = DirectiveScanner()
    in_directives = True
    escape = "\\"
    i = 0  # index of the next physical line; i is also the count of lines consumed
    # Most files have no line long enough to need bufio.Scanner's limit check.
    check_long = total > 0 and max(map(len, physical)) > MAX_LINE_BYTES // 4

    def fail(message: str, line: int) -> None:
        result.pending_error = ParseError(message, span=Span(file=path, line=max(line, 1)))

    while i < total:
        raw = physical[i]
        if check_long and _too_long(raw):
            fail(f"dockerfile line greater than max allowed size of {MAX_LINE_BYTES}", i + 1)
            result.pending_after_empty_check = True
            break
        i += 1
        if in_directives:
            try:
                directive = directives.feed(raw.rstrip("\r").lstrip(GO_SPACE), i)
            except DirectiveSyntaxError as err:
                fail(str(err), i)
                break
            in_directives = not directives.done
            if directive is not None:  # a comment line, but not kept as a Comment
                result.directives.append(directive)
                if directive.name == "escape":
                    escape = directive.value
                    result.escape = escape
                continue
        # BuildKit trims the line on the left (unicode.IsSpace) and its newline on the right,
        # drops a comment, then a trailing escape character, and skips a line left empty.
        # `stripped` is the line trimmed on both sides: blank, comment and escape tests agree
        # with those on the left-trimmed line (the escape character is never a space).
        stripped = raw.strip(GO_SPACE)
        if not stripped:
            continue
        if stripped[0] == "#":
            comments.append(Comment(line=i, text=stripped[1:].strip(GO_SPACE)))
            continue
        start_line = i
        breaks: tuple[int, ...] = ()
        if stripped[-1] != escape:
            # Fast path: no trailing escape character, so this physical line is the whole
            # logical line (its text keeps trailing blanks other than carriage returns).
            line = stripped if len(stripped) == len(raw) else raw.rstrip("\r").lstrip(GO_SPACE)
        else:
            body, end = _continuation(raw.rstrip("\r").lstrip(GO_SPACE), escape)
            parts = [body]
            empty_continuation = False
            while not end and i < total:
                raw = physical[i]
                if check_long and _too_long(raw):
                    break
                i += 1
                piece = raw.rstrip("\r")
                left = piece.lstrip(GO_SPACE)
                if left.startswith("#"):
                    comments.append(Comment(line=i, text=left[1:].strip(GO_SPACE)))
                    continue
                if left == "":
                    empty_continuation = True
                    continue
                piece, end = _continuation(piece, escape)
                parts.append(piece)
            line = "".join(parts)
            breaks = tuple(accumulate(map(len, parts[:-1])))
            stripped = trim_space(line)
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
        heredocs: tuple[Heredoc, ...] = ()
        # BuildKit looks for heredocs only in lines containing "<<" (and only for some
        # instructions, which the probe decides).
        if "<<" in line:
            try:
                markers = heredoc_probe(line, escape)
            except HeredocSyntaxError as err:
                lines.append((line, start_line, i, (), breaks))
                trimmed.append(stripped)
                fail(str(err), start_line)
                break
            if markers:
                heredocs, i = _read_heredocs(markers, physical, i, check_long)
                if len(heredocs) < len(markers):
                    lines.append((line, start_line, i, (), breaks))
                    trimmed.append(stripped)
                    fail("unterminated heredoc", start_line)
                    result.last_line = i
                    return result
        lines.append((line, start_line, i, heredocs, breaks))
        trimmed.append(stripped)
        if check_long and i < total and _too_long(physical[i]) and result.pending_error is None:
            fail(f"dockerfile line greater than max allowed size of {MAX_LINE_BYTES}", i + 1)
            result.pending_after_empty_check = True
            break
    result.last_line = i
    return result


def _read_heredocs(
    markers: Sequence[Marker], physical: list[str], i: int, check_long: bool
) -> tuple[tuple[Heredoc, ...], int]:
    """The bodies of ``markers`` from physical line ``i`` on, and the index after the last one.

    Fewer heredocs than markers means the last one is unterminated (at the end of the file or
    before a line too long to read).
    """
    heredocs: list[Heredoc] = []
    total = len(physical)
    for marker in markers:
        chunks: list[str] = []
        terminated = False
        while i < total:
            raw = physical[i]
            if check_long and _too_long(raw):
                break
            i += 1
            candidate = raw.rstrip("\r")
            if marker.chomp:
                candidate = candidate.lstrip("\t")
            if candidate == marker.name:
                terminated = True
                break
            chunks.append(raw)
        if not terminated:
            break
        heredocs.append(
            Heredoc(
                name=marker.name,
                file_descriptor=marker.file_descriptor,
                expand=marker.expand,
                chomp=marker.chomp,
                # Each body line keeps its newline (the terminator line follows them all).
                content="\n".join(chunks) + "\n" if chunks else "",
            )
        )
    return tuple(heredocs), i
