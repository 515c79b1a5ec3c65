"""Machine-readable check results: pybuild's JSON schema and SARIF 2.1.0.

JSON (``pybuild check --format json``), version 1::

    {"version": 1, "file": "Dockerfile", "ok": false,
     "failure": "lint violation found for rules: ..." | null,
     "problems": [{"level": "error" | "warning", "rule": "JSONArgsRecommended" | null,
                   "message": "...", "description": "..." | null, "url": "..." | null,
                   "location": {"file": "Dockerfile", "line": 3, "column": 1,
                                "end_line": 3, "end_column": 12} | null}]}

``rule`` is ``null`` for errors (parse and instruction errors); ``column`` and ``end_column`` are
1-based and inclusive, ``null`` when unknown. ``ok`` is what the exit status says (0 or 1).

SARIF (``--format sarif``) is one run of the tool ``pybuild`` whose driver lists every rule
(BuildKit's names, descriptions and help URIs); each finding is a result with its rule, level,
message and region. Errors are results of level ``error`` without a rule.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from builder.errors import BuildError, Diagnostic, Level, Span
from builder.lint.rules import RULES, rule_named

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
JSON_VERSION = 1

Problem = BuildError | Diagnostic


def _location(span: Span | None) -> dict[str, Any] | None:
    if span is None:
        return None
    return {
        "file": span.file,
        "line": span.line,
        "column": span.column,
        "end_line": span.end_line,
        "end_column": span.end_column,
    }


def _entry(problem: Problem) -> dict[str, Any]:
    if isinstance(problem, Diagnostic):
        rule = rule_named(problem.rule)
        return {
            "level": problem.level.value,
            "rule": problem.rule,
            "message": problem.message,
            "description": rule.description if rule is not None else None,
            "url": problem.url,
            "location": _location(problem.span),
        }
    return {
        "level": Level.ERROR.value,
        "rule": None,
        "message": problem.message,
        "description": None,
        "url": None,
        "location": _location(problem.span),
    }


def to_json(path: str, problems: Sequence[Problem], *, ok: bool, failure: str | None) -> str:
    document = {
        "version": JSON_VERSION,
        "file": path,
        "ok": ok,
        "failure": failure,
        "problems": [_entry(p) for p in problems],
    }
    return json.dumps(document, indent=2) + "\n"


def _region(span: Span) -> dict[str, int]:
    region = {"startLine": max(span.line, 1)}
    if span.column:
        region["startColumn"] = span.column
    if span.end_line is not None:
        region["endLine"] = max(span.end_line, region["startLine"])
    if span.end_column is not None and span.column:
        region["endColumn"] = span.end_column + 1  # SARIF's end column is exclusive
    return region


def _result(problem: Problem, index: dict[str, int], path: str) -> dict[str, Any]:
    level = problem.level.value if isinstance(problem, Diagnostic) else Level.ERROR.value
    result: dict[str, Any] = {"level": level, "message": {"text": problem.message}}
    if isinstance(problem, Diagnostic):
        result["ruleId"] = problem.rule
        if problem.rule in index:
            result["ruleIndex"] = index[problem.rule]
    span = problem.span
    location: dict[str, Any] = {"artifactLocation": {"uri": span.file if span else path}}
    if span is not None:
        location["region"] = _region(span)
    result["locations"] = [{"physicalLocation": location}]
    return result


def _descriptor(name: str, description: str, url: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": name,
        "name": name,
        "shortDescription": {"text": description},
        "defaultConfiguration": {"level": "warning"},
    }
    if url is not None:
        out["helpUri"] = url
    return out


def to_sarif(path: str, problems: Sequence[Problem], *, version: str) -> str:
    rules = [_descriptor(r.name, r.description, r.url) for r in RULES]
    extra = sorted(
        {p.rule for p in problems if isinstance(p, Diagnostic) and rule_named(p.rule) is None}
    )
    rules.extend(_descriptor(name, name, None) for name in extra)
    index = {str(r["id"]): i for i, r in enumerate(rules)}
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pybuild",
                        "version": version,
                        "informationUri": "https://docs.docker.com/go/dockerfile/rule/",
                        "rules": rules,
                    }
                },
                "artifacts": [{"location": {"uri": path}}],
                "results": [_result(p, index, path) for p in problems],
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"


__all__ = ["JSON_VERSION", "SARIF_SCHEMA", "to_json", "to_sarif"]
