"""What the rules read: each instruction with its syntax node, IR value, location and stage."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from builder.lint.inputs import LintInputs
from builder.syntax import ir
from builder.syntax.locate import Context, Where
from builder.syntax.transform import Analysis
from builder.syntax.tree import AST, Node


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One instruction. ``comments`` are BuildKit's ``PrevComment``: the comment lines since the
    previous instruction, after the last empty ``#`` line (blank lines do not end them)."""

    node: Node
    instr: ir.Instruction
    where: Where
    stage: int  # index of the stage it belongs to (its FROM included), -1 before the first FROM
    comments: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """``items`` are the instructions that parsed; ``dockerfile`` is set when the file is valid."""

    ast: AST
    items: tuple[Item, ...]
    dockerfile: ir.Dockerfile | None
    inputs: LintInputs

    def item_at(self, line: int) -> Item | None:
        """The instruction whose lines hold ``line`` (``items`` are in file order and do not
        overlap: a binary search, as every finding asks)."""
        i = bisect.bisect_right(self.items, line, key=lambda item: item.node.start_line) - 1
        if i >= 0 and line <= self.items[i].node.end_line:
            return self.items[i]
        return None


def _previous_comments(ast: AST) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    comments = iter(ast.comments)
    pending = next(comments, None)
    end = 0
    for node in ast.nodes:
        block: list[str] = []
        while pending is not None and pending.line < node.start_line:
            if pending.line > end:
                if pending.text:
                    block.append(pending.text)
                else:
                    block = []
            pending = next(comments, None)
        out.append(tuple(block))
        end = node.end_line
    return out


def gather(ast: AST, analysis: Analysis, inputs: LintInputs) -> Facts:
    ctx = Context(ast)
    comments = {id(n): c for n, c in zip(ast.nodes, _previous_comments(ast), strict=True)}
    items: list[Item] = []
    stage = -1
    for node, instr in analysis.parsed:
        if isinstance(instr, ir.From):
            stage += 1
        where = Where(ctx, node, 0, node.flags)
        items.append(
            Item(
                node=node,
                instr=instr,
                where=where,
                stage=stage,
                comments=comments.get(id(node), ()),
            )
        )
    return Facts(ast=ast, items=tuple(items), dockerfile=analysis.dockerfile, inputs=inputs)
