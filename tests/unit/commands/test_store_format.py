"""Docker's formatting rules as the image commands apply them: sizes, ages, tables, ellipsis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.commands._format import (
    created_since,
    ellipsis,
    familiar,
    go_json_escape,
    human_duration,
    parse_created,
    short_id,
    table,
)
from builder.units import human_size


@pytest.mark.parametrize(
    ("size", "precision", "text"),
    [
        (0, 3, "0B"),
        (999, 3, "999B"),
        (1000, 3, "1kB"),
        (12_345, 3, "12.3kB"),
        (4_261_550, 3, "4.26MB"),
        (4_261_550, 4, "4.262MB"),
        (999_999, 3, "1e+03kB"),  # Go's %g does the same
        (123_456_789, 3, "123MB"),
        (5 * 10**12, 3, "5TB"),
    ],
)
def test_human_size_matches_go_units(size: int, precision: int, text: str) -> None:
    assert human_size(size, precision) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "Less than a second"),
        (-30, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (59 * 60, "59 minutes"),
        (3600, "About an hour"),
        (47 * 3600, "47 hours"),
        (13 * 86400, "13 days"),
        (20 * 86400, "2 weeks"),
        (90 * 86400, "3 months"),
        (3 * 365 * 86400, "3 years"),
    ],
)
def test_human_duration_matches_go_units(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_created_since_and_parsing() -> None:
    assert created_since("2024-01-01T00:00:00Z", now=1704067200 + 7200) == "2 hours ago"
    # nanosecond timestamps, as Go writes them, and offsets
    when = parse_created("2024-01-01T02:00:00.123456789+02:00")
    assert when is not None
    assert when.timestamp() == pytest.approx(1704067200.123456)
    assert created_since(None) == "N/A"
    assert created_since("yesterday") == "N/A"


def test_table_lays_out_like_go_tabwriter() -> None:
    text = table([["REPOSITORY", "TAG", "SIZE"], ["busybox", "latest", "4.26MB"], ["a", "", ""]])
    assert text.splitlines() == [
        "REPOSITORY   TAG       SIZE",  # widest cell + 3; at least 10
        "busybox      latest    4.26MB",
        "a                      ",  # an empty last cell keeps the padding before it
    ]


@given(st.lists(st.lists(st.text("ab …", max_size=12), min_size=3, max_size=3), min_size=1))
@settings(max_examples=60)
def test_table_columns_line_up(rows: list[list[str]]) -> None:
    lines = table(rows).splitlines()
    assert len(lines) == len(rows)
    starts = {len(row[0]) for row in rows}
    width = max(max(starts) + 3, 10)
    for line, row in zip(lines, rows, strict=True):
        assert line[width:].startswith(row[1])


def test_ellipsis_cuts_to_display_width() -> None:
    long = '/bin/sh -c #(nop)  CMD ["sh"] and a lot more text here'
    cut = ellipsis(long, 45)
    assert len(cut) == 45
    assert cut.endswith("…")
    assert cut[:44] == long[:44]
    assert ellipsis("short", 45) == "short"
    wide = "日本語" * 20
    cut = ellipsis(wide, 10)
    assert cut == "日本語日…"  # 4 wide runes (8 cells) + the ellipsis: never past 10 cells


def test_short_ids_familiar_names_and_json_escape() -> None:
    assert short_id("sha256:" + "ab" * 32) == "abababababab"
    assert short_id("<missing>") == "<missing>"
    assert familiar("docker.io/library/busybox:latest") == "busybox:latest"
    assert familiar("docker.io/user/app:1") == "user/app:1"
    assert familiar("localhost:5000/x:y") == "localhost:5000/x:y"
    assert go_json_escape('{"a":"<none> & more"}') == '{"a":"\\u003cnone\\u003e \\u0026 more"}'
