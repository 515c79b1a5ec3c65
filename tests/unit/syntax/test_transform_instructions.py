"""AST -> IR, one instruction at a time: values, and BuildKit's exact messages with spans."""

from __future__ import annotations

import pytest

from builder.errors import (
    DockerfileError,
    InvalidInstructionError,
    Span,
    StageError,
    UnknownInstructionError,
)
from builder.syntax import ir
from builder.syntax.parser import parse
from builder.syntax.transform import check, to_ir


def ir_of(text: str) -> ir.Dockerfile:
    return to_ir(parse(text, path="Dockerfile"))


def first(text: str) -> ir.Instruction:
    """The first instruction after ``FROM scratch``."""
    return ir_of("FROM scratch\n" + text).stages[0].instructions[0]


def error_of(text: str) -> DockerfileError:
    with pytest.raises(DockerfileError) as info:
        to_ir(parse(text, path="Dockerfile"))
    return info.value


def where(err: DockerfileError) -> tuple[int, int, int | None]:
    assert err.span is not None
    return err.span.line, err.span.column, err.span.end_column


# --------------------------------------------------------------------------- FROM and stages


def test_from_forms() -> None:
    df = ir_of(
        "ARG V=1\nFROM --platform=$BUILDPLATFORM golang:$V AS Build\n"
        "FROM build\nFROM scratch as x\n"
    )
    assert [a.args for a in df.global_args] == [(ir.ArgDecl(key="V", default="1"),)]
    first_stage, second, third = df.stages
    assert first_stage.name == "build"
    assert first_stage.base == "golang:$V"
    assert first_stage.platform == "$BUILDPLATFORM"
    assert first_stage.index == 0
    assert first_stage.span == Span(file="Dockerfile", line=2, column=1, end_line=2)
    assert first_stage.from_ is not None
    assert first_stage.from_.keyword == "FROM"
    assert second.name is None
    assert second.base == "build"
    assert second.platform is None
    assert third.name == "x"
    assert third.index == 2
    assert df.stage("BUILD") is first_stage
    assert df.stage("nope") is None


def test_from_argument_count() -> None:
    for text in ("FROM\n", "FROM a b\n", "FROM a b c\n", "FROM a AS b c\n"):
        err = error_of(text)
        assert isinstance(err, InvalidInstructionError)
        assert err.message == "FROM requires either one or three arguments"
    err = error_of("FROM a b\n")
    assert where(err) == (1, 1, 8)


@pytest.mark.parametrize("name", ["1st", "a!", "_x", "-x", "ä"])
def test_from_invalid_stage_name(name: str) -> None:
    err = error_of(f"FROM busybox AS {name}\n")
    assert isinstance(err, StageError)
    assert err.message == (
        f'invalid name for build stage: "{name}", '
        "name can't start with a number or contain symbols"
    )
    assert where(err) == (1, 17, 16 + len(name))


@pytest.mark.parametrize("name", ["a", "a1", "a-b_c.d", "ABC"])
def test_from_valid_stage_names(name: str) -> None:
    assert ir_of(f"FROM x AS {name}\n").stages[0].name == name.lower()


def test_from_platform_flag_errors() -> None:
    err = error_of("FROM --platfrom=linux x\n")
    assert err.message == "unknown flag: --platfrom (did you mean platform?)"
    assert err.hint == "did you mean platform?"
    assert where(err) == (1, 6, 21)
    err = error_of("FROM --platform x\n")
    assert err.message == "missing a value on flag: --platform"


def test_stage_name_is_checked_before_flags() -> None:
    err = error_of("FROM --bad x AS 9\n")
    assert isinstance(err, StageError)


def test_instruction_before_from() -> None:
    err = error_of("RUN true\nFROM x\n")
    assert isinstance(err, StageError)
    assert err.message == "no build stage in current context"
    assert where(err) == (1, 1, 3)


def test_args_before_from_are_global() -> None:
    df = ir_of("ARG A\nARG B=2 C\nFROM x\nARG A\n")
    assert len(df.global_args) == 2
    assert df.stages[0].instructions == (
        ir.Arg(
            span=Span(file="Dockerfile", line=4, column=1, end_line=4),
            keyword="ARG",
            original="ARG A",
            args=(ir.ArgDecl(key="A"),),
        ),
    )


# --------------------------------------------------------------------------- unknown


