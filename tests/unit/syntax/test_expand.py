"""Shell-word expansion: BuildKit's golden tables plus the cases of its ``lex_test.go``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from builder.errors import ExpansionError
from builder.syntax.expand import MAX_NESTING, MAX_SIZE, Lexer, WordResult
from builder.syntax.shellpattern import _reverse_pattern
from tests.conftest import BUILDKIT_GOLDEN

GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
SHELL_DIR = BUILDKIT_GOLDEN / "shell"
# The environment BuildKit's TestShellParser4EnvVars uses.
ENV_VAR_TEST_ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def _go_lines(path: Path) -> list[str]:
    """The lines bufio.Scanner yields: split on LF, one trailing CR dropped, no final empty."""
    text = path.read_bytes().decode("utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _env_var_rows(path: Path) -> list[tuple[int, str, str]]:
    """(line number, source, expected) of the A and U rows, parsed like lex_test.go."""
    rows = []
    for number, line in enumerate(_go_lines(path), start=1):
        if line.startswith("#"):
            continue
        line = line.strip(GO_SPACE)
        if not line:
            continue
        fields = line.split("|")
        assert len(fields) == 3, f"line {number}: {line!r}"
        platform, source, expected = (f.strip(GO_SPACE) for f in fields)
        assert platform in ("A", "U", "W"), f"line {number}: bad platform {platform!r}"
        if platform != "W":
            rows.append((number, source, expected))
    return rows


def _words_rows(path: Path) -> list[tuple[int, str, list[str], dict[str, str]]]:
    """(line number, source, expected words, env so far) of wordsTest, like lex_test.go."""
    rows = []
    env: dict[str, str] = {}
    for number, line in enumerate(_go_lines(path), start=1):
        if line.startswith("#"):
            continue
        if line.startswith("ENV "):
            key, _, value = line[3:].lstrip(" ").partition("=")
            env[key] = value
            continue
        fields = line.split("|")
        assert len(fields) == 2, f"line {number}: {line!r}"
        rows.append(
            (number, fields[0].strip(GO_SPACE), fields[1].lstrip(" ").split(","), dict(env))
        )
    return rows


ENV_VAR_ROWS = _env_var_rows(SHELL_DIR / "envVarTest")
WORDS_ROWS = _words_rows(SHELL_DIR / "wordsTest")


# -- golden tables ----------------------------------------------------------------------------


def test_golden_rows_all_collected() -> None:
    lines = (SHELL_DIR / "envVarTest").read_text(encoding="utf-8").splitlines()
    rows = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    windows_only = [ln for ln in rows if ln.startswith("W|")]
    assert len(windows_only) == 2
    assert len(ENV_VAR_ROWS) == len(rows) - len(windows_only) == 228
    error_rows = [
        ln for ln in rows if not ln.startswith("W|") and ln.rsplit("|", 1)[1].strip() == "error"
    ]
    assert sum(1 for _, _, expected in ENV_VAR_ROWS if expected == "error") == len(error_rows)
    assert len(error_rows) == 36

    lines = (SHELL_DIR / "wordsTest").read_text(encoding="utf-8").splitlines()
    cases = [ln for ln in lines if not ln.startswith(("#", "ENV "))]
    assert len(WORDS_ROWS) == len(cases) == 24


@pytest.mark.parametrize(
    ("source", "expected"),
    [pytest.param(src, exp, id=f"line{no}") for no, src, exp in ENV_VAR_ROWS],
)
def test_env_var_table(source: str, expected: str) -> None:
    lexer = Lexer()
    if expected == "error":
        with pytest.raises(ExpansionError):
            lexer.process_word(source, ENV_VAR_TEST_ENV)
    else:
        assert lexer.process_word(source, ENV_VAR_TEST_ENV) == expected


@pytest.mark.parametrize(
    ("source", "expected", "env"),
    [pytest.param(src, exp, env, id=f"line{no}") for no, src, exp, env in WORDS_ROWS],
)
def test_words_table(source: str, expected: list[str], env: dict[str, str]) -> None:
    lexer = Lexer()
    if expected == ["error"]:
        with pytest.raises(ExpansionError):
            lexer.process_words(source, env)
    else:
        assert lexer.process_words(source, env) == expected


# -- lex_test.go: TestShellParserMandatoryEnvVars ---------------------------------------------


@pytest.mark.parametrize(
    ("word", "env", "expected"),
    [
        ("${VAR:?message here$ARG}", {"VAR": "plain", "ARG": "x"}, "plain"),
        ("${VAR?message here$ARG}", {"VAR": "plain", "ARG": "x"}, "plain"),
        ("${VAR?message here$ARG}", {"VAR": "", "ARG": "x"}, ""),
    ],
)
def test_mandatory_vars_set(word: str, env: dict[str, str], expected: str) -> None:
    assert Lexer().process_word(word, env) == expected


@pytest.mark.parametrize(
    ("word", "env"),
    [
        ("${VAR:?message here$ARG}", {"VAR": "", "ARG": "x"}),
        ("${VAR:?message here$ARG}", {"ARG": "x"}),
        ("${VAR?message here$ARG}", {"ARG": "x"}),
    ],
)
def test_mandatory_vars_missing(word: str, env: dict[str, str]) -> None:
    with pytest.raises(ExpansionError) as info:
        Lexer().process_word(word, env)
    assert info.value.message == f'failed to process "{word}": VAR: message herex'


# -- lex_test.go: TestProcessWithMatches ------------------------------------------------------

XY = {"FOO": "xxx", "BAR": ""}

MATCH_CASES: list[tuple[str, dict[str, str], str, set[str], set[str]]] = [
    ("x", {"DUMMY": "dummy"}, "x", set(), set()),
    ("x ${UNUSED}", {"DUMMY": "dummy"}, "x ", set(), {"UNUSED"}),
    ("x ${FOO}", {"FOO": "y"}, "x y", {"FOO"}, set()),
    ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", XY, "xxx  ccc", {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", XY, "xxx bbb ccc", {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO:-}", XY, "xxx", {"FOO"}, set()),
    ("${FOO:-}", {}, "", set(), {"FOO"}),
    ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", XY, "aaa bbb ", {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", XY, "aaa  ", {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO?aaa}", XY, "xxx", {"FOO"}, set()),
    ("${BAR?bbb}", XY, "", {"BAR"}, set()),
    ("${FOO:?aaa}", XY, "xxx", {"FOO"}, set()),
    ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", {"FOO": "()[]{}^$.*?|\\x"}, "x", {"FOO"}, set()),
    ("${FOO%%\\**}", {"FOO": "xx**"}, "xx", {"FOO"}, set()),
    ("${FOO#*x*y}", {"FOO": "xxyy"}, "y", {"FOO"}, set()),
    ("${FOO#*}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "x"}, "xyy", {"FOO", "BAR"}, set()),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy", {"FOO", "BAR"}, set()),
    ("${FOO#}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO##*x}", {"FOO": "xxyy"}, "yy", {"FOO"}, set()),
    ("${FOO##}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO#?\\?}", {"FOO": "???y"}, "?y", {"FOO"}, set()),
    ("${ABC:-.}${FOO%x}${ABC:-.}", {"FOO": "xxyy"}, ".xxyy.", {"FOO"}, {"ABC"}),
    ("${FOO%%\\**\\*}", {"FOO": "a***yy*"}, "a", {"FOO"}, set()),
    ("${FOO%}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO%%$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy", {"FOO", "BAR"}, set()),
    (
        "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
        {"FOO": "/foo*/*/*.txt", "NEEDLE": "\\*/"},
        "/foo.*/*.txt - /foo..*.txt",
        {"FOO", "NEEDLE"},
        set(),
    ),
    (
        "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
        {"FOO": "/tmp/tmp/bar.txt", "NEEDLE": "/tmp"},
        "/tmp/bar.txt - /bar.txt",
        {"FOO", "NEEDLE"},
        set(),
    ),
    (
        "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
        {"FOO": "/a/foo/b/c.txt", "NEEDLE": "/?/", "REPLACEMENT": "/"},
        "/foo/b/c.txt - /foo/c.txt",
        {"FOO", "NEEDLE", "REPLACEMENT"},
        set(),
    ),
    (
        "${FOO/$NEEDLE/$REPLACEMENT}",
        {"FOO": "http://google.de", "NEEDLE": "http://", "REPLACEMENT": "https://"},
        "https://google.de",
        {"FOO", "NEEDLE", "REPLACEMENT"},
        set(),
    ),
    ("${FOO//\\//\\/}", {"FOO": "/tmp/foo.txt"}, "\\/tmp\\/foo.txt", {"FOO"}, set()),
    ("${FOO/$BAR/ww}", {"FOO": "xxyy", "BAR": ""}, "wwxxyy", {"FOO", "BAR"}, set()),
    ("${FOO///}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO///}", {}, "", set(), {"FOO"}),
]


@pytest.mark.parametrize(
    ("word", "env", "expected", "matched", "unmatched"),
    [pytest.param(*case, id=case[0]) for case in MATCH_CASES],
)
def test_process_with_matches(
    word: str, env: dict[str, str], expected: str, matched: set[str], unmatched: set[str]
) -> None:
    result = Lexer().process_word_with_matches(word, env)
    assert result.result == expected
    assert result.matched == matched
    assert result.unmatched == unmatched


@pytest.mark.parametrize(
    ("word", "env", "message"),
    [
        ("${BAZ?ccc}", XY, "BAZ: ccc"),
        ("${BAR:?bbb}", XY, "BAR: bbb"),
        ("${BAZ:?ccc}", XY, "BAZ: ccc"),
        ("${BAZ:?}", XY, "BAZ: is not allowed to be unset"),
        ("${FOO=aaa}", XY, "unsupported modifier (=) in substitution"),
        ("${FOO=:aaa}", XY, "unsupported modifier (=) in substitution"),
        ("${FOO=}", {}, "unsupported modifier (=) in substitution"),
        ("${FOO:#}", {}, "unsupported modifier (:#) in substitution"),
        ("${FOO:##}", {}, "unsupported modifier (:#) in substitution"),
        ("${FOO:%}", {}, "unsupported modifier (:%) in substitution"),
        ("${FOO:%%}", {}, "unsupported modifier (:%) in substitution"),
        ("${FOO//ww}", {"FOO": "xxyy"}, "syntax error: missing '/' in ${}"),
        ("${FOO//}", {"FOO": "xxyy"}, "syntax error: missing '/' in ${}"),
    ],
)
def test_process_with_matches_errors(word: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ExpansionError) as info:
        Lexer().process_word_with_matches(word, env)
    assert info.value.message == f'failed to process "{word}": {message}'


RELEASE = "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm", "TARGETVARIANT": "v7"},
            "something-v1.2.3.linux-arm-v7.tar.gz",
        ),
        (
            {"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm64", "TARGETVARIANT": ""},
            "something-v1.2.3.linux-arm64.tar.gz",
        ),
        (
            {"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm64"},
            "something-v1.2.3.linux-arm64.tar.gz",
        ),
    ],
)
def test_process_with_matches_platform(env: dict[str, str], expected: str) -> None:
    """lex_test.go TestProcessWithMatchesPlatform."""
    result = Lexer().process_word_with_matches(RELEASE, env)
    assert result.result == expected
    assert result.matched == env.keys()


def test_word_result_carries_words() -> None:
    result = Lexer().process_word_with_matches("a $X 'b c'", {"X": "1 2"})
    assert result == WordResult(
        result="a 1 2 b c",
        words=("a", "1", "2", "b c"),
        matched=frozenset({"X"}),
        unmatched=frozenset(),
    )


# -- lex_test.go: TestConvertShellPatternToRegex, TestReversePattern ----------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "abc", ""),
        ("?", "abc", "bc"),
        ("\\*", "*bc", "bc"),
        ("\\*", "abc", "abc"),
        ("(()[]{\\}^$.\\*\\?|\\\\", "(()[]{}^$.*?|\\z", "z"),
    ],
)
def test_pattern_characters(pattern: str, value: str, expected: str) -> None:
    assert Lexer().process_word("${V##$P}", {"V": value, "P": pattern}) == expected


@pytest.mark.parametrize(
    ("pattern", "detail"),
    [("\\", "invalid escape '\\\ufffd'"), ("\\x", "invalid escape '\\x'"), ("\\\\\\", None)],
)
def test_invalid_patterns(pattern: str, detail: str | None) -> None:
    with pytest.raises(ExpansionError) as info:
        Lexer().process_word("${V#$P}", {"V": "v", "P": pattern})
    assert f"invalid pattern ({pattern}) in substitution: " in info.value.message
    if detail is not None:
        assert info.value.message.endswith(detail)


def test_invalid_suffix_pattern_reports_reversed_pattern() -> None:
    with pytest.raises(ExpansionError) as info:
        Lexer().process_word("${V%$P}", {"V": "v", "P": "x\\q"})
    assert info.value.message.endswith(
        "invalid pattern (\\qx) in substitution: invalid escape '\\q'"
    )


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("a\\*c", "c\\*a"),
        ("\\\\\\ab", "b\\a\\\\"),
        ("ab\\", "\\ba"),
        ("👽\\🚀🖖", "🖖\\🚀👽"),
        ("\\\\b", "b\\\\"),
    ],
)
def test_reverse_pattern(pattern: str, expected: str) -> None:
    assert _reverse_pattern(pattern) == expected


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("${V#*/}", "b/c.tar.gz"),
        ("${V##*/}", "c.tar.gz"),
        ("${V%.*}", "a/b/c.tar"),
        ("${V%%.*}", "a/b/c"),
        ("${V%/*}", "a/b"),
        ("${V%%/*}", "a"),
        ("${V#a/?/}", "c.tar.gz"),
        ("${V/.tar/}", "a/b/c.gz"),
        ("${V//\\//_}", "a_b_c.tar.gz"),
        ("${V/b*c/X}", "a/X.tar.gz"),
        ("${V//[ab]/X}", "a/b/c.tar.gz"),  # no bracket expressions: '[' is literal
    ],
)
def test_pattern_operations(word: str, expected: str) -> None:
    assert Lexer().process_word(word, {"V": "a/b/c.tar.gz"}) == expected


def test_stars_do_not_cross_newlines() -> None:
    env = {"V": "ab\ncd\nef"}
    assert Lexer().process_word("${V#*c}", env) == env["V"]
    assert Lexer().process_word("${V##*\n}", {"V": "x\ny"}) == "y"  # literal newline is fine
    assert Lexer().process_word("${V//*/-}", env) == "-\n-\n-"
    assert Lexer().process_word("${V%%?}", env) == "ab\ncd\ne"


@pytest.mark.parametrize(
    ("replacement", "expected"),
    [
        ("[$0]", "f[o][o]"),
        ("${0}!", "fo!o!"),
        ("$$", "f$$"),
        ("$1$x${x}", "f"),
        ("$00$0a", "f"),
        ("${x-$", "f${x-$${x-$"),
        ("\\", "f\\\\"),
    ],
)
def test_replace_all_uses_go_template(replacement: str, expected: str) -> None:
    """``//`` goes through Go's ReplaceAllString, which expands ``$0`` and ``$$``."""
    assert Lexer().process_word("${V//o/$R}", {"V": "foo", "R": replacement}) == expected


