"""The grammar without Lark at run time: the generated terminal table is the one Lark compiles
from ``grammar/dockerfile.lark`` (``make grammar`` regenerates it), and matching lines with it
gives what Lark's LALR parser gives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.syntax import _line_terminals
from builder.syntax.grammar import ParsedLine, parse_lines
from builder.syntax.lark_grammar import combined_pattern, parse_lines_lalr, parser_for
from builder.syntax.lexer import scan
from builder.syntax.lineparse import LineSyntaxError
from tests.conftest import BUILDKIT_GOLDEN, REPO


def test_generated_table_is_the_grammars() -> None:
    parser = parser_for("\\")
    assert combined_pattern(parser.terminals) == _line_terminals.PATTERN, "run `make grammar`"
    assert parser.lexer_conf.g_regex_flags == _line_terminals.FLAGS


def test_a_build_does_not_load_lark() -> None:
    # the parser, planner and engine a build imports; lark only through lark_grammar
    code = (
        "import sys; import builder.syntax.parser, builder.plan, builder.engine.scheduler;"
        "from builder.syntax.parser import parse; parse('FROM busybox\\nRUN true\\n');"
        "print('lark' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "False"


def _comparable(results: list[ParsedLine]) -> list[object]:
    """Results with each error as its message (exceptions compare by identity)."""
    return [("error", str(r)) if isinstance(r, LineSyntaxError) else r for r in results]


def _same(lines: list[str], escape: str) -> None:
    fast = _comparable(parse_lines(lines, escape, "Dockerfile"))
    assert fast == _comparable(parse_lines_lalr(lines, escape))


def _logical_lines(text: str) -> tuple[list[str], str]:
    result = scan(text, "Dockerfile", heredoc_probe=lambda line, escape: [])
    return result.trimmed, result.escape


GOLDEN = sorted((BUILDKIT_GOLDEN / "parser" / "testfiles").glob("*/Dockerfile"))


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.parent.name)
def test_same_results_as_the_lalr_parser_on_buildkit_goldens(path: Path) -> None:
    lines, escape = _logical_lines(path.read_bytes().decode("utf-8", "surrogateescape"))
    if lines:
        _same(lines, escape)


WORDS = ("RUN", "run", "ſhell", "From", "COPY", "onbuild", "X", "", "--a=b", '["a"]', "$x")
PIECES = (*WORDS, " ", "\t", "\\", "`", "=", "'", '"', "é", "\x85", "\xa0", "<<EOF")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(PIECES), max_size=8).map("".join), max_size=6),
    st.sampled_from(("\\", "`")),
)
def test_same_results_as_the_lalr_parser(lines: list[str], escape: str) -> None:
    lines = [line.strip(" \t") for line in lines]
    if lines:
        _same(lines, escape)
    errors = [r for r in parse_lines(lines, escape, "Dockerfile") if isinstance(r, Exception)]
    assert all(isinstance(e, LineSyntaxError) for e in errors)
