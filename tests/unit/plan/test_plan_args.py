"""ARG scoping, build-args, automatic platform ARGs, proxy args and ENV/ARG precedence."""

from __future__ import annotations

import pytest
from planfixtures import AMD64, ARM64, FakeResolver, created_by, make_plan, target

from builder.errors import ExpansionError
from builder.oci.types import Platform
from builder.plan import (
    ConfigStep,
    CopyStep,
    PathSource,
    RunStep,
    StagePlan,
    step_cache_payload,
)


def runs(stage: StagePlan) -> list[RunStep]:
    return [s for s in stage.steps if isinstance(s, RunStep)]


def env_of(step: RunStep) -> dict[str, str]:
    return dict(e.split("=", 1) for e in step.env)


def test_global_args_apply_to_from_lines_only() -> None:
    resolver = FakeResolver()
    stage = target(
        "ARG IMG=alpine TAG=3.19\nFROM $IMG:$TAG\nRUN echo $TAG\nENV X=${TAG}\n",
        resolver=resolver,
    )
    assert resolver.calls == [("alpine:3.19", AMD64)]
    run = runs(stage)[0]
    assert "TAG" not in env_of(run)
    assert created_by(run) == "RUN /bin/sh -c echo $TAG # buildkit"
    assert stage.config.config.env_value("X") == ""


def test_a_redeclared_global_arg_gets_the_global_value() -> None:
    stage = target("ARG V=1\nFROM alpine\nARG V\nRUN echo $V\n")
    step = stage.steps[0]
    assert isinstance(step, ConfigStep)
    assert created_by(step) == "ARG V=1"
    assert env_of(runs(stage)[0])["V"] == "1"
    assert created_by(runs(stage)[0]) == "RUN |1 V=1 /bin/sh -c echo $V # buildkit"


def test_build_arg_overrides_global_and_stage_defaults() -> None:
    text = "ARG V=1\nFROM alpine:$V\nARG V\nARG W=default\nRUN true\n"
    resolver = FakeResolver()
    stage = target(text, build_args=(("V", "9"), ("W", "w")), resolver=resolver)
    assert resolver.calls[0][0] == "alpine:9"
    env = env_of(runs(stage)[0])
    assert (env["V"], env["W"]) == ("9", "w")


def test_a_stage_default_beats_the_global_value() -> None:
    stage = target("ARG V=global\nFROM alpine\nARG V=stage\nRUN true\n")
    assert env_of(runs(stage)[0])["V"] == "stage"


def test_build_arg_value_is_not_expanded_but_a_default_is() -> None:
    stage = target("FROM alpine\nENV E=env\nARG A=$E B=$E\nRUN true\n", build_args=(("B", "$E"),))
    env = env_of(runs(stage)[0])
    assert (env["A"], env["B"]) == ("env", "$E")


def test_a_default_is_not_expanded_when_overridden() -> None:
    text = "FROM alpine\nARG A=${MISSING:?required}\n"
    with pytest.raises(ExpansionError) as err:
        make_plan(text)
    assert err.value.span is not None
    assert err.value.span.line == 2
    stage = target(text, build_args=(("A", "given"),))
    assert created_by(stage.steps[0]) == "ARG A=given"


def test_global_arg_defaults_see_earlier_global_args() -> None:
    resolver = FakeResolver()
    make_plan(
        'ARG a1="foo" a2=box\nARG a3="$a2-foo"\nFROM busy$a2:$a3\n',
        resolver=resolver,
    )
    assert resolver.calls == [("busybox:box-foo", AMD64)]


def test_an_arg_without_value_is_in_history_but_not_in_env() -> None:
    stage = target("FROM alpine\nARG NOVAL\nRUN true\n")
    assert created_by(stage.steps[0]) == "ARG NOVAL"
    run = runs(stage)[0]
    assert "NOVAL" not in env_of(run)
    assert created_by(run) == "RUN |1 NOVAL= /bin/sh -c true # buildkit"


def test_args_are_scoped_to_their_stage_but_inherited_by_child_stages() -> None:
    text = "FROM alpine AS a\nARG X=1\nFROM a AS b\nRUN true\nFROM alpine\nRUN true\n"
    p = make_plan(text, target="b")
    run = runs(p.target)[0]
    assert env_of(run)["X"] == "1"
    assert created_by(run) == "RUN |1 X=1 /bin/sh -c true # buildkit"
    last = make_plan(text).target
    assert "X" not in env_of(runs(last)[0])


def test_env_overrides_an_earlier_arg() -> None:
    stage = target("FROM alpine\nARG A=arg\nENV A=env\nRUN true\n")
    run = runs(stage)[0]
    assert env_of(run)["A"] == "env"
    assert created_by(run) == "RUN |1 A=env /bin/sh -c true # buildkit"
    assert stage.config.config.env_value("A") == "env"


def test_arg_after_env_changes_the_run_env_but_not_the_image_env() -> None:
    # BuildKit's state env takes the later ARG value; the image config keeps the ENV value.
    stage = target("FROM alpine\nENV A=env\nARG A\nRUN true\n", build_args=(("A", "arg"),))
    assert env_of(runs(stage)[0])["A"] == "arg"
    assert stage.config.config.env_value("A") == "env"
    stage = target("FROM alpine\nENV A=env\nARG A\nRUN true\n")
    assert env_of(runs(stage)[0])["A"] == "env"


