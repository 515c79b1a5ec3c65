"""BuildKit's ``instructions/parse_test.go`` and ``parse_heredoc_test.go``, ported, plus its
parser golden files run through the instruction layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import DockerfileError, ParseError
from builder.syntax import ir
from builder.syntax.parser import parse
from builder.syntax.transform import INSTRUCTIONS, analyze, check, to_ir
from builder.syntax.tree import AST, Node
from tests.conftest import BUILDKIT_GOLDEN

TESTFILES = BUILDKIT_GOLDEN / "parser" / "testfiles"


def only_instruction(text: str) -> ir.Instruction:
    """BuildKit's ``ParseInstruction`` of the first node (placed after a FROM)."""
    df = to_ir(parse("FROM scratch\n" + text))
    return df.stages[0].instructions[0]


def instruction_error(text: str) -> str:
    errors = check(parse(text))
    assert errors, text
    return errors[0].message


def ast_of(*nodes: Node) -> AST:
    return AST(path="Dockerfile", text="", nodes=(Node(cmd="FROM", args=("x",)), *nodes))


@pytest.mark.parametrize("cmd", ["MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL"])
def test_commands_exactly_one_argument(cmd: str) -> None:
    assert instruction_error(cmd) == f"{cmd} requires exactly one argument"


@pytest.mark.parametrize("cmd", ["ENV", "LABEL", "ONBUILD", "HEALTHCHECK", "EXPOSE", "VOLUME"])
def test_commands_at_least_one_argument(cmd: str) -> None:
    assert instruction_error(cmd) == f"{cmd} requires at least one argument"


@pytest.mark.parametrize("cmd", ["ADD", "COPY"])
def test_commands_no_destination_argument(cmd: str) -> None:
    assert instruction_error(cmd + " arg1") == (
        f"{cmd} requires at least two arguments, but only one was provided. "
        "Destination could not be determined"
    )


@pytest.mark.parametrize("cmd", ["ENV", "LABEL"])
def test_commands_too_many_arguments(cmd: str) -> None:
    node = Node(cmd=cmd.lower(), args=("arg1", "arg2", "arg3", ""), original=cmd + "arg1")
    errors = check(ast_of(node))
    assert [e.message for e in errors] == [f"Bad input to {cmd}, too many arguments"]


@pytest.mark.parametrize("cmd", ["ENV", "LABEL"])
def test_commands_blank_names(cmd: str) -> None:
    node = Node(cmd=cmd.lower(), args=("", "arg2", "="), original=cmd + " =arg2")
    errors = check(ast_of(node))
    assert [e.message for e in errors] == [f"{cmd} names can not be blank"]


def test_health_check_cmd() -> None:
    node = Node(cmd="healthcheck", args=("CMD", "hello", "world"))
    df = to_ir(ast_of(node))
    hc = df.stages[0].instructions[0]
    assert isinstance(hc, ir.Healthcheck)
    assert hc.test == ("CMD-SHELL", "hello world")


@pytest.mark.parametrize("cmd", [c.lower() for c in INSTRUCTIONS])
@pytest.mark.parametrize("rest", ["foo=bar", "a", "a b", "a b c", "0 0"])
def test_no_instruction_crashes(cmd: str, rest: str) -> None:
    """``TestNilLinter``: every instruction with odd arguments gives a result or a located error."""
    text = f"FROM busybox\n{cmd} {rest}\n"
    if cmd in ("env", "label") and rest == "a":  # the parser already refuses these
        with pytest.raises(ParseError, match=f": {cmd.upper()} must have two arguments$"):
            parse(text)
        return
    result = analyze(parse(text))
    assert (result.dockerfile is None) == bool(result.errors)
    for err in result.errors:
        assert isinstance(err, DockerfileError)
        assert err.span is not None
        assert err.span.line == 2


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        ("COPY\t\n\t\tquux \\\n      bar", "COPY requires at least two arguments"),
        ("ONBUILD FROM scratch", "FROM isn't allowed as an ONBUILD trigger"),
        ("MAINTAINER --boo joe@example.com", "unknown flag: --boo"),
        (
            "ONBUILD ONBUILD RUN touch foobar",
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
        ),
        ("FOO bar", "unknown instruction: FOO"),
        ("foo bar", "unknown instruction: foo"),
    ],
)
def test_error_cases(dockerfile: str, expected: str) -> None:
    assert expected in instruction_error(dockerfile)


def test_run_cmd_flags_used() -> None:
    run = only_instruction("RUN --mount=type=tmpfs,target=/foo/ echo hello")
    assert isinstance(run, ir.Run)
    assert run.flags_used == ("mount",)
    assert run.mounts == (
        ir.Mount(
            spec="type=tmpfs,target=/foo/",
            type=ir.MountType.TMPFS,
            target="/foo/",
            readonly=False,
        ),
    )


# --------------------------------------------------------------------------- heredocs


