"""`pybuild build` option parsing: --memory reads sizes as docker does (go-units RAMInBytes)."""

from __future__ import annotations

import argparse

import pytest

from builder.commands import build


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pybuild build", exit_on_error=False)
    build.add_arguments(parser)
    return parser.parse_args([*argv, "ctx"])


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1048576", 1 << 20),
        ("512m", 512 << 20),
        ("512MB", 512 << 20),
        ("1.5g", 3 << 29),
        ("2GiB", 2 << 30),
        ("64 k", 64 << 10),
    ],
)
def test_memory_is_read_like_docker(text: str, size: int) -> None:
    assert parse("--memory", text).memory == size


def test_memory_defaults_to_unlimited() -> None:
    assert parse().memory is None


@pytest.mark.parametrize("text", ["lots", "12x", "-1m", "1.5gigs", ""])
def test_invalid_memory_is_an_argument_error_naming_the_value(text: str) -> None:
    with pytest.raises(argparse.ArgumentError, match=f"invalid size: {text!r}"):
        parse(f"--memory={text}")
