"""The runc driver against a fake CLI-compatible runtime (no root, no containers)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from builder.errors import EnvironmentUnavailableError, ExecutionError
from builder.runtime import oci
from builder.runtime.oci import (
    CgroupLayout,
    Crun,
    ExitStatus,
    Runc,
    cgroups_path_for,
    memory_cgroup_dir,
    oom_kill_count,
)

# A stand-in for runc: "run" executes process.args on the host (no isolation) with the
# bundle's config, records every subcommand, and keeps a state dir per container like runc
# (removed as "run" exits, unless it was given --keep or died first).
FAKE = r"""#!PYTHON
import json, os, signal, subprocess, sys
child, pending = None, []
def relay(signum, frame):  # like runc run: every signal goes to the container's process
    if child is None:
        pending.append(signum)
    else:
        child.send_signal(signum)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, relay)
args = sys.argv[1:]
root = args[args.index("--root") + 1]
with open(os.path.join(root, "calls.log"), "a") as f:
    f.write(json.dumps(args) + "\n")
log = args[args.index("--log") + 1] if "--log" in args else None
cmd = [a for a in args if a in ("run", "kill", "delete", "list")][0]
cid = args[-1] if cmd != "kill" else args[args.index("kill") + 1]
if cmd == "run":
    bundle = args[args.index("--bundle") + 1]
    spec = json.load(open(os.path.join(bundle, "config.json")))
    os.makedirs(os.path.join(root, cid))
    open(os.path.join(root, cid, "pid"), "w").write(str(os.getpid()))
    if spec["process"]["args"][0] == "FAIL":
        with open(log, "a") as f:
            f.write(json.dumps({"level": "warning", "msg": "meh"}) + "\n")
            f.write(json.dumps({"level": "error", "msg": "exec: \"FAIL\": not found"}) + "\n")
        sys.exit(1)
    child = subprocess.Popen(spec["process"]["args"])
    for signum in pending:
        child.send_signal(signum)
    code = child.wait()
    if "--keep" not in args:
        os.remove(os.path.join(root, cid, "pid")); os.rmdir(os.path.join(root, cid))
    sys.exit(code if code >= 0 else 128 - code)
if cmd == "kill":
    d = os.path.join(root, cid)
    if os.path.isdir(d):
        os.killpg(int(open(os.path.join(d, "pid")).read()), 9)
    sys.exit(0)
if cmd == "delete":
    d = os.path.join(root, cid)
    if os.path.isdir(d):
        os.remove(os.path.join(d, "pid")); os.rmdir(d)
    sys.exit(0)
if cmd == "list":
    ids = [n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n))]
    print(json.dumps([{"id": i} for i in ids]) if ids else "null")
