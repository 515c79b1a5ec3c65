"""``pybuild check --fix``: rewrite what the checks can fix mechanically, keeping the layout.

Fixes, each only where its rule reported a finding (so ``# check=skip=...`` is respected):

* ConsistentInstructionCasing: the keyword takes the majority's casing; FromAsCasing: ``AS``
  takes its FROM's casing (also when the keyword's casing was just changed); StageNameCasing:
  the stage name is lower-cased (stage references are case-insensitive, so nothing else moves).
  These edit the words in place.
* LegacyKeyValueFormat: ``ENV key value`` becomes ``ENV key=value`` (LABEL too), quoted as the
  formatter quotes it so that it expands to the same value.
* JSONArgsRecommended: a shell-form CMD or ENTRYPOINT becomes JSON form when that cannot change
  what runs: every word is plain (no quote, escape, variable, glob, redirection, operator or
  comment character) and the command is on one line. An ENTRYPOINT is converted only when no CMD
  follows it in its stage (the shell form ignores CMD, the JSON form takes it as arguments).

The last two re-render just that instruction with the formatter (``builder.syntax.format``),
so its text is what ``pybuild fmt`` writes; a comment inside its continuation lines moves above
it. Every other line of the file is kept byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from builder.errors import Diagnostic, Span
from builder.lint import rules
from builder.lint.facts import Facts, Item
from builder.syntax import ir
from builder.syntax.format import format_instruction, keeps_legacy_form
from builder.syntax.locate import instruction_end

FIXABLE = frozenset(
    rule.name
    for rule in (
        rules.CONSISTENT_INSTRUCTION_CASING,
        rules.FROM_AS_CASING,
        rules.STAGE_NAME_CASING,
        rules.LEGACY_KEY_VALUE_FORMAT,
        rules.JSON_ARGS_RECOMMENDED,
    )
)
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./:=@%+,-]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Edit:
    """Replace ``line``'s characters ``start``..``end`` (0-based, end exclusive)."""

    line: int
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Rewrite:
    """Replace lines ``first``..``last`` (1-based, inclusive) with ``lines``."""

    first: int
    last: int
    lines: tuple[str, ...]


def _cased(word: str, upper: bool) -> str:
    return word.upper() if upper else word.lower()


def _word_edit(span: Span, text: str) -> _Edit | None:
    if span.end_column is None or span.end_line != span.line:
        return None
    return _Edit(line=span.line, start=span.column - 1, end=span.end_column, text=text)


def _plain_command(command: str) -> tuple[str, ...] | None:
    words = tuple(command.split())
    if not words or "\n" in command or not all(_PLAIN_WORD.fullmatch(w) for w in words):
        return None
    return words


def _cmd_follows(facts: Facts, item: Item) -> bool:
    return any(
        isinstance(other.instr, ir.Cmd)
        and other.stage == item.stage
        and other.node.start_line > item.node.start_line
        for other in facts.items
    )


def _converted(facts: Facts, item: Item) -> ir.Instruction | None:
    """The JSON form of a shell-form CMD/ENTRYPOINT, when converting it is safe."""
    instr = item.instr
    if not isinstance(instr, ir.Cmd | ir.Entrypoint) or not instr.prepend_shell:
        return None
    if isinstance(instr, ir.Entrypoint) and _cmd_follows(facts, item):
        return None
    words = _plain_command(instr.command[0]) if len(instr.command) == 1 else None
    if words is None:
        return None
    return replace(instr, command=words, prepend_shell=False, breaks=())


def _keyword_target(item: Item, reported: set[str], upper_majority: bool) -> str:
    keyword = item.node.cmd
    if rules.CONSISTENT_INSTRUCTION_CASING.name in reported:
        return _cased(keyword, upper_majority)
    return keyword


