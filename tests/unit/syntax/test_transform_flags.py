"""BFlags: BuildKit's ``bflag_test.go`` ported, plus the exact error texts and suggestions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import InvalidInstructionError
from builder.syntax.flags import BFlags, levenshtein, suggest


@pytest.mark.parametrize("args", [[], ["--"], ["--", "--str1=late", "--nope"]])
def test_empty_and_double_dash_end_the_flags(args: list[str]) -> None:
    bf = BFlags(args)
    s = bf.add_string("str1", "HI")
    bf.parse()  # what follows "--" is not a flag: neither used nor an error
    assert (s.value, s.used, bf.used(), bf.error_index) == ("HI", False, (), None)


def test_defaults_and_unused() -> None:
    bf = BFlags([])
    s = bf.add_string("str1", "HI")
    b = bf.add_bool("bool1")
    bf.parse()
    assert s.value == "HI"
    assert not s.used
    assert s.given is None
    assert not b.is_true
    assert not b.used
    assert bf.used() == ()


def test_string_needs_value() -> None:
    bf = BFlags(["--str1"])
    bf.add_string("str1", "HI")
    with pytest.raises(InvalidInstructionError) as info:
        bf.parse()
    assert info.value.message == "missing a value on flag: --str1"
    assert bf.error_index == 0


def test_string_empty_value_is_allowed() -> None:
    bf = BFlags(["--str1="])
    s = bf.add_string("str1", "HI")
    bf.parse()
    assert s.value == ""
    assert s.used


def test_string_value() -> None:
    bf = BFlags(["--str1=BYE"])
    s = bf.add_string("str1", "HI")
    bf.parse()
    assert s.value == "BYE"
    assert s.given == "BYE"


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("--bool1", True),
        ("--bool1=true", True),
        ("--bool1=TRUE", True),
        ("--bool1=True", True),
        ("--bool1=false", False),
        ("--bool1=FaLsE", False),
    ],
)
def test_bool_values(word: str, expected: bool) -> None:
    bf = BFlags([word])
    b = bf.add_bool("bool1", not expected)
    bf.parse()
    assert b.is_true is expected


def test_bool_rejects_other_values() -> None:
    bf = BFlags(["--bool1=false1"])
    bf.add_bool("bool1")
    with pytest.raises(InvalidInstructionError) as info:
        bf.parse()
    assert info.value.message == "expecting boolean value for flag --bool1, not: false1"


def test_bool_with_empty_value() -> None:
    bf = BFlags(["--bool1="])
    bf.add_bool("bool1")
    with pytest.raises(InvalidInstructionError) as info:
        bf.parse()
    assert info.value.message == "missing a value on flag: --bool1"


def test_unknown_flag_without_suggestion() -> None:
    bf = BFlags(["--bool2"])
    bf.add_bool("bool1")
    bf.add_string("zzzzzz")
    with pytest.raises(InvalidInstructionError) as info:
        bf.parse()
    # bool2 is one edit from bool1
    assert info.value.message == "unknown flag: --bool2 (did you mean bool1?)"
    assert info.value.hint == "did you mean bool1?"

    bf = BFlags(["--unrelated"])
    bf.add_bool("bool1")
    with pytest.raises(InvalidInstructionError) as info:
        bf.parse()
    assert info.value.message == "unknown flag: --unrelated"
    assert info.value.hint is None


def test_unknown_flag_suggestion_is_case_sensitive() -> None:
    bf = BFlags(["--CHOWN=1"])
    bf.add_string("chown")
    with pytest.raises(InvalidInstructionError) as info:
        bf.parse()
    # five substitutions away when compared case-sensitively: no suggestion
    assert info.value.message == "unknown flag: --CHOWN"


def test_two_flags() -> None:
    bf = BFlags(["--bool1", "--str1=BYE"])
    s = bf.add_string("str1", "HI")
    b = bf.add_bool("bool1")
    bf.parse()
    assert s.value == "BYE"
    assert b.is_true


def test_used_lists_given_flags_in_order() -> None:
    bf = BFlags(
        [
            "--bool2=false",
            "--bool3",
            "--bool4=true",
            "--bool5",
            "--str2= ",
            "--str3=def3",
            "--str4=my-val",
        ]
    )
    for name in ("bool1", "bool2", "bool3"):
        bf.add_bool(name)
    bf.add_bool("bool4", True)
    bf.add_bool("bool5", True)
    bf.add_string("str1")
    bf.add_string("str2")
    bf.add_string("str3", "def3")
    bf.add_string("str4", "def4")
    bf.parse()
    assert bf.used() == ("bool2", "bool3", "bool4", "bool5", "str2", "str3", "str4")


def test_duplicate_flag() -> None:
    bf = BFlags(["--link", "--link=false"])
    bf.add_bool("link")
    with pytest.raises(InvalidInstructionError) as info:
        bf.parse()
    assert info.value.message == "duplicate flag specified: --link"
    assert bf.error_index == 1


def test_strings_flag_repeats() -> None:
    bf = BFlags(["--exclude=a", "--link", "--exclude=b"])
    ex = bf.add_strings("exclude")
    bf.add_bool("link")
    bf.parse()
    assert ex.values == ["a", "b"]
    assert ex.indices == [0, 2]


def test_strings_flag_needs_value() -> None:
    bf = BFlags(["--exclude"])
    bf.add_strings("exclude")
    with pytest.raises(InvalidInstructionError) as info:
        bf.parse()
    assert info.value.message == "missing a value on flag: --exclude"


def test_double_dash_stops_parsing() -> None:
    bf = BFlags(["--link", "--", "--unknown"])
    link = bf.add_bool("link")
    bf.parse()
    assert link.is_true


def test_word_without_dashes() -> None:
    bf = BFlags(["-x"])
    with pytest.raises(InvalidInstructionError) as info:
        bf.parse()
    assert info.value.message == "arg should start with -- : -x"


def test_declaring_twice_is_a_programming_error() -> None:
    bf = BFlags([])
    bf.add_bool("a")
    with pytest.raises(ValueError, match="Duplicate flag defined: a"):
        bf.add_string("a")


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("", "", 0), ("abc", "", 3), ("kitten", "sitting", 3), ("chwn", "chown", 1), ("ab", "ba", 2)],
)
def test_levenshtein(a: str, b: str, distance: int) -> None:
    assert levenshtein(a, b) == distance
    assert levenshtein(b, a) == distance


def test_suggest_rules() -> None:
    names = ["FROM", "RUN", "COPY"]
    assert suggest("FORM", names, case_sensitive=False) == "FROM"
    assert suggest("form", names, case_sensitive=False) == "from"
    assert suggest("Form", names, case_sensitive=False) == "from"
    # an exact match means the error was not about the name
    assert suggest("run", names, case_sensitive=False) is None
    # distance 3 is too far
    assert suggest("XYZW", names, case_sensitive=False) is None
    assert suggest("cach", ["bind", "cache"], case_sensitive=True) == "cache"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=8), st.text(max_size=8), st.text(max_size=8))
def test_levenshtein_is_a_metric(a: str, b: str, c: str) -> None:
    assert levenshtein(a, a) == 0
    assert levenshtein(a, b) == levenshtein(b, a)
    assert levenshtein(a, c) <= levenshtein(a, b) + levenshtein(b, c)
    assert abs(len(a) - len(b)) <= levenshtein(a, b) <= max(len(a), len(b))