"""


@pytest.fixture
def fake_runc(tmp_path: Path) -> Runc:
    binary = tmp_path / "fake-runc"
    binary.write_text(FAKE.replace("PYTHON", sys.executable))
    binary.chmod(0o755)
    return Runc(str(binary), root=tmp_path / "state")


def calls(runtime: Runc) -> list[list[str]]:
    lines = (runtime.root / "calls.log").read_text().splitlines()
    return [json.loads(line) for line in lines]


def simple_spec(*args: str) -> dict[str, Any]:
    return {"process": {"args": list(args)}, "linux": {"resources": {}}}


def test_run_streams_output_and_returns_the_exit_code(fake_runc: Runc, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    out: list[bytes] = []
    status = fake_runc.run(
        bundle, simple_spec("/bin/sh", "-c", "echo one; echo two >&2; exit 4"), on_output=out.append
    )
    assert status == ExitStatus(code=4)
    assert b"".join(out).split() == [b"one", b"two"]
    config = json.loads((bundle / "config.json").read_text())
    cid = calls(fake_runc)[0][-1]
    assert cid.startswith("pybuild-")
    assert config["linux"]["cgroupsPath"].endswith(f"pybuild/{cid}")
    (run_call,) = calls(fake_runc)  # runc run deleted the container itself: no runc delete
    assert run_call[run_call.index("run") :] == ["run", "--bundle", str(bundle), cid]
    assert run_call[:2] == ["--root", str(fake_runc.root)]
    assert fake_runc.list_containers() == ()


def test_container_ids_are_unique(fake_runc: Runc, tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    bundle.mkdir()
    for _ in range(3):
        assert fake_runc.run(bundle, simple_spec("true"), on_output=lambda _b: None).code == 0
    ids = {c[-1] for c in calls(fake_runc) if "run" in c}
    assert len(ids) == 3


def test_runtime_error_comes_from_the_json_log(fake_runc: Runc, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    status = fake_runc.run(bundle, simple_spec("FAIL"), on_output=lambda _b: None)
    assert status.code == 1
    assert status.runtime_error == 'exec: "FAIL": not found'
    assert fake_runc.list_containers() == ()


def test_interrupt_kills_and_deletes(fake_runc: Runc, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()

    def on_output(chunk: bytes) -> None:
        if b"ready" in chunk:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fake_runc.run(
            bundle, simple_spec("/bin/sh", "-c", "echo ready; exec sleep 600"), on_output=on_output
        )
    kinds = [next(a for a in c if a in ("run", "kill", "delete")) for c in calls(fake_runc)]
    assert kinds == ["run", "kill", "delete"]
    assert fake_runc.list_containers() == ()


def test_forwarded_signal_reaches_the_process(fake_runc: Runc, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    out: list[bytes] = []

    def on_output(chunk: bytes) -> None:
        out.append(chunk)
        if b"ready" in chunk:
            fake_runc.forward_signal(signal.SIGTERM)

    script = "trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.1; done"
    status = fake_runc.run(bundle, simple_spec("/bin/sh", "-c", script), on_output=on_output)
    assert status.code == 42
    assert b"".join(out) == b"ready\ngot TERM\n"
    assert fake_runc.list_containers() == ()


def test_signal_forwarded_before_the_start_is_sent_once_started(
    fake_runc: Runc, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    fake_runc.forward_signal(signal.SIGTERM)  # no container yet: kept for the next run
    started = time.monotonic()
    status = fake_runc.run(bundle, simple_spec("sleep", "20"), on_output=lambda _b: None)
    assert status.code == 128 + signal.SIGTERM
    assert time.monotonic() - started < 15
    # sent once: the next run is left alone
    assert fake_runc.run(bundle, simple_spec("true"), on_output=lambda _b: None).code == 0


def test_runtime_killed_by_a_signal_exits_128_plus_the_signal(
    fake_runc: Runc, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    spec = simple_spec("/bin/sh", "-c", "kill -KILL $PPID")  # the parent is the runtime
    status = fake_runc.run(bundle, spec, on_output=lambda _b: None)
    assert status.code == 128 + signal.SIGKILL
    assert fake_runc.list_containers() == ()


def test_memory_limit_is_reported(fake_runc: Runc, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    spec = {"process": {"args": ["true"]}, "linux": {"resources": {"memory": {"limit": 1 << 26}}}}
    status = fake_runc.run(bundle, spec, on_output=lambda _b: None)
    assert status.memory_limit == 1 << 26
    assert not status.oom_killed
    # kept for its OOM counter, then deleted
    run_call, delete_call = calls(fake_runc)
    cid = run_call[-1]
    assert run_call[run_call.index("run") :] == ["run", "--keep", "--bundle", str(bundle), cid]
    assert delete_call[-3:] == ["delete", "--force", cid]
    assert fake_runc.list_containers() == ()


def test_deferred_delete_runs_beside_the_caller_and_settle_waits_for_it(
    fake_runc: Runc, tmp_path: Path
) -> None:
    deferred = Runc(fake_runc.binary, root=fake_runc.root, deferred_deletes=True)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    spec = {"process": {"args": ["true"]}, "linux": {"resources": {"pids": {"limit": 64}}}}
    for _ in range(2):
        assert deferred.run(bundle, spec, on_output=lambda _b: None).code == 0
    deferred.settle()
    cids = [c[-1] for c in calls(deferred) if "run" in c]
    assert len(set(cids)) == 2
    assert sorted(c[-1] for c in calls(deferred) if "delete" in c) == sorted(cids)
    assert not any((deferred.root / cid).exists() for cid in cids)
    assert deferred.list_containers() == ()
    deferred.settle()  # nothing left: a no-op


def test_a_failed_deferred_delete_is_raised_by_settle(fake_runc: Runc, tmp_path: Path) -> None:
    deferred = Runc(fake_runc.binary, root=fake_runc.root, deferred_deletes=True)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    spec = {"process": {"args": ["true"]}, "linux": {"resources": {"pids": {"limit": 64}}}}
    deferred.run(bundle, spec, on_output=lambda _b: None)
    deferred.settle()
    (deferred.root / "pybuild-stuck").mkdir()  # no pid file: the fake's delete fails
    deferred._delete_later(deferred.executable(), "pybuild-stuck")
    with pytest.raises(ExecutionError, match="delete pybuild-stuck"):
        deferred.settle()


def test_the_check_is_remembered_until_the_binary_changes(tmp_path: Path) -> None:
    calls_file = tmp_path / "version-calls"
    binary = tmp_path / "versioned-runc"

    def install(version: str) -> None:
        binary.write_text(f"#!/bin/sh\necho >> {calls_file}\necho 'runc version {version}'\n")
        binary.chmod(0o755)

    install("1.1.5")
    saved = tmp_path / "info" / "check.json"

    def check() -> tuple[str, ...]:
        return Runc(str(binary), root=tmp_path / "state", check_file=saved).check()

    old = check()
    assert old
    assert "runc 1.1.5 is older than" in old[0]
    assert check() == old  # another process: the saved answer
    assert len(calls_file.read_text().splitlines()) == 1
    install("1.3.30")  # an updated binary: checked again
    assert check() == ()
    assert len(calls_file.read_text().splitlines()) == 2
    saved.write_text("{torn")
    assert check() == ()
    assert len(calls_file.read_text().splitlines()) == 3
    assert not (tmp_path / "state").exists()  # nothing in the runtime's state dir


def test_missing_binary_and_non_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EnvironmentUnavailableError, match="no-such-runc: OCI runtime not found"):
        Runc("no-such-runc").check()
    assert Crun().binary == "crun"
    with pytest.raises(EnvironmentUnavailableError, match="no-crun-here: OCI runtime not found"):
        Crun("no-crun-here", root=tmp_path).run(tmp_path, {}, on_output=lambda _b: None)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(EnvironmentUnavailableError, match="RUN needs root"):
        Runc(sys.executable).check()


def test_cgroup_paths() -> None:
    v1 = CgroupLayout(v1_memory_dir=Path("/sys/fs/cgroup/memory/me"), unified_root=None)
    v2 = CgroupLayout(v1_memory_dir=None, unified_root=Path("/sys/fs/cgroup"))
    assert cgroups_path_for("c1", v1) == "pybuild/c1"
    assert cgroups_path_for("c1", v2) == "/pybuild/c1"  # v2_own "/": the root
    assert memory_cgroup_dir("pybuild/c1", v1) == Path("/sys/fs/cgroup/memory/me/pybuild/c1")
    assert memory_cgroup_dir("/pybuild/c1", v2) == Path("/sys/fs/cgroup/pybuild/c1")
    none = CgroupLayout(v1_memory_dir=None, unified_root=None)
    assert memory_cgroup_dir("pybuild/c1", none) is None


def test_this_hosts_cgroup_layout_is_found() -> None:
    layout = oci.cgroup_layout()
    assert layout.v1_memory_dir is not None or layout.unified_root is not None
    if layout.v1_memory_dir is not None:
        assert (layout.v1_memory_dir / "memory.limit_in_bytes").exists()


def test_oom_kill_count(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert oom_kill_count(v2) == 1
    assert oom_kill_count(v1) == 2
    assert oom_kill_count(tmp_path / "missing") == 0


def test_pids_cgroup_and_refused_forks(tmp_path: Path) -> None:
    v1 = CgroupLayout(
        v1_memory_dir=Path("/m/me"), unified_root=None, v1_pids_dir=Path("/sys/fs/cgroup/pids")
    )
    v2 = CgroupLayout(v1_memory_dir=None, unified_root=Path("/sys/fs/cgroup"))
    assert oci.pids_cgroup_dir("pybuild/c1", v1) == Path("/sys/fs/cgroup/pids/pybuild/c1")
    assert oci.pids_cgroup_dir("/pybuild/c1", v2) == Path("/sys/fs/cgroup/pybuild/c1")
    none = CgroupLayout(v1_memory_dir=Path("/m/me"), unified_root=None)
    assert oci.pids_cgroup_dir("pybuild/c1", none) is None
    (tmp_path / "pids.events").write_text("max 7\n")
    assert oci.pids_max_count(tmp_path) == 7
    assert oci.pids_max_count(tmp_path / "absent") == 0


def _fake_v2(root: Path, own: str, procs: str) -> Path:
    base = root / own.strip("/")
    base.mkdir(parents=True)
    (base / "cgroup.controllers").write_text("cpu memory pids\n")
    (base / "cgroup.subtree_control").write_text("\n")
    (base / "cgroup.procs").write_text(procs)
    return base


def test_v2_containers_nest_under_our_cgroup_after_moving_its_processes(tmp_path: Path) -> None:
    # a plain directory stands in for cgroupfs: writes land in files instead of moving pids
    base = _fake_v2(tmp_path, "/ci/job", "101\n")
    assert oci._nest_v2(tmp_path, "/ci/job") == "/ci/job/pybuild"
    assert (base / "init" / "cgroup.procs").read_text() == "101"
    assert (base / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    # pybuild (or another one) now runs in the leaf: no second move, same parent
    assert oci._nest_v2(tmp_path, "/ci/job/init") == "/ci/job/pybuild"
    v2 = CgroupLayout(v1_memory_dir=None, unified_root=tmp_path, v2_own="/")
    assert cgroups_path_for("c1", v2) == "/pybuild/c1"  # the root of a cgroup namespace


def test_v2_nesting_refused_falls_back_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert oci._nest_v2(tmp_path, "/not/there") == "/pybuild"
    assert "cannot nest RUN containers' cgroups under /not/there" in capsys.readouterr().err
