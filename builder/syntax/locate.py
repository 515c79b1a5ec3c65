"""Where the parts of one instruction are written: spans for its keyword, flags and arguments.

The syntax tree keeps an instruction's lines, not the column of each word; errors and lint
findings that point at one word (a flag, the stage name, ``AS``) find it here, by splitting the
instruction's physical lines the way the lexer joined them. Only used when reporting a problem.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from builder.errors import Span
from builder.syntax.source import SourceFile
from builder.syntax.tree import AST, Node

_WORD = re.compile(r"[^\t\n\v\f\r ]+")


@dataclass(frozen=True, slots=True)
class Token:
    line: int
    column: int  # 1-based, in characters
    text: str


class Context:
    """Per-run state shared by the instruction parsers: the file, lazily split into lines."""

    __slots__ = ("_source", "ast", "path")

    def __init__(self, ast: AST) -> None:
        self.ast = ast
        self.path = ast.path
        self._source: SourceFile | None = None

    def source(self) -> SourceFile:
        if self._source is None:
            self._source = SourceFile.from_text(self.path, self.ast.text)
        return self._source


def instruction_end(node: Node) -> int:
    """The last physical line of the instruction itself (before any heredoc body)."""
    end = node.end_line
    for heredoc in node.heredocs:
        end -= heredoc.content.count("\n") + 1
    return max(end, node.start_line)


class Where:
    """Finds where parts of one instruction are written. Only used when reporting a problem."""

    __slots__ = ("_ctx", "_flag_words", "_node", "_skip", "_tokens")

    def __init__(self, ctx: Context, node: Node, skip: int, flag_words: Sequence[str]) -> None:
        self._ctx = ctx
        self._node = node  # the node whose lines hold the instruction (ONBUILD for a trigger)
        self._skip = skip  # tokens before this instruction's keyword
        self._flag_words = flag_words
        self._tokens: list[Token] | None = None

    def tokens(self) -> list[Token]:
        if self._tokens is None:
            node = self._node
            source = self._ctx.source()
            escape = self._ctx.ast.escape
            last = instruction_end(node)
            tokens: list[Token] = []
            for number in range(node.start_line, last + 1):
                text = source.line(number)
                if text is None:
                    break
                if number > node.start_line:
                    stripped = text.lstrip(" \t")
                    if not stripped or stripped.startswith("#"):
                        continue
                if number < last:
                    body = text.rstrip(" \t")
                    if body.endswith(escape):
                        text = body[:-1]
                tokens.extend(Token(number, m.start() + 1, m.group()) for m in _WORD.finditer(text))
            self._tokens = tokens[self._skip :]
        return self._tokens

    def _span(self, token: Token, start: int = 0, length: int | None = None) -> Span:
        width = len(token.text) - start if length is None else length
        return Span(
            file=self._ctx.path,
            line=token.line,
            column=token.column + start,
            end_line=token.line,
            end_column=token.column + start + max(width, 1) - 1,
        )

    def fallback(self) -> Span:
        return Span(file=self._ctx.path, line=self._node.start_line or 1, column=1, end_line=None)

    def keyword(self) -> Span:
        tokens = self.tokens()
        return self._span(tokens[0]) if tokens else self.fallback()

    def whole(self) -> Span:
        """From the keyword to the end of its line."""
        tokens = self.tokens()
        if not tokens:
            return self.fallback()
        first = tokens[0]
        last = first
        for token in tokens:
            if token.line != first.line:
                break
            last = token
        return Span(
            file=self._ctx.path,
            line=first.line,
            column=first.column,
            end_line=first.line,
            end_column=last.column + len(last.text) - 1,
        )

    def flag(self, index: int) -> Span:
        word = self._flag_words[index] if index < len(self._flag_words) else ""
        name = word.partition("=")[0]
        tokens = self.tokens()
        nth = sum(1 for w in self._flag_words[:index] if w.partition("=")[0] == name)
        matches = [
            t
            for t in tokens[1:]
            if t.text.startswith(name) and t.text[len(name) : len(name) + 1] in ("", "=")
        ]
        if name and nth < len(matches):
            return self._span(matches[nth])
        return self.keyword()

    def arg(self, index: int) -> Span:
        """Argument ``index`` after the flags (negative: from the end of the instruction)."""
        tokens = self.tokens()
        if index < 0:
            if len(tokens) + index > len(self._flag_words):
                return self._span(tokens[index])
            return self.whole()
        position = 1 + len(self._flag_words) + index
        if position < len(tokens):
            return self._span(tokens[position])
        return self.whole()


__all__ = ["Context", "Token", "Where", "instruction_end"]
