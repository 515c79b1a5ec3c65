"""moby patternmatcher / ignorefile semantics (cases ported from their Go tests)."""

from __future__ import annotations

import pytest

from builder.context.ignore import (
    BadPatternError,
    MatchKind,
    PatternMatcher,
    glob_match,
    has_wildcards,
    load_ignore_file,
    parse_ignore_file,
    validate_glob,
)
from builder.errors import ContextError
from builder.fs import paths

EXACT, INEXACT, FAIL = "exact", "inexact", "fail"

# (pattern, text, expectation) from patternmatcher_test.go TestMatches; "inexact" means the
# path itself does not match but a parent directory does.
MATCHES = [
    ("**", "file", EXACT),
    ("**", "file/", EXACT),
    ("**/", "file", EXACT),
    ("**/", "file/", EXACT),
    ("**", "/", EXACT),
    ("**/", "/", EXACT),
    ("**", "dir/file", EXACT),
    ("**/", "dir/file", EXACT),
    ("**", "dir/file/", EXACT),
    ("**/", "dir/file/", EXACT),
    ("**/**", "dir/file", EXACT),
    ("**/**", "dir/file/", EXACT),
    ("dir/**", "dir/file", EXACT),
    ("dir/**", "dir/file/", EXACT),
    ("dir/**", "dir/dir2/file", EXACT),
    ("dir/**", "dir/dir2/file/", EXACT),
    ("**/dir", "dir", EXACT),
    ("**/dir", "dir/file", INEXACT),
    ("**/dir2/*", "dir/dir2/file", EXACT),
    ("**/dir2/*", "dir/dir2/file/", INEXACT),
    ("**/dir2/**", "dir/dir2/dir3/file", EXACT),
    ("**/dir2/**", "dir/dir2/dir3/file/", EXACT),
    ("**file", "file", EXACT),
    ("**file", "dir/file", EXACT),
    ("**/file", "dir/file", EXACT),
    ("**file", "dir/dir/file", EXACT),
    ("**/file", "dir/dir/file", EXACT),
    ("**/file*", "dir/dir/file", EXACT),
    ("**/file*", "dir/dir/file.txt", EXACT),
    ("**/file*txt", "dir/dir/file.txt", EXACT),
    ("**/file*.txt", "dir/dir/file.txt", EXACT),
    ("**/file*.txt*", "dir/dir/file.txt", EXACT),
    ("**/**/*.txt", "dir/dir/file.txt", EXACT),
    ("**/**/*.txt2", "dir/dir/file.txt", FAIL),
    ("**/*.txt", "file.txt", EXACT),
    ("**/**/*.txt", "file.txt", EXACT),
    ("a**/*.txt", "a/file.txt", EXACT),
    ("a**/*.txt", "a/dir/file.txt", EXACT),
    ("a**/*.txt", "a/dir/dir/file.txt", EXACT),
    ("a/*.txt", "a/dir/file.txt", FAIL),
    ("a/*.txt", "a/file.txt", EXACT),
    ("a/*.txt**", "a/file.txt", EXACT),
    ("a[b-d]e", "ae", FAIL),
    ("a[b-d]e", "ace", EXACT),
    ("a[b-d]e", "aae", FAIL),
    ("a[^b-d]e", "aze", EXACT),
    (".*", ".foo", EXACT),
    (".*", "foo", FAIL),
    ("abc.def", "abcdef", FAIL),
    ("abc.def", "abc.def", EXACT),
    ("abc.def", "abcZdef", FAIL),
    ("abc?def", "abcZdef", EXACT),
    ("abc?def", "abcdef", FAIL),
    ("**/foo/bar", "foo/bar", EXACT),
    ("**/foo/bar", "dir/foo/bar", EXACT),
    ("**/foo/bar", "dir/dir2/foo/bar", EXACT),
    ("abc/**", "abc", FAIL),
    ("abc/**", "abc/def", EXACT),
    ("abc/**", "abc/def/ghi", EXACT),
    ("**/.foo", ".foo", EXACT),
    ("**/.foo", "bar.foo", FAIL),
    ("a(b)c/def", "a(b)c/def", EXACT),
    ("a(b)c/def", "a(b)c/xyz", FAIL),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", EXACT),
    (
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        EXACT,
    ),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", EXACT),
    ("a\\\\", "a\\", EXACT),
    ("a\\*b", "a*b", EXACT),
]