def test_replace_first_is_literal() -> None:
    assert Lexer().process_word("${V/o/$R}", {"V": "foo", "R": "[$0]"}) == "f[$0]o"


def test_replace_all_empty_matches_like_go() -> None:
    lexer = Lexer()
    assert lexer.process_word("${V//$E/-}", {"V": "abc", "E": ""}) == "-a-b-c-"
    # Go skips an empty match right after a non-empty one (Python's re.sub would not).
    assert lexer.process_word("${V//*/-}", {"V": "abc"}) == "-"
    assert lexer.process_word("${V//b*/-}", {"V": "abcb"}) == "a-"


# -- quoting, escapes, names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$", "$"),
        ("a$", "a$"),
        ("$.x", "$.x"),
        ("$@x$*x$#x$?x$-x$$x$!x$0x", "xxxxxxxx"),
        ("$12ab", "ab"),
        ("${12}ab", "ab"),
        ("$٣x", "x"),  # a Unicode digit starts a digit name
        ("$Xé", ""),  # é continues the name: $Xé is unset
        ("$X.é", "1.é"),
        ("${X}é", "1é"),
        ("\ufeff$X", "1"),  # Go's scanner drops a leading BOM
        ("a\ufeff$X", "a\ufeff1"),
        ("\ufeffplain", "plain"),
        ("a\\", "a"),
        ('"a\\b\\"c\\$X\\\\"', 'a\\b"c$X\\'),
        ("'$X\\'", "$X\\"),
        ("a\\ b", "a b"),
    ],
)
def test_names_and_quotes(word: str, expected: str) -> None:
    assert Lexer().process_word(word, {"X": "1"}) == expected


