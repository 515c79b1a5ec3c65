"""Rules BuildKit's instruction parser fires: MAINTAINER, the stage name's and ``AS``'s casing."""

from __future__ import annotations

from collections.abc import Iterator

from builder.errors import Diagnostic
from builder.lint import rules
from builder.lint.facts import Facts
from builder.syntax import ir


def check(facts: Facts) -> Iterator[Diagnostic]:
    for item in facts.items:
        node, instr = item.node, item.instr
        if isinstance(instr, ir.Maintainer):
            yield rules.MAINTAINER_DEPRECATED.finding(
                "Maintainer instruction is deprecated in favor of using label",
                item.where.keyword(),
            )
        elif isinstance(instr, ir.From) and len(node.args) == 3:
            name = node.args[2]
            if name != name.lower():
                yield rules.STAGE_NAME_CASING.finding(
                    f"Stage name '{name}' should be lowercase", item.where.arg(-1)
                )
            keyword, as_word = node.cmd, node.args[1]
            if keyword == keyword.lower():
                consistent = as_word == as_word.lower()
            elif keyword == keyword.upper():
                consistent = as_word == as_word.upper()
            else:
                consistent = True
            if not consistent:
                yield rules.FROM_AS_CASING.finding(
                    f"'{as_word}' and '{keyword}' keywords' casing do not match",
                    item.where.arg(-2),  # from the end: flag values may hold blanks
                )
