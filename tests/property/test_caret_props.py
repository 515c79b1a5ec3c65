"""The caret line under a diagnostic: the ASCII fast path draws what the general one draws."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from builder.syntax.source import _caret_line, _wide_caret_line

ascii_lines = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=80)


@given(ascii_lines, st.integers(min_value=1, max_value=90), st.integers(min_value=0, max_value=90))
def test_ascii_fast_path_matches_the_general_one(line: str, start: int, length: int) -> None:
    end = start + length
    assert _caret_line(line, start, end) == _wide_caret_line(line, start, end)


def test_wide_characters_still_take_two_columns() -> None:
    assert _caret_line("é中x", 3, 3) == "   ^"  # é one column, 中 two: x sits in column 4
    assert _caret_line("\t中x", 2, 2) == "\t^^"
