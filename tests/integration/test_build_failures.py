"""Failing builds: located errors, exit codes, nothing tagged, nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid

import pytest
from enginekit import PYBUILD, Builder, mounts, runc_containers, store_leftovers

pytestmark = pytest.mark.integration


def test_run_failure_reports_step_line_exit_code_and_output(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox\n"
        "ENV A=1\n"
        "RUN echo first-line && echo second-line >&2 && exit 3\n"
        "RUN echo never\n"
    )
    built = pb.build(dockerfile, check=False)
    assert built.returncode == 1
    err = built.stderr
    assert "[2/3] RUN echo first-line && echo second-line >&2 && exit 3" in err
    assert "Dockerfile:3" in err
    assert "exit code: 3" in err
    assert (
        'process "/bin/sh -c echo first-line && echo second-line >&2 && exit 3" '
        "did not complete successfully: exit code: 3" in err
    )
    assert "first-line" in err
    assert "second-line" in err
    assert "echo never" not in err
    assert built.stdout == ""
    assert not pb.tagged(built.tag)
    assert store_leftovers(pb.store_root) == []


def test_run_failure_with_tty_progress_shows_the_output_tail(pb: Builder) -> None:
    ctx = pb.context({})
    (ctx / "Dockerfile").write_text(
        f"FROM busybox\nRUN echo tail-{uuid.uuid4().hex[:6]} && exit 3\n"
    )
    tag = pb.new_tag()
    proc = pb.cli("build", "--progress=tty", "-t", tag, str(ctx))
    assert proc.returncode == 1
    assert "tail-" in proc.stderr
    assert "exit code: 3" in proc.stderr
    assert "Dockerfile:2" in proc.stderr
    assert not pb.tagged(tag)


def test_missing_copy_source_names_the_file(pb: Builder) -> None:
    built = pb.build(
        "FROM busybox\nCOPY present.txt nothere.txt /dst/\n", {"present.txt": "x"}, check=False
    )
    assert built.returncode == 1
    assert "Dockerfile:2" in built.stderr
    assert "failed to compute cache key" in built.stderr
    assert '"/nothere.txt": not found' in built.stderr
    assert not pb.tagged(built.tag)


def test_missing_copy_from_stage_source(pb: Builder) -> None:
    dockerfile = "FROM busybox AS a\nFROM scratch\nCOPY --from=a /no/such/file /x\n"
    built = pb.build(dockerfile, check=False)
    assert built.returncode == 1
    assert "Dockerfile:3" in built.stderr
    assert '"/no/such/file": not found' in built.stderr


@pytest.mark.parametrize(
    ("dockerfile", "line", "message"),
    [
        ("FROM busybox\nFOO bar\n", 2, "unknown instruction: FOO"),
        ("FROM busybox\nRUN true\nCOPY onlyone\n", 3, "COPY requires at least two arguments"),
        ("ENV A=1\nFROM busybox\n", 1, "no build stage in current context"),
        ("FROM busybox\nEXPOSE 80/xyz\n", 2, "invalid"),
        ("FROM busybox\nRUN <<EOF\necho unterminated\n", 2, "unterminated heredoc"),
        ("FROM busybox\nENV A ${B:?is required}\n", 2, "is required"),
    ],
)
def test_invalid_dockerfile_is_a_located_error(
    pb: Builder, dockerfile: str, line: int, message: str
) -> None:
    built = pb.build(dockerfile, check=False)
    assert built.returncode == 1, built.stderr
    assert f"Dockerfile:{line}" in built.stderr
    assert message in built.stderr
    assert "Traceback" not in built.stderr
    assert not pb.tagged(built.tag)


def test_missing_context_or_dockerfile(pb: Builder) -> None:
    proc = pb.cli("build", "-t", pb.new_tag(), str(pb.workdir / "does-not-exist"))
    assert proc.returncode == 1
    assert "Dockerfile" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sigterm_mid_run_leaves_nothing_behind(pb: Builder) -> None:
    ctx = pb.context({})
    marker = uuid.uuid4().hex
    (ctx / "Dockerfile").write_text(f"FROM busybox\nRUN echo {marker} && sleep 30\n")
    tag = pb.new_tag()
    proc = subprocess.Popen(
        [PYBUILD, "build", "--progress=plain", "-t", tag, str(ctx)],
        env=pb.environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not runc_containers(pb.store_root):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the RUN container never started"
            time.sleep(0.1)
        time.sleep(0.5)  # let `sleep 30` start inside the container
        assert any(m for m in mounts() if str(pb.store_root) in m)  # the overlay is up
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(
            timeout=10
        )  # "stops the build within seconds", not after sleep 30
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert "interrupted" in err or "ERROR" in err
    assert store_leftovers(pb.store_root) == []
    assert not pb.tagged(tag)
    fsck = pb.cli("fsck")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert fsck.stdout.startswith("ok:")
    # the store still works: the same build now completes
    (ctx / "Dockerfile").write_text(f"FROM busybox\nRUN echo {marker} > /done\n")
    again = pb.build(None, context_dir=ctx, tag=tag)
    assert again.files["/done"].text == f"{marker}\n"