def test_backtick_escape() -> None:
    lexer = Lexer(escape="`")
    assert lexer.process_word("`$X \\$X C:\\dir", {"X": "1"}) == "$X \\1 C:\\dir"
    assert lexer.process_word('"a`"b`$X`c"', {"X": "1"}) == 'a"b$X`c'
    assert lexer.process_words("a` b c", {}) == ["a b", "c"]


def test_invalid_escape_token() -> None:
    with pytest.raises(ExpansionError, match="invalid escape token"):
        Lexer(escape="x")


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("'a' \"b\"", "'a' \"b\""),
        ("\"$X\" '$X'", "\"1\" '1'"),
        ("\\$X \\'", "$X '"),
        ("he'llo", "he'llo"),  # quotes are plain: no unterminated-quote error
    ],
)
def test_skip_process_quotes(word: str, expected: str) -> None:
    """The mode BuildKit uses for heredoc bodies (``ExpandRaw``)."""
    assert Lexer(skip_process_quotes=True).process_word(word, {"X": "1"}) == expected


@pytest.mark.parametrize(
    ("lexer", "word", "expected"),
    [
        (Lexer(raw_quotes=True), "a'b c'\"$X\"", "a'b c'\"1\""),
        (Lexer(raw_escapes=True), "a\\ b\\", "a\\ b\\"),
        (Lexer(raw_escapes=True), '"\\"\\$X"', '\\"\\$X'),
        # a lone escape inside double quotes is kept once and then again as a literal
        (Lexer(raw_escapes=True), '"\\t"', "\\\\t"),
        # raw escapes do not apply to the word of - + ? (processed with escapes)...
        (Lexer(raw_escapes=True), "${U:-a\\b}", "ab"),
        # ...but patterns always keep them
        (Lexer(), "${Y#\\*}", "1"),
        (Lexer(raw_quotes=True, raw_escapes=True), '\'a\\\'"b\\""', '\'a\\\'"b\\""'),
    ],
)
def test_raw_options(lexer: Lexer, word: str, expected: str) -> None:
    assert lexer.process_word(word, {"X": "1", "Y": "*1"}) == expected


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$U ${U} $X", "$U ${U} 1"),
        ("${U:-a b} ${U-$X} ${U:+c}", "${U:-a b} ${U-1} ${U:+c}"),
        ("${U#x} ${U%%y*}", "${U#x} ${U%%y*}"),
        ("${U/a/b} ${U//a/b}", "${U/a/b} ${U/a/b}"),  # BuildKit drops the second '/'
        ("${U:x}", "${U:x}"),  # no "unsupported modifier" for an unset variable
        ("${X:x}", None),
        ("${U?}", "${U?}"),
        ("${U:-'q'}", "${U:-q}"),  # the word is written back processed
    ],
)
def test_skip_unset_env(word: str, expected: str | None) -> None:
    lexer = Lexer(skip_unset_env=True)
    if expected is None:
        with pytest.raises(ExpansionError, match=r"unsupported modifier \(:x\)"):
            lexer.process_word(word, {"X": "1"})
    else:
        assert lexer.process_word(word, {"X": "1"}) == expected


