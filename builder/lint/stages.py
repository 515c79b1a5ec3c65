"""Rules about the file as a whole: stage names and the casing of instruction keywords.

BuildKit's ``validateStageNames`` and ``validateCommandCasing`` (``dockerfile2llb``): they run on
the stages, so instructions before the first FROM (global ARGs) are not counted.
"""

from __future__ import annotations

from collections.abc import Iterator

from builder.errors import Diagnostic
from builder.lint import rules
from builder.lint.facts import Facts, Item
from builder.syntax import ir
from builder.syntax.gotext import go_quote

_RESERVED = frozenset({"context", "scratch"})


def check_names(facts: Facts) -> Iterator[Diagnostic]:
    seen: set[str] = set()
    for item in facts.items:
        instr = item.instr
        if not isinstance(instr, ir.From) or instr.stage_name is None:
            continue
        name = instr.stage_name
        if name in _RESERVED:
            yield rules.RESERVED_STAGE_NAME.finding(
                f"Stage name should not use the same name as reserved stage {go_quote(name)}",
                item.where.arg(-1),
            )
        if name in seen:
            yield rules.DUPLICATE_STAGE_NAME.finding(
                f"Duplicate stage name {go_quote(name)}, stage names should be unique",
                item.where.arg(-1),
            )
        seen.add(name)


def _consistent(word: str) -> bool:
    return word in (word.lower(), word.upper())


def check_casing(facts: Facts) -> Iterator[Diagnostic]:
    staged = [item for item in facts.items if item.stage >= 0]
    lower = sum(1 for i in staged if _consistent(i.node.cmd) and i.node.cmd == i.node.cmd.lower())
    upper = sum(1 for i in staged if _consistent(i.node.cmd) and i.node.cmd != i.node.cmd.lower())
    majority_lower = lower > upper
    for item in staged:
        yield from _case_match(item, majority_lower)


def _case_match(item: Item, majority_lower: bool) -> Iterator[Diagnostic]:
    name = item.node.cmd
    if majority_lower and name.lower() != name:
        casing = "lowercase"
    elif not majority_lower and name.upper() != name:
        casing = "uppercase"
    else:
        return
    yield rules.CONSISTENT_INSTRUCTION_CASING.finding(
        f"Command '{name}' should match the case of the command majority ({casing})",
        item.where.keyword(),
    )
