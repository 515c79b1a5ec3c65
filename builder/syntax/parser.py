"""Dockerfile text -> :class:`~builder.syntax.ast.AST`, exactly as BuildKit's parser reads it.

Two stages, as in BuildKit: the pre-pass (:mod:`builder.syntax.lexer`) reads directives, joins
continuation lines and captures heredoc bodies; the Lark grammar (``grammar/dockerfile.lark``)
then splits every logical line into keyword, flags and rest, and the line parsers
(:mod:`builder.syntax.lineparse`) split the rest per instruction.
"""

from __future__ import annotations

from collections.abc import Sequence

from lark import Token
from lark.exceptions import LarkError

from builder.errors import ParseError, Span
from builder.syntax.ast import AST, Node
from builder.syntax.gotext import RE_WHITESPACE, trim_space
from builder.syntax.grammar import parser_for
from builder.syntax.heredoc import Marker, markers_in_line
from builder.syntax.lexer import HEREDOC_KEYWORDS, LogicalLine, scan
from builder.syntax.lineparse import LineSyntaxError, extract_flags, parse_args, split_command

_KEYWORD_TRAIL = "\t\v\f\r "


def parse(text: str, *, path: str = "Dockerfile") -> AST:
    """Parse Dockerfile text; raise :class:`ParseError` where BuildKit's parser would fail."""
    result = scan(text, path, heredoc_probe=_heredoc_markers)
    lines = result.lines
    trimmed = [trim_space(line.text) for line in lines]
    parsed = _split_lines([t for t in trimmed if t], result.escape, path)
    nodes: list[Node] = []
    it = iter(parsed)
    for line, text_trimmed in zip(lines, trimmed, strict=True):
        span = Span(file=path, line=line.start_line, column=1, end_line=line.end_line)
        try:
            if text_trimmed:
                keyword, rest = next(it)
                flags: list[str] = []
                if rest.startswith("--"):
                    flags, rest = extract_flags(rest, result.escape)
                node = _build(
                    keyword, flags, trim_space(rest), line.text, result.escape, line=line, span=span
                )
            else:
                node = Node(
                    cmd="",
                    args=("",),
                    original=line.text,
                    start_line=line.start_line,
                    end_line=line.end_line,
                    span=span,
                )
        except LineSyntaxError as err:
            raise ParseError(str(err), span=span) from None
        nodes.append(node)
    if result.pending_error is not None and not result.pending_after_empty_check:
        raise result.pending_error
    if not nodes:
        raise ParseError(
            "file with no instructions", span=Span(file=path, line=max(result.last_line, 1))
        )
    if result.pending_error is not None:
        raise result.pending_error
    return AST(
        path=path,
        text=text,
        nodes=tuple(nodes),
        escape=result.escape,
        directives=tuple(result.directives),
        comments=tuple(result.comments),
        warnings=tuple(result.warnings),
    )


def _split_lines(lines: Sequence[str], escape: str, path: str) -> list[tuple[str, str]]:
    """Run the Lark grammar over the logical lines: (keyword as written, rest) per line."""
    if not lines:
        return []
    try:
        tree = parser_for(escape).parse("\n".join(lines) + "\n")
    except LarkError as err:  # the grammar accepts every non-empty line; this is a bug guard
        raise ParseError(f"internal parser error: {err}", span=Span(file=path, line=1)) from None
    out: list[tuple[str, str]] = []
    for token in tree.children:
        assert isinstance(token, Token)
        text = str(token)
        if token.type == "UNKNOWN":
            parts = RE_WHITESPACE.split(text[:-1], maxsplit=1)
            out.append((parts[0], parts[1] if len(parts) == 2 else ""))
        else:
            cut = len(token.type)
            out.append((text[:cut], text[cut:-1].lstrip(_KEYWORD_TRAIL)))
    return out


def _build(
    keyword: str,
    flags: list[str],
    rest: str,
    original: str,
    escape: str,
    *,
    line: LogicalLine | None = None,
    span: Span | None = None,
) -> Node:
    lower = keyword.lower()
    sub = None
    args: tuple[str, ...] = ()
    is_json = False
    if lower == "onbuild":
        if rest:
            sub_kw, sub_flags, sub_rest = split_command(rest, escape)
            sub = _build(sub_kw, sub_flags, sub_rest, rest, escape)
    else:
        args, is_json = parse_args(lower, rest, escape)
    return Node(
        cmd=keyword,
        flags=tuple(flags),
        args=args,
        sub=sub,
        json=is_json,
        original=original,
        start_line=line.start_line if line else 0,
        end_line=line.end_line if line else 0,
        heredocs=line.heredocs if line else (),
        span=span,
    )


def _heredoc_markers(line: str, escape: str) -> Sequence[Marker]:
    """Markers of a logical line if its instruction may hold heredocs (BuildKit's rule)."""
    keyword, _, rest = split_command(line, escape)
    lower = keyword.lower()
    if lower == "onbuild":
        if not rest:
            return []
        keyword, _, rest = split_command(rest, escape)
        lower = keyword.lower()
    if lower not in HEREDOC_KEYWORDS:
        return []
    try:
        _, is_json = parse_args(lower, rest, escape)
    except LineSyntaxError:
        return []  # the instruction itself fails to parse; that error is reported first
    if is_json:
        return []
    return markers_in_line(line)


__all__ = ["parse"]