MULTI = [
    (["**", "!util/docker/web"], "util/docker/web/foo", FAIL),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", EXACT),
    (
        ["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        FAIL,
    ),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", FAIL),
]


def _walk_verdict(pm: PatternMatcher, text: str) -> bool:
    """MatchesUsingParentResults fed with the parents' MatchInfo, as the Go test does."""
    parent = paths.clean(text[: text.rfind("/") + 1]) if "/" in text else "."  # Go's Dir
    info = None
    if parent != ".":
        comps = parent.split("/")
        for i in range(len(comps)):
            _, info = pm.match("/".join(comps[: i + 1]), info)
    return pm.match(text, info)[0]


@pytest.mark.parametrize(("pattern", "text", "want"), MATCHES)
def test_single_pattern_matches(pattern: str, text: str, want: str) -> None:
    pm = PatternMatcher.compile([pattern])
    assert pm.patterns[0].matches(text) is (want == EXACT)
    assert pm.matches_or_parent_matches(text) is (want != FAIL)
    assert _walk_verdict(pm, text) is (want != FAIL)
    assert pm.match(text, None)[0] is (want != FAIL)


@pytest.mark.parametrize(("patterns", "text", "want"), MULTI)
def test_multi_pattern_matches(patterns: list[str], text: str, want: str) -> None:
    pm = PatternMatcher.compile(patterns)
    assert pm.matches_or_parent_matches(text) is (want != FAIL)
    assert _walk_verdict(pm, text) is (want != FAIL)
    assert pm.walk_match(text) is (want != FAIL)


@pytest.mark.parametrize(
    ("patterns", "path", "want"),
    [
        (["*"], "fileutils.go", True),
        (["*.go"], "fileutils.go", True),
        (["!fileutils.go", "*.go"], "fileutils.go", True),
        (["docs", "!docs/README.md"], "docs/README.md", False),
        (["docs/", "!docs/README.md"], "docs/README.md", False),
        (["docs/*", "!docs/README.md"], "docs/README.md", False),
        (["*.go", "!fileutils.go"], "fileutils.go", False),
        ([], "any/path/there", False),
    ],
)
def test_exceptions_last_match_wins(patterns: list[str], path: str, want: bool) -> None:
    pm = PatternMatcher.compile(patterns)
    assert pm.walk_match(path) is want
    assert pm.matches_or_parent_matches(path) is want


@pytest.mark.parametrize(
    ("pattern", "kind", "regex"),
    [
        ("*", MatchKind.REGEXP, "[^/]*"),
        ("file*", MatchKind.REGEXP, "file[^/]*"),
        ("*file", MatchKind.REGEXP, "[^/]*file"),
        ("a*/b", MatchKind.REGEXP, "a[^/]*/b"),
        ("**", MatchKind.SUFFIX, None),
        ("**/**", MatchKind.REGEXP, "(?:.*/)?.*"),
        ("dir/**", MatchKind.PREFIX, None),
        ("**/dir", MatchKind.SUFFIX, None),
        ("**/dir2/*", MatchKind.REGEXP, "(?:.*/)?dir2/[^/]*"),
        ("**/dir2/**", MatchKind.REGEXP, "(?:.*/)?dir2/.*"),
        ("**file", MatchKind.SUFFIX, None),
        ("**/file*txt", MatchKind.REGEXP, "(?:.*/)?file[^/]*txt"),
        ("**/**/*.txt", MatchKind.REGEXP, "(?:.*/)?(?:.*/)?[^/]*\\.txt"),
        ("a[b-d]e", MatchKind.REGEXP, "a[b-d]e"),
        (".*", MatchKind.REGEXP, "\\.[^/]*"),
        ("abc.def", MatchKind.EXACT, None),
        ("abc/def", MatchKind.EXACT, None),
    ],
)
def test_pattern_classification(pattern: str, kind: MatchKind, regex: str | None) -> None:
    compiled = PatternMatcher.compile([pattern]).patterns[0]
    assert compiled.kind is kind
    assert (compiled.regex.pattern if compiled.regex else None) == regex


def test_exclusion_flag_and_trimming() -> None:
    pm = PatternMatcher.compile(["docs", "config", ""])
    assert len(pm.patterns) == 2
    assert not pm.exclusions
    assert PatternMatcher.compile(["docs", "  !docs/README.md"]).exclusions
    assert PatternMatcher.compile(["docs", "!docs/README.md  "]).exclusions


@pytest.mark.parametrize("bad", ["!", "[", "a[", "[^bc", "\\", "[]a]", "[x-]", "[a-b-c]"])
def test_invalid_patterns_raise_context_error_naming_pattern(bad: str) -> None:
    with pytest.raises(ContextError) as info:
        PatternMatcher.compile(["ok", bad], what=".dockerignore")
    assert ".dockerignore" in str(info.value)
    if bad != "!":
        assert repr(bad) in str(info.value)
    else:
        assert 'illegal exclusion pattern: "!"' in str(info.value)


# Go's filepath.Match tests, as copied into patternmatcher_test.go (TestMatch).
GO_MATCH = [
    ("abc", "abc", True, False),
    ("*", "abc", True, False),
    ("*c", "abc", True, False),
    ("a*", "a", True, False),
    ("a*", "abc", True, False),
    ("a*", "ab/c", False, False),
    ("a*/b", "abc/b", True, False),
    ("a*/b", "a/c/b", False, False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True, False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True, False),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False, False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False, False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True, False),
    ("a*b?c*x", "abxbbxdbxebxczzy", False, False),
    ("ab[c]", "abc", True, False),
    ("ab[b-d]", "abc", True, False),
    ("ab[e-g]", "abc", False, False),
    ("ab[^c]", "abc", False, False),
    ("ab[^b-d]", "abc", False, False),
    ("ab[^e-g]", "abc", True, False),
    ("a\\*b", "a*b", True, False),
    ("a\\*b", "ab", False, False),
    ("a?b", "a☺b", True, False),
    ("a[^a]b", "a☺b", True, False),
    ("a???b", "a☺b", False, False),
    ("a[^a][^a][^a]b", "a☺b", False, False),
    ("[a-ζ]*", "α", True, False),
    ("*[a-ζ]", "A", False, False),
    ("a?b", "a/b", False, False),
    ("a*b", "a/b", False, False),
    ("[\\]a]", "]", True, False),
    ("[\\-]", "-", True, False),
    ("[x\\-]", "x", True, False),
    ("[x\\-]", "-", True, False),
    ("[x\\-]", "z", False, False),
    ("[\\-x]", "x", True, False),
    ("[\\-x]", "-", True, False),
    ("[\\-x]", "a", False, False),
    ("[]a]", "]", False, True),
    ("[-]", "-", False, True),
    ("[x-]", "x", False, True),
    ("[x-]", "-", False, True),
    ("[x-]", "z", False, True),
    ("[-x]", "x", False, True),
    ("[-x]", "-", False, True),
    ("[-x]", "a", False, True),
    ("\\", "a", False, True),
    ("[a-b-c]", "a", False, True),
    ("[", "a", False, True),
    ("[^", "a", False, True),
    ("[^bc", "a", False, True),
    ("a[", "a", False, True),
    ("a[", "ab", False, True),
    ("a[", "x", False, True),
    ("a/b[", "x", False, True),
    ("*x", "xxx", True, False),
]


