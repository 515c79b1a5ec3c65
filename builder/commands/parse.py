"""``pybuild parse``: print BuildKit's view of a Dockerfile."""

from __future__ import annotations

import argparse
import json
import sys
from json.encoder import encode_basestring  # the C version where _json is built
from typing import Any

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
        sys.stdout.write(indented_json([n.to_json() for n in ast.nodes]))
        sys.stdout.write("\n")
    else:
        for node in ast.nodes:
            print(f"{node.start_line:>4}  {node.dump()}")
    return 0


_LITERALS = {True: "true", False: "false", None: "null"}


def indented_json(items: list[dict[str, Any]]) -> str:
    """``json.dumps(items, ensure_ascii=False, indent=2)`` for a list of objects, written faster.

    With ``indent`` set, the standard library encodes in pure Python (0.4 s for the objects of a
    5,000-instruction Dockerfile); here each string and each list of strings is encoded by the C
    encoder and only the objects' layout is written in Python. Other values (nested objects,
    numbers other than ints) go to ``json.dumps`` and are re-indented: encoded JSON holds no raw
    newline, so indenting its lines cannot change a string.
    """
    if not items:
        return "[]"
    enc = encode_basestring
    objects: list[str] = []
    for item in items:
        fields: list[str] = []
        for key, value in item.items():
            kind = type(value)
            if kind is str:
                text = enc(value)
            elif value is None or kind is bool:
                text = _LITERALS[value]
            elif kind is int:
                text = int.__repr__(value)
            elif kind is list and value and all(type(v) is str for v in value):
                text = "[\n      " + ",\n      ".join(map(enc, value)) + "\n    ]"
            else:
                text = json.dumps(value, ensure_ascii=False, indent=2).replace("\n", "\n    ")
            fields.append(f"    {enc(key)}: {text}")
        objects.append("{\n" + ",\n".join(fields) + "\n  }" if fields else "{}")
    return "[\n  " + ",\n  ".join(objects) + "\n]"
