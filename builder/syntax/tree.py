"""The low-level syntax tree: one ``Node`` per instruction, as BuildKit's parser builds it.

This is the layer below the typed IR (``builder.syntax.ir``): arguments are split the way BuildKit
splits them per instruction but nothing is validated or expanded yet. ``dump()`` renders BuildKit's
``result`` S-expression format; ``to_json()`` the shape of the PyPI ``dockerfile`` package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from builder.errors import Diagnostic, Span
from builder.syntax.gotext import go_quote


@dataclass(frozen=True, slots=True, kw_only=True)
class Heredoc:
    name: str
    file_descriptor: int
    expand: bool
    chomp: bool
    content: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Directive:
    name: str  # lower-cased key: syntax, escape or check
    value: str
    line: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Comment:
    """A comment line (``text`` without the ``#``), kept for the formatter."""

    line: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """One instruction.

    ``cmd`` keeps the keyword as written; ``args`` are BuildKit's ``Next`` values (for ENV and
    LABEL the flattened ``key, value, separator`` triples, the separator being ``"="`` or ``""``
    for the legacy space form). ``sub`` is the instruction nested in ONBUILD. ``breaks`` are the
    offsets in ``original`` where the source continued on its next line (an escape-newline,
    dropped from ``original``); the formatter keeps a shell-form command's breaks.
    """

    cmd: str
    flags: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    sub: Node | None = None
    json: bool = False
    original: str = ""
    breaks: tuple[int, ...] = ()
    start_line: int = 0
    end_line: int = 0
    heredocs: tuple[Heredoc, ...] = ()
    comments: tuple[str, ...] = ()
    span: Span | None = None

    @property
    def keyword(self) -> str:
        return self.cmd.lower()

    def dump(self) -> str:
        """BuildKit's ``Node.Dump()`` for this instruction."""
        parts = [self.keyword]
        if self.flags:
            parts.append("[" + " ".join(go_quote(f) for f in self.flags) + "]")
        if self.sub is not None:
            parts.append("(" + self.sub.dump() + ")\n")
        parts.extend(go_quote(a) for a in self.args)
        return " ".join(parts).strip()

    def to_json(self) -> dict[str, Any]:
        """The fields of the PyPI ``dockerfile`` package's ``Command`` for this instruction.

        That package reports the keyword as written, the nested instruction's values for ONBUILD,
        ENV/LABEL values without BuildKit's separator entries, ``None`` for empty strings, and
        appends each heredoc body and terminator to ``original``.
        """
        inner = self.sub if self.sub is not None else self
        if inner.keyword in ("env", "label") and not inner.json:
            values = [v for i, v in enumerate(inner.args) if i % 3 != 2]
        elif inner.sub is not None:  # ONBUILD ONBUILD x: the nested ONBUILD's one empty value
            values = [""]
        else:
            values = list(inner.args)
        original = self.original
        if inner.heredocs:
            original += "\n" + "".join(h.content + h.name + "\n" for h in inner.heredocs)
        return {
            "cmd": self.cmd or None,
            "sub_cmd": (self.sub.cmd or None) if self.sub is not None else None,
            "json": inner.json,
            "original": original or None,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "flags": list(self.flags),
            "value": values,
            "heredocs": [
                {"name": h.name, "file_descriptor": h.file_descriptor, "content": h.content}
                for h in inner.heredocs
            ],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class AST:
    path: str
    text: str
    nodes: tuple[Node, ...]
    escape: str = "\\"
    directives: tuple[Directive, ...] = ()
    comments: tuple[Comment, ...] = ()
    warnings: tuple[Diagnostic, ...] = ()

    def dump(self) -> str:
        """BuildKit's ``result`` golden format: one S-expression per line."""
        return "".join(f"({n.dump()})\n" for n in self.nodes)