def test_error_cases_heredoc() -> None:
    assert "COPY cannot accept a heredoc as a destination" in instruction_error(
        "COPY /foo <<EOF\nEOF"
    )


@pytest.mark.parametrize(
    ("dockerfile", "dest", "paths", "contents"),
    [
        ("COPY /foo /bar", "/bar", ("/foo",), ()),
        ("COPY <<EOF /bar\nEOF", "/bar", (), (ir.InlineSource(path="EOF", data=""),)),
        (
            "COPY <<EOF /bar\nTESTING\nEOF",
            "/bar",
            (),
            (ir.InlineSource(path="EOF", data="TESTING\n"),),
        ),
        (
            "COPY <<-EOF /bar\n\tTESTING\nEOF",
            "/bar",
            (),
            (ir.InlineSource(path="EOF", data="TESTING\n"),),
        ),
        (
            "COPY <<'EOF' /bar\nTESTING\nEOF",
            "/bar",
            (),
            (ir.InlineSource(path="EOF", data="TESTING\n", expand=False),),
        ),
        (
            "COPY <<EOF1 <<EOF2 /bar\nthis is the first file\nEOF1\nthis is the second file\nEOF2",
            "/bar",
            (),
            (
                ir.InlineSource(path="EOF1", data="this is the first file\n"),
                ir.InlineSource(path="EOF2", data="this is the second file\n"),
            ),
        ),
        (
            "COPY <<EOF foo.txt /bar\nthis is inline\nEOF",
            "/bar",
            ("foo.txt",),
            (ir.InlineSource(path="EOF", data="this is inline\n"),),
        ),
        (
            'COPY <<EOF /quotes\n"quotes"\nEOF',
            "/quotes",
            (),
            (ir.InlineSource(path="EOF", data='"quotes"\n'),),
        ),
    ],
)
def test_copy_heredoc(
    dockerfile: str, dest: str, paths: tuple[str, ...], contents: tuple[ir.InlineSource, ...]
) -> None:
    copy = only_instruction(dockerfile)
    assert isinstance(copy, ir.Copy)
    assert (copy.dest, copy.sources, copy.heredocs) == (dest, paths, contents)


@pytest.mark.parametrize(
    ("dockerfile", "shell", "command", "files"),
    [
        ('RUN ["ls", "/"]', False, ("ls", "/"), ()),
        ('RUN ["<<EOF"]', False, ("<<EOF",), ()),
        ("RUN ls /", True, ("ls /",), ()),
        (
            "RUN <<EOF\nls /\nwhoami\nEOF",
            True,
            ("<<EOF",),
            (ir.InlineFile(name="EOF", data="ls /\nwhoami\n"),),
        ),
        (
            'RUN <<\'EOF\' | python\nprint("hello")\nprint("world")\nEOF',
            True,
            ("<<'EOF' | python",),
            (ir.InlineFile(name="EOF", data='print("hello")\nprint("world")\n'),),
        ),
        (
            "RUN <<-EOF\n\techo test\nEOF",
            True,
            ("<<-EOF",),
            (ir.InlineFile(name="EOF", data="\techo test\n", chomp=True),),
        ),
    ],
)
def test_run_heredoc(
    dockerfile: str, shell: bool, command: tuple[str, ...], files: tuple[ir.InlineFile, ...]
) -> None:
    run = only_instruction(dockerfile)
    assert isinstance(run, ir.Run)
    assert (run.prepend_shell, run.command, run.heredocs) == (shell, command, files)


# --------------------------------------------------------------------------- parser goldens

# BuildKit's parser test files that its instruction layer rejects, and the first reason.
EXPECTED_INVALID = {
    "flags": "unknown flag: --user",
    "health": "HEALTHCHECK requires at least one argument",
    "jeztah-invalid-json-json-inside-string": "no build stage in current context",
    "jeztah-invalid-json-json-inside-string-double": "no build stage in current context",
    "jeztah-invalid-json-single-quotes": "no build stage in current context",
    "jeztah-invalid-json-unterminated-bracket": "no build stage in current context",
    "jeztah-invalid-json-unterminated-string": "no build stage in current context",
    "json": "no build stage in current context",
}


@pytest.mark.parametrize(
    "case", sorted(p for p in TESTFILES.iterdir() if p.is_dir()), ids=lambda p: p.name
)
def test_parser_testfiles_through_the_instruction_layer(case: Path) -> None:
    text = (case / "Dockerfile").read_bytes().decode("utf-8", "surrogateescape")
    ast = parse(text, path="Dockerfile")
    errors = check(ast)
    if case.name in EXPECTED_INVALID:
        assert errors
        assert errors[0].message == EXPECTED_INVALID[case.name]
        with pytest.raises(DockerfileError) as info:
            to_ir(ast)
        assert info.value.message == errors[0].message
        return
    assert errors == ()
    df = to_ir(ast)
    count = len(df.global_args) + sum(1 + len(s.instructions) for s in df.stages)
    assert count == len(ast.nodes)
