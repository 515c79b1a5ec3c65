"""``pybuild parse``: print BuildKit's view of a Dockerfile."""

from __future__ import annotations

import argparse
import json
import sys

from builder.commands._io import read_dockerfile
from builder.errors import ParseError
from builder.syntax.parser import parse

HELP = "Parse a Dockerfile and print its instructions (BuildKit's parser view)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--file",
        default="Dockerfile",
        help="the Dockerfile, or - for stdin (default: %(default)s)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per instruction, as the PyPI 'dockerfile' package reports them",
    )
    parser.add_argument("--dump", action="store_true", help="BuildKit's S-expression dump")


def run(args: argparse.Namespace) -> int:
    path, text = read_dockerfile(args.file)
    try:
        ast = parse(text, path=path)
    except ParseError as err:
        line = err.span.line if err.span else 0
        print(f"{path}:{line}: {err.message}", file=sys.stderr)
        return 1
    for warning in ast.warnings:
        line = warning.span.line if warning.span else 0
        print(f"{path}:{line}: warning: {warning.message}", file=sys.stderr)
    if args.dump:
        sys.stdout.write(ast.dump())
    elif args.json:
        json.dump([n.to_json() for n in ast.nodes], sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        for node in ast.nodes:
            print(f"{node.start_line:>4}  {node.dump()}")
    return 0