@pytest.mark.parametrize(("pattern", "name", "match", "bad"), GO_MATCH)
def test_go_filepath_match(pattern: str, name: str, match: bool, bad: bool) -> None:
    if bad:
        with pytest.raises(BadPatternError):
            glob_match(pattern, name)
        with pytest.raises(BadPatternError):
            validate_glob(pattern)
    else:
        assert glob_match(pattern, name) is match


def test_patternmatcher_uses_filepath_match_for_validation_and_matching() -> None:
    for pattern, name, match, bad in GO_MATCH:
        if bad:
            with pytest.raises(ContextError):
                PatternMatcher.compile([pattern])
            continue
        pm = PatternMatcher.compile([pattern])
        got = pm.matches_or_parent_matches(paths.clean(name))
        # "a*" vs "ab/c": the parent "ab" matches, so the path is excluded.
        assert got is (match or (pattern, name) == ("a*", "ab/c"))


def test_has_wildcards_honours_escapes() -> None:
    assert has_wildcards("a*")
    assert has_wildcards("x[ab]")
    assert has_wildcards("?")
    assert not has_wildcards("plain/path")
    assert not has_wildcards("a\\*b")
    assert has_wildcards("a\\*b*")


def test_read_ignore_file_like_moby() -> None:
    content = (
        "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! "
    )
    assert parse_ignore_file(content) == (
        "test1",
        "test2",
        "a/file/here",
        "lastfile",
        "!inverted/abs/path",
        "!",
        "!",
    )