def test_unknown_instruction_with_suggestion() -> None:
    err = error_of("FROM x\nFORM busybox\n")
    assert isinstance(err, UnknownInstructionError)
    assert err.message == "unknown instruction: FORM (did you mean FROM?)"
    assert err.hint == "did you mean FROM?"
    assert where(err) == (2, 1, 4)
    assert str(err) == "Dockerfile:2:1: unknown instruction: FORM (did you mean FROM?)"


@pytest.mark.parametrize(
    ("keyword", "message"),
    [
        ("FOOBAR", "unknown instruction: FOOBAR"),
        ("FOO", "unknown instruction: FOO (did you mean FROM?)"),
        ("foo", "unknown instruction: foo (did you mean from?)"),
        # mixed case: BuildKit suggests the lower-case name
        ("fnTRYPOINT", "unknown instruction: fnTRYPOINT (did you mean entrypoint?)"),
        ("FNTRYPOINT", "unknown instruction: FNTRYPOINT (did you mean ENTRYPOINT?)"),
        ("cpy", "unknown instruction: cpy (did you mean copy?)"),
        ("workdri", "unknown instruction: workdri (did you mean workdir?)"),
    ],
)
def test_unknown_instruction(keyword: str, message: str) -> None:
    err = error_of(f"FROM x\n  {keyword} bar\n")
    assert isinstance(err, UnknownInstructionError)
    assert err.message == message
    assert where(err) == (2, 3, 2 + len(keyword))


# --------------------------------------------------------------------------- argument counts


@pytest.mark.parametrize("cmd", ["MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL"])
def test_exactly_one_argument(cmd: str) -> None:
    err = error_of(f"FROM x\n{cmd}\n")
    assert isinstance(err, InvalidInstructionError)
    assert err.message == f"{cmd} requires exactly one argument"
    assert where(err) == (2, 1, len(cmd))


@pytest.mark.parametrize(
    "cmd", ["ENV", "LABEL", "ONBUILD", "HEALTHCHECK", "EXPOSE", "VOLUME", "ARG"]
)
def test_at_least_one_argument(cmd: str) -> None:
    err = error_of(f"FROM x\n{cmd}\n")
    assert err.message == f"{cmd} requires at least one argument"


@pytest.mark.parametrize("cmd", ["ADD", "COPY"])
def test_no_destination(cmd: str) -> None:
    err = error_of(f"FROM x\n{cmd} arg1\n")
    assert err.message == (
        f"{cmd} requires at least two arguments, but only one was provided. "
        "Destination could not be determined"
    )
    assert where(err) == (2, 1, len(cmd) + 5)


def test_copy_with_only_whitespace_continuations() -> None:
    err = error_of("FROM x\nCOPY\t\n\t\tquux \\\n      bar\n")
    assert err.message.startswith("COPY requires at least two arguments")


# --------------------------------------------------------------------------- ENV, LABEL, ARG


def test_env_pairs() -> None:
    env = first('ENV A=1 B="two words" C=\nENV D e f\n')
    assert isinstance(env, ir.Env)
    assert env.pairs == (
        ir.KeyValue(key="A", value="1"),
        ir.KeyValue(key="B", value='"two words"'),
        ir.KeyValue(key="C", value=""),
    )
    legacy = ir_of("FROM x\nENV D e f\n").stages[0].instructions[0]
    assert isinstance(legacy, ir.Env)
    assert legacy.pairs == (ir.KeyValue(key="D", value="e f", legacy=True),)


def test_env_and_label_blank_names() -> None:
    assert error_of("FROM x\nENV =x\n").message == "ENV names can not be blank"
    assert error_of("FROM x\nLABEL =x\n").message == "LABEL names can not be blank"


def test_env_flags_are_rejected() -> None:
    err = error_of("FROM x\nENV --foo A=1\n")
    assert err.message == "unknown flag: --foo"
    assert where(err) == (2, 5, 9)


def test_label() -> None:
    label = first('LABEL "a b"=c d=e\n')
    assert isinstance(label, ir.Label)
    assert label.pairs == (ir.KeyValue(key='"a b"', value="c"), ir.KeyValue(key="d", value="e"))


def test_arg_declarations() -> None:
    arg = first("ARG a b=1 c= d=x=y\n")
    assert isinstance(arg, ir.Arg)
    assert arg.args == (
        ir.ArgDecl(key="a"),
        ir.ArgDecl(key="b", default="1"),
        ir.ArgDecl(key="c", default=""),
        ir.ArgDecl(key="d", default="x=y"),
    )
    assert error_of("FROM x\nARG =1\n").message == "ARG names can not be blank"


