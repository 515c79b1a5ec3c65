"""Dockerfile text -> :class:`~builder.syntax.tree.AST`, exactly as BuildKit's parser reads it.

Two stages, as in BuildKit: the pre-pass (:mod:`builder.syntax.lexer`) reads directives, joins
continuation lines and captures heredoc bodies; the Lark grammar (``grammar/dockerfile.lark``,
driven from :mod:`builder.syntax.grammar`) then reads every logical line as one instruction token
and each token is split into keyword, flags and arguments with the line
parsers (:mod:`builder.syntax.lineparse`). The nodes are built last, in file order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from builder.errors import ParseError, Span
from builder.syntax.grammar import ParsedLine, parse_lines
from builder.syntax.heredoc import Marker, markers_in_line
from builder.syntax.lexer import HEREDOC_KEYWORDS, LogicalLine, scan
from builder.syntax.lineparse import LineSyntaxError, parse_args, split_command
from builder.syntax.tree import AST, Node


def parse(text: str, *, path: str = "Dockerfile") -> AST:
    """Parse Dockerfile text; raise :class:`ParseError` where BuildKit's parser would fail."""
    result = scan(text, path, heredoc_probe=_heredoc_markers)
    nodes = _build_nodes(path, result.lines, _parse_lines(result.trimmed, result.escape, path))
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


def _parse_lines(lines: list[str], escape: str, path: str) -> list[ParsedLine]:
    """Run the grammar over the trimmed logical lines, one result per line."""
    if not lines:
        return []
    return parse_lines(lines, escape, path)


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


# --------------------------------------------------------------------------- fast constructors
#
# A frozen dataclass's __init__ sets each field with object.__setattr__, which makes building a
# Node cost more than parsing its line. These build the same objects by setting the slots through
# their descriptors (which is what object.__setattr__ ends up doing). The field lists are checked
# on import, so a field added to Node or Span cannot be left unset.


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[Any, Any], None], ...]:
    fields = tuple(f.name for f in dataclasses.fields(cls))
    if fields != names or getattr(cls, "__slots__", ()) != names or hasattr(cls, "__post_init__"):
        raise RuntimeError(f"{cls.__name__} changed: update its fast constructor in {__name__}")
    return tuple(getattr(cls, name).__set__ for name in names)


_NODE_SLOTS = (
    "cmd", "flags", "args", "sub", "json", "original", "breaks", "start_line", "end_line",
    "heredocs", "comments", "span",
)  # fmt: skip
(
    _set_cmd,
    _set_flags,
    _set_args,
    _set_sub,
    _set_json,
    _set_original,
    _set_breaks,
    _set_start_line,
    _set_end_line,
    _set_heredocs,
    _set_comments,
    _set_span,
) = _slot_setters(Node, _NODE_SLOTS)
_set_file, _set_line, _set_column, _set_span_end_line, _set_end_column = _slot_setters(
    Span, ("file", "line", "column", "end_line", "end_column")
)


def _build_nodes(path: str, lines: list[LogicalLine], parsed: list[ParsedLine]) -> list[Node]:
    """The nodes of the logical lines; raise the first line's error, as BuildKit does.

    Each node and its span are built as ``Node(cmd=..., ..., span=Span(file=path, line=start,
    column=1, end_line=end))`` would build them, by setting their slots directly.
    """
    nodes: list[Node] = []
    append = nodes.append
    new = object.__new__
    for (original, start, end, heredocs, breaks), item in zip(lines, parsed, strict=True):
        if isinstance(item, LineSyntaxError):
            span = Span(file=path, line=start, column=1, end_line=end)
            raise ParseError(str(item), span=span) from None
        cmd, flags, args, is_json, sub = item
        span = new(Span)
        _set_file(span, path)
        _set_line(span, start)
        _set_column(span, 1)
        _set_span_end_line(span, end)
        _set_end_column(span, None)
        node = new(Node)
        _set_cmd(node, cmd)
        _set_flags(node, flags)
        _set_args(node, args)
        _set_sub(node, sub)
        _set_json(node, is_json)
        _set_original(node, original)
        _set_breaks(node, breaks)
        _set_start_line(node, start)
        _set_end_line(node, end)
        _set_heredocs(node, heredocs)
        _set_comments(node, ())
        _set_span(node, span)
        append(node)
    return nodes


__all__ = ["parse"]
