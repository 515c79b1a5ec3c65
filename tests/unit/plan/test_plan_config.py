"""The image config each stage ends with: CMD/ENTRYPOINT, SHELL, WORKDIR, ONBUILD, metadata."""

from __future__ import annotations

import pytest
from planfixtures import (
    ARM64,
    BASE_HISTORY,
    FakeResolver,
    created_by,
    image_config,
    make_plan,
    target,
)

from builder.digest import Digest
from builder.errors import InvalidInstructionError, UnknownInstructionError
from builder.oci.types import Healthcheck, Platform
from builder.plan import (
    DEFAULT_PATH,
    ConfigStep,
    CopyStep,
    GitSource,
    PathSource,
    RunStep,
    UrlSource,
    WorkdirStep,
)

# --------------------------------------------------------------------------- CMD / ENTRYPOINT


@pytest.mark.parametrize(
    ("lines", "entrypoint", "cmd"),
    [
        # Docker's table: https://docs.docker.com/reference/dockerfile/#understand-how-cmd-and-entrypoint-interact
        ("", (), ("/bin/sh",)),  # inherited CMD
        ('CMD ["exec_cmd", "p1"]', (), ("exec_cmd", "p1")),
        ("CMD exec_cmd p1", (), ("/bin/sh", "-c", "exec_cmd p1")),
        ('ENTRYPOINT ["exec_entry", "p1"]', ("exec_entry", "p1"), ()),  # resets inherited CMD
        ("ENTRYPOINT exec_entry p1", ("/bin/sh", "-c", "exec_entry p1"), ()),
        ('ENTRYPOINT ["e"]\nCMD ["c"]', ("e",), ("c",)),
        ('CMD ["c"]\nENTRYPOINT ["e"]', ("e",), ("c",)),  # a CMD of this stage is kept
        ('ENTRYPOINT ["e"]\nCMD c p', ("e",), ("/bin/sh", "-c", "c p")),
        ("CMD []", (), ()),
    ],
)
def test_cmd_and_entrypoint(lines: str, entrypoint: tuple[str, ...], cmd: tuple[str, ...]) -> None:
    config = target(f"FROM alpine\n{lines}\n").config.config
    assert (config.entrypoint, config.cmd) == (entrypoint, cmd)


def test_cmd_sets_args_escaped_and_entrypoint_does_not() -> None:
    assert target("FROM alpine\nCMD x\n").config.config.args_escaped
    assert not target("FROM alpine\nENTRYPOINT x\n").config.config.args_escaped


def test_entrypoint_in_a_child_stage_resets_the_parents_cmd() -> None:
    config = target('FROM alpine AS a\nCMD ["c"]\nFROM a\nENTRYPOINT ["e"]\n').config.config
    assert (config.entrypoint, config.cmd) == (("e",), ())


# --------------------------------------------------------------------------- SHELL


def test_shell_applies_to_run_cmd_and_entrypoint_shell_forms() -> None:
    stage = target(
        'FROM alpine\nRUN a\nSHELL ["/bin/bash", "-eo", "pipefail", "-c"]\nRUN b && c\n'
        'RUN ["exec"]\nCMD d\nENTRYPOINT e\n'
    )
    runs = [s for s in stage.steps if isinstance(s, RunStep)]
    assert [r.args for r in runs] == [
        ("/bin/sh", "-c", "a"),
        ("/bin/bash", "-eo", "pipefail", "-c", "b && c"),
        ("exec",),
    ]
    config = stage.config.config
    assert config.cmd == ("/bin/bash", "-eo", "pipefail", "-c", "d")
    assert config.entrypoint == ("/bin/bash", "-eo", "pipefail", "-c", "e")
    assert config.shell == ("/bin/bash", "-eo", "pipefail", "-c")


def test_shell_is_inherited_from_the_base_image() -> None:
    resolver = FakeResolver(images={"pwsh": image_config(shell=("pwsh", "-Command"))})
    run = target("FROM pwsh\nRUN Get-Date\n", resolver=resolver).steps[0]
    assert isinstance(run, RunStep)
    assert run.args == ("pwsh", "-Command", "Get-Date")


# --------------------------------------------------------------------------- WORKDIR and USER