def test_arg_and_stopsignal_ignore_flags_like_buildkit() -> None:
    arg = first("ARG --whatever x\n")
    assert isinstance(arg, ir.Arg)
    assert arg.args == (ir.ArgDecl(key="x"),)
    sig = first("STOPSIGNAL --nope SIGKILL\n")
    assert isinstance(sig, ir.StopSignal)
    assert sig.signal == "SIGKILL"


# ------------------------------------------------------------------- RUN CMD ENTRYPOINT SHELL


def test_run_shell_and_exec_form() -> None:
    run = first("RUN echo $HOME  &&  ls\n")
    assert isinstance(run, ir.Run)
    assert run.command == ("echo $HOME  &&  ls",)
    assert run.prepend_shell is True
    assert run.network is ir.NetworkMode.DEFAULT
    assert run.security is ir.SecurityMode.SANDBOX
    assert run.mounts == ()
    run = first('RUN ["ls", "-l"]\n')
    assert isinstance(run, ir.Run)
    assert run.command == ("ls", "-l")
    assert run.prepend_shell is False


def test_run_flags() -> None:
    run = first("RUN --network=none --security=insecure --device=nvidia.com/gpu=all true\n")
    assert isinstance(run, ir.Run)
    assert run.network is ir.NetworkMode.NONE
    assert run.security is ir.SecurityMode.INSECURE
    assert run.devices == (ir.Device(name="nvidia.com/gpu=all"),)
    assert run.flags_used == ("network", "security", "device")


def test_run_bad_network_and_security() -> None:
    err = error_of("FROM x\nRUN --network=bridge true\n")
    assert err.message == 'invalid network mode "bridge"'
    assert where(err) == (2, 5, 20)
    err = error_of("FROM x\nRUN --security=root true\n")
    assert err.message == 'security "root" is not valid'
    assert where(err) == (2, 5, 19)


def test_run_unknown_flag() -> None:
    err = error_of("FROM x\nRUN --mout=type=cache,target=/x true\n")
    assert err.message == "unknown flag: --mout (did you mean mount?)"
    assert where(err) == (2, 5, 31)


def test_cmd_and_entrypoint() -> None:
    cmd = first('CMD ["a", "b"]\n')
    assert isinstance(cmd, ir.Cmd)
    assert (cmd.command, cmd.prepend_shell) == (("a", "b"), False)
    cmd = first("CMD echo hi\n")
    assert isinstance(cmd, ir.Cmd)
    assert (cmd.command, cmd.prepend_shell) == (("echo hi",), True)
    cmd = first("CMD []\n")
    assert isinstance(cmd, ir.Cmd)
    assert cmd.command == ()
    ep = first("ENTRYPOINT []\n")
    assert isinstance(ep, ir.Entrypoint)
    assert ep.command == ()
    assert ep.prepend_shell is False
    ep = first("ENTRYPOINT /bin/app --flag\n")
    assert isinstance(ep, ir.Entrypoint)
    assert (ep.command, ep.prepend_shell) == (("/bin/app --flag",), True)


def test_shell() -> None:
    shell = first('SHELL ["/bin/bash", "-c"]\n')
    assert isinstance(shell, ir.Shell)
    assert shell.shell == ("/bin/bash", "-c")
    assert error_of("FROM x\nSHELL /bin/sh -c\n").message == (
        "SHELL requires the arguments to be in JSON form"
    )
    assert error_of("FROM x\nSHELL []\n").message == "SHELL requires at least one argument"


# --------------------------------------------------------------------------- COPY and ADD


def test_copy_flags() -> None:
    copy = first(
        "COPY --from=build --chown=1:2 --chmod=0755 --link --parents=true "
        "--exclude=*.md --exclude=*.txt a b /dst/\n"
    )
    assert isinstance(copy, ir.Copy)
    assert copy.sources == ("a", "b")
    assert copy.dest == "/dst/"
    assert copy.from_ == "build"
    assert copy.chown == "1:2"
    assert copy.chmod == "0755"
    assert copy.link is True
    assert copy.parents is True
    assert copy.exclude == ("*.md", "*.txt")


def test_copy_defaults_and_json_form() -> None:
    copy = first('COPY ["a b", "/c d/"]\n')
    assert isinstance(copy, ir.Copy)
    assert copy.sources == ("a b",)
    assert copy.dest == "/c d/"
    assert (copy.from_, copy.chown, copy.chmod, copy.link, copy.parents) == (
        None,
        None,
        None,
        False,
        False,
    )