class _Planner:
    def __init__(self, facts: Facts, findings: Iterable[Diagnostic]) -> None:
        self.facts = facts
        self.by_item: dict[int, set[str]] = {}
        self.upper_majority = True
        for finding in findings:
            if finding.rule not in FIXABLE or finding.span is None:
                continue
            item = facts.item_at(finding.span.line)
            if item is None:
                continue
            self.by_item.setdefault(id(item), set()).add(finding.rule)
            if finding.rule == rules.CONSISTENT_INSTRUCTION_CASING.name:
                self.upper_majority = finding.message.endswith("(uppercase)")
        self.edits: list[_Edit] = []
        self.rewrites: list[_Rewrite] = []

    def plan(self) -> None:
        for item in self.facts.items:
            reported = self.by_item.get(id(item), set())
            if reported:
                self.item(item, reported)

    def item(self, item: Item, reported: set[str]) -> None:
        keyword = _keyword_target(item, reported, self.upper_majority)
        rendered = self.rendered(item, reported)
        if rendered is not None:
            self.rewrite(item, keyword + rendered[len(_first(rendered)) :])
            return
        if keyword != item.node.cmd:
            self.word(item.where.keyword(), keyword)
        instr = item.instr
        if not isinstance(instr, ir.From) or len(item.node.args) != 3:
            return
        as_word = item.node.args[1]
        recase = rules.FROM_AS_CASING.name in reported or keyword != item.node.cmd
        if recase and keyword in (keyword.upper(), keyword.lower()):
            target = _cased(as_word, keyword == keyword.upper())
            if target != as_word:
                self.word(item.where.arg(-2), target)  # AS: counted from the end
        if rules.STAGE_NAME_CASING.name in reported:
            name = item.node.args[2]
            self.word(item.where.arg(-1), name.lower())

    def rendered(self, item: Item, reported: set[str]) -> str | None:
        """The formatter's text of the fixed instruction, when it needs re-rendering."""
        instr = item.instr
        fixed: ir.Instruction | None = None
        legacy = rules.LEGACY_KEY_VALUE_FORMAT.name in reported
        if legacy and isinstance(instr, ir.Env | ir.Label) and not keeps_legacy_form(instr.pairs):
            fixed = instr
        if rules.JSON_ARGS_RECOMMENDED.name in reported:
            fixed = _converted(self.facts, item)
        if fixed is None:
            return None
        escape = self.facts.ast.escape
        return format_instruction(fixed, escape=escape)

    def word(self, span: Span, text: str) -> None:
        edit = _word_edit(span, text)
        if edit is not None:
            self.edits.append(edit)

    def rewrite(self, item: Item, text: str) -> None:
        node = item.node
        last = instruction_end(node)
        lines = self.facts.ast.text.split("\n")
        kept = [
            line.removesuffix("\r")
            for line in lines[node.start_line : last]
            if line.lstrip(" \t").startswith("#")
        ]
        first = lines[node.start_line - 1]
        head = first[: _indent(first)] + text.removesuffix("\n")
        self.rewrites.append(
            _Rewrite(first=node.start_line, last=last, lines=(*kept, *head.split("\n")))
        )


def _first(text: str) -> str:
    return text.split(" ", 1)[0].split("\n", 1)[0]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def apply_fixes(facts: Facts, findings: Iterable[Diagnostic]) -> str:
    """The file's text with every fixable finding fixed (the text itself when none is)."""
    planner = _Planner(facts, findings)
    planner.plan()
    text = facts.ast.text
    if not planner.edits and not planner.rewrites:
        return text
    lines = text.split("\n")
    by_line: dict[int, list[_Edit]] = {}
    for edit in planner.edits:
        by_line.setdefault(edit.line, []).append(edit)
    for number, edits in by_line.items():
        line = lines[number - 1]
        offset = 1 if number == 1 and line.startswith("\ufeff") else 0  # spans skip a BOM
        for edit in sorted(edits, key=lambda e: e.start, reverse=True):
            start, end = edit.start + offset, edit.end + offset
            line = line[:start] + edit.text + line[end:]
        lines[number - 1] = line
    for rewrite in sorted(planner.rewrites, key=lambda r: r.first, reverse=True):
        carriage = "\r" if lines[rewrite.last - 1].endswith("\r") else ""
        lines[rewrite.first - 1 : rewrite.last] = [line + carriage for line in rewrite.lines]
    return "\n".join(lines)


__all__ = ["FIXABLE", "apply_fixes"]
