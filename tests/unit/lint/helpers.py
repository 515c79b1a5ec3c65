"""Run the checks on Dockerfile text; findings as ``(rule, message, line)``."""

from __future__ import annotations

from builder.errors import Diagnostic
from builder.lint.runner import LintInputs, LintResult, lint
from builder.syntax.parser import parse
from builder.syntax.transform import analyze


def run(text: str, inputs: LintInputs | None = None) -> LintResult:
    ast = parse(text, path="Dockerfile")
    return lint(ast, analyze(ast), inputs)


def triples(findings: tuple[Diagnostic, ...]) -> list[tuple[str, str, int]]:
    return [(f.rule, f.message, f.span.line if f.span else 0) for f in findings]


def found(text: str, inputs: LintInputs | None = None) -> list[tuple[str, str, int]]:
    return triples(run(text, inputs).findings)