def test_copy_from_variable() -> None:
    for value in ("$X", "${X}", "a$X", "$1"):
        err = error_of(f"FROM x\nCOPY --from={value} a b\n")
        assert err.message == (
            "variable expansion is not supported for --from, "
            "define a new stage with FROM using ARG from global scope as a workaround"
        ), value
        assert where(err) == (2, 6, 12 + len(value))
    copy = first("COPY --from=a$ x y\n")
    assert isinstance(copy, ir.Copy)
    assert copy.from_ == "a$"


def test_copy_unknown_flag_lists_add_only_flags_as_unknown() -> None:
    err = error_of("FROM x\nCOPY --checksum=sha256:abc a b\n")
    assert err.message == "unknown flag: --checksum"
    err = error_of("FROM x\nCOPY --chown 1 a b\n")
    assert err.message == "missing a value on flag: --chown"
    err = error_of("FROM x\nCOPY --link=maybe a b\n")
    assert err.message == "expecting boolean value for flag --link, not: maybe"
    err = error_of("FROM x\nCOPY --link --link a b\n")
    assert err.message == "duplicate flag specified: --link"
    assert where(err) == (2, 13, 18)


def test_add_flags() -> None:
    add = first(
        "ADD --checksum=sha256:abc --keep-git-dir --unpack=false --chmod=u+x "
        "https://x/a.tar.gz /a/\n"
    )
    assert isinstance(add, ir.Add)
    assert add.checksum == "sha256:abc"
    assert add.keep_git_dir is True
    assert add.unpack is False
    assert add.chmod == "u+x"
    assert add.sources == ("https://x/a.tar.gz",)
    plain = first("ADD a b\n")
    assert isinstance(plain, ir.Add)
    assert (plain.keep_git_dir, plain.unpack, plain.checksum, plain.link) == (
        None,
        None,
        None,
        False,
    )
    err = error_of("FROM x\nADD --from=a a b\n")
    assert err.message == "unknown flag: --from"
    err = error_of("FROM x\nADD --parents a b\n")
    assert err.message == "unknown flag: --parents"


def test_copy_heredocs() -> None:
    copy = first("COPY <<EOF <<-'EOT' file.txt /dst/\nhello $X\nEOF\n\tindented\n\tEOT\n")
    assert isinstance(copy, ir.Copy)
    assert copy.sources == ("file.txt",)
    assert copy.dest == "/dst/"
    assert copy.heredocs == (
        ir.InlineSource(path="EOF", data="hello $X\n", expand=True),
        ir.InlineSource(path="EOT", data="indented\n", expand=False),
    )


def test_copy_heredoc_as_destination() -> None:
    err = error_of("FROM x\nCOPY /foo <<EOF\nEOF\n")
    assert err.message == "COPY cannot accept a heredoc as a destination"
    assert where(err) == (2, 11, 15)
    err = error_of("FROM x\nADD a <<EOF\nEOF\n")
    assert err.message == "ADD cannot accept a heredoc as a destination"


def test_run_heredocs() -> None:
    run = first("RUN <<-EOF bash\n\techo hi\nEOF\n")
    assert isinstance(run, ir.Run)
    assert run.command == ("<<-EOF bash",)
    assert run.prepend_shell
    assert run.heredocs == (ir.InlineFile(name="EOF", data="\techo hi\n", chomp=True),)


# --------------------------------------------------------------------------- the rest


def test_expose_is_sorted_raw() -> None:
    expose = first("EXPOSE 8080/udp 80 $PORT 443\n")
    assert isinstance(expose, ir.Expose)
    assert expose.ports == ("$PORT", "443", "80", "8080/udp")


def test_volume() -> None:
    vol = first('VOLUME ["/a", "/b"]\n')
    assert isinstance(vol, ir.Volume)
    assert vol.paths == ("/a", "/b")
    vol = first("VOLUME /a /b\n")
    assert isinstance(vol, ir.Volume)
    assert vol.paths == ("/a", "/b")
    err = error_of('FROM x\nVOLUME ["/a", " "]\n')
    assert err.message == "VOLUME specified can not be an empty string"


