"""Locate ``dockerfile.lark`` and build the Lark parser, once per escape character."""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path

from lark import Lark


def grammar_text() -> str:
    """The grammar shipped in the wheel, or the one in a source checkout."""
    shipped = resources.files("builder").joinpath("_grammar", "dockerfile.lark")
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8")
    source = Path(__file__).resolve().parents[2] / "grammar" / "dockerfile.lark"
    return source.read_text(encoding="utf-8")


@functools.cache
def parser_for(escape: str) -> Lark:
    """An LALR parser for instructions whose escape character is ``escape`` (``\\`` or `````)."""
    text = grammar_text().replace("@E@", re.escape(escape).replace("/", "\\/"))
    return Lark(text, parser="lalr", lexer="basic", cache=True)
