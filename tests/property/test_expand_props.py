"""Properties of shell-word expansion (``builder.syntax.expand``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import pytest
from fuzzing import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import ExpansionError
from builder.syntax.expand import MAX_NESTING, MAX_SIZE, Lexer, WordResult

GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

lexers = st.builds(
    Lexer,
    escape=st.sampled_from(["\\", "`"]),
    raw_quotes=st.booleans(),
    raw_escapes=st.booleans(),
    skip_process_quotes=st.booleans(),
    skip_unset_env=st.booleans(),
)

# Text that exercises the scanner: every syntax character, names, blanks, some Unicode.
shell_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("${}:-+?#%/\\`'\"<* \t\nab01_@!.")),
        st.sampled_from(["A", "B", "é", "٣", "\ufeff", "\u3000", "\x00"]),
        st.characters(),
    ),
    max_size=60,
)
envs = st.dictionaries(
    st.sampled_from(["A", "B", "a", "b", "0", "1", "@", "é"]),
    st.text(alphabet=st.sampled_from(list("ab*?\\/ $'\"{}\n")), max_size=8),
    max_size=5,
)


def _outcome(
    call: Callable[[str, Mapping[str, str]], object], word: str, env: Mapping[str, str]
) -> object:
    """The result of ``call``, or the ExpansionError it raised (anything else propagates)."""
    try:
        return call(word, env)
    except ExpansionError as err:
        return err


@settings(max_examples=examples(600), deadline=None)
@given(lexer=lexers, word=shell_text, env=envs)
def test_arbitrary_text_only_raises_expansion_error(
    lexer: Lexer, word: str, env: dict[str, str]
) -> None:
    result = _outcome(lexer.process_word_with_matches, word, env)
    single = _outcome(lexer.process_word, word, env)
    split = _outcome(lexer.process_words, word, env)
    if isinstance(result, ExpansionError):
        assert result.message.startswith("failed to process ")
        assert isinstance(single, ExpansionError)
        assert isinstance(split, ExpansionError)
        assert single.message == split.message == result.message
        return
    assert isinstance(result, WordResult)
    assert single == result.result
    assert split == list(result.words)
    assert result.matched <= env.keys()
    assert not (result.unmatched & env.keys())
    assert all(w for w in result.words)


@settings(max_examples=300, deadline=None)
@given(
    lexer=lexers,
    word=st.text(st.characters(exclude_characters="$'\"\\`<\ufeff"), max_size=80),
)
def test_text_without_syntax_is_unchanged(lexer: Lexer, word: str) -> None:
    assert lexer.process_word(word, {"A": "x"}) == word
    assert lexer.process_words(word, {}) == re.findall(f"[^{re.escape(GO_SPACE)}]+", word)


@settings(max_examples=200, deadline=None)
@given(
    value=st.text(max_size=30), name=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
)
def test_variable_value_is_inserted_verbatim(value: str, name: str) -> None:
    env = {name: value}
    lexer = Lexer()
    assert lexer.process_word(f"${{{name}}}", env) == value
    assert lexer.process_word(f'"${name}"', env) == value
    assert lexer.process_word(f"${{{name}:-x}}", env) == (value or "x")
    assert lexer.process_word(f"${{{name}+set}}", env) == "set"


@settings(max_examples=200, deadline=None)
@given(body=st.text(st.characters(exclude_characters="'"), max_size=40))
def test_single_quotes_are_literal(body: str) -> None:
    assert Lexer().process_word(f"'{body}'", {"A": "x"}) == body
    assert Lexer(raw_quotes=True).process_word(f"'{body}'", {}) == f"'{body}'"


wrappers = st.sampled_from(
    ["${a:-%s}", "${a-%s}", "${a:+%s}", "${a+%s}", "${a?%s}", "${a#%s}", "${a%%%%%s}",
     "${a/%s/x}", "${a//x/%s}", '"${a:-%s}"']
)  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(
    layers=st.lists(wrappers, min_size=MAX_NESTING + 1, max_size=3000),
    closed=st.booleans(),
)
def test_deep_nesting_is_an_error(layers: list[str], closed: bool) -> None:
    word = "x"
    for layer in reversed(layers):
        word = layer % word
    if not closed:
        word = word.rstrip('}x/"')
    with pytest.raises(ExpansionError) as info:
        Lexer().process_word(word, {})
    if closed:
        assert "expansion too deep" in info.value.message
    assert len(info.value.message) < 4 * 1024


@settings(max_examples=5, deadline=None)
@given(extra=st.integers(1, 1000), ch=st.sampled_from(["a", "$", "'", "{"]))
def test_huge_input_is_an_error(extra: int, ch: str) -> None:
    with pytest.raises(ExpansionError, match="word too long"):
        Lexer().process_word(ch * (MAX_SIZE + extra), {})


# -- patterns: the non-backtracking matcher agrees with a backtracking regex engine ------------
#
# Python's ``re`` and Go's RE2 both return the leftmost-first match, so BuildKit's own conversion
# of a shell pattern to a regexp, run by ``re``, is the reference on small inputs.


def _reference_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    out = ["^"] if anchored else []
    chars = iter(pattern)
    for ch in chars:
        if ch == "*":
            out.append(r"[^\n]*" if greedy else r"[^\n]*?")
        elif ch == "?":
            out.append(r"[^\n]")
        elif ch == "\\":
            out.append(re.escape(next(chars)))
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out))


def _reverse(pattern: str) -> str:
    tokens = re.findall(r"\\.|.", pattern, flags=re.S)
    return "".join(reversed(tokens))


def _go_replace_all(rx: re.Pattern[str], value: str, repl: str) -> str:
    out, last, pos = [], 0, 0
    while pos <= len(value):
        m = rx.search(value, pos)
        if m is None:
            break
        out.append(value[last : m.start()])
        if m.end() > last or m.start() == 0:
            out.append(repl)
        last = m.end()
        pos = pos + 1 if m.end() <= pos else m.end()
    out.append(value[last:])
    return "".join(out)


patterns = st.lists(st.sampled_from(["a", "b", "\n", "*", "*", "?", "\\*", "\\?"]), max_size=7).map(
    "".join
)
values = st.text(alphabet=st.sampled_from(list("aab\n*?")), max_size=14)


@settings(max_examples=400, deadline=None)
@given(pattern=patterns, value=values)
def test_pattern_operations_match_backtracking_reference(pattern: str, value: str) -> None:
    env = {"V": value, "P": pattern}
    lexer = Lexer()
    for op, greedy in (("#", False), ("##", True)):
        m = _reference_regex(pattern, greedy=greedy, anchored=True).match(value)
        expected = value if m is None else value[m.end() :]
        assert lexer.process_word(f"${{V{op}$P}}", env) == expected
    rev = value[::-1]
    for op, greedy in (("%", False), ("%%", True)):
        m = _reference_regex(_reverse(pattern), greedy=greedy, anchored=True).match(rev)
        expected = (rev if m is None else rev[m.end() :])[::-1]
        assert lexer.process_word(f"${{V{op}$P}}", env) == expected
    rx = _reference_regex(pattern, greedy=True, anchored=False)
    m = rx.search(value)
    expected = value if m is None else value[: m.start()] + "-" + value[m.end() :]
    assert lexer.process_word("${V/$P/-}", env) == expected
    assert lexer.process_word("${V//$P/-}", env) == _go_replace_all(rx, value, "-")
