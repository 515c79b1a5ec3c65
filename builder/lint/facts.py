"""What the rules read: each instruction with its syntax node, IR value, location and stage."""

from __future__ import annotations

from dataclasses import dataclass

from builder.syntax import ir
from builder.syntax.locate import Context, Where
from builder.syntax.transform import Analysis
from builder.syntax.tree import AST, Node


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    node: Node
    instr: ir.Instruction
    where: Where
    stage: int  # index of the stage it belongs to (its FROM included), -1 before the first FROM


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """``items`` are the instructions that parsed; ``dockerfile`` is set when the file is valid."""

    ast: AST
    items: tuple[Item, ...]
    dockerfile: ir.Dockerfile | None


def gather(ast: AST, analysis: Analysis) -> Facts:
    ctx = Context(ast)
    items: list[Item] = []
    stage = -1
    for node, instr in analysis.parsed:
        if isinstance(instr, ir.From):
            stage += 1
        where = Where(ctx, node, 0, node.flags)
        items.append(Item(node=node, instr=instr, where=where, stage=stage))
    return Facts(ast=ast, items=tuple(items), dockerfile=analysis.dockerfile)
