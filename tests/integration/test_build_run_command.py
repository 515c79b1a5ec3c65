"""``pybuild run IMAGE [COMMAND...]`` on built images: CMD/ENTRYPOINT rules, -e, exit codes."""

from __future__ import annotations

import pytest
from enginekit import Builder, runc_containers

pytestmark = pytest.mark.integration

DOCKERFILE = (
    "FROM busybox\n"
    "ENV GREETING=hello\n"
    "WORKDIR /srv\n"
    "USER nobody\n"
    'CMD ["sh", "-c", "echo \\"$GREETING from $(pwd) as $(id -u)\\""]\n'
)


@pytest.fixture
def image(pb: Builder) -> str:
    return pb.build(DOCKERFILE).tag


def test_run_executes_the_cmd(pb: Builder, image: str) -> None:
    proc = pb.cli("run", image)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello from /srv as 65534\n"
    assert runc_containers(pb.store_root) == []


def test_run_propagates_the_exit_code(pb: Builder, image: str) -> None:
    proc = pb.cli("run", image, "sh", "-c", "echo out; exit 7")
    assert proc.returncode == 7
    assert proc.stdout == "out\n"


def test_run_env_overrides(pb: Builder, image: str) -> None:
    proc = pb.cli(
        "run", "-e", "GREETING=hi", "-e", "EXTRA=x", image, "sh", "-c", 'echo "$GREETING $EXTRA"'
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hi x\n"


def test_run_command_overrides_cmd(pb: Builder, image: str) -> None:
    proc = pb.cli("run", image, "echo", "override")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "override\n"


def test_run_user_and_workdir_flags(pb: Builder, image: str) -> None:
    proc = pb.cli("run", "-u", "0", "-w", "/tmp", image, "sh", "-c", "id -u; pwd")
    assert proc.stdout == "0\n/tmp\n"


def test_run_entrypoint(pb: Builder) -> None:
    tag = pb.build(
        'FROM busybox\nENTRYPOINT ["echo", "ep"]\nCMD ["default-arg"]\n', context_name="ep"
    ).tag
    assert pb.cli("run", tag).stdout == "ep default-arg\n"
    # a command replaces CMD only: ENTRYPOINT stays
    assert pb.cli("run", tag, "given").stdout == "ep given\n"
    # --entrypoint replaces ENTRYPOINT and drops the image's CMD
    assert pb.cli("run", "--entrypoint", "printf", tag, "%s-%s\n", "a", "b").stdout == "a-b\n"
    proc = pb.cli("run", "--entrypoint", "/bin/true", tag)
    assert proc.returncode == 0
    assert proc.stdout == ""
    assert pb.cli("run", "--entrypoint", "/bin/false", tag).returncode == 1


def test_run_unknown_image(pb: Builder) -> None:
    proc = pb.cli("run", "no-such-image-here:latest")
    assert proc.returncode == 1
    assert "no-such-image-here" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_does_not_change_the_image(pb: Builder, image: str) -> None:
    assert pb.cli("run", image, "sh", "-c", "echo x > /tmp/scribble").returncode == 0
    proc = pb.cli("run", image, "sh", "-c", "test -e /tmp/scribble; echo $?")
    assert proc.stdout == "1\n"