def test_words_mode_of_lex_test() -> None:
    """wordsTest rows under RawQuotes + SkipUnsetEnv (lex_test.go's second mode)."""
    lexer = Lexer(raw_quotes=True, skip_unset_env=True)
    env = {"space": "abc  def", "hi": "hi"}
    assert lexer.process_words("hello${hi}bye", env) == ["hellohibye"]
    assert lexer.process_words("hello${nope}bye", env) == ["hello${nope}bye"]
    assert lexer.process_words('hello "${space}"bye', env) == ["hello", '"abc  def"bye']
    assert lexer.process_words("hello${space}bye", env) == ["helloabc", "defbye"]


# -- word splitting and heredoc markers --------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("a  b\t\nc", ["a", "b", "c"]),
        ("a\u3000b\x1cc", ["a", "b\x1cc"]),  # Go's unicode.IsSpace, not str.isspace
        ('a "" b', ["a", "b"]),
        ('""', []),
        ("''x", ["x"]),
        ("$E", []),
        ("a$E b", ["a", "b"]),
        ("$S", ["1", "2"]),
        ('"$S"', [" 1  2 "]),
        ("x$S", ["x", "1", "2"]),
        ("cat <<EOF", ["cat", "<<EOF"]),
        ("cat <<  EOF > f", ["cat", "<<  EOF", ">", "f"]),
        ("cat <<\t-EOF", ["cat", "<<\t-EOF"]),
        ("a<b", ["a<b"]),
        ("a<<", ["a<<"]),
    ],
)
def test_process_words(word: str, expected: list[str]) -> None:
    assert Lexer().process_words(word, {"E": "", "S": " 1  2 "}) == expected


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("hello${x:-a}", ["a"]),
        ('pre"${x:-a}"post', ["apost"]),
        ("a b${X#q}c d", ["a", "1c", "d"]),
        ("a b${X/q/r} d", ["a", "1", "d"]),
        ("a b${X} d", ["a", "b1", "d"]),  # no modifier: nothing is reset
    ],
)
def test_modifier_resets_pending_word(word: str, expected: list[str]) -> None:
    """BuildKit (since v0.15) shares its word buffer with nested ``${...}`` words."""
    assert Lexer().process_words(word, {"X": "1"}) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("RUN <<EOF <<EOF2", ["RUN", "<<EOF", "<<EOF2"]),
        ("RUN <<  EOF  > foo", ["RUN", "<<  EOF", ">", "foo"]),
        ("RUN <<eo\\'f", ["RUN", "<<eo\\'f"]),
        ("RUN '<<EOF'", ["RUN", "'<<EOF'"]),
        ('RUN "<<EOF"', ["RUN", '"<<EOF"']),
        ("RUN <<$EOF", ["RUN", "<<$EOF"]),
        ("RUN 4<<EOF", ["RUN", "4<<EOF"]),
    ],
)
def test_heredoc_line_words(line: str, expected: list[str]) -> None:
    """The lexer options of BuildKit's heredocsFromLine."""
    lexer = Lexer(raw_quotes=True, raw_escapes=True, skip_unset_env=True)
    assert lexer.process_words(line, {}) == expected


