"""``builder.fs.paths`` against Go's ``path`` package tests (cleantests, jointests)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.fs import paths

# Go's src/path/path_test.go ``cleantests`` (BSD-style licence, The Go Authors)
GO_CLEAN = [
    # already clean
    ("", "."),
    ("abc", "abc"),
    ("abc/def", "abc/def"),
    ("a/b/c", "a/b/c"),
    (".", "."),
    ("..", ".."),
    ("../..", "../.."),
    ("../../abc", "../../abc"),
    ("/abc", "/abc"),
    ("/", "/"),
    # remove trailing slash
    ("abc/", "abc"),
    ("abc/def/", "abc/def"),
    ("a/b/c/", "a/b/c"),
    ("./", "."),
    ("../", ".."),
    ("../../", "../.."),
    ("/abc/", "/abc"),
    # remove doubled slash
    ("abc//def//ghi", "abc/def/ghi"),
    ("//abc", "/abc"),
    ("///abc", "/abc"),
    ("//abc//", "/abc"),
    ("abc//", "abc"),
    # remove . elements
    ("abc/./def", "abc/def"),
    ("/./abc/def", "/abc/def"),
    ("abc/.", "abc"),
    # remove .. elements
    ("abc/def/ghi/../jkl", "abc/def/jkl"),
    ("abc/def/../ghi/../jkl", "abc/jkl"),
    ("abc/def/..", "abc"),
    ("abc/def/../..", "."),
    ("/abc/def/../..", "/"),
    ("abc/def/../../..", ".."),
    ("/abc/def/../../..", "/"),
    ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
    # combinations
    ("abc/./../def", "def"),
    ("abc//./../def", "def"),
    ("abc/../../././../def", "../../def"),
]

# Go's ``jointests``
GO_JOIN = [
    ((), ""),
    (("",), ""),
    (("a",), "a"),
    (("a", "b"), "a/b"),
    (("a", ""), "a"),
    (("", "b"), "b"),
    (("/", "a"), "/a"),
    (("/", ""), "/"),
    (("a/", "b"), "a/b"),
    (("a/", ""), "a"),
    (("", ""), ""),
]


@pytest.mark.parametrize(("raw", "want"), GO_CLEAN)
def test_clean_matches_go(raw: str, want: str) -> None:
    assert paths.clean(raw) == want
    assert paths.clean(want) == want  # Go checks the result is a fixed point too


@pytest.mark.parametrize(("elems", "want"), GO_JOIN)
def test_join_matches_go(elems: tuple[str, ...], want: str) -> None:
    assert paths.join(*elems) == want


@pytest.mark.parametrize(
    ("raw", "want"),
    [("", "/"), ("a/../b/", "/b"), ("../..", "/"), ("//x//y", "/x/y"), ("/a/./b/..", "/a")],
)
def test_clean_abs_is_rooted(raw: str, want: str) -> None:
    assert paths.clean_abs(raw) == want


def test_split_keeps_dotdot_for_a_walk() -> None:
    assert paths.split("/a//./b/../c/") == ["a", "b", "..", "c"]
    assert paths.split("/") == []


SEGMENTS = st.sampled_from(["a", "b", "..", ".", "", "c.d", "..."])
RAW = st.lists(SEGMENTS, max_size=12).map("/".join)


@settings(max_examples=300, deadline=None)
@given(raw=RAW, rooted=st.booleans())
def test_clean_is_idempotent_and_stays_under_the_root(raw: str, rooted: bool) -> None:
    path = "/" + raw if rooted else raw
    once = paths.clean(path)
    assert paths.clean(once) == once
    parts = once.split("/")
    if rooted:
        assert once.startswith("/")
        assert ".." not in parts  # never above the root
    else:
        # leading ".." only: nothing can be cancelled any more
        kept = [p for p in parts if p != ".."]
        assert parts[: len(parts) - len(kept)] == [".."] * (len(parts) - len(kept))
    assert "." not in parts or once == "."
    assert "" not in parts[1:] or once == "/"