def test_ignore_file_details() -> None:
    data = "\ufeff# comment\n  # not a comment\r\n./a/../b/\n\t*.log  \n\\#x\n/\n"
    assert parse_ignore_file(data.encode()) == ("# not a comment", "b", "*.log", "\\#x", "/")
    assert parse_ignore_file(b"") == ()
    assert parse_ignore_file("only\n\n\n") == ("only",)


def test_load_ignore_file_errors_name_file_and_pattern() -> None:
    with pytest.raises(ContextError, match=r"build\.Dockerfile\.dockerignore.*'src/\[a'"):
        load_ignore_file("ok\nsrc/[a\n", name="build.Dockerfile.dockerignore")
    with pytest.raises(ContextError, match="illegal exclusion"):
        load_ignore_file("!\n", name=".dockerignore")


def test_escaped_characters_are_literals() -> None:
    pm = PatternMatcher.compile(["\\#notes", "a\\[1]"])
    assert pm.walk_match("#notes")
    assert pm.walk_match("a[1]")
    assert not pm.walk_match("a1")


def test_character_class_special_characters() -> None:
    pm = PatternMatcher.compile(["f[*?]x", "[[]y", "[^a-c]z"])
    assert pm.walk_match("f*x")
    assert pm.walk_match("f?x")
    assert not pm.walk_match("fax")
    assert pm.walk_match("[y")
    assert pm.walk_match("dz")
    assert not pm.walk_match("bz")


def test_walker_semantics_differ_from_or_parent_for_skipped_exception() -> None:
    # BuildKit's context walker (MatchesUsingParentResults) never revisits "!a" for a/b once
    # "a/b" matched: a/b stays excluded, while MatchesOrParentMatches re-includes it.
    pm = PatternMatcher.compile(["a/b", "!a"])
    assert pm.walk_match("a/b")
    assert not pm.matches_or_parent_matches("a/b")


def test_may_reinclude_below() -> None:
    plain = PatternMatcher.compile(["*", "!src", "!docs/keep/**", "!lib/*"])
    assert not plain.may_reinclude_below("node_modules")
    assert plain.may_reinclude_below("src")
    assert plain.may_reinclude_below("docs")
    assert plain.may_reinclude_below("docs/keep")
    assert not plain.may_reinclude_below("docs/other")
    assert plain.may_reinclude_below("lib")
    assert not plain.may_reinclude_below("sr")
    assert not PatternMatcher.compile(["build"]).may_reinclude_below("build")
    globbed = PatternMatcher.compile(["*", "!**/*.py"])
    assert globbed.may_reinclude_below("anything")
