"""``pybuild check``: report every problem of a Dockerfile without building it.

Parses the file (a parse error is reported like any other problem), runs the instruction and
stage checks, and prints each problem, errors and warnings alike, to stderr as a compiler-style
diagnostic with the offending source line. Exit status 1 when there is an error; otherwise 0,
with ``OK: N instructions, S stages`` on stdout (warnings, if any, still go to stderr).
"""

from __future__ import annotations

import argparse
import sys

from builder.commands._io import read_dockerfile
from builder.errors import BuildError, Diagnostic, ParseError, Span
from builder.lint.runner import lint
from builder.syntax.parser import parse
from builder.syntax.source import SourceFile, render
from builder.syntax.transform import analyze

HELP = "Check a Dockerfile for errors (parse, instructions, flags, stages) without building it."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--file",
        default="Dockerfile",
        help="the Dockerfile, or - for stdin (default: %(default)s)",
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _position(problem: BuildError | Diagnostic) -> tuple[int, int]:
    span = problem.span
    if span is None:
        return (0, 0)
    return (span.line, span.column)


def _widen(span: Span | None, line: str | None) -> Span | None:
    """A parse error's span covers its whole source line (the parser gives only the line)."""
    if span is None or line is None or span.end_column is not None or not line.strip():
        return span
    start = len(line) - len(line.lstrip())
    return Span(
        file=span.file,
        line=span.line,
        column=start + 1,
        end_line=span.line,
        end_column=len(line.rstrip()),
    )


def run(args: argparse.Namespace) -> int:
    path, text = read_dockerfile(args.file)
    source = SourceFile.from_text(path, text)
    try:
        ast = parse(text, path=path)
    except ParseError as err:
        if err.span is not None:
            err.span = _widen(err.span, source.line(err.span.line))
        sys.stderr.write(render(err, source))
        sys.stderr.write("\ncheck failed: 1 error\n")
        return 1
    result = analyze(ast)
    warnings = lint(ast, result).findings
    problems: list[BuildError | Diagnostic] = [*result.errors, *warnings]
    problems.sort(key=_position)
    if problems:
        sys.stderr.write("\n".join(render(p, source) for p in problems))
    if result.errors or result.dockerfile is None:
        summary = _plural(len(result.errors), "error")
        if warnings:
            summary += ", " + _plural(len(warnings), "warning")
        sys.stderr.write(f"\ncheck failed: {summary}\n")
        return 1
    stages = len(result.dockerfile.stages)
    print(f"OK: {_plural(result.instruction_count, 'instruction')}, {_plural(stages, 'stage')}")
    return 0
