"""Properties of the .dockerignore matcher and Go globs against small reference models."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from builder.context.ignore import (
    PatternMatcher,
    glob_match,
    parse_ignore_file,
)
from builder.fs import paths

NAMES = st.sampled_from(["a", "b", "ab", "ba", "aa", "a.b"])
PATHS = st.lists(NAMES, min_size=1, max_size=5).map(tuple)
COMPONENTS = st.sampled_from(["a", "b", "ab", "a.b", "*", "?", "a*", "*b", "?b", "**"])
PATTERNS = st.lists(COMPONENTS, min_size=1, max_size=4).map(tuple)


def component_model(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    """Reference: ``**`` is zero or more directories, one or more when it ends the pattern;
    other components are matched one to one with ``*``/``?`` inside a name."""
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        if not rest:
            return len(path) >= 1
        return any(component_model(rest, path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    return fnmatchcase(path[0], head) and component_model(rest, path[1:])


def self_or_parent(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return any(component_model(pattern, path[:k]) for k in range(1, len(path) + 1))


@settings(max_examples=300, deadline=None)
@given(PATTERNS, PATHS)
def test_single_pattern_against_component_model(
    pattern: tuple[str, ...], path: tuple[str, ...]
) -> None:
    pm = PatternMatcher.compile(["/".join(pattern)])
    text = "/".join(path)
    assert pm.patterns[0].matches(text) is component_model(pattern, path)
    assert pm.walk_match(text) is self_or_parent(pattern, path)
    assert pm.matches_or_parent_matches(text) is self_or_parent(pattern, path)


@settings(max_examples=200, deadline=None)
@given(st.lists(PATTERNS, min_size=1, max_size=4), PATHS)
def test_inclusion_lists_exclude_if_any_pattern_matches(
    patterns: list[tuple[str, ...]], path: tuple[str, ...]
) -> None:
    pm = PatternMatcher.compile(["/".join(p) for p in patterns])
    text = "/".join(path)
    want = any(self_or_parent(p, path) for p in patterns)
    assert pm.walk_match(text) is want
    assert pm.matches_or_parent_matches(text) is want


@settings(max_examples=200, deadline=None)
@given(st.lists(PATTERNS, min_size=0, max_size=4), st.lists(st.booleans(), max_size=4), PATHS)
def test_last_matching_pattern_wins(
    patterns: list[tuple[str, ...]], negate: list[bool], path: tuple[str, ...]
) -> None:
    texts = [
        ("!" if i < len(negate) and negate[i] else "") + "/".join(p) for i, p in enumerate(patterns)
    ]
    text = "/".join(path)
    # an exception naming the path itself always re-includes it...
    assert not PatternMatcher.compile([*texts, "!" + text]).walk_match(text)
    # ...and a pattern naming it always excludes it. (A trailing pattern naming only a parent
    # need not: BuildKit's walker carries the parent's per-pattern results down
    # (MatchesUsingParentResults), so with `a`, `!a/a`, `a` the path `a/a` stays included.)
    assert PatternMatcher.compile([*texts, text]).walk_match(text)
    # a pattern that matches nothing changes nothing
    base = PatternMatcher.compile(texts).walk_match(text) if texts else False
    assert PatternMatcher.compile([*texts, "zz/never"]).walk_match(text) is base


GLOB_TOKENS = st.sampled_from(["a", "b", "*", "?", "/", "[ab]", "[^a]", "[a-b]", "\\a", "\\*"])
GLOB_NAMES = st.text(alphabet="ab/*", min_size=0, max_size=6)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Reference translation of Go's filepath.Match for the token set above."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.index("]", i)
            out.append(pattern[i : end + 1])
            i = end
        elif ch == "\\":
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out))


@settings(max_examples=300, deadline=None)
@given(st.lists(GLOB_TOKENS, min_size=1, max_size=6).map("".join), GLOB_NAMES)
def test_glob_match_against_regex(pattern: str, name: str) -> None:
    # Go's filepath.Match does not backtrack into an earlier `*` once a later chunk matched
    # (`*[^a]*` does not match `*/`), so a full regex is only an exact model with one star.
    assume(pattern.replace("\\*", "").count("*") <= 1)
    assert glob_match(pattern, name) is (glob_regex(pattern).fullmatch(name) is not None)


def test_glob_star_does_not_backtrack_like_go() -> None:
    """Go: the first `*` stops at the first `[^a]` match, the trailing `*` then sees `/`."""
    assert glob_match("*[^a]*", "*/") is False
    assert glob_match("*[^a]*", "bb") is True


@settings(max_examples=200, deadline=None)
@given(st.lists(GLOB_TOKENS, min_size=1, max_size=6).map("".join), PATHS)
def test_patternmatcher_agrees_with_glob_without_doublestar(
    pattern: str, path: tuple[str, ...]
) -> None:
    cleaned = paths.clean(pattern)
    if "**" in cleaned or cleaned.startswith("/") or cleaned in (".", ".."):
        return
    text = "/".join(path)
    compiled = PatternMatcher.compile([pattern]).patterns[0]
    assert compiled.matches(text) is glob_match(cleaned, text)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "*", "**", ".", ".."]), min_size=1, max_size=4))
def test_ignore_file_cleans_and_unroots(parts: list[str]) -> None:
    body = "/".join(parts)
    plain = parse_ignore_file(body + "\n")
    assert plain == (paths.clean(body),)
    cleaned = paths.clean(body)
    if cleaned != "." and not cleaned.startswith(".."):
        # a leading "/" (anchoring at the context root) changes nothing
        assert parse_ignore_file("/" + body + "\n") == plain
        assert parse_ignore_file(f"! /{body}\n") == ("!" + cleaned,)
    assert parse_ignore_file(f"  {body}\t\n# c\n\n") == plain
