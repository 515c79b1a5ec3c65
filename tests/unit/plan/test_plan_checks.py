"""Dispatch-time value checks: ports, signals, chmod, platforms, sources, workdir paths."""

from __future__ import annotations

import pytest

from builder.errors import InvalidInstructionError, Span
from builder.fs import paths
from builder.oci.types import Platform
from builder.plan.checks import (
    check_chmod,
    check_text,
    normalize_workdir,
    parse_platform,
    parse_port,
)
from builder.plan.sources import is_http_source
from builder.syntax import ir
from builder.urls import is_git_url

AMD64 = Platform(os="linux", architecture="amd64")


@pytest.mark.parametrize(
    ("raw", "ports"),
    [
        ("80", ("80/tcp",)),
        ("80/UDP", ("80/udp",)),
        ("53/sctp", ("53/sctp",)),
        ("8000-8002", ("8000/tcp", "8001/tcp", "8002/tcp")),
        ("5-5", ("5/tcp",)),
        ("8080:80", ("80/tcp",)),
        ("127.0.0.1:8080:80/udp", ("80/udp",)),
        ("[::1]:8080:80", ("80/tcp",)),
        ("1000-1001:2000-2001", ("2000/tcp", "2001/tcp")),
    ],
)
def test_parse_port(raw: str, ports: tuple[str, ...]) -> None:
    assert parse_port(raw) == ports


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("/tcp", 'invalid port: "/tcp": no port specified'),
        ("80/http", 'invalid port: "80/http": invalid proto: http'),
        ("x", "invalid containerPort: x"),
        ("65536", "invalid containerPort: 65536"),
        ("1.2.3:80:80", "invalid IP address: 1.2.3"),
        ("abc:80", "invalid hostPort: abc"),
        ("1-3:5-6", "invalid ranges specified for container and host Ports: 5-6 and 1-3"),
    ],
)
def test_parse_port_errors(raw: str, message: str) -> None:
    with pytest.raises(InvalidInstructionError) as err:
        parse_port(raw)
    assert err.value.message == message


def test_invalid_chmod_symbolic() -> None:
    with pytest.raises(InvalidInstructionError):
        check_chmod("u+q")
    check_chmod("7777")


@pytest.mark.parametrize(
    ("text", "platform"),
    [
        ("linux/arm64", Platform(os="linux", architecture="arm64")),
        ("linux/arm/v7", Platform(os="linux", architecture="arm", variant="v7")),
        ("linux/x86_64", AMD64),
        ("arm64", Platform(os="linux", architecture="arm64")),
        ("linux", AMD64),
    ],
)
def test_parse_platform(text: str, platform: Platform) -> None:
    assert parse_platform(text, AMD64) == platform


def test_parse_platform_error() -> None:
    with pytest.raises(InvalidInstructionError) as err:
        parse_platform("bogus", AMD64)
    assert (
        err.value.message == '"bogus": unknown operating system or architecture: invalid argument'
    )
    with pytest.raises(InvalidInstructionError):
        parse_platform("a/b/c/d", AMD64)


@pytest.mark.parametrize(
    ("src", "git", "http"),
    [
        ("https://github.com/o/r.git", True, False),
        ("https://github.com/o/r.git#main:sub", True, False),
        ("git@github.com:o/r.git", True, False),
        ("ssh://git@host/r", True, False),
        ("git://host/r", True, False),
        ("https://example.com/file.tgz", False, True),
        ("http://example.com/r.git.tar", False, True),
        ("local/path", False, False),
        ("github.com/o/r", False, False),
    ],
)
def test_source_kinds(src: str, git: bool, http: bool) -> None:
    assert (is_git_url(src), is_http_source(src)) == (git, http)


@pytest.mark.parametrize(
    ("current", "new", "result"),
    [
        ("", "/app", "/app"),
        ("/app", "sub", "/app/sub"),
        ("/app", "../x", "/x"),
        ("/app", "/abs/./kept/", "/abs/./kept/"),
        ("", "rel", "/rel"),
        ("rel", "x", "/rel/x"),
        ("/app", "", "/app"),
    ],
)
def test_normalize_workdir(current: str, new: str, result: str) -> None:
    assert normalize_workdir(current, new) == result


def test_go_path_helpers() -> None:
    assert paths.clean("//a//b/../c/") == "/a/c"
    assert paths.clean("") == "."
    assert paths.join("/", "", "a") == "/a"
    assert paths.join() == ""


def _run(command: str, *, heredoc: str = "") -> ir.Run:
    return ir.Run(
        span=Span(file="Dockerfile", line=2),
        keyword="RUN",
        original="RUN x",
        command=(command,),
        prepend_shell=True,
        heredocs=(ir.InlineFile(name="EOF", data=heredoc),) if heredoc else (),
    )


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (_run("echo a\0b"), "RUN contains a NUL byte"),
        (_run("echo \udcff"), "RUN contains invalid UTF-8"),  # a byte surrogateescape kept
        (_run("true", heredoc="\ud800"), "RUN contains invalid UTF-8"),
        (("KEY", "v\x00"), "RUN contains a NUL byte"),
    ],
)
def test_check_text_rejects_nul_and_invalid_utf8(node: object, message: str) -> None:
    with pytest.raises(InvalidInstructionError, match=message):
        check_text(node, "RUN")


def test_check_text_accepts_any_valid_text_and_ignores_spans() -> None:
    check_text(_run("echo 한국어 \u2028 ü", heredoc="tab\there\n"), "RUN")
    check_text(Span(file="/ctx/\udcff/Dockerfile", line=1), "RUN")