def test_user_workdir_maintainer_stopsignal() -> None:
    df = ir_of("FROM x\nUSER app:app\nWORKDIR /src\nMAINTAINER Jane Doe\nSTOPSIGNAL SIGTERM\n")
    user, workdir, maintainer, stop = df.stages[0].instructions
    assert isinstance(user, ir.User)
    assert user.user == "app:app"
    assert isinstance(workdir, ir.Workdir)
    assert workdir.path == "/src"
    assert isinstance(maintainer, ir.Maintainer)
    assert maintainer.maintainer == "Jane Doe"
    assert isinstance(stop, ir.StopSignal)
    assert stop.signal == "SIGTERM"
    assert df.diagnostics == ()  # MaintainerDeprecated is a lint rule (tests/unit/lint)


def test_maintainer_argument_count_before_flags() -> None:
    err = error_of("FROM x\nMAINTAINER --boo joe@example.com\n")
    assert err.message == "unknown flag: --boo"
    assert where(err) == (2, 12, 16)


# --------------------------------------------------------------------------- ONBUILD


def test_onbuild_trigger_parsed() -> None:
    onbuild = first("ONBUILD RUN --mount=type=cache,target=/c make\n")
    assert isinstance(onbuild, ir.OnBuild)
    assert onbuild.expression == "RUN --mount=type=cache,target=/c make"
    assert isinstance(onbuild.trigger, ir.Run)
    assert onbuild.trigger.mounts[0].type is ir.MountType.CACHE
    assert onbuild.trigger.span == onbuild.span


def test_onbuild_expression_keeps_heredocs() -> None:
    onbuild = first("  onbuild   COPY <<EOF /x\nbody\nEOF\n")
    assert isinstance(onbuild, ir.OnBuild)
    assert onbuild.expression == "COPY <<EOF /x\nbody\nEOF"
    assert isinstance(onbuild.trigger, ir.Copy)
    assert onbuild.trigger.heredocs == (ir.InlineSource(path="EOF", data="body\n"),)


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        (
            "ONBUILD ONBUILD RUN touch foobar",
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
            9,
        ),
        ("ONBUILD FROM scratch", "FROM isn't allowed as an ONBUILD trigger", 9),
        ("ONBUILD maintainer me", "MAINTAINER isn't allowed as an ONBUILD trigger", 9),
    ],
)
def test_onbuild_forbidden_triggers(text: str, message: str, column: int) -> None:
    err = error_of(f"FROM x\n{text}\n")
    assert err.message == message
    assert err.span is not None
    assert (err.span.line, err.span.column) == (2, column)


def test_onbuild_invalid_trigger_is_a_warning() -> None:
    df = ir_of("FROM x\nONBUILD COPY --frm=x a b\nONBUILD FOOBAR bar\n")
    first_, second = df.stages[0].instructions
    assert isinstance(first_, ir.OnBuild)
    assert first_.trigger is None
    assert isinstance(second, ir.OnBuild)
    assert second.trigger is None
    warnings = [d for d in df.diagnostics if d.rule == "InvalidOnbuildTrigger"]
    assert [w.message for w in warnings] == [
        "ONBUILD trigger fails in builds that use this image: "
        "unknown flag: --frm (did you mean from?)",
        "ONBUILD trigger fails in builds that use this image: unknown instruction: FOOBAR",
    ]
    assert warnings[0].span == Span(file="Dockerfile", line=2, column=14, end_line=2, end_column=20)
    assert warnings[1].span == Span(file="Dockerfile", line=3, column=9, end_line=3, end_column=14)


# --------------------------------------------------------------------------- warnings and spans


def test_spans_follow_continuation_lines() -> None:
    err = error_of("FROM x\nCOPY --link \\\n  # comment\n    --chwon=1 \\\n  a b\n")
    assert err.message == "unknown flag: --chwon (did you mean chown?)"
    assert where(err) == (4, 5, 13)


def test_span_of_a_quoted_flag() -> None:
    err = error_of('FROM x\nRUN --mount="type=tmpfs,size=oops" true\n')
    assert err.message == "invalid value for size: oops"
    assert where(err) == (2, 5, 34)


def test_ir_nodes_are_frozen_and_carry_spans() -> None:
    run = first("RUN true\n")
    assert run.span == Span(file="Dockerfile", line=2, column=1, end_line=2)
    assert run.keyword == "RUN"
    assert run.original == "RUN true"
    with pytest.raises(AttributeError):
        run.keyword = "x"  # type: ignore[misc]


def test_check_and_to_ir_agree_on_valid_files() -> None:
    text = "ARG A\nFROM x AS a\nRUN true\nFROM a\nCOPY --from=a / /\n"
    assert check(parse(text)) == ()
    assert len(to_ir(parse(text)).stages) == 2
