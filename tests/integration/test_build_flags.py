"""Build flags: -f -, -q, --iidfile, --memory, --cpus, --platform, --runtime."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.integration.enginekit import PYBUILD, Builder

pytestmark = pytest.mark.integration


def test_dockerfile_from_stdin_and_quiet_prints_only_the_id(pb: Builder) -> None:
    context = pb.context({"f.txt": "x\n"})
    tag = pb.new_tag()
    proc = subprocess.run(
        [PYBUILD, "build", "-q", "-t", tag, "-f", "-", str(context)],
        input="FROM busybox\nCOPY f.txt /f.txt\n",
        capture_output=True,
        text=True,
        env=pb.environ(),
        check=False,
        cwd=pb.workdir,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("sha256:")
    assert proc.stdout.strip() == proc.stdout.strip().split()[0]  # one line, the ID only
    assert "#1" not in proc.stderr  # no progress in quiet mode
    inspect = pb.cli("run", tag, "cat", "/f.txt", check=True)
    assert inspect.stdout == "x\n"


def test_iidfile_names_the_tagged_image(pb: Builder) -> None:
    built = pb.build("FROM busybox\nRUN echo hi > /hi\n")
    assert built.image_id.startswith("sha256:")
    assert built.image_id == str(built.image.id)


def test_memory_limit_kills_a_hog_with_an_oom_message(pb: Builder) -> None:
    # the shell doubles a string until the 16 MiB limit stops it
    dockerfile = 'FROM busybox\nRUN a=x; while true; do a="$a$a"; done\n'
    built = pb.build(dockerfile, args=["--memory", "16m"], check=False)
    assert built.returncode == 1
    assert "out of memory" in built.stderr
    assert not pb.tagged(built.tag)


def test_cpu_limit_is_applied_inside_the_step(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox\n"
        "RUN cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu.max 2>/dev/null"
        " > /quota || true\n"
    )
    built = pb.build(dockerfile, args=["--cpus", "0.5"])
    assert "50000" in built.files["/quota"].text


def test_explicit_platform_is_recorded(pb: Builder) -> None:
    built = pb.build("FROM busybox\nENV A=1\n", args=["--platform", "linux/amd64"])
    assert built.config["Env"][-1] == "A=1"
    assert built.raw_config["architecture"] == "amd64"
    assert built.raw_config["os"] == "linux"


def test_runtime_flag_selects_crun(pb: Builder) -> None:
    """--runtime crun runs the step with crun: it works where crun can run, and otherwise fails
    with crun's own reason (not installed; or crun 1.8 refusing hybrid cgroup hosts)."""
    tag = pb.new_tag()
    built = pb.build(
        f"FROM busybox\nRUN echo {tag} > /ran\n", args=["--runtime", "crun"], check=False
    )
    if shutil.which("crun") is None:
        assert built.returncode == 1
        assert "crun" in built.stderr
    elif built.returncode != 0:
        assert "cgroups in hybrid mode not supported" in built.stderr
    else:
        assert built.files["/ran"].text == f"{tag}\n"
    assert "Traceback" not in built.stderr
