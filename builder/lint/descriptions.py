"""InvalidDefinitionDescription (experimental): the comment above an ARG or a named stage.

BuildKit's ``validateDefinitionDescription``: when comments stand right above ``ARG`` or
``FROM ... AS name``, the last one should start with the ARG's (or stage's) name, since tools
read it as its description.
"""

from __future__ import annotations

from collections.abc import Iterator

from builder.errors import Diagnostic
from builder.lint import rules
from builder.lint.facts import Facts
from builder.syntax import ir


def check(facts: Facts) -> Iterator[Diagnostic]:
    for item in facts.items:
        instr = item.instr
        if isinstance(instr, ir.From):
            if instr.stage_name is None:
                continue
            keyword, keys = "FROM", [instr.stage_name]
        elif isinstance(instr, ir.Arg):
            keyword, keys = "ARG", [decl.key for decl in instr.args]
        else:
            continue
        if not item.comments or not keys:
            continue
        if item.comments[-1].split(" ")[0] in keys:
            continue
        example = keys[0] if len(keys) == 1 else "<arg_key>"
        yield rules.INVALID_DEFINITION_DESCRIPTION.finding(
            f"Comment for {keyword} should follow the format: `# {example} <description>`",
            item.where.whole(),
        )
