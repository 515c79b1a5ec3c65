"""units.parse_bool: Go's strconv.ParseBool, the one reader of boolean words."""

from __future__ import annotations

import pytest

from builder.units import parse_bool


@pytest.mark.parametrize("word", ["1", "t", "T", "TRUE", "true", "True"])
def test_go_true_words(word: str) -> None:
    assert parse_bool(word) is True


@pytest.mark.parametrize("word", ["0", "f", "F", "FALSE", "false", "False"])
def test_go_false_words(word: str) -> None:
    assert parse_bool(word) is False


@pytest.mark.parametrize("word", ["", "yes", "no", "tRUE", "on", " true", "2"])
def test_anything_else_is_invalid(word: str) -> None:
    assert parse_bool(word) is None
