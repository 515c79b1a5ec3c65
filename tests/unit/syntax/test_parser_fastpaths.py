"""The parser's fast paths give exactly what the exact BuildKit loops give.

Each fast path (regex splitting of flag words and words, the plain heredoc line and name, the
per-line shortcut of the pre-pass, the slot-setting node constructor) is checked against the
loop or constructor it stands in for, on inputs made of the characters that matter.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import ExpansionError, Span
from builder.syntax import heredoc, parser
from builder.syntax.expand import Lexer
from builder.syntax.lineparse import (
    _extract_flags_exact,
    _parse_words_exact,
    extract_flags,
    parse_json,
    parse_words,
)
from builder.syntax.parser import parse
from builder.syntax.tree import Heredoc, Node

ESCAPES = ("\\", "`")
# Quotes, both escape characters, Go and Python blanks that disagree, non-ASCII, flag prefixes.
PIECES = (
    *"ab=-x \t\"'\\`\v\f\r,/:", "\x85", "\xa0", "\u3000", "\x1c", "é", "😀", "--", "--a=", "<<",
    "<<-", "EOF", "$x", "\udc80", "\udc85", "\udca0",
)  # fmt: skip
texts = st.lists(st.sampled_from(PIECES), max_size=14).map("".join)
# Half of them end in an escape character, which the regex fast paths leave to the exact loops.
texts = st.one_of(texts, st.tuples(texts, st.sampled_from(ESCAPES)).map("".join))


@settings(max_examples=400, deadline=None)
@given(escape=st.sampled_from(ESCAPES), line=texts)
def test_parse_words_matches_the_exact_loop(escape: str, line: str) -> None:
    assert parse_words(line, escape) == _parse_words_exact(line, escape)


@settings(max_examples=400, deadline=None)
@given(escape=st.sampled_from(ESCAPES), line=texts)
def test_extract_flags_matches_the_exact_walk(escape: str, line: str) -> None:
    assert extract_flags(line, escape) == _extract_flags_exact(line, escape)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('a "b c" d', ["a", '"b c"', "d"]),
        ("a\\ b 'c\\ d' e", ["a\\ b", "'c\\ d'", "e"]),
        ('x"ab\\', ['x"ab']),  # an escape at the very end is dropped, even inside quotes
        ("a \\", ["a"]),
        ("a\u3000b\x1cc", ["a", "b\x1cc"]),  # Go's blanks, not Python's
    ],
)
def test_parse_words_examples(line: str, expected: list[str]) -> None:
    assert parse_words(line, "\\") == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("--a --b=c rest of it", (["--a", "--b=c"], "rest of it")),
        ("--a\t--b", (["--a", "--b"], "")),
        ("--a -- --b", (["--a"], " --b")),  # a lone "--" ends the flags (exact walk)
        ('--a="x y" z', (["--a=x y"], "z")),  # quotes: exact walk
        ("--a --b=\\ c", (["--a", "--b= c"], "")),
        ("no flags", ([], "no flags")),
        ("\u3000--a", ([], "\u3000--a")),  # not a blank byte: not a flag
    ],
)
def test_extract_flags_examples(line: str, expected: tuple[list[str], str]) -> None:
    assert extract_flags(line, "\\") == expected


@settings(max_examples=400, deadline=None)
@given(line=texts)
def test_plain_heredoc_line_words_match_the_lexer(line: str) -> None:
    if heredoc._LEXER_SPECIAL.search(line) is not None:
        return  # such lines take the lexer itself
    try:
        expected = Lexer(raw_quotes=True, raw_escapes=True, skip_unset_env=True).process_words(
            line, {}
        )
    except ExpansionError:
        expected = []
    assert heredoc._PLAIN_WORDS(line) == expected


@pytest.mark.parametrize(
    ("word", "name", "fd", "chomp"),
    [("<<EOF", "EOF", 0, False), ("3<<-END", "END", 3, True), ("<<\tx.y", "x.y", 0, False)],
)
def test_plain_heredoc_name(word: str, name: str, fd: int, chomp: bool) -> None:
    marker = heredoc.parse_marker(word)
    assert marker == heredoc.Marker(name=name, file_descriptor=fd, expand=True, chomp=chomp)
    # The lexer agrees that the name is one word, the same with and without raw quotes.
    rest = word.split("<<", 1)[1].lstrip("-\t")
    assert Lexer(skip_unset_env=True).process_words(rest, {}) == [name]
    assert Lexer(skip_unset_env=True, raw_quotes=True).process_words(rest, {}) == [name]


def test_quoted_heredoc_name_still_takes_the_lexer() -> None:
    marker = heredoc.parse_marker("<<'E F'")
    assert marker == heredoc.Marker(name="E F", file_descriptor=0, expand=False, chomp=False)


def test_heredoc_markers_in_plain_and_special_lines() -> None:
    names = [m.name for m in heredoc.markers_in_line("RUN <<EOF cat <<-END x<<y")]
    assert names == ["EOF", "END"]
    assert [m.name for m in heredoc.markers_in_line("RUN << EOF")] == ["EOF"]
    assert [m.name for m in heredoc.markers_in_line('RUN "<<A" <<B')] == ["B"]


def test_json_arrays() -> None:
    assert parse_json('["a", "b c"]') == ("a", "b c")
    assert parse_json('["\\ud800x"]') == ("\ufffdx",)  # Go decodes a lone surrogate as U+FFFD
    assert parse_json("[1e999]") is None  # Go cannot hold it: not JSON
    assert parse_json('["a"] x') is None


# --------------------------------------------------------------------------- whole files


def test_nodes_equal_the_dataclass_constructor() -> None:
    text = (
        "FROM a AS b\n"
        "RUN --mount=type=cache x \\\n  && y\n"
        "# c\n"
        "COPY <<EOF /x\nhello\nEOF\n"
        'ENV A="x y" B=c\n'
        'CMD ["a", "b"]\n'
        "ONBUILD RUN z\n"
    )
    ast = parse(text)
    sub = Node(cmd="RUN", args=("z",), original="RUN z")
    expected = [
        ("FROM", (), ("a", "AS", "b"), None, False, "FROM a AS b", (), 1, 1, ()),
        ("RUN", ("--mount=type=cache",), ("x   && y",), None, False,
         "RUN --mount=type=cache x   && y", (25,), 2, 3, ()),
        ("COPY", (), ("<<EOF", "/x"), None, False, "COPY <<EOF /x", (), 5, 7,
         (Heredoc(name="EOF", file_descriptor=0, expand=True, chomp=False, content="hello\n"),)),
        ("ENV", (), ("A", '"x y"', "=", "B", "c", "="), None, False, 'ENV A="x y" B=c', (), 8, 8,
         ()),
        ("CMD", (), ("a", "b"), None, True, 'CMD ["a", "b"]', (), 9, 9, ()),
        ("ONBUILD", (), (), sub, False, "ONBUILD RUN z", (), 10, 10, ()),
    ]  # fmt: skip
    want = tuple(
        Node(
            cmd=cmd,
            flags=flags,
            args=args,
            sub=sub_node,
            json=is_json,
            original=original,
            breaks=breaks,
            start_line=start,
            end_line=end,
            heredocs=docs,
            span=Span(file="Dockerfile", line=start, column=1, end_line=end),
        )
        for cmd, flags, args, sub_node, is_json, original, breaks, start, end, docs in expected
    )
    assert ast.nodes == want
    assert [hash(n) for n in ast.nodes] == [hash(n) for n in want]
    assert [repr(n) for n in ast.nodes] == [repr(n) for n in want]


def test_slot_setters_refuse_a_class_they_do_not_know() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Other:
        a: int
        b: int

    assert len(parser._slot_setters(Other, ("a", "b"))) == 2
    with pytest.raises(RuntimeError, match="Other changed"):
        parser._slot_setters(Other, ("a",))


def test_keyword_case_variants_dispatch_as_buildkit_lowercases() -> None:
    # (?i:shell) matches "ſHELL", but Go's ToLower leaves "ſ" alone: an unknown instruction.
    # The Kelvin sign lower-cases to "k" in both: a HEALTHCHECK.
    ast = parse('\u017fHELL ["a"]\nHEALTHCHEC\u212a NONE\n')
    assert [(n.cmd, n.args, n.json) for n in ast.nodes] == [
        ("\u017fHELL", ("",), False),
        ("HEALTHCHEC\u212a", ("NONE",), False),
    ]


def test_line_shapes_of_the_pre_pass() -> None:
    text = (
        "  FROM a  \r\n"  # trailing blanks stay in the original text, the CR does not
        "RUN a \\ \n"  # escape then blanks: a continuation
        "  # inside\n"
        "\n"
        "  b\n"
        "RUN x \\\\\n"  # a doubled escape character is not a continuation
        "LABEL a=b\\\u3000\n"  # the escape is not last once only spaces and tabs are cut
        "RUN <<EOF\nlast"  # an unterminated heredoc at the end of a file without newline
    )
    with pytest.raises(Exception, match="unterminated heredoc"):
        parse(text)
    ast = parse(text.rsplit("RUN <<EOF", 1)[0] + "RUN <<EOF\nbody\nEOF")
    assert [(n.original, n.start_line, n.end_line) for n in ast.nodes] == [
        ("FROM a  ", 1, 1),
        ("RUN a   b", 2, 5),
        ("RUN x \\\\", 6, 6),
        ("LABEL a=b\\\u3000", 7, 7),
        ("RUN <<EOF", 8, 10),
    ]
    assert ast.nodes[-1].heredocs[0].content == "body\n"
    assert [(c.line, c.text) for c in ast.comments] == [(3, "inside")]
    assert [w.rule for w in ast.warnings] == ["NoEmptyContinuation"]


def test_blank_logical_line_is_an_empty_instruction() -> None:
    ast = parse("FROM a\n\\\n   \n")
    assert ast.nodes[1].cmd == ""
    assert ast.nodes[1].args == ("",)
    assert (ast.nodes[1].start_line, ast.nodes[1].end_line) == (2, 3)


@pytest.mark.parametrize("escape", ESCAPES)
def test_both_escape_characters(escape: str) -> None:
    e = escape
    text = f"# escape={e}\nFROM a\nRUN --a=b{e}\n  c {e}{e}\nENV A=x{e} y B='{e}'\n"
    ast = parse(text)
    assert ast.escape == escape
    assert ast.nodes[1].flags == ("--a=b",)
    assert ast.nodes[1].args == (f"c {e}{e}",)  # the joined line is "RUN --a=b  c ..."
    assert ast.nodes[2].args == ("A", f"x{e} y", "=", "B", f"'{e}'", "=")


def test_lone_surrogate_in_a_byte_walk_is_read_as_its_three_bytes() -> None:
    # U+D800 has no UTF-8 form: its bytes ED A0 80 are walked as BuildKit walks invalid UTF-8,
    # byte by byte, and A0 (a rune Go takes for a space) ends the flag word.
    node = parse("RUN --a=\ud800 x\n").nodes[0]
    assert node.flags == ("--a=\xed",)
    assert node.args == ("\udc80 x",)
    assert parse("HEALTHCHECK \ud800 CMD x\n").nodes[0].args == ("\udced", "\udc80 CMD x")
