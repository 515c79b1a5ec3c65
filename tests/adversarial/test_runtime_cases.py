"""Checklist cases 25-33 (docs/SECURITY.md section 3, Runtime faults): interrupts, limits, failed
steps, the runtime check, what a RUN can see and reach, secrets; case 26 (SIGKILL) is
test_kill.py. Each runs the real CLI on the session store and checks the stated outcome."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from advkit import Sentinels, assert_clean_error, assert_store_consistent, rerun_succeeds
from enginekit import PYBUILD, Builder, runc_containers

pytestmark = pytest.mark.integration

GOOD = "FROM busybox\nRUN echo adversarial-runtime-ok > /ok\n"
INTERRUPT_TIMEOUT = 120.0  # the case says "about 10 s"; generous here, as the machine is shared


def _nonce() -> str:
    """A line that makes a build's steps its own (no cache hit from another test)."""
    return f"ENV NONCE={uuid.uuid4().hex}\n"


def _cache_records(store_root: Path) -> set[str]:
    return {p.name for p in (store_root / "cache").iterdir()}


# --------------------------------------------------------------------------- case 25


def test_case_25_sigint_during_run_exits_130_and_leaves_nothing(
    pb: Builder, sentinels: Sentinels
) -> None:
    dockerfile = f"FROM busybox\n{_nonce()}RUN sleep 1000\n"
    ctx = pb.context({"Dockerfile": dockerfile})
    tag = pb.new_tag()
    proc = subprocess.Popen(
        [PYBUILD, "build", "--progress=plain", "-t", tag, str(ctx)],
        env=pb.environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=pb.workdir,
    )
    try:
        deadline = time.monotonic() + INTERRUPT_TIMEOUT
        while not runc_containers(pb.store_root):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the RUN container never started"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=INTERRUPT_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("ERROR")] == ["ERROR: interrupted"]
    assert runc_containers(pb.store_root) == []
    assert [
        m for m in Path("/proc/self/mountinfo").read_text().splitlines() if str(pb.store_root) in m
    ] == []
    assert sorted(p.name for p in (pb.store_root / "tmp").iterdir()) == []
    assert not pb.tagged(tag)
    assert_store_consistent(pb.store_root)
    rerun_succeeds(pb, GOOD)


# --------------------------------------------------------------------------- case 27


def test_case_27_memory_limit_oom_kill_is_reported_and_not_cached(
    pb: Builder, sentinels: Sentinels
) -> None:
    # dd's 1 GiB block buffer is one allocation far over the 64 MiB limit
    dockerfile = f"FROM busybox\n{_nonce()}RUN dd if=/dev/zero of=/dev/null bs=1024M count=1\n"
    records = _cache_records(pb.store_root)
    built = pb.build(dockerfile, args=["--memory", "64m"], check=False)
    line = assert_clean_error(built, must_name="Dockerfile:3")
    assert "exit code: 137: killed: out of memory (limit 64MiB)" in line
    assert _cache_records(pb.store_root) == records
    assert not pb.tagged(built.tag)
    assert_store_consistent(pb.store_root)
    # the failed step was not cached: a rerun executes it again (and it fails the same way)
    again = pb.build(dockerfile, args=["--memory", "64m"], check=False, context_name="again")
    assert "[2/2] RUN dd" in again.stderr
    assert "CACHED" not in again.stderr.split("[2/2] RUN dd", 1)[1]
    assert "killed: out of memory (limit 64MiB)" in assert_clean_error(again)
    assert _cache_records(pb.store_root) == records
    rerun_succeeds(pb, GOOD, args=["--memory", "64m"])


# --------------------------------------------------------------------------- case 28


def test_case_28_failing_run_commits_nothing_and_keeps_earlier_cache(
    pb: Builder, sentinels: Sentinels
) -> None:
    head = f"FROM busybox\n{_nonce()}RUN echo kept > /kept\n"
    first = pb.build(head)
    records = _cache_records(pb.store_root)
    blobs = {p.name for p in (pb.store_root / "blobs" / "sha256").iterdir()}
    failing = head + "RUN echo last-words-$((6*7)) && exit 3\n"
    built = pb.build(failing, check=False, context_name="failing")
    line = assert_clean_error(built, must_name="Dockerfile:4")
    assert "exit code: 3" in line
    assert "last-words-42" in built.stderr  # the step's last log lines come with the error
    assert _cache_records(pb.store_root) == records  # no layer committed for the failed step
    assert {p.name for p in (pb.store_root / "blobs" / "sha256").iterdir()} == blobs
    assert not pb.tagged(built.tag)
    assert_store_consistent(pb.store_root)
    # the earlier steps' cache is intact: the same build is all cache hits, same image
    again = rerun_succeeds(pb, head)
    assert again.image_id == first.image_id
    assert again.stderr.count("CACHED") == 1, again.stderr