def test_workdir_relative_joins_onto_the_previous_one() -> None:
    stage = target("FROM alpine\nWORKDIR /a\nWORKDIR b\nWORKDIR ../c/./d\nRUN pwd\n")
    workdirs = [s for s in stage.steps if isinstance(s, WorkdirStep)]
    assert [w.path for w in workdirs] == ["/a", "/a/b", "/a/c/d"]
    assert [created_by(w) for w in workdirs] == ["WORKDIR /a", "WORKDIR /a/b", "WORKDIR /a/c/d"]
    assert all(w.history.empty_layer is False for w in workdirs)
    run = stage.steps[-1]
    assert isinstance(run, RunStep)
    assert run.workdir == "/a/c/d"
    assert stage.config.config.working_dir == "/a/c/d"


def test_workdir_absolute_is_kept_as_written_and_cleaned_for_mkdir() -> None:
    stage = target("FROM alpine\nWORKDIR /app/\n")
    step = stage.steps[0]
    assert isinstance(step, WorkdirStep)
    assert step.path == "/app"
    assert created_by(step) == "WORKDIR /app/"
    assert stage.config.config.working_dir == "/app/"


def test_workdir_root_makes_no_layer() -> None:
    step = target("FROM alpine\nWORKDIR /\n").steps[0]
    assert isinstance(step, ConfigStep)
    assert step.history is not None
    assert step.history.empty_layer


def test_workdir_is_created_as_the_current_user() -> None:
    step = target("FROM alpine\nUSER app\nWORKDIR /home/app\n").steps[1]
    assert isinstance(step, WorkdirStep)
    assert step.user == "app"


def test_run_uses_the_current_user_and_default_workdir() -> None:
    stage = target("FROM alpine\nRUN a\nUSER 1000:1000\nRUN b\n")
    first, _, second = stage.steps
    assert isinstance(first, RunStep)
    assert isinstance(second, RunStep)
    assert (first.user, first.workdir) == ("", "/")
    assert second.user == "1000:1000"
    assert stage.config.config.user == "1000:1000"


def test_base_image_workdir_and_user_apply() -> None:
    resolver = FakeResolver(images={"img": image_config(working_dir="/srv", user="nobody")})
    stage = target("FROM img\nRUN a\nWORKDIR sub\n", resolver=resolver)
    run, wd = stage.steps
    assert isinstance(run, RunStep)
    assert (run.workdir, run.user) == ("/srv", "nobody")
    assert isinstance(wd, WorkdirStep)
    assert wd.path == "/srv/sub"


# --------------------------------------------------------------------------- bases


def test_scratch_config_has_default_path_and_root_workdir() -> None:
    stage = target("FROM scratch\nCOPY a /a\n", platform=ARM64)
    config = stage.config
    assert (config.os, config.architecture) == ("linux", "arm64")
    assert config.config.env == (f"PATH={DEFAULT_PATH}",)
    assert config.config.working_dir == "/"
    assert config.diff_ids == ()
    assert len(config.history) == 1


def test_image_base_config_keeps_its_history_and_layers_and_gets_path() -> None:
    resolver = FakeResolver(images={"nopath": image_config(env=("A=1",))})
    stage = target("FROM nopath\nENV B=2\n", resolver=resolver)
    config = stage.config
    assert config.created is None
    assert config.config.env == ("A=1", f"PATH={DEFAULT_PATH}", "B=2")
    assert config.history[: len(BASE_HISTORY)] == BASE_HISTORY
    assert len(config.diff_ids) == 1


def test_env_replaces_in_place_in_the_config() -> None:
    resolver = FakeResolver(images={"img": image_config(env=("PATH=/bin", "A=1", "B=2"))})
    config = target("FROM img\nENV A=x C=3\n", resolver=resolver).config.config
    assert config.env == ("PATH=/bin", "A=x", "B=2", "C=3")


def test_child_stage_starts_from_the_parent_config() -> None:
    text = (
        "FROM alpine AS a\nENV A=1\nWORKDIR /w\nLABEL l=1\nONBUILD RUN echo trigger\n"
        "FROM a\nRUN x\n"
    )
    p = make_plan(text)
    config = p.target.config.config
    assert config.env_value("A") == "1"
    assert config.working_dir == "/w"
    assert config.labels == (("l", "1"),)
    assert config.on_build == ()
    assert p.stage(0).config.config.on_build == ("RUN echo trigger",)
    first = p.target.steps[0]
    assert isinstance(first, RunStep)
    assert first.onbuild
    assert first.args == ("/bin/sh", "-c", "echo trigger")
    assert first.workdir == "/w"


