"""Variable substitution on IR instructions: which fields expand, with the env from before."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import ExpansionError, InvalidInstructionError, Span
from builder.syntax import ir
from builder.syntax.parser import parse
from builder.syntax.substitute import substitute
from builder.syntax.transform import to_ir

ENV = {"A": "1", "DIR": "/app", "USER": "nobody", "EMPTY": "", "T": "cache", "M": "0700"}


def instructions(text: str, *, escape_line: str = "") -> tuple[ir.Instruction, ...]:
    df = to_ir(parse(escape_line + "FROM scratch\n" + text))
    return df.stages[0].instructions


def one(text: str) -> ir.Instruction:
    return instructions(text)[0]


def test_env_values_see_the_env_from_before() -> None:
    env = one("ENV A=2 B=$A C=${A}x\n")
    assert isinstance(env, ir.Env)
    out = substitute(env, {})
    assert [(p.key, p.value) for p in out.pairs] == [("A", "2"), ("B", ""), ("C", "x")]
    out = substitute(env, {"A": "old"})
    assert [(p.key, p.value) for p in out.pairs] == [("A", "2"), ("B", "old"), ("C", "oldx")]


def test_env_keys_and_quotes() -> None:
    env = one("ENV $A_key=\"a b\" plain='$A'\n")
    assert isinstance(env, ir.Env)
    out = substitute(env, {"A_key": "K", "A": "x"})
    assert [(p.key, p.value) for p in out.pairs] == [("K", "a b"), ("plain", "$A")]


def test_legacy_env_and_label() -> None:
    env = one("ENV X $DIR/bin:$PATH\n")
    assert isinstance(env, ir.Env)
    out = substitute(env, {"DIR": "/d", "PATH": "/p"})
    assert out.pairs == (ir.KeyValue(key="X", value="/d/bin:/p", legacy=True),)
    label = one('LABEL version="$A" "key $A"=v\n')
    assert isinstance(label, ir.Label)
    assert substitute(label, ENV).pairs == (
        ir.KeyValue(key="version", value="1"),
        ir.KeyValue(key="key 1", value="v"),
    )


def test_arg_defaults_and_names() -> None:
    arg = one("ARG X=$A Y ${A}z=q\n")
    assert isinstance(arg, ir.Arg)
    assert substitute(arg, ENV).args == (
        ir.ArgDecl(key="X", default="1"),
        ir.ArgDecl(key="Y"),
        ir.ArgDecl(key="1z", default="q"),
    )


def test_copy_fields() -> None:
    copy = one(
        "COPY --chown=$USER:$A --chmod=${M} --exclude=$A --from=build $DIR/a ${DIR}/b /dst/$A/\n"
    )
    assert isinstance(copy, ir.Copy)
    out = substitute(copy, ENV)
    assert out.sources == ("/app/a", "/app/b")
    assert out.dest == "/dst/1/"
    assert out.chown == "nobody:1"
    assert out.chmod == "0700"
    assert out.exclude == ("$A",)  # --exclude is not expanded
    assert out.from_ == "build"
    assert copy.dest == "/dst/$A/"  # the input is unchanged


def test_copy_from_variable_is_refused() -> None:
    copy = ir.Copy(
        span=Span(file="Dockerfile", line=3),
        keyword="COPY",
        original="COPY --from=$X a b",
        sources=("a",),
        dest="b",
        from_="$X",
    )
    with pytest.raises(InvalidInstructionError) as info:
        substitute(copy, {"X": "stage"})
    assert info.value.message == (
        "variable expansion is not supported for --from, "
        "define a new stage with FROM using ARG from global scope as a workaround"
    )
    assert info.value.span == Span(file="Dockerfile", line=3)


def test_add_fields() -> None:
    add = one("ADD --checksum=$SUM --chown=$USER --keep-git-dir $URL /opt/\n")
    assert isinstance(add, ir.Add)
    out = substitute(add, {"SUM": "sha256:00", "USER": "u", "URL": "https://x/y.tgz"})
    assert (out.checksum, out.chown, out.sources, out.dest, out.keep_git_dir) == (
        "sha256:00",
        "u",
        ("https://x/y.tgz",),
        "/opt/",
        True,
    )


def test_heredoc_bodies() -> None:
    copy = one("COPY <<EOF <<'RAW' /dst/\nhello $USER \"q\" \\$A\nEOF\nkeep $USER\nRAW\n")
    assert isinstance(copy, ir.Copy)
    out = substitute(copy, ENV)
    assert out.heredocs == (
        ir.InlineSource(path="EOF", data='hello nobody "q" $A\n', expand=True),
        ir.InlineSource(path="RAW", data="keep $USER\n", expand=False),
    )


def test_single_word_instructions() -> None:
    user, workdir, stop, vol = instructions(
        "USER $USER:$A\nWORKDIR ${DIR}/src\nSTOPSIGNAL SIG$T\nVOLUME $DIR /data/$A\n"
    )
    assert isinstance(user, ir.User)
    assert substitute(user, ENV).user == "nobody:1"
    assert isinstance(workdir, ir.Workdir)
    assert substitute(workdir, ENV).path == "/app/src"
    assert isinstance(stop, ir.StopSignal)
    assert substitute(stop, ENV).signal == "SIGcache"
    assert isinstance(vol, ir.Volume)
    assert substitute(vol, ENV).paths == ("/app", "/data/1")


def test_empty_volume_after_expansion() -> None:
    vol = one("VOLUME $EMPTY\n")
    assert isinstance(vol, ir.Volume)
    with pytest.raises(InvalidInstructionError) as info:
        substitute(vol, ENV)
    assert info.value.message == "VOLUME specified can not be an empty string"
    assert info.value.span == vol.span


def test_expose_words_are_split() -> None:
    expose = one("EXPOSE $PORTS 22\n")
    assert isinstance(expose, ir.Expose)
    assert substitute(expose, {"PORTS": "80/tcp 443"}).ports == ("80/tcp", "443", "22")


def test_from_base_and_platform() -> None:
    df = to_ir(parse("ARG V\nFROM --platform=$P alpine:${V:-3} AS b\n"))
    from_ = df.stages[0].from_
    assert from_ is not None
    out = substitute(from_, {"P": "linux/arm64"})
    assert (out.base, out.platform, out.stage_name) == ("alpine:3", "linux/arm64", "b")
    blank = to_ir(parse("FROM $NOTHING\n")).stages[0].from_
    assert blank is not None
    with pytest.raises(InvalidInstructionError) as info:
        substitute(blank, {})
    assert info.value.message == "base name ($NOTHING) should not be blank"
    assert info.value.span == blank.span


def test_run_mount_values_expand_but_not_the_command() -> None:
    run = one("RUN --mount=type=$T,target=$DIR/.cache,mode=$M,id=c-$A --network=none echo $DIR\n")
    assert isinstance(run, ir.Run)
    assert run.mounts[0].dynamic
    out = substitute(run, ENV)
    assert out.command == ("echo $DIR",)
    mount = out.mounts[0]
    assert (mount.type, mount.target, mount.mode, mount.id, mount.readonly) == (
        ir.MountType.CACHE,
        "/app/.cache",
        0o700,
        "c-1",
        False,
    )
    assert mount.spec == run.mounts[0].spec
    assert out.network is ir.NetworkMode.NONE


def test_constant_mounts_are_kept() -> None:
    run = one("RUN --mount=type=cache,target=/x true\n")
    assert isinstance(run, ir.Run)
    assert substitute(run, ENV) is run


def test_mount_checks_run_after_expansion() -> None:
    run = one("RUN --mount=type=$T,target=/x,size=1m true\n")
    assert isinstance(run, ir.Run)
    with pytest.raises(InvalidInstructionError) as info:
        substitute(run, ENV)
    assert info.value.message == "unexpected key 'size' for mount type 'cache'"
    assert info.value.span == run.span
    assert substitute(run, {"T": "tmpfs"}).mounts[0].size_limit == 1024**2


@pytest.mark.parametrize(
    "text",
    [
        "CMD echo $A\n",
        'ENTRYPOINT ["$A"]\n',
        'SHELL ["$A", "-c"]\n',
        "HEALTHCHECK CMD echo $A\n",
        "MAINTAINER $A\n",
        "ONBUILD RUN echo $A\n",
        'RUN ["echo", "$A"]\n',
    ],
)
def test_not_expanded(text: str) -> None:
    instr = one(text)
    assert substitute(instr, ENV) is instr


def test_expansion_errors_carry_the_span() -> None:
    workdir = one("WORKDIR ${A:?must be set}\n")
    with pytest.raises(ExpansionError) as info:
        substitute(workdir, {})
    assert "A: must be set" in info.value.message
    assert info.value.span == workdir.span


def test_backtick_escape() -> None:
    (workdir,) = instructions("WORKDIR /a`$A\n", escape_line="# escape=`\n")
    assert isinstance(workdir, ir.Workdir)
    assert substitute(workdir, ENV, escape="`").path == "/a$A"
    assert substitute(workdir, ENV).path == "/a`1"


_NAMES = st.sampled_from(["A", "B", "C"])


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(_NAMES, st.text(alphabet="xyz01 ", max_size=5)),
    st.lists(_NAMES, min_size=1, max_size=4),
)
def test_env_instruction_uses_only_the_given_env(env: dict[str, str], names: list[str]) -> None:
    """ENV K1=$N1 K2=$N2 ...: every value is the value before the instruction."""
    words = " ".join(f"K{i}=${{{n}}}" for i, n in enumerate(names))
    instr = one(f"ENV {words}\n")
    assert isinstance(instr, ir.Env)
    out = substitute(instr, env)
    assert [p.value for p in out.pairs] == [env.get(n, "") for n in names]
    assert substitute(instr, env) == out