def test_image_env_is_visible_to_expansion() -> None:
    resolver = FakeResolver()
    stage = target("FROM alpine\nWORKDIR $HOME/app\n", resolver=resolver)
    assert stage.config.config.working_dir == "/app"  # HOME is unset in the fake image
    from planfixtures import image_config

    resolver = FakeResolver(images={"img": image_config(env=("PATH=/bin", "HOME=/root"))})
    stage = target("FROM img\nWORKDIR $HOME/app\n", resolver=resolver)
    assert stage.config.config.working_dir == "/root/app"


def test_automatic_platform_args_in_global_scope() -> None:
    resolver = FakeResolver()
    make_plan(
        "FROM --platform=$BUILDPLATFORM golang:$TARGETOS-$TARGETARCH AS build\n",
        resolver=resolver,
        platform=ARM64,
        build_platform=AMD64,
    )
    assert resolver.calls == [("golang:linux-arm64", AMD64)]


def test_automatic_platform_args_in_a_stage_only_when_declared() -> None:
    v7 = Platform(os="linux", architecture="arm", variant="v7")
    stage = target(
        "FROM alpine\nRUN echo $TARGETARCH\nARG TARGETPLATFORM TARGETARCH TARGETVARIANT "
        "BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT TARGETSTAGE\nRUN true\n",
        platform=v7,
    )
    first, second = runs(stage)
    assert "TARGETARCH" not in env_of(first)
    env = env_of(second)
    assert env["TARGETPLATFORM"] == "linux/arm/v7"
    assert (env["TARGETARCH"], env["TARGETVARIANT"]) == ("arm", "v7")
    assert (env["BUILDPLATFORM"], env["BUILDOS"], env["BUILDARCH"]) == (
        "linux/amd64",
        "linux",
        "amd64",
    )
    assert env["BUILDVARIANT"] == ""
    assert env["TARGETSTAGE"] == "default"


def test_targetstage_names_the_target() -> None:
    text = "FROM alpine AS base\nARG TARGETSTAGE\nRUN true\nFROM base AS foo\n"
    assert env_of(runs(make_plan(text, target="foo").stage(0))[0])["TARGETSTAGE"] == "foo"
    assert env_of(runs(make_plan(text).stage(0))[0])["TARGETSTAGE"] == "foo"  # last stage


def test_platform_args_can_be_overridden_by_build_args() -> None:
    stage = target("FROM alpine\nARG TARGETARCH\nRUN true\n", build_args=(("TARGETARCH", "x"),))
    assert env_of(runs(stage)[0])["TARGETARCH"] == "x"


def test_proxy_args_reach_run_without_declaration_but_not_cache_or_history() -> None:
    args = (("HTTP_PROXY", "http://proxy:3128"), ("no_proxy", "localhost"))
    stage = target("FROM alpine\nRUN true\n", build_args=args)
    run = runs(stage)[0]
    env = env_of(run)
    assert env["HTTP_PROXY"] == env["http_proxy"] == "http://proxy:3128"
    assert env["NO_PROXY"] == env["no_proxy"] == "localhost"
    assert not any("proxy" in e.lower() for e in run.cache_env)
    assert "proxy" not in str(step_cache_payload(run)).lower()
    assert created_by(run) == "RUN /bin/sh -c true # buildkit"
    assert make_plan("FROM alpine\nRUN true\n", build_args=args).warnings == ()
    plain = runs(target("FROM alpine\nRUN true\n"))[0]
    assert step_cache_payload(plain) == step_cache_payload(run)


def test_a_declared_proxy_arg_is_a_normal_arg() -> None:
    stage = target(
        "FROM alpine\nARG HTTP_PROXY\nRUN true\n", build_args=(("HTTP_PROXY", "http://p"),)
    )
    run = runs(stage)[0]
    assert "HTTP_PROXY=http://p" in run.cache_env
    assert [e for e in run.env if e.startswith("HTTP_PROXY=")] == ["HTTP_PROXY=http://p"]
    assert "http_proxy=http://p" in run.env
    assert created_by(run) == "RUN |1 HTTP_PROXY=http://p /bin/sh -c true # buildkit"


def test_unused_build_args_warn_like_docker() -> None:
    p = make_plan(
        "ARG USED_GLOBAL\nFROM alpine\nARG USED\n",
        build_args=(
            ("ZED", "1"),
            ("USED", "1"),
            ("USED_GLOBAL", "1"),
            ("ALPHA", "2"),
            ("BUILDKIT_INLINE_CACHE", "1"),
            ("TARGETARCH", "amd64"),
        ),
    )
    assert [w.message for w in p.warnings] == [
        "One or more build-args [ALPHA ZED] were not consumed"
    ]


def test_args_of_unplanned_stages_are_not_consumed() -> None:
    p = make_plan("FROM alpine AS other\nARG X\nFROM alpine\n", build_args=(("X", "1"),))
    assert [w.message for w in p.warnings] == ["One or more build-args [X] were not consumed"]


def test_the_last_repeated_build_arg_wins() -> None:
    stage = target("FROM alpine\nARG A\nRUN true\n", build_args=(("A", "1"), ("A", "2")))
    assert env_of(runs(stage)[0])["A"] == "2"


def test_copy_words_expand_with_args_and_env() -> None:
    stage = target("FROM alpine\nARG SRC=app\nENV DST=/srv\nCOPY --chown=$SRC ${SRC}/ $DST/\n")
    step = stage.steps[-1]
    assert isinstance(step, CopyStep)
    assert (step.sources, step.dest, step.chown) == ((PathSource(path="app/"),), "/srv/", "app")
    assert created_by(step) == "COPY --chown=app app/ /srv/ # buildkit"
