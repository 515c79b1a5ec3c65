"""What a RUN step can reach, built for real: the .dockerignore-filtered context through bind
mounts (and the cache key that covers it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from enginekit import Builder, mounts, runc_containers
from test_build_cache import steps

from builder.runtime.spec import ProcessSpec, build_spec

pytestmark = pytest.mark.integration

SECRET = "top-secret-value\n"


def _nonce() -> str:
    return os.urandom(8).hex()


def _bind_context(pb: Builder) -> dict[str, str]:
    return {
        ".dockerignore": "secret.txt\nlogs\ncache/*\n!cache/keep\n",
        "secret.txt": SECRET,
        "visible.txt": f"visible {_nonce()}\n",
        "link": "",  # replaced by a symlink below
        "logs/app.log": SECRET,
        "cache/drop": SECRET,
        "cache/keep": "kept\n",
        "sub/secret.txt": "not ignored: the pattern names the top-level file only\n",
    }


def test_bind_mount_sees_only_the_filtered_context(pb: Builder) -> None:
    files = _bind_context(pb)
    ctx = pb.context(files)
    (ctx / "link").unlink()
    os.symlink("secret.txt", ctx / "link")
    dockerfile = (
        f"FROM busybox\nENV N={_nonce()}\n"
        "RUN --mount=type=bind,target=/m"
        " (cd /m && find . | sort > /listing)"
        " && (cat /m/secret.txt /m/link /m/logs/app.log /m/cache/drop 2>/dev/null; true) > /leak"
        " && cat /m/visible.txt /m/cache/keep /m/sub/secret.txt > /seen\n"
        "RUN --mount=type=bind,target=/w,rw (cat /w/secret.txt 2>/dev/null; true) > /leak-rw"
        " && echo changed > /w/visible.txt\n"
    )
    built = pb.build(dockerfile, context_dir=ctx)
    got = built.files
    assert got["/leak"].content == b""
    assert got["/leak-rw"].content == b""
    assert got["/seen"].text == files["visible.txt"] + "kept\n" + files["sub/secret.txt"]
    listing = got["/listing"].text.split()
    assert listing == [
        ".",
        "./.dockerignore",
        "./Dockerfile",
        "./cache",
        "./cache/keep",
        "./link",  # dangling: its target is ignored
        "./sub",
        "./sub/secret.txt",
        "./visible.txt",
    ]
    assert (ctx / "secret.txt").read_text() == SECRET  # the context itself is untouched
    assert (ctx / "visible.txt").read_text() == files["visible.txt"]
    assert not [m for m in mounts() if str(pb.store_root) in m]


def test_bind_mount_cache_key_covers_what_the_mount_reads(pb: Builder) -> None:
    ctx = pb.context(
        {
            ".dockerignore": "secret.txt\n",
            "secret.txt": "one\n",
            "visible.txt": f"{_nonce()}\n",
        }
    )
    dockerfile = "FROM busybox\nRUN --mount=type=bind,target=/m cat /m/visible.txt > /v\n"
    first = pb.build(dockerfile, context_dir=ctx)
    assert steps(first)[2][1] is False
    (ctx / "secret.txt").write_text("two\n")  # ignored: invisible to the step
    again = pb.build(dockerfile, context_dir=ctx)
    assert steps(again)[2][1] is True
    assert again.image_id == first.image_id
    (ctx / "visible.txt").write_text(f"{_nonce()}\n")  # visible: the step runs again
    changed = pb.build(dockerfile, context_dir=ctx)
    assert steps(changed)[2][1] is False
    assert changed.files["/v"].text == (ctx / "visible.txt").read_text()


def test_a_0755_store_is_made_private_and_runs_steps_as_any_user(pb: Builder) -> None:
    root = pb.store_root
    for path in (root, root / "snapshots", root / "tmp", root / "cachemounts", root / "runc"):
        path.mkdir(exist_ok=True)
        path.chmod(0o755)  # a store made before S11
    dockerfile = (
        f"FROM busybox\nENV N={_nonce()}\nUSER 65534:65534\n"
        f"RUN --mount=type=cache,id={_nonce()},target=/c,uid=65534 --mount=type=bind,target=/m"
        " id -u > /tmp/uid && cat /m/f >> /tmp/uid && touch /c/x\n"
    )
    built = pb.build(dockerfile, {"f": "from the context\n"})
    assert built.files["/tmp/uid"].text == "65534\nfrom the context\n"
    for path in (root, root / "snapshots", root / "tmp", root / "cachemounts", root / "runc"):
        assert path.stat().st_mode & 0o777 == 0o700, path


# --------------------------------------------------------------------------- seccomp, insecure

PROBE = (
    "RUN (grep -E '^(Seccomp|CapEff):' /proc/self/status; swapoff /absent 2>&1;"
    " hostname probe 2>&1; grep ' /sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1) > /probe"
)


def test_run_steps_are_confined_by_the_default_seccomp_profile(pb: Builder) -> None:
    built = pb.build(f"FROM busybox\nENV N={_nonce()}\n{PROBE}\n")
    lines = built.files["/probe"].text.splitlines()
    assert lines[0] == "CapEff:\t00000000a80425fb"  # docker's default capabilities
    assert lines[1] == "Seccomp:\t2"  # a filter is installed in the kernel
    assert lines[2] == "swapoff: /absent: Operation not permitted"
    assert lines[3] == "hostname: sethostname: Operation not permitted"
    assert lines[4] == "ro"


def test_security_insecure_needs_the_entitlement(pb: Builder) -> None:
    dockerfile = (
        f"FROM busybox\nENV N={_nonce()}\n{PROBE.replace('RUN', 'RUN --security=insecure')}\n"
    )
    refused = pb.build(dockerfile, check=False)
    assert refused.error_line() == (
        "ERROR: Dockerfile:3:1: entitlement security.insecure is not allowed"
    )
    built = pb.build(dockerfile, args=["--allow", "security.insecure"])
    lines = built.files["/probe"].text.splitlines()
    own = int(Path("/proc/self/status").read_text().split("CapBnd:")[1].split()[0], 16)
    assert lines[0] == f"CapEff:\t{own:016x}"  # every capability pybuild has
    assert lines[1] == "Seccomp:\t0"  # no filter
    assert lines[2] == "swapoff: /absent: No such file or directory"  # reached the kernel
    assert lines[3] == "rw"  # hostname succeeded silently (its own UTS namespace); sysfs rw
    assert built.files["/probe"].text.count("\n") == 4


# --------------------------------------------------------------------------- pids limit

PIDS_MAX = "RUN (cat /sys/fs/cgroup/pids/pids.max || cat /sys/fs/cgroup/pids.max) > /pids.max"


def test_run_steps_have_a_pids_limit_by_default_and_by_flag(pb: Builder) -> None:
    def probe(*args: str) -> str:  # limits are not in the cache key (as in BuildKit)
        built = pb.build(f"FROM busybox\nENV N={_nonce()}\n{PIDS_MAX}\n", args=args)
        return built.files["/pids.max"].text

    assert probe() == "4096\n"
    assert probe("--pids-limit", "300") == "300\n"
    assert probe("--pids-limit", "-1") == "max\n"


def test_a_fork_bomb_ends_at_the_pids_limit_with_a_clear_error(pb: Builder) -> None:
    bomb = "i=0; while [ $i -lt 200 ]; do sleep 60 & i=$((i+1)); done; wait"
    failed = pb.build(
        f"FROM busybox\nENV N={_nonce()}\nRUN {bomb}\n", args=["--pids-limit", "20"], check=False
    )
    line = failed.error_line()
    assert line.startswith("ERROR: Dockerfile:3:1: process ")
    assert line.endswith(": pids limit reached (20)")
    assert "can't fork" in failed.stderr
    assert not [m for m in mounts() if str(pb.store_root) in m]
    assert runc_containers(pb.store_root) == []


def test_a_bad_pids_limit_is_refused(pb: Builder) -> None:
    proc = pb.cli("build", "--pids-limit", "-5", str(pb.context({"Dockerfile": "FROM busybox"})))
    assert proc.returncode == 2
    assert "invalid pids limit '-5'" in proc.stderr


# --------------------------------------------------------------------------- cgroups


def _cgroups(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        number, controllers, path = line.split(":", 2)
        out[f"{number}:{controllers}"] = path
    return out


def test_run_containers_cgroups_nest_under_the_builders(pb: Builder) -> None:
    mine = _cgroups(Path("/proc/self/cgroup").read_text())  # pybuild inherits it
    built = pb.build(f"FROM busybox\nENV N={_nonce()}\nRUN cat /proc/self/cgroup > /cg\n")
    theirs = _cgroups(built.files["/cg"].text)
    assert theirs.keys() == mine.keys()
    for hierarchy, path in theirs.items():
        own = mine[hierarchy].rstrip("/")
        if hierarchy.endswith(":name=systemd"):
            continue  # runc leaves named hierarchies without a controller alone
        assert path.startswith(f"{own}/pybuild/pybuild-"), (hierarchy, path, own)


# --------------------------------------------------------------------------- start-up reaper


def _hold_locks(paths: list[Path]) -> subprocess.Popen[str]:
    """A child process that flocks each directory of ``paths`` (a live build's), until killed."""
    code = (
        "import fcntl, os, sys\n"
        "fds = [os.open(p, os.O_RDONLY | os.O_DIRECTORY) for p in sys.argv[1:]]\n"
        "for fd in fds: fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, *map(str, paths)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "locked\n"
    return child


def _runc_container(store: Path, bundle: Path, name: str) -> str:
    """A running runc container (``sleep``) started from ``bundle``, as a RUN step's."""
    rootfs = bundle / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
    process = ProcessSpec(args=("/bin/busybox", "sleep", "1000"), env=())
    (bundle / "config.json").write_text(json.dumps(build_spec(rootfs=rootfs, process=process)))
    container = f"pybuild-{name}-{_nonce()}"
    subprocess.run(
        ["runc", "--root", str(store / "runc"), "run", "-d", "--bundle", str(bundle), container],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,  # the container keeps runc's stdio: no pipe to wait on
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=60,
    )
    return container


def _mount_tmpfs(target: Path) -> None:
    target.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(target)], check=True)