@pytest.mark.parametrize(
    ("rest", "plain", "raw"),
    [
        ("EOF", ["EOF"], ["EOF"]),
        ("eo'f'", ["eof"], ["eo'f'"]),
        ("eo\\'f", ["eo'f"], ["eo'f"]),
        ("'e'o\\'f", ["eo'f"], ["'e'o'f"]),
        ("'one two'", ["one two"], ["'one two'"]),
        ("$EOF", ["$EOF"], ["$EOF"]),
    ],
)
def test_heredoc_name_words(rest: str, plain: list[str], raw: list[str]) -> None:
    """The two lexings of BuildKit's heredocFromMatch (quote counts decide expansion)."""
    assert Lexer(skip_unset_env=True).process_words(rest, {}) == plain
    assert Lexer(skip_unset_env=True, raw_quotes=True).process_words(rest, {}) == raw


# -- error messages ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${}", "syntax error: bad substitution"),
        ("${:-x}", "syntax error: bad substitution"),
        ("${{x}", "syntax error: bad substitution"),
        ("${", "syntax error: missing '}'"),
        ("${abc", "syntax error: missing '}'"),
        ("${abc:", "syntax error: missing '}'"),
        ("${a:-b", "syntax error: missing '}'"),
        ("${a:-${b=x}", "unsupported modifier (=) in substitution"),
        ("${a:-${b=", "syntax error: missing '}'"),
        ("${a/b", "syntax error: missing '/' in ${}"),
        ("${a/b/c", "syntax error: missing '}'"),
        ("${.}", "unsupported modifier (.) in substitution"),
        ("${a:=x}", "unsupported modifier (:=) in substitution"),
        ("${a:}x}", "unsupported modifier (:}) in substitution"),
        ("it's", "unexpected end of statement while looking for matching single-quote"),
        ('"abc\\"', "unexpected end of statement while looking for matching double-quote"),
        ("${N:?}", "N: is not allowed to be empty"),
        ("${U?}", "U: is not allowed to be unset"),
    ],
)
def test_error_messages(word: str, message: str) -> None:
    with pytest.raises(ExpansionError) as info:
        Lexer().process_word(word, {"N": ""})
    assert info.value.message == f"failed to process {_go_quote(word)}: {message}"
    assert info.value.span is None


