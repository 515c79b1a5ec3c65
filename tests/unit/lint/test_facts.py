"""builder.lint.facts: finding the instruction that holds a line."""

from __future__ import annotations

from builder.lint.facts import gather
from builder.lint.inputs import LintInputs
from builder.syntax.parser import parse
from builder.syntax.transform import analyze

DOCKERFILE = """\
FROM busybox AS a

# a comment
RUN echo one \\
    two \\
    three
COPY x /x
FROM a
"""


def test_item_at_finds_the_instruction_holding_a_line() -> None:
    ast = parse(DOCKERFILE)
    facts = gather(ast, analyze(ast), LintInputs())
    held = {line: facts.item_at(line) for line in range(10)}
    starts = {line: item.node.start_line if item else None for line, item in held.items()}
    assert starts == {0: None, 1: 1, 2: None, 3: None, 4: 4, 5: 4, 6: 4, 7: 7, 8: 8, 9: None}
