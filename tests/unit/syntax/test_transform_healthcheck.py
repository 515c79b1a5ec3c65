"""HEALTHCHECK: types, Go durations (``time.ParseDuration``), BuildKit's limits and messages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import InvalidInstructionError
from builder.syntax import ir
from builder.syntax.parser import parse
from builder.syntax.transform import to_ir
from builder.units import parse_duration

NS = 1
US = 1_000
MS = 1_000_000
S = 1_000_000_000
MIN = 60 * S
H = 60 * MIN


def healthcheck(line: str) -> ir.Healthcheck:
    instr = to_ir(parse(f"FROM x\n{line}\n")).stages[0].instructions[0]
    assert isinstance(instr, ir.Healthcheck)
    return instr


def error(line: str) -> InvalidInstructionError:
    with pytest.raises(InvalidInstructionError) as info:
        to_ir(parse(f"FROM x\n{line}\n"))
    return info.value


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("0", 0),
        ("-0", 0),
        ("+0", 0),
        ("5s", 5 * S),
        ("30s", 30 * S),
        ("1478s", 1478 * S),
        ("-5s", -5 * S),
        ("+5s", 5 * S),
        ("-0s", 0),
        ("5.0s", 5 * S),
        ("5.6s", 5 * S + 600 * MS),
        ("5.s", 5 * S),
        (".5s", 500 * MS),
        ("1.0s", 1 * S),
        ("1.00s", 1 * S),
        ("1.004s", 1 * S + 4 * MS),
        ("1.0040s", 1 * S + 4 * MS),
        ("100.00100s", 100 * S + 1 * MS),
        ("10ns", 10 * NS),
        ("11us", 11 * US),
        ("12\u00b5s", 12 * US),
        ("12\u03bcs", 12 * US),
        ("13ms", 13 * MS),
        ("14s", 14 * S),
        ("15m", 15 * MIN),
        ("16h", 16 * H),
        ("3h30m", 3 * H + 30 * MIN),
        ("10.5s4m", 4 * MIN + 10 * S + 500 * MS),
        ("-2m3.4s", -(2 * MIN + 3 * S + 400 * MS)),
        ("1h2m3s4ms5us6ns", 1 * H + 2 * MIN + 3 * S + 4 * MS + 5 * US + 6 * NS),
        ("39h9m14.425s", 39 * H + 9 * MIN + 14 * S + 425 * MS),
        ("52763797000ns", 52763797000 * NS),
        ("0.3333333333333333333h", 20 * MIN),
        ("9007199254740993ns", (1 << 53) + 1),
        ("9223372036854775807ns", (1 << 63) - 1),
        ("9223372036854775.807us", (1 << 63) - 1),
        ("9223372036s854ms775us807ns", (1 << 63) - 1),
        ("-9223372036854775808ns", -(1 << 63)),
        ("-9223372036854775.808us", -(1 << 63)),
        ("-2562047h47m16.854775808s", -(1 << 63)),
        ("0.100000000000000000000h", 6 * MIN),
        ("0.830103483285477580700h", 49 * MIN + 48 * S + 372539827 * NS),
    ],
)
def test_go_durations(text: str, nanos: int) -> None:
    """Go's own ``time.ParseDuration`` table (``time_test.go``)."""
    assert parse_duration(text) == nanos


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("3", 'time: missing unit in duration "3"'),
        ("-", 'time: invalid duration "-"'),
        ("s", 'time: invalid duration "s"'),
        (".", 'time: invalid duration "."'),
        ("-.", 'time: invalid duration "-."'),
        (".s", 'time: invalid duration ".s"'),
        ("+.s", 'time: invalid duration "+.s"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("\x85\x85", 'time: invalid duration "\\xc2\\x85\\xc2\\x85"'),
        ("\xffff", 'time: invalid duration "\\xc3\\xbfff"'),
        ("hello \xffff world", 'time: invalid duration "hello \\xc3\\xbfff world"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("9223372036854775.808us", 'time: invalid duration "9223372036854775.808us"'),
        ("9223372036854ms775us808ns", 'time: invalid duration "9223372036854ms775us808ns"'),
        ("-9223372036854775809ns", 'time: invalid duration "-9223372036854775809ns"'),
        ('1s"', 'time: unknown unit "s\\"" in duration "1s\\""'),
    ],
)
def test_go_duration_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidInstructionError) as info:
        parse_duration(text)
    assert info.value.message == message