def _go_quote(word: str) -> str:
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_error_message_quotes_like_go() -> None:
    with pytest.raises(ExpansionError) as info:
        Lexer().process_word('a\n\t"${', {})
    assert info.value.message == 'failed to process "a\\n\\t\\"${": syntax error: missing \'}\''


# -- limits -----------------------------------------------------------------------------------


def _nested(depth: int) -> str:
    return "${a:-" * depth + "x" + "}" * depth


def test_nesting_limit() -> None:
    assert Lexer().process_word(_nested(MAX_NESTING), {}) == "x"
    with pytest.raises(ExpansionError, match="expansion too deep"):
        Lexer().process_word(_nested(MAX_NESTING + 1), {})


@pytest.mark.parametrize(
    "word",
    [
        _nested(10_000),
        '"${a:-' * 10_000 + "x" + '}"' * 10_000,
        "${a#" * 10_000,
        "${a/" * 10_000,
        "${a:-" * 10_000,  # unterminated as well: the depth error wins
    ],
)
def test_deep_nesting_is_an_error(word: str) -> None:
    with pytest.raises(ExpansionError) as info:
        Lexer().process_word(word, {})
    assert "expansion too deep" in info.value.message
    assert len(info.value.message) < 2 * 1024 + 200  # the word is cut short in the message
    assert "\n" not in info.value.message