def test_a_build_reaps_what_a_killed_build_left_and_spares_a_live_one(pb: Builder) -> None:
    store = pb.store_root
    tag = _nonce()
    shm = Path("/dev/shm")

    def leftovers(state: str) -> dict[str, Path]:
        return {
            "bundle": store / "tmp" / f"pybuild-run-{state}{tag}",
            "container bundle": store / "tmp" / f"pybuild-run-c{state}{tag}",
            "overlay": store / "snapshots" / f".ovl-{state}{tag}",
            "scratch": store / "snapshots" / f".scratch-{state}{tag}",
            "secrets": shm / f"pybuild-secrets-{state}{tag}",
            "shm bundle": shm / f"pybuild-run-{state}{tag}",
        }

    dead, live = leftovers("dead"), leftovers("live")
    for path in (*dead.values(), *live.values()):
        path.mkdir()
    for group in (dead, live):
        _mount_tmpfs(group["overlay"] / "m")  # stands in for an overlay left mounted
        _mount_tmpfs(group["bundle"] / ".ovl-rw" / "m")  # a rw bind mount's overlay
        (group["secrets"] / "s").write_text("secret")
    dead_container = _runc_container(store, dead["container bundle"], "dead")
    live_container = _runc_container(store, live["container bundle"], "live")
    holder = _hold_locks(list(live.values()))
    try:
        pb.build(f"FROM busybox\nENV N={_nonce()}\n")  # any build: the reaper runs first
        assert [p for p in dead.values() if p.exists()] == []
        assert dead_container not in runc_containers(store)
        assert [p for p in live.values() if not p.exists()] == []
        assert (live["secrets"] / "s").read_text() == "secret"
        assert live_container in runc_containers(store)
        mounted = [m for m in mounts() if str(store) in m]
        assert len(mounted) == 2  # the live build's two
        assert all(f"live{tag}" in m for m in mounted)
    finally:
        holder.kill()
        holder.communicate()  # waits, closes its pipes
    try:
        pb.build(f"FROM busybox\nENV N={_nonce()}\n")  # its owner died: the next build clears it
        assert [p for p in live.values() if p.exists()] == []
        assert live_container not in runc_containers(store)
        assert not [m for m in mounts() if str(store) in m]
    finally:  # whatever failed above: nothing of this test stays behind
        for container in (dead_container, live_container):
            subprocess.run(
                ["runc", "--root", str(store / "runc"), "delete", "-f", container],
                capture_output=True,
                check=False,
            )
        for line in mounts():
            if tag in line:
                subprocess.run(["umount", "-l", line.split()[1]], check=False)
        for path in (*dead.values(), *live.values()):
            shutil.rmtree(path, ignore_errors=True)