def _go_format(nanos: int) -> str:
    """Go's ``Duration.String`` for non-negative values below an hour per unit group."""
    hours, rest = divmod(nanos, H)
    minutes, rest = divmod(rest, MIN)
    seconds, rest = divmod(rest, S)
    frac = f"{rest:09d}".rstrip("0")
    out = ""
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + f"{seconds}" + (f".{frac}" if frac else "") + "s"


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=(1 << 63) - 1))
def test_formatted_durations_parse_back(nanos: int) -> None:
    assert parse_duration(_go_format(nanos)) == nanos


def test_healthcheck_cmd_shell_form() -> None:
    hc = healthcheck("HEALTHCHECK CMD hello world")
    assert hc.test == ("CMD-SHELL", "hello world")
    assert (hc.interval, hc.timeout, hc.start_period, hc.start_interval, hc.retries) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert not hc.disabled


def test_healthcheck_exec_form_and_options() -> None:
    hc = healthcheck(
        "HEALTHCHECK --interval=5m --timeout=3s --start-period=1.5s --start-interval=100ms "
        '--retries=4 CMD ["curl", "-f", "http://localhost/"]'
    )
    assert hc.test == ("CMD", "curl", "-f", "http://localhost/")
    assert hc.interval == 5 * MIN
    assert hc.timeout == 3 * S
    assert hc.start_period == 1500 * MS
    assert hc.start_interval == 100 * MS
    assert hc.retries == 4


def test_healthcheck_type_is_case_insensitive() -> None:
    assert healthcheck("HEALTHCHECK cmd true").test == ("CMD-SHELL", "true")
    assert healthcheck("HEALTHCHECK none").disabled


def test_healthcheck_none() -> None:
    hc = healthcheck("HEALTHCHECK NONE")
    assert hc.test == ("NONE",)
    assert hc.disabled
    # BuildKit does not look at the flags of HEALTHCHECK NONE
    assert healthcheck("HEALTHCHECK --bogus NONE").disabled
    assert error("HEALTHCHECK NONE x").message == "HEALTHCHECK NONE takes no arguments"


def test_zero_durations_mean_default() -> None:
    hc = healthcheck("HEALTHCHECK --interval=0s --timeout=0 --retries=0 CMD true")
    assert (hc.interval, hc.timeout, hc.retries) == (0, 0, 0)


@pytest.mark.parametrize(
    ("flags", "message", "column", "end"),
    [
        ("--interval=50ns", 'Interval "interval" cannot be less than 1ms', 13, 27),
        ("--timeout=999us", 'Interval "timeout" cannot be less than 1ms', 13, 27),
        ("--start-period=-1s", 'Interval "start-period" cannot be less than 1ms', 13, 30),
        ("--start-interval=1ns", 'Interval "start-interval" cannot be less than 1ms', 13, 32),
        ("--interval=5", 'time: missing unit in duration "5"', 13, 24),
        ("--interval=abc", 'time: invalid duration "abc"', 13, 26),
        ("--retries=-1", "--retries cannot be negative (-1)", 13, 24),
        ("--retries=x", 'strconv.ParseInt: parsing "x": invalid syntax', 13, 23),
        (
            "--retries=2147483648",
            'strconv.ParseInt: parsing "2147483648": value out of range',
            13,
            32,
        ),
        ("--interval", "missing a value on flag: --interval", 13, 22),
        ("--intervall=1s", "unknown flag: --intervall (did you mean interval?)", 13, 26),
    ],
)
def test_healthcheck_option_errors(flags: str, message: str, column: int, end: int) -> None:
    err = error(f"HEALTHCHECK {flags} CMD true")
    assert err.message == message
    assert err.span is not None
    assert (err.span.line, err.span.column, err.span.end_column) == (2, column, end)


def test_minimum_interval_is_accepted() -> None:
    assert healthcheck("HEALTHCHECK --interval=1ms CMD true").interval == MS
    assert healthcheck("HEALTHCHECK --retries=+2 CMD true").retries == 2


def test_healthcheck_type_errors() -> None:
    err = error("HEALTHCHECK CONNECT TCP 7000")
    assert err.message == 'Unknown type "CONNECT" in HEALTHCHECK (try CMD)'
    assert err.span is not None
    assert (err.span.column, err.span.end_column) == (13, 19)
    assert error("HEALTHCHECK CMD").message == "Missing command after HEALTHCHECK CMD"
    assert error("HEALTHCHECK CMD []").message == "Missing command after HEALTHCHECK CMD"
    assert error("HEALTHCHECK").message == "HEALTHCHECK requires at least one argument"