def test_explicit_platform_overrides_the_target_image_platform() -> None:
    resolver = FakeResolver(images={"arm": image_config(platform=ARM64)})
    text = "FROM --platform=linux/arm64 arm\n"
    implicit = target(text, resolver=resolver)
    assert implicit.config.architecture == "arm64"
    v7 = Platform(os="linux", architecture="arm", variant="v7")
    explicit = target(text, resolver=resolver, platform=v7, platform_explicit=True)
    assert (explicit.config.architecture, explicit.config.variant) == ("arm", "v7")


# --------------------------------------------------------------------------- ONBUILD


def test_onbuild_triggers_of_the_base_image_run_first() -> None:
    resolver = FakeResolver(
        images={
            "parent": image_config(
                on_build=("ENV T=1", "RUN echo $T", "COPY . /app"), working_dir="/app"
            )
        }
    )
    stage = target("FROM parent\nRUN own\n", resolver=resolver)
    kinds = [(type(s).__name__, s.onbuild) for s in stage.steps]
    assert kinds == [
        ("ConfigStep", True),
        ("RunStep", True),
        ("CopyStep", True),
        ("RunStep", False),
    ]
    run = stage.steps[1]
    assert isinstance(run, RunStep)
    assert "T=1" in run.env
    assert stage.steps[1].span == stage.span  # located at the FROM
    assert stage.config.config.on_build == ()
    assert [created_by(s) for s in stage.steps[:3]] == [
        "ENV T=1",
        "RUN /bin/sh -c echo $T # buildkit",
        "COPY . /app # buildkit",
    ]


def test_onbuild_heredoc_trigger() -> None:
    text = "FROM alpine AS a\nONBUILD COPY <<EOF /greeting\nhello\nEOF\nFROM a\n"
    p = make_plan(text)
    assert p.stage(0).config.config.on_build == ("COPY <<EOF /greeting\nhello\nEOF",)
    step = p.target.steps[0]
    assert isinstance(step, CopyStep)
    assert [(f.name, f.data) for f in step.inline_files] == [("EOF", "hello\n")]


def test_a_broken_trigger_fails_the_child_build_at_its_from() -> None:
    resolver = FakeResolver(
        images={
            "bad": image_config(on_build=("NOTACMD x",)),
            "two": image_config(on_build=("RUN a\nRUN b",)),
            "empty": image_config(on_build=("ENV",)),
            "q": image_config(on_build=('RUN ["unterminated',)),
        }
    )
    with pytest.raises(UnknownInstructionError) as unknown:
        make_plan("FROM alpine\nRUN x\nFROM bad\n", resolver=resolver)
    assert unknown.value.message == "unknown instruction: NOTACMD"
    assert unknown.value.span is not None
    assert unknown.value.span.line == 3
    with pytest.raises(InvalidInstructionError) as err:
        make_plan("FROM two\n", resolver=resolver)
    assert err.value.message == "onbuild trigger should be a single expression"
    with pytest.raises(InvalidInstructionError) as err:
        make_plan("ARG X\nFROM empty\n", resolver=resolver)
    assert err.value.message == "ENV requires at least one argument"
    assert err.value.span is not None
    assert err.value.span.line == 2
    # not JSON, so a shell form: no error
    step = make_plan("FROM q\n", resolver=resolver).target.steps[0]
    assert isinstance(step, RunStep)
    assert step.args == ("/bin/sh", "-c", '["unterminated')


def test_onbuild_records_the_trigger_without_history() -> None:
    stage = target("FROM alpine\nONBUILD RUN make\nONBUILD COPY . /src\n")
    assert stage.config.config.on_build == ("RUN make", "COPY . /src")
    assert all(isinstance(s, ConfigStep) and s.history is None for s in stage.steps)
    assert len(stage.config.history) == len(BASE_HISTORY)


# --------------------------------------------------------------------------- metadata


def test_labels_and_request_labels_on_the_target_only() -> None:
    p = make_plan(
        'FROM alpine AS a\nLABEL a=1 "b c"="d e"\nFROM a\nLABEL a=2\n',
        labels=(("req", "x"),),
    )
    assert p.target.config.config.labels == (("a", "2"), ("b c", "d e"), ("req", "x"))
    assert make_plan(
        "FROM alpine AS a\nLABEL a=1\nFROM a\n", target="a", labels=(("r", "1"),)
    ).target.config.config.labels == (("a", "1"), ("r", "1"))
    p = make_plan("FROM alpine AS a\nLABEL a=1\nFROM a\n", labels=(("r", "1"),))
    assert p.stage(0).config.config.labels == (("a", "1"),)


