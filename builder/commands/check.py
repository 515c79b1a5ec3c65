"""``pybuild check``: report every problem of a Dockerfile without building it.

Parses the file (a parse error is reported like any other problem), runs the instruction and
stage checks and BuildKit's build checks (``builder.lint``), and prints each problem:

* ``--format human`` (default): compiler-style diagnostics on stderr, each with the offending
  source line, a caret, the rule name and its documentation URL; ``OK: N instructions, S stages``
  on stdout when nothing failed.
* ``--format json``: pybuild's JSON document on stdout (schema in ``builder.lint.report``).
* ``--format sarif``: SARIF 2.1.0 on stdout, for code-scanning tools.

Exit status 1 when there is an error, or a warning under ``# check=error=true``; otherwise 0.

The optional CONTEXT (default: the Dockerfile's directory) gives the ``.dockerignore`` that
CopyIgnoredFile reads; base images already in the store tell InvalidBaseImagePlatform and
UndefinedVar their platform and environment. Nothing is pulled and nothing is built.
``pybuild build --check`` runs the same checks with the build's arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from builder import __version__
from builder.buildargs import resolve_build_args
from builder.commands._io import add_root_argument, build_arg_words, read_dockerfile
from builder.context.local import LocalContext
from builder.engine.checks import base_images
from builder.errors import BuildError, Diagnostic, ParseError, Span, span_order
from builder.lint.config import CheckOptionError
from builder.lint.inputs import LintInputs
from builder.lint.report import to_json, to_sarif
from builder.lint.runner import lint
from builder.oci.types import Platform
from builder.store import Store, default_store_root
from builder.store.paths import OCI_LAYOUT
from builder.syntax.parser import parse
from builder.syntax.source import SourceFile, render
from builder.syntax.transform import analyze

HELP = "Check a Dockerfile for errors and BuildKit's build-check warnings without building it."
FORMATS = ("human", "json", "sarif")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "context",
        metavar="CONTEXT",
        nargs="?",
        help="the build context, for .dockerignore (default: the Dockerfile's directory)",
    )
    parser.add_argument(
        "-f",
        "--file",
        default="Dockerfile",
        help="the Dockerfile, or - for stdin (default: %(default)s)",
    )
    add_check_arguments(parser)
    parser.add_argument(
        "--fix",
        action="store_true",
        help="rewrite the Dockerfile: instruction casing, legacy ENV/LABEL key value, "
        "shell-form CMD/ENTRYPOINT to JSON where safe",
    )
    parser.add_argument(
        "--diff",
        action="store_true",
        help="print the fixes as a unified diff (without --fix: change nothing, exit 1 if any)",
    )
    parser.add_argument(
        "--build-arg",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="a build argument, as the build would get it (BUILDKIT_DOCKERFILE_CHECK included)",
    )
    parser.add_argument("--target", metavar="STAGE", help="the stage a build would build")
    parser.add_argument("--platform", metavar="OS/ARCH", help="target platform (default: host)")
    add_root_argument(parser)


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    """``--format``, shared with ``pybuild build --check``."""
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="human",
        help="output: human (stderr), json or sarif (stdout) (default: %(default)s)",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One check: the Dockerfile and what a build would be given."""

    dockerfile: str
    context: str | None = None
    build_args: tuple[tuple[str, str], ...] = ()
    target: str | None = None
    platform: str | None = None
    root: str | None = None
    output: str = "human"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    path: str
    text: str
    problems: tuple[BuildError | Diagnostic, ...]
    failure: str | None
    errors: int
    instructions: int = 0
    stages: int = 0
    fixed: str | None = None  # the text with the fixable findings fixed; None with errors

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.failure is None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


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


def _context_dir(request: Request, path: str) -> Path | None:
    if request.context is not None:
        return Path(request.context)
    if request.dockerfile == "-":
        return None
    return Path(path).parent


def _inputs(request: Request, path: str) -> LintInputs:
    """The LintInputs of ``request``: build args, platforms, .dockerignore, the store."""
    args = dict(request.build_args)
    context = _context_dir(request, path)
    ignore = None
    if context is not None and context.is_dir():
        dockerfile = Path(path) if request.dockerfile != "-" else None
        with LocalContext.open(context, dockerfile) as opened:
            ignore = opened.matcher
    root = Path(request.root) if request.root else default_store_root()
    lookup = None
    try:
        if (root / OCI_LAYOUT).is_file():  # never create a store just to check a file
            lookup = base_images(Store.open(root))
    except (BuildError, OSError):  # an unreadable store: check without it
        lookup = None
    return LintInputs(
        check=args.get("BUILDKIT_DOCKERFILE_CHECK"),
        build_args=args,
        target=request.target,
        target_platform=Platform.parse(request.platform) if request.platform else Platform.host(),
        ignore=ignore,
        base_image=lookup,
    )


