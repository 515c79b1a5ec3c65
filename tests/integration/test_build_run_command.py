"""``pybuild run IMAGE [COMMAND...]`` on built images: CMD/ENTRYPOINT rules, -e, exit codes,
signals."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
from enginekit import PYBUILD, Builder, runc_containers, store_leftovers, without_runtime_warning

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


def _runtime_spy(directory: Path) -> tuple[dict[str, str], Path]:
    """An environment whose ``crun`` is a script that logs its arguments and runs runc
    (same CLI): which binary pybuild starts shows on any host, hybrid cgroups or not."""
    log = directory / "crun-calls"
    bindir = directory / "bin"
    bindir.mkdir()
    spy = bindir / "crun"
    spy.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec runc "$@"\n')
    spy.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    return env, log


@pytest.mark.parametrize("command", ["run", "build"])
def test_runtime_crun_is_the_binary_started(pb: Builder, command: str) -> None:
    env, log = _runtime_spy(pb.workdir)
    env["PYBUILD_ROOT"] = str(pb.store_root)
    if command == "run":
        argv = ["run", "--runtime", "crun", "busybox", "echo", "via crun"]
    else:
        ctx = pb.context({"Dockerfile": f"FROM busybox\nRUN echo {pb.new_tag()}\n"})
        argv = ["build", "--runtime", "crun", "--progress", "plain", str(ctx)]
    proc = subprocess.run(
        [PYBUILD, *argv], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    if command == "run":
        assert proc.stdout == "via crun\n"
    calls = log.read_text().splitlines()
    runs = [c for c in calls if " run " in f" {c} "]
    assert len(runs) == 1
    assert f"--root {pb.store_root / 'crun'} " in runs[0]
    assert "--keep" not in runs[0]  # crun has no `run --keep`: pybuild drives it as crun


def test_run_with_the_real_crun(pb: Builder, image: str) -> None:
    """The installed crun runs the container, or (crun 1.8 on a hybrid cgroup host such as
    this CI's) refuses with its own reason: either way it is crun that ran."""
    proc = pb.cli("run", "--runtime", "crun", image, "echo", "real crun")
    if proc.returncode == 0:
        assert proc.stdout == "real crun\n"
    else:
        assert "cgroups in hybrid mode not supported" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_unknown_image(pb: Builder) -> None:
    proc = pb.cli("run", "no-such-image-here:latest")
    assert proc.returncode == 1
    assert "no-such-image-here" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_does_not_change_the_image(pb: Builder, image: str) -> None:
    assert pb.cli("run", image, "sh", "-c", "echo x > /tmp/scribble").returncode == 0
    proc = pb.cli("run", image, "sh", "-c", "test -e /tmp/scribble; echo $?")
    assert proc.stdout == "1\n"


# --------------------------------------------------------------------------- signals


def _start(pb: Builder, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYBUILD, "run", *argv],
        env=pb.environ(),
        cwd=pb.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _first_line(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the container printed nothing"
    return proc.stdout.readline()


def _finish(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 42), (signal.SIGINT, 43)])
def test_run_forwards_a_signal_and_exits_with_the_container_status(
    pb: Builder, signum: signal.Signals, code: int
) -> None:
    script = (
        "trap 'echo got TERM; exit 42' TERM; trap 'echo got INT; exit 43' INT; echo ready;"
        " while :; do sleep 0.1; done"
    )
    proc = _start(pb, "busybox", "sh", "-c", script)
    assert _first_line(proc) == "ready\n"
    proc.send_signal(signum)
    out, err = _finish(proc, timeout=30)
    assert proc.returncode == code  # the container's own status, as docker run exits
    assert out == f"got {signum.name.removeprefix('SIG')}\n"
    assert (
        without_runtime_warning(err) == ""
    )  # no "ERROR: interrupted": docker run prints nothing itself
    assert store_leftovers(pb.store_root) == []


def test_run_kills_a_container_that_ignores_the_signal(pb: Builder) -> None:
    # PID 1 of a container ignores SIGTERM unless it has a handler: `sleep` goes on sleeping
    proc = _start(pb, "--stop-timeout", "1", "busybox", "sh", "-c", "echo ready; exec sleep 30")
    assert _first_line(proc) == "ready\n"
    time.sleep(0.3)  # let `exec sleep` start
    proc.send_signal(signal.SIGTERM)
    out, err = _finish(proc, timeout=20)
    # killed after the stop timeout: `sleep 30` ending on its own would exit 0
    assert proc.returncode == 128 + signal.SIGKILL
    assert (out, without_runtime_warning(err)) == ("", "")
    assert store_leftovers(pb.store_root) == []