def test_expose_volume_stopsignal_healthcheck_maintainer() -> None:
    stage = target(
        "FROM alpine\nARG P=8080\nEXPOSE $P 53/udp 7000-7001\nVOLUME /data '/logs'\n"
        'VOLUME ["/x", "/y"]\nSTOPSIGNAL SIGQUIT\nMAINTAINER me <me@example.com>\n'
        "HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/\n"
    )
    config = stage.config
    assert config.config.exposed_ports == ("53/udp", "7000/tcp", "7001/tcp", "8080/tcp")
    assert config.config.volumes == ("/data", "/logs", "/x", "/y")
    assert config.config.stop_signal == "SIGQUIT"
    assert config.author == "me <me@example.com>"
    assert config.config.healthcheck == Healthcheck(
        test=("CMD-SHELL", "curl -f http://localhost/"),
        interval=5_000_000_000,
        timeout=0,
        start_period=0,
        start_interval=0,
        retries=3,
    )
    assert config.config.to_json()["Healthcheck"] == {
        "Test": ["CMD-SHELL", "curl -f http://localhost/"],
        "Interval": 5_000_000_000,
        "Retries": 3,
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("STOPSIGNAL SIGNOPE", "invalid signal: SIGNOPE"),
        ("STOPSIGNAL 0", "invalid signal: 0"),
        ("EXPOSE 80/xyz", 'invalid port: "80/xyz": invalid proto: xyz'),
        ("EXPOSE abc", "invalid containerPort: abc"),
        ("EXPOSE 70000", "invalid containerPort: 70000"),
        ("EXPOSE 9-1", "invalid containerPort: 9-1"),
        (
            "COPY --chmod=999 a /a",
            ("invalid chmod parameter: '999'. it should be octal string and between 0 and 07777"),
        ),
        (
            "COPY --chmod=17777 a /a",
            ("invalid chmod parameter: '17777'. it should be octal string and between 0 and 07777"),
        ),
        ("COPY https://example.com/x /x", "source can't be a URL for COPY"),
        ("COPY https://github.com/o/r.git /x", "source can't be a git ref for COPY"),
        ("ADD --checksum=sha256:00 a b /x/", "checksum can't be specified for multiple sources"),
        ("ADD --checksum=sha256:00 local /x", "checksum requires HTTP(S) or Git sources"),
        ("ADD --checksum=md5:abc https://e.com/f /x", "unsupported digest algorithm"),
        ("ADD --checksum=abc https://e.com/f /x", "invalid checksum digest format"),
        ("ADD --checksum=sha256:00 https://e.com/f /x", "invalid checksum digest length"),
        (
            "ADD --checksum=sha256:" + "G" * 64 + " https://e.com/f /x",
            "invalid checksum digest format",
        ),
        ("RUN --mount=type=bind,target=/ true", 'invalid mount target "/"'),
    ],
)
def test_dispatch_errors_are_located(line: str, message: str) -> None:
    with pytest.raises(InvalidInstructionError) as err:
        make_plan(f"FROM alpine\nRUN ok\n{line}\n")
    assert err.value.message == message
    assert err.value.span is not None
    assert err.value.span.line == 3


def test_copy_sources_are_classified_once() -> None:
    digest = "sha256:" + "a" * 64
    steps = target(
        "FROM alpine\n"
        "COPY a b* /d/\n"
        f"ADD --checksum={digest} https://example.com/f.tgz /x\n"
        "ADD https://github.com/o/r.git git@github.com:o/r.git /src/\n"
    ).steps
    kinds = [s.sources for s in steps if isinstance(s, CopyStep)]
    assert kinds == [
        (PathSource(path="a"), PathSource(path="b*")),
        (UrlSource(url="https://example.com/f.tgz", checksum=Digest.parse(digest)),),
        (
            GitSource(url="https://github.com/o/r.git"),
            GitSource(url="git@github.com:o/r.git"),
        ),
    ]


@pytest.mark.parametrize("line", ["STOPSIGNAL 9", "STOPSIGNAL kill", "STOPSIGNAL SIGRTMIN+3"])
def test_valid_stop_signals(line: str) -> None:
    assert target(f"FROM alpine\n{line}\n").config.config.stop_signal == line.split()[1]


@pytest.mark.parametrize("mode", ["755", "0644", "u+x", "go=rX,u=rwx", "+x", "a-w"])
def test_valid_chmod(mode: str) -> None:
    step = target(f"FROM alpine\nCOPY --chmod={mode} a /a\n").steps[0]
    assert isinstance(step, CopyStep)
    assert step.chmod == mode