def evaluate(request: Request) -> Outcome:
    """Parse, analyse and lint ``request.dockerfile``; every problem, in file order."""
    path, text = read_dockerfile(request.dockerfile)
    try:
        ast = parse(text, path=path)
    except ParseError as err:
        if err.span is not None:
            err.span = _widen(err.span, SourceFile.from_text(path, text).line(err.span.line))
        return Outcome(path=path, text=text, problems=(err,), failure=None, errors=1)
    result = analyze(ast)
    inputs = _inputs(request, path)
    errors: list[BuildError] = list(result.errors)
    try:
        checked = lint(ast, result, inputs)
        findings, failure = checked.findings, checked.failure()
        fixed = checked.fixed() if not errors else None
    except CheckOptionError as err:
        errors.append(BuildError(f"failed to parse check options: {err.message}"))
        findings, failure, fixed = (), None, None
    problems: list[BuildError | Diagnostic] = [*errors, *findings]
    problems.sort(key=lambda problem: span_order(problem.span))
    stages = len(result.dockerfile.stages) if result.dockerfile is not None else 0
    return Outcome(
        path=path,
        text=text,
        problems=tuple(problems),
        failure=failure,
        errors=len(errors),
        instructions=result.instruction_count,
        stages=stages,
        fixed=fixed,
    )


def report(request: Request, outcome: Outcome) -> int:
    """Print ``outcome`` in ``request.output``'s format; the exit status."""
    match request.output:
        case "json":
            sys.stdout.write(
                to_json(outcome.path, outcome.problems, ok=outcome.ok, failure=outcome.failure)
            )
        case "sarif":
            sys.stdout.write(to_sarif(outcome.path, outcome.problems, version=__version__))
        case _:
            _human(outcome)
    return 0 if outcome.ok else 1


def _human(outcome: Outcome) -> None:
    source = SourceFile.from_text(outcome.path, outcome.text)
    if outcome.problems:
        sys.stderr.write("\n".join(render(p, source) for p in outcome.problems))
    if outcome.failure is not None:
        sys.stderr.write(f"\nerror: {outcome.failure}\n")
    warnings = len(outcome.problems) - outcome.errors
    if not outcome.ok:
        summary = _plural(outcome.errors, "error") if outcome.errors else ""
        if warnings:
            summary += (", " if summary else "") + _plural(warnings, "warning")
        sys.stderr.write(f"\ncheck failed: {summary}\n")
        return
    print(f"OK: {_plural(outcome.instructions, 'instruction')}, {_plural(outcome.stages, 'stage')}")


def run(args: argparse.Namespace) -> int:
    request = Request(
        dockerfile=args.file,
        context=args.context,
        build_args=resolve_build_args(build_arg_words(args.build_arg)),
        target=args.target,
        platform=args.platform,
        root=args.root,
        output=args.format,
    )
    outcome = evaluate(request)
    if args.fix or args.diff:
        return _fix(request, outcome, write=args.fix, diff=args.diff)
    return report(request, outcome)


def _fix(request: Request, outcome: Outcome, *, write: bool, diff: bool) -> int:
    """``--fix`` / ``--diff``: show and/or write the fixed text, then check what is left."""
    # lazy: difflib only for --fix/--diff, not on every check
    import difflib

    if outcome.fixed is None:
        sys.stderr.write("cannot fix a Dockerfile that has errors\n")
        return report(request, outcome)
    changed = outcome.fixed != outcome.text
    if diff:
        lines = difflib.unified_diff(
            outcome.text.splitlines(keepends=True),
            outcome.fixed.splitlines(keepends=True),
            fromfile=outcome.path,
            tofile=outcome.path,
        )
        sys.stdout.write("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    if not write:
        return 1 if changed else 0
    if changed:
        if request.dockerfile == "-":
            sys.stdout.write(outcome.fixed)
            return 0
        _write(Path(request.dockerfile), outcome.fixed)
    return report(request, evaluate(request))


def _write(path: Path, text: str) -> None:
    """Replace ``path``'s content atomically, keeping its mode."""
    data = text.encode("utf-8", "surrogateescape")
    temp = path.with_name(f".{path.name}.pybuild-fix")
    try:
        temp.write_bytes(data)
        os.chmod(temp, path.stat().st_mode & 0o7777)
        os.replace(temp, path)
    except OSError as err:
        temp.unlink(missing_ok=True)
        raise BuildError(f"write {path}: {err.strerror or err}") from None
