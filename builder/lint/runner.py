"""Run the build checks over one Dockerfile and apply the ``# check=`` options."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from builder.errors import Diagnostic, span_order
from builder.lint import descriptions, dispatch, fromline, parsing, stages
from builder.lint import rules as _rules
from builder.lint.config import CheckConfig, parse_check_options, with_comments
from builder.lint.facts import Facts, gather
from builder.lint.inputs import LintInputs
from builder.lint.rules import NO_EMPTY_CONTINUATION, rule_named
from builder.syntax.transform import Analysis
from builder.syntax.tree import AST

_FAMILIES: tuple[Callable[[Facts], Iterable[Diagnostic]], ...] = (
    parsing.check,
    stages.check_names,
    stages.check_casing,
    fromline.check,
    dispatch.check,
    descriptions.check,
)


# Rules BuildKit runs on the whole file, with the file's options only (no per-instruction
# ``# check=`` comments).
_FILE_WIDE = frozenset(
    rule.name
    for rule in (
        _rules.CONSISTENT_INSTRUCTION_CASING,
        _rules.DUPLICATE_STAGE_NAME,
        _rules.RESERVED_STAGE_NAME,
        _rules.NO_EMPTY_CONTINUATION,
        _rules.INVALID_DEFAULT_ARG_IN_FROM,
    )
)


@dataclass(frozen=True, slots=True, kw_only=True)
class LintResult:
    findings: tuple[Diagnostic, ...]
    config: CheckConfig
    facts: Facts

    def fixed(self) -> str:
        """The file's text with every fixable finding fixed (``pybuild check --fix``)."""
        # lazy: the fixer and the formatter it uses load for `pybuild check`, not for builds
        from builder.lint.fix import apply_fixes

        return apply_fixes(self.facts, self.findings)

    def failure(self) -> str | None:
        """BuildKit's message when ``error=true`` and a rule fired, else ``None``."""
        if not self.config.error or not self.findings:
            return None
        names = dict.fromkeys(f.rule for f in self.findings)
        return "lint violation found for rules: " + ", ".join(names)


def config_for(ast: AST, inputs: LintInputs) -> CheckConfig:
    """The check options: the build arg if given, else the ``# check=`` directive."""
    if inputs.check is not None:
        return parse_check_options(inputs.check)
    for directive in ast.directives:
        if directive.name == "check":
            return parse_check_options(directive.value)
    return CheckConfig()


def _from_parser(warning: Diagnostic) -> Diagnostic:
    """The parser's empty-continuation warning as the rule reports it (BuildKit's message)."""
    if warning.rule == NO_EMPTY_CONTINUATION.name:
        return NO_EMPTY_CONTINUATION.finding("Empty continuation line", warning.span)
    return warning


def _enabled(
    findings: Iterable[Diagnostic], config: CheckConfig, facts: Facts
) -> Iterator[Diagnostic]:
    for finding in findings:
        rule = rule_named(finding.rule)
        if rule is None:
            yield finding
            continue
        local = config
        if rule.name not in _FILE_WIDE and finding.span is not None:
            item = facts.item_at(finding.span.line)
            if item is not None:
                local = with_comments(config, item.comments)
        if local.enabled(rule):
            yield finding


def lint(ast: AST, analysis: Analysis, inputs: LintInputs | None = None) -> LintResult:
    """Every enabled finding for the file, in file order, with the parser's own warnings.

    A file with errors still gets the findings of the instructions that parsed; rules about the
    whole file or a stage's state need a valid file.
    """
    inputs = inputs or LintInputs()
    config = config_for(ast, inputs)
    found = [_from_parser(w) for w in analysis.warnings]
    facts = gather(ast, analysis, inputs)
    for family in _FAMILIES:
        found.extend(family(facts))
    findings = sorted(_enabled(found, config, facts), key=lambda finding: span_order(finding.span))
    return LintResult(findings=tuple(findings), config=config, facts=facts)


__all__ = ["LintInputs", "LintResult", "config_for", "lint"]