def test_output_limit() -> None:
    env = {"A": "x" * (1 << 20)}
    with pytest.raises(ExpansionError, match="expansion result too large"):
        Lexer().process_word("$A" * 17, env)
    with pytest.raises(ExpansionError, match="expansion result too large"):
        Lexer().process_word('"' + "${A}" * 17 + '"', env)
    with pytest.raises(ExpansionError, match="expansion result too large"):
        Lexer().process_word("${A//?/$A}", env)
    with pytest.raises(ExpansionError, match="expansion result too large"):
        Lexer().process_word("${A//x*/$B}", {"A": "x\n" * 10_000, "B": "y" * 4096})
    assert len(Lexer().process_word("$A" * 16, env)) == MAX_SIZE


def test_input_limit() -> None:
    with pytest.raises(ExpansionError, match="word too long"):
        Lexer().process_word("a" * (MAX_SIZE + 1), {})


def test_large_word_is_processed() -> None:
    word = ("abc def " * 65_536 + "$X ${X:-y} 'q' ") * 10  # 5 MB
    result = Lexer().process_word(word, {"X": "1"})
    assert result == ("abc def " * 65_536 + "1 1 q ") * 10
    assert len(Lexer().process_words(word, {"X": "1"})) == 10 * (2 * 65_536 + 3)


def test_dense_word_is_processed() -> None:
    word = "abc $X 'q r' \"$X\" \\$ " * 25_000  # 500 KB, 125,000 tokens
    assert Lexer().process_word(word, {"X": "1"}) == "abc 1 q r 1 $ " * 25_000
    assert len(Lexer().process_words(word, {"X": "1"})) == 5 * 25_000


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("${V%%*x}", ""),
        ("${V%*x}", "a" * 99_999),
        ("${V#*a*a*a*b}", None),
        ("${V##*a*a*a*b}", None),
        ("${V%%a*a*a*b}", None),
        ("${V//a*a*b/}", None),
        ("${V/*a*a*x/-}", "-"),
        ("${V//a*a/-}", "-x"),
        ("${V##?*?*?*?*?}", ""),
    ],
)
def test_long_values_do_not_backtrack(word: str, expected: str | None) -> None:
    value = "a" * 99_999 + "x"
    result = Lexer().process_word(word, {"V": value})
    assert result == (value if expected is None else expected)


@pytest.mark.parametrize("env", [{}, {"X": "1"}], ids=["empty-env", "env"])
def test_env_is_only_read(env: Mapping[str, str]) -> None:
    before = dict(env)
    Lexer().process_word("${X:-a} ${Y-b} $X", env)
    assert env == before
