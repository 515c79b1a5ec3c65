"""Every Dockerfile instruction built for real, checked against what BuildKit writes.

Expected image configs and history lines follow BuildKit's ``dockerfile2llb`` (``convert.go``:
``commitToHistory``, ``runCommandString``, the ``%q``/``%v``/``%+v`` formats) and the
Dockerfile reference; expected filesystems follow the RUN/COPY/WORKDIR semantics there.
"""

from __future__ import annotations

import pytest
from enginekit import DEFAULT_PATH, Builder, without_runtime_warning

pytestmark = pytest.mark.integration

COMMENT = "buildkit.dockerfile.v0"


def env_of(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


# --------------------------------------------------------------------------- FROM


def test_from_store_image_inherits_config_and_layers(pb: Builder) -> None:
    built = pb.build("FROM busybox\nENV A=1\n")
    base = pb.build("FROM busybox:latest\n")
    cfg = built.raw_config
    # BuildKit adds the default PATH when the base image has none; CMD comes from the base
    assert built.config["Env"] == [f"PATH={DEFAULT_PATH}", "A=1"]
    assert built.config["Cmd"] == ["sh"]
    assert cfg["os"] == "linux"
    assert cfg["rootfs"]["diff_ids"] == base.raw_config["rootfs"]["diff_ids"]
    assert len(built.history) == pb.busybox_history + 1
    last = built.history[-1]
    assert last["created_by"] == "ENV A=1"
    assert last["empty_layer"] is True
    assert last["comment"] == COMMENT
    assert "/bin/busybox" in built.files
    assert built.files["/bin/sh"].type == "symlink"


def test_from_scratch_has_only_the_copied_layer(pb: Builder) -> None:
    built = pb.build("FROM scratch\nCOPY hello.txt /\n", {"hello.txt": "hi\n"})
    cfg = built.raw_config
    assert len(cfg["rootfs"]["diff_ids"]) == 1
    assert built.config["Env"] == [f"PATH={DEFAULT_PATH}"]
    assert built.config["WorkingDir"] == "/"
    assert "Cmd" not in built.config
    assert built.created_by() == [("COPY hello.txt / # buildkit", False)]
    assert set(built.files) == {"/hello.txt"}
    assert built.files["/hello.txt"].content == b"hi\n"


def test_from_stage_continues_its_config_and_filesystem(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox AS base\n"
        "ENV A=from-base\n"
        "RUN echo base > /base.txt\n"
        "FROM base AS child\n"
        "ENV B=from-child\n"
        'RUN echo "$A $B" > /child.txt\n'
    )
    built = pb.build(dockerfile)
    assert built.config["Env"] == [f"PATH={DEFAULT_PATH}", "A=from-base", "B=from-child"]
    assert built.files["/base.txt"].text == "base\n"
    assert built.files["/child.txt"].text == "from-base from-child\n"
    assert built.created_by(skip=pb.busybox_history) == [
        ("ENV A=from-base", True),
        ("RUN /bin/sh -c echo base > /base.txt # buildkit", False),
        ("ENV B=from-child", True),
        ('RUN /bin/sh -c echo "$A $B" > /child.txt # buildkit', False),
    ]


def test_global_arg_in_from(pb: Builder) -> None:
    dockerfile = "ARG BASE=scratch\nFROM ${BASE}\nCOPY f /f\n"
    files = {"f": "x"}
    scratch = pb.build(dockerfile, files)
    assert len(scratch.raw_config["rootfs"]["diff_ids"]) == 1
    busy = pb.build(dockerfile, files, args=["--build-arg", "BASE=busybox"], context_name="c2")
    assert "/bin/busybox" in busy.files
    assert busy.files["/f"].content == b"x"


# --------------------------------------------------------------------------- RUN


def test_run_shell_form_uses_shell_instruction(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox\n"
        'SHELL ["/bin/env", "SHELLED=yes", "/bin/sh", "-c"]\n'
        'RUN echo "shell:$SHELLED" > /shell.txt\n'
        'CMD echo "cmd"\n'
    )
    built = pb.build(dockerfile)
    assert built.files["/shell.txt"].text == "shell:yes\n"
    assert built.config["Shell"] == ["/bin/env", "SHELLED=yes", "/bin/sh", "-c"]
    # the shell form of CMD uses SHELL too
    assert built.config["Cmd"] == ["/bin/env", "SHELLED=yes", "/bin/sh", "-c", 'echo "cmd"']
    assert built.created_by(skip=pb.busybox_history) == [
        ("SHELL [/bin/env SHELLED=yes /bin/sh -c]", True),
        (
            'RUN /bin/env SHELLED=yes /bin/sh -c echo "shell:$SHELLED" > /shell.txt # buildkit',
            False,
        ),
        ('CMD ["/bin/env" "SHELLED=yes" "/bin/sh" "-c" "echo \\"cmd\\""]', True),
    ]


def test_run_exec_form_is_not_expanded(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox\n"
        "ENV WORD=expanded\n"
        'RUN ["/bin/sh", "-c", "printf %s \\"$0\\" > /exec.txt", "$WORD"]\n'
    )
    built = pb.build(dockerfile)
    assert built.files["/exec.txt"].text == "$WORD"
    assert built.history[-1]["created_by"] == (
        'RUN /bin/sh -c printf %s "$0" > /exec.txt $WORD # buildkit'
    )


def test_run_env_is_env_plus_args_in_scope(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox\nENV E1=env-one\nARG A1=arg-default\nARG A2\nARG UNSET\nRUN env > /env.txt\n"
    )
    built = pb.build(dockerfile, args=["--build-arg", "A2=from-cli"])
    env = env_of(built.files["/env.txt"].text)
    assert env["E1"] == "env-one"
    assert env["A1"] == "arg-default"
    assert env["A2"] == "from-cli"
    assert "UNSET" not in env
    # ARGs are not persisted in the image
    assert built.config["Env"] == [f"PATH={DEFAULT_PATH}", "E1=env-one"]
    assert built.history[-1]["created_by"] == (
        "RUN |3 A1=arg-default A2=from-cli UNSET= /bin/sh -c env > /env.txt # buildkit"
    )
    assert [h["created_by"] for h in built.history[-3:-1]] == ["ARG A2=from-cli", "ARG UNSET"]


def test_env_overrides_arg_of_the_same_name(pb: Builder) -> None:
    dockerfile = "FROM busybox\nARG V=arg\nENV V=env\nRUN echo $V > /v.txt\n"
    built = pb.build(dockerfile, args=["--build-arg", "V=cli"])
    assert built.files["/v.txt"].text == "env\n"


def test_run_default_environment(pb: Builder) -> None:
    built = pb.build("FROM busybox\nRUN env > /env.txt && id -u > /uid.txt && pwd > /pwd.txt\n")
    env = env_of(built.files["/env.txt"].text)
    assert env["PATH"] == DEFAULT_PATH
    assert env["HOME"] == "/root"
    assert env["HOSTNAME"] == "buildkitsandbox"
    assert built.files["/uid.txt"].text == "0\n"
    assert built.files["/pwd.txt"].text == "/\n"


def test_run_as_user_and_home(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox\n"
        "USER nobody\n"
        "RUN id -u > /tmp/uid && id -g > /tmp/gid && echo $HOME > /tmp/home && touch /tmp/mine\n"
        "USER 1234:5678\n"
        "RUN id -u > /tmp/uid2 && id -g > /tmp/gid2\n"
    )
    built = pb.build(dockerfile)
    files = built.files
    assert files["/tmp/uid"].text == "65534\n"
    assert files["/tmp/gid"].text == "65534\n"
    assert files["/tmp/home"].text == "/home\n"
    assert (files["/tmp/mine"].uid, files["/tmp/mine"].gid) == (65534, 65534)
    assert files["/tmp/uid2"].text == "1234\n"
    assert files["/tmp/gid2"].text == "5678\n"
    assert (files["/tmp/uid2"].uid, files["/tmp/uid2"].gid) == (1234, 5678)
    assert built.config["User"] == "1234:5678"
    assert ("USER nobody", True) in built.created_by()


def test_run_heredocs(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox\n"
        "RUN <<EOF\n"
        "echo one > /h1.txt\n"
        "echo two >> /h1.txt\n"
        "EOF\n"
        "RUN <<EOF\n"
        "#!/bin/sh\n"
        'echo "$0" > /h2.txt\n'
        "EOF\n"
        "RUN cat > /h3.txt <<EOT && echo after >> /h3.txt\n"
        "in heredoc\n"
        "EOT\n"
    )
    built = pb.build(dockerfile)
    files = built.files
    assert files["/h1.txt"].text == "one\ntwo\n"
    # a body starting with #! is written to a 0755 file and executed
    assert files["/h2.txt"].text == "/dev/pipes/EOF\n"
    assert files["/h3.txt"].text == "in heredoc\nafter\n"
    assert built.created_by(skip=pb.busybox_history) == [
        ("RUN /bin/sh -c echo one > /h1.txt\necho two >> /h1.txt\n # buildkit", False),
        # BuildKit still prepends the shell: the script path is the shell's command string
        ("RUN /bin/sh -c /dev/pipes/EOF # buildkit", False),
        (
            "RUN /bin/sh -c cat > /h3.txt <<EOT && echo after >> /h3.txt\nin heredoc\nEOT"
            " # buildkit",
            False,
        ),
    ]
    assert "/dev/pipes" not in files


# --------------------------------------------------------------------------- metadata


def test_env_instruction_semantics(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox\n"
        "ENV A=1\n"
        'ENV A=2 B=$A C="two words"\n'
        "ENV LEGACY value with spaces\n"
        'RUN echo "$A|$B|$C|$LEGACY" > /env.txt\n'
    )
    built = pb.build(dockerfile)
    assert built.config["Env"] == [
        f"PATH={DEFAULT_PATH}",
        "A=2",
        "B=1",
        "C=two words",
        "LEGACY=value with spaces",
    ]
    assert built.files["/env.txt"].text == "2|1|two words|value with spaces\n"
    assert built.created_by(skip=pb.busybox_history)[:3] == [
        ("ENV A=1", True),
        ("ENV A=2 B=1 C=two words", True),
        ("ENV LEGACY=value with spaces", True),
    ]


def test_arg_scoping_and_build_args(pb: Builder) -> None:
    dockerfile = (
        "ARG GLOBAL=global-default\n"
        "FROM busybox\n"
        'RUN echo "[$GLOBAL]" > /g1.txt\n'
        "ARG GLOBAL\n"
        'RUN echo "[$GLOBAL]" > /g2.txt\n'
        "ARG LOCAL=local-default\n"
        'RUN echo "[$LOCAL]" > /l.txt\n'
    )
    built = pb.build(dockerfile)
    assert built.files["/g1.txt"].text == "[]\n"  # a global ARG is not in scope until declared
    assert built.files["/g2.txt"].text == "[global-default]\n"
    assert built.files["/l.txt"].text == "[local-default]\n"
    assert ("ARG GLOBAL=global-default", True) in built.created_by()
    assert ("ARG LOCAL=local-default", True) in built.created_by()
    overridden = pb.build(
        dockerfile,
        args=["--build-arg", "GLOBAL=cli-g", "--build-arg", "LOCAL=cli-l"],
        context_name="c2",
    )
    assert overridden.files["/g2.txt"].text == "[cli-g]\n"
    assert overridden.files["/l.txt"].text == "[cli-l]\n"
    assert "Env" in overridden.config
    assert not any(e.startswith(("GLOBAL=", "LOCAL=")) for e in overridden.config["Env"])


def test_label_and_cli_labels(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox AS base\n"
        "LABEL inherited=yes override=base\n"
        "FROM base\n"
        'LABEL a=1 "b c"="d e" override=child\n'
        "LABEL legacy value with spaces\n"
    )
    built = pb.build(dockerfile, args=["--label", "cli=yes", "--label", "a=from-cli"])
    assert built.config["Labels"] == {
        "inherited": "yes",
        "override": "child",
        "a": "from-cli",
        "b c": "d e",
        "legacy": "value with spaces",
        "cli": "yes",
    }
    assert built.created_by(skip=pb.busybox_history) == [
        ("LABEL inherited=yes override=base", True),
        ("LABEL a=1 b c=d e override=child", True),
        ("LABEL legacy=value with spaces", True),
    ]


def test_expose_volume_stopsignal_maintainer(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox\n"
        "ARG PORT=9000\n"
        "EXPOSE 80 443/udp 8000-8001 ${PORT}/tcp\n"
        'VOLUME ["/data", "/cache"]\n'
        "VOLUME /logs\n"
        "STOPSIGNAL SIGQUIT\n"
        "MAINTAINER Jane Doe <jane@example.com>\n"
    )
    built = pb.build(dockerfile)
    cfg = built.config
    assert cfg["ExposedPorts"] == {
        "80/tcp": {},
        "443/udp": {},
        "8000/tcp": {},
        "8001/tcp": {},
        "9000/tcp": {},
    }
    assert cfg["Volumes"] == {"/data": {}, "/cache": {}, "/logs": {}}
    assert cfg["StopSignal"] == "SIGQUIT"
    assert built.raw_config["author"] == "Jane Doe <jane@example.com>"
    assert built.created_by(skip=pb.busybox_history) == [
        ("ARG PORT=9000", True),
        # parseExpose sorts the raw words before expansion: "${PORT}/tcp" < "443/udp" < "80"
        ("EXPOSE [9000/tcp 443/udp 80/tcp 8000/tcp 8001/tcp]", True),
        ("VOLUME [/data /cache]", True),
        ("VOLUME [/logs]", True),
        ("STOPSIGNAL SIGQUIT", True),
        ("MAINTAINER Jane Doe <jane@example.com>", True),
    ]
    # metadata-only steps add no layers
    assert len(built.raw_config["rootfs"]["diff_ids"]) == 1


def test_workdir_is_created_and_relative_paths_join(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox\n"
        "WORKDIR /a/b\n"
        "WORKDIR c\n"
        "RUN pwd > /pwd.txt\n"
        "USER nobody\n"
        "WORKDIR /owned/by/nobody\n"
    )
    built = pb.build(dockerfile)
    files = built.files
    for path in ("/a", "/a/b", "/a/b/c"):
        assert files[path].type == "dir"
        assert files[path].mode == 0o755
        assert (files[path].uid, files[path].gid) == (0, 0)
    assert files["/pwd.txt"].text == "/a/b/c\n"
    # WORKDIR creates missing directories as the current USER
    assert (files["/owned/by/nobody"].uid, files["/owned/by/nobody"].gid) == (65534, 65534)
    assert built.config["WorkingDir"] == "/owned/by/nobody"
    assert built.created_by(skip=pb.busybox_history) == [
        ("WORKDIR /a/b", False),
        ("WORKDIR /a/b/c", False),
        ("RUN /bin/sh -c pwd > /pwd.txt # buildkit", False),
        ("USER nobody", True),
        ("WORKDIR /owned/by/nobody", False),
    ]
    assert len(built.raw_config["rootfs"]["diff_ids"]) == 1 + 4


@pytest.mark.parametrize(
    ("instructions", "entrypoint", "cmd"),
    [
        # ENTRYPOINT resets the CMD inherited from the base image (busybox: ["sh"])
        ('ENTRYPOINT ["/bin/echo", "ep"]', ["/bin/echo", "ep"], None),
        # ... but not a CMD set in this stage, before or after
        ('CMD ["c1"]\nENTRYPOINT ["/bin/echo"]', ["/bin/echo"], ["c1"]),
        ('ENTRYPOINT ["/bin/echo"]\nCMD ["c2"]', ["/bin/echo"], ["c2"]),
        ("ENTRYPOINT echo shell form", ["/bin/sh", "-c", "echo shell form"], None),
        ("CMD echo shell", None, ["/bin/sh", "-c", "echo shell"]),
        ('CMD ["a"]\nCMD ["b"]', None, ["b"]),
        ("CMD []", None, None),  # an empty Cmd is omitted (omitempty)
    ],
)
def test_cmd_entrypoint_interplay(
    pb: Builder, instructions: str, entrypoint: list[str] | None, cmd: list[str] | None
) -> None:
    built = pb.build(f"FROM busybox\n{instructions}\n")
    assert built.config.get("Entrypoint") == entrypoint
    assert built.config.get("Cmd") == cmd


def test_cmd_entrypoint_history(pb: Builder) -> None:
    built = pb.build('FROM busybox\nENTRYPOINT ["/bin/echo", "a b"]\nCMD echo x\n')
    assert built.created_by(skip=pb.busybox_history) == [
        ('ENTRYPOINT ["/bin/echo" "a b"]', True),
        ('CMD ["/bin/sh" "-c" "echo x"]', True),
    ]


def test_healthcheck(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox\n"
        "HEALTHCHECK --interval=5s --timeout=3s --start-period=1m30s --retries=2 "
        "CMD wget -q -O- http://localhost/ || exit 1\n"
    )
    built = pb.build(dockerfile)
    assert built.config["Healthcheck"] == {
        "Test": ["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"],
        "Interval": 5_000_000_000,
        "Timeout": 3_000_000_000,
        "StartPeriod": 90_000_000_000,
        "Retries": 2,
    }
    assert built.history[-1]["created_by"] == (
        "HEALTHCHECK {Test:[CMD-SHELL wget -q -O- http://localhost/ || exit 1] Interval:5s "
        "Timeout:3s StartPeriod:1m30s StartInterval:0s Retries:2}"
    )
    none = pb.build(dockerfile + "HEALTHCHECK NONE\n", context_name="c2")
    assert none.config["Healthcheck"]["Test"] == ["NONE"]


def test_onbuild_triggers_run_in_the_child_build(pb: Builder) -> None:
    base_tag = pb.new_tag("onbuild-base")
    base = pb.build(
        "FROM busybox\n"
        "ONBUILD COPY trigger.txt /from-child-context.txt\n"
        "ONBUILD RUN echo triggered > /onbuild.txt\n"
        "ONBUILD ENV TRIGGERED=yes\n"
        "RUN echo base > /base.txt\n",
        tag=base_tag,
        context_name="base",
    )
    assert base.config["OnBuild"] == [
        "COPY trigger.txt /from-child-context.txt",
        "RUN echo triggered > /onbuild.txt",
        "ENV TRIGGERED=yes",
    ]
    # BuildKit writes no history entry for ONBUILD
    assert [h for h in base.created_by() if h[0].startswith("ONBUILD")] == []
    assert "/onbuild.txt" not in base.files
    child = pb.build(
        f"FROM {base_tag}\nRUN cat /onbuild.txt /from-child-context.txt > /seen.txt\n",
        {"trigger.txt": "child context\n"},
        context_name="child",
    )
    assert child.files["/onbuild.txt"].text == "triggered\n"
    assert child.files["/seen.txt"].text == "triggered\nchild context\n"
    assert "TRIGGERED=yes" in child.config["Env"]
    assert "OnBuild" not in child.config or not child.config["OnBuild"]  # not inherited
    tail = child.created_by(skip=len(base.history))
    assert tail == [
        ("COPY trigger.txt /from-child-context.txt # buildkit", False),
        ("RUN /bin/sh -c echo triggered > /onbuild.txt # buildkit", False),
        ("ENV TRIGGERED=yes", True),
        ("RUN /bin/sh -c cat /onbuild.txt /from-child-context.txt > /seen.txt # buildkit", False),
    ]
    # a grandchild does not run them again
    grandchild = pb.build(f"FROM {child.tag}\nRUN true\n", context_name="grandchild")
    assert len(grandchild.history) == len(child.history) + 1


def test_full_config_and_history(pb: Builder) -> None:
    """One Dockerfile using every metadata instruction: the config and history BuildKit writes."""
    dockerfile = (
        "FROM busybox\n"
        "LABEL maintainer=team\n"
        "ARG VERSION=1.0\n"
        "ENV APP_VERSION=$VERSION\n"
        "WORKDIR /app\n"
        "COPY app.sh .\n"
        "RUN chmod +x app.sh\n"
        "USER www-data\n"
        "EXPOSE 8080\n"
        "VOLUME /app/data\n"
        "STOPSIGNAL SIGINT\n"
        'ENTRYPOINT ["./app.sh"]\n'
        'CMD ["--serve"]\n'
    )
    built = pb.build(dockerfile, {"app.sh": "#!/bin/sh\necho app\n"})
    cfg = built.config
    assert cfg["Env"] == [f"PATH={DEFAULT_PATH}", "APP_VERSION=1.0"]
    assert cfg["WorkingDir"] == "/app"
    assert cfg["User"] == "www-data"
    assert cfg["ExposedPorts"] == {"8080/tcp": {}}
    assert cfg["Volumes"] == {"/app/data": {}}
    assert cfg["StopSignal"] == "SIGINT"
    assert cfg["Entrypoint"] == ["./app.sh"]
    assert cfg["Cmd"] == ["--serve"]
    assert cfg["Labels"] == {"maintainer": "team"}
    assert built.created_by(skip=pb.busybox_history) == [
        ("LABEL maintainer=team", True),
        ("ARG VERSION=1.0", True),
        ("ENV APP_VERSION=1.0", True),
        ("WORKDIR /app", False),
        ("COPY app.sh . # buildkit", False),
        ("RUN |1 VERSION=1.0 /bin/sh -c chmod +x app.sh # buildkit", False),
        ("USER www-data", True),
        ("EXPOSE [8080/tcp]", True),
        ("VOLUME [/app/data]", True),
        ("STOPSIGNAL SIGINT", True),
        ('ENTRYPOINT ["./app.sh"]', True),
        ('CMD ["--serve"]', True),
    ]
    assert all(h["comment"] == COMMENT for h in built.history[pb.busybox_history :])
    assert all("created" in h for h in built.history[pb.busybox_history :])
    # one diff_id per non-empty history entry
    layers = [h for h in built.history if not h.get("empty_layer")]
    assert len(layers) == len(built.raw_config["rootfs"]["diff_ids"])
    files = built.files
    assert files["/app/app.sh"].mode == 0o755
    assert files["/app/app.sh"].content == b"#!/bin/sh\necho app\n"


def test_quiet_build_prints_only_the_image_id(pb: Builder) -> None:
    ctx = pb.context({"f": "quiet"})
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY f /f\n")
    iid = pb.workdir / "iid.txt"
    tag = pb.new_tag()
    proc = pb.cli("build", "-q", "-t", tag, "--iidfile", str(iid), str(ctx), check=True)
    assert proc.stdout == iid.read_text() + "\n"
    assert proc.stdout.startswith("sha256:")
    assert without_runtime_warning(proc.stderr) == ""
    assert pb.tagged(tag)


def test_run_deletions_and_replacements_reach_the_image(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox\n"
        "RUN mkdir -p /data/sub && echo old > /data/sub/old.txt && echo keep > /data/keep.txt"
        " && echo x > /hard1 && ln /hard1 /hard2\n"
        # deleting lower files (whiteouts) and replacing a whole directory (opaque)
        "RUN rm /bin/vi /data/keep.txt && rm -rf /data/sub && mkdir /data/sub"
        " && echo new > /data/sub/new.txt\n"
        "RUN rm -rf /var && mkdir /var && echo fresh > /var/only\n"
    )
    built = pb.build(dockerfile)
    files = built.files
    assert "/bin/vi" not in files
    assert files["/bin/sh"].type == "symlink"
    assert "/data/keep.txt" not in files
    assert sorted(p for p in files if p.startswith("/data/")) == ["/data/sub", "/data/sub/new.txt"]
    assert sorted(p for p in files if p.startswith("/var/")) == ["/var/only"]  # was /var/www
    assert files["/hard1"].content == files["/hard2"].content == b"x\n"
    # no overlay artefacts (whiteout devices, runc mountpoint stubs) leak into the layers
    for i in range(1, len(built.image.layers)):
        for name in built.layer_names(i):
            assert not name.startswith(("dev/", "proc/", "sys/")), name
    assert not any(e.type == "char" for e in files.values())
    assert "/etc/hostname" not in files
    assert "/etc/resolv.conf" not in files


def test_copy_resolves_destination_symlinks_in_the_image(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox\n"
        "RUN mkdir -p /real && ln -s /real /link && ln -s ../real /var/rel\n"
        "COPY a.txt /link/\n"
        "COPY a.txt /var/rel/b.txt\n"
        "ENV TARGET=/link\n"
        "WORKDIR $TARGET/w\n"
    )
    built = pb.build(dockerfile, {"a.txt": "A\n"})
    files = built.files
    assert files["/link"].type == "symlink"
    assert files["/real/a.txt"].content == b"A\n"
    assert files["/real/b.txt"].content == b"A\n"
    assert files["/real/w"].type == "dir"
    assert built.config["WorkingDir"] == "/link/w"
