"""Checklist cases 25-33 (docs/SECURITY.md section 3, Runtime faults): interrupts, limits, failed
steps, the runtime check, what a RUN can see and reach, secrets; case 26 (SIGKILL) is
test_kill.py. Each runs the real CLI on the session store and checks the stated outcome."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest
from advkit import Sentinels, assert_clean_error, assert_store_consistent, rerun_succeeds
from enginekit import PYBUILD, Builder, files_containing, runc_containers

from builder.runtime.runc_version import runc_warnings

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


# --------------------------------------------------------------------------- case 29

# A fork bomb bounded for the host's sake (2^9 shells even if no limit held): each shell forks a
# copy of itself into the background and recurses; at the pids limit a fork fails, which ends
# busybox sh with an error, and the kernel kills the rest with the container's init.
FORK_BOMB = (
    "RUN b() { if [ $1 -gt 0 ]; then b $(($1-1)) & b $(($1-1)); wait; else sleep 5; fi; };"
    " b 9 & for i in $(seq 100); do sleep 5 & done; wait\n"
)  # the top shell forks past the limit too: its own failed fork ends the step


def test_case_29_fork_bomb_stops_at_the_pids_limit(pb: Builder, sentinels: Sentinels) -> None:
    dockerfile = f"FROM busybox\n{_nonce()}{FORK_BOMB}"
    built = pb.build(dockerfile, args=["--pids-limit", "64"], check=False)
    line = assert_clean_error(built, must_name="Dockerfile:3")
    assert "pids limit reached (64)" in line
    assert not pb.tagged(built.tag)
    assert_store_consistent(pb.store_root)
    rerun_succeeds(pb, GOOD)


def test_case_29_steps_get_the_default_pids_limit(pb: Builder) -> None:
    built = pb.build(
        f"FROM busybox\n{_nonce()}"
        "RUN cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max 2>/dev/null > /max; true\n"
    )
    assert built.files["/max"].text == "4096\n"


# --------------------------------------------------------------------------- case 30


def _path_with(tmp: Path, runtimes: dict[str, str]) -> str:
    """A PATH whose first directory holds the given runtime scripts (name -> script)."""
    bindir = tmp / "fake-bin"
    bindir.mkdir()
    for name, script in runtimes.items():
        (bindir / name).write_text(script)
        (bindir / name).chmod(0o755)
    return f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}"


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_case_30_missing_runtime_is_an_error_before_any_step_runs(
    pb: Builder, sentinels: Sentinels, runtime: str
) -> None:
    marker = uuid.uuid4().hex
    dockerfile = f"FROM busybox\n{_nonce()}RUN echo {marker}-ran\n"
    empty = pb.workdir / "empty-path"
    empty.mkdir()
    built = pb.build(
        dockerfile,
        args=["--runtime", runtime],
        check=False,
        env={"PATH": str(empty)},
    )
    line = assert_clean_error(built, must_name=("Dockerfile:3", runtime))
    assert "OCI runtime not found in PATH" in line
    assert f"{marker}-ran" not in built.stderr.replace(f"echo {marker}-ran", "")
    assert not pb.tagged(built.tag)
    assert_store_consistent(pb.store_root)
    rerun_succeeds(pb, GOOD)


def test_case_30_old_runtime_is_a_warning_naming_the_cves_not_a_refusal(
    pb: Builder, sentinels: Sentinels
) -> None:
    real = shutil.which("runc")
    assert real is not None
    # a runc that says it is 1.1.11 (before the CVE-2024-21626 fix) and is the real one otherwise
    fake = (
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then\n'
        "  printf 'runc version 1.1.11\\ncommit: v1.1.11\\nspec: 1.0.2-dev\\n'; exit 0\n"
        "fi\n"
        f'exec {real} "$@"\n'
    )
    path = _path_with(pb.workdir, {"runc": fake})
    built = pb.build(f"FROM busybox\n{_nonce()}RUN echo ran > /ran\n", env={"PATH": path})
    assert built.files["/ran"].text == "ran\n"
    warnings = [line for line in built.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, built.stderr
    for cve in ("CVE-2024-21626", "CVE-2025-31133", "CVE-2025-52565", "CVE-2025-52881"):
        assert cve in warnings[0]
    assert "runc 1.1.11" in warnings[0]


def test_case_30_installed_runtime_is_judged_by_its_package_version(pb: Builder) -> None:
    """The real check: the runc that `make test` installs builds, with the warning its
    version deserves (Debian's package backports CVE-2024-21626, not the 2025 fixes)."""
    real = subprocess.run(["runc", "--version"], capture_output=True, text=True, check=True)
    package = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "runc"],
        capture_output=True,
        text=True,
        check=False,
    )
    expected = runc_warnings(real.stdout, package.stdout.strip() or None)
    built = pb.build(f"FROM busybox\n{_nonce()}RUN echo ran > /ran\n")
    assert built.files["/ran"].text == "ran\n"
    warnings = [line for line in built.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ([f"warning: {'; '.join(expected)}"] if expected else [])
    # what the runc of Debian 12 (the set-up's) is told
    assert runc_warnings("runc version 1.1.5+ds1\n", "1.1.5+ds1-1+deb12u1") == (
        "runc 1.1.5+ds1 (package 1.1.5+ds1-1+deb12u1) is older than 1.2.8 / 1.3.3, which fix"
        " CVE-2025-31133, CVE-2025-52565, CVE-2025-52881; update runc or make sure your"
        " distribution backported the fixes",
    )


# --------------------------------------------------------------------------- case 31


def test_case_31_run_sees_only_stdio_descriptors(pb: Builder, sentinels: Sentinels) -> None:
    built = pb.build(f"FROM busybox\n{_nonce()}RUN ls -l /proc/self/fd > /fds\n")
    fds = {}
    for line in built.files["/fds"].text.splitlines():
        name, _, target = line.partition(" -> ")
        if target:
            fds[int(name.split()[-1])] = target
    assert {0, 1, 2} <= fds.keys()
    # besides stdio, only the descriptor ls opened itself to read the directory
    extra = {fd: target for fd, target in fds.items() if fd > 2}
    assert len(extra) <= 1, fds
    assert all(t.endswith("/fd") for t in extra.values()), fds


def _import_rootfs(pb: Builder, links: dict[str, str]) -> str:
    """A base image (``pybuild import``) of static busybox whose top-level ``links`` are
    symlinks (name -> target); returns its reference."""
    tarball = pb.workdir / "rootfs.tar"
    with tarfile.open(tarball, "w") as tar:
        for name in ("bin", "etc", "tmp"):
            entry = tarfile.TarInfo(name)
            entry.type, entry.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(entry)
        tar.add("/bin/busybox", "bin/busybox")
        for name, target in {"bin/sh": "busybox", **links}.items():
            entry = tarfile.TarInfo(name)
            entry.type, entry.linkname = tarfile.SYMTYPE, target
            tar.addfile(entry)
    ref = pb.new_tag("symlinked")
    pb.cli("import", str(tarball), ref, check=True)
    return ref


def test_case_31_base_whose_dev_is_a_symlink_is_masked_by_the_init_layer(
    pb: Builder, sentinels: Sentinels
) -> None:
    # CVE-2026-41579's shape: runc would follow /dev (and /sys) out of the rootfs
    base = _import_rootfs(pb, {"dev": "../../../../tmp/pwn", "sys": "/tmp/pwn"})
    dockerfile = (
        f"FROM {base}\n{_nonce()}"
        "RUN busybox stat -c '%n %F' /dev /sys /proc > /seen && busybox ls /dev > /devices\n"
    )
    built = pb.build(dockerfile)
    seen = built.files["/seen"].text.splitlines()
    assert seen == ["/dev directory", "/sys directory", "/proc directory"]
    assert "null" in built.files["/devices"].text.split()
    # the image keeps its own entries; the step's layer holds only what it wrote
    assert built.files["/dev"].type == "symlink"
    assert built.files["/dev"].linkname == "../../../../tmp/pwn"
    assert built.files["/sys"].linkname == "/tmp/pwn"
    assert built.layer_names(len(built.image.layers) - 1) == ["devices", "seen"]
    assert_store_consistent(pb.store_root)
    rerun_succeeds(pb, GOOD)


def test_case_31_run_and_detached_containers_mask_it_too(pb: Builder, sentinels: Sentinels) -> None:
    base = _import_rootfs(pb, {"dev": "../../../../tmp/pwn", "proc": "/tmp/pwn"})
    show = ("busybox", "stat", "-c", "%n %F", "/dev", "/proc")
    expected = "/dev directory\n/proc directory\n"
    foreground = pb.cli("run", "--rm", base, *show, check=True)
    assert foreground.stdout == expected
    name = f"masked-{uuid.uuid4().hex[:8]}"
    pb.cli("run", "-d", "--name", name, base, *show, check=True)
    try:
        deadline = time.monotonic() + INTERRUPT_TIMEOUT
        while pb.cli("logs", name).stdout != expected:
            assert time.monotonic() < deadline, pb.cli("logs", name)
            time.sleep(0.1)
    finally:
        pb.cli("rm", "-f", name, check=True)
    assert_store_consistent(pb.store_root)


# --------------------------------------------------------------------------- case 32


@pytest.mark.parametrize(
    ("step", "args", "entitlement"),
    [
        ("RUN --security=insecure id", (), "security.insecure"),
        ("RUN --network=host true", (), "network.host"),
        ("RUN true", ("--network", "host"), "network.host"),
    ],
)
def test_case_32_entitlements_are_required(
    pb: Builder, sentinels: Sentinels, step: str, args: tuple[str, ...], entitlement: str
) -> None:
    built = pb.build(f"FROM busybox\n{_nonce()}{step}\n", args=args, check=False)
    line = assert_clean_error(built)
    assert f"entitlement {entitlement} is not allowed" in line
    if not args:
        assert "Dockerfile:3" in line
    assert "#4 " not in built.stderr  # refused before any step ran (CVE-2024-23653)
    assert not pb.tagged(built.tag)
    assert_store_consistent(pb.store_root)


def test_case_32_bind_mount_through_an_image_symlink_to_root_stays_in_the_stage(
    pb: Builder, sentinels: Sentinels
) -> None:
    # CVE-2024-1753's shape: source=/rootdir, rootdir -> / in the source stage, mounted rw
    marker = f"BIND_BREAKOUT-{uuid.uuid4().hex[:8]}"
    dockerfile = (
        f"FROM busybox AS base\n{_nonce()}RUN ln -s / /rootdir && echo in-stage > /stage-only\n"
        "FROM busybox\n"
        "RUN --mount=type=bind,from=base,source=/rootdir,target=/m,rw"
        f" touch /m/{marker} && cat /m/stage-only > /seen && ls -a /m > /listing\n"
    )
    built = pb.build(dockerfile)
    assert built.files["/seen"].text == "in-stage\n"
    assert "rootdir" in built.files["/listing"].text.split()
    assert not Path("/", marker).exists()
    assert f"/{marker}" not in built.files
    assert_store_consistent(pb.store_root)


def test_case_32_cache_id_with_dot_dot_stays_in_the_store(
    pb: Builder, sentinels: Sentinels
) -> None:
    # CVE-2024-9675's shape: the id names a host directory
    escape = Path("/root", f"pybuild-escape-{uuid.uuid4().hex[:8]}")
    marker = f"CACHE_BREAKOUT-{uuid.uuid4().hex[:8]}"
    dockerfile = (
        f"FROM busybox\n{_nonce()}"
        f"RUN --mount=type=cache,id=../../../../../..{escape},target=/c touch /c/{marker}\n"
    )
    pb.build(dockerfile)
    assert not escape.exists()  # where a joined path would land
    found = list(pb.store_root.rglob(marker))
    assert len(found) == 1, found
    assert found[0].is_relative_to(pb.store_root / "cachemounts"), found
    assert_store_consistent(pb.store_root)


def test_case_32_cache_source_swapped_for_a_symlink_out_fails(
    pb: Builder, sentinels: Sentinels
) -> None:
    # BuildKit's testCacheMountSourceEscape (CVE-2024-23651's shape), ported as is
    cache_id = f"sourceescape-{uuid.uuid4().hex[:8]}"
    dockerfile = (
        "FROM busybox AS init\n"
        f"RUN --mount=type=cache,id={cache_id},target=/cache"
        " mkdir -p /cache/sel && echo benign > /cache/sel/benign.txt\n"
        "FROM init AS link\n"
        f"RUN --mount=type=cache,id={cache_id},target=/cache"
        " rm -rf /cache/sel && ln -s /etc /cache/sel\n"
        "FROM link AS victim\n"
        f"RUN --mount=type=cache,id={cache_id},source=sel,target=/victim cat /victim/hostname\n"
        "FROM scratch\n"
        "COPY --from=victim /etc/hostname /hostname\n"
    )
    built = pb.build(dockerfile, args=["--no-cache"], check=False)
    line = assert_clean_error(built, must_name="Dockerfile:6")
    assert "sel" in line
    assert Path("/etc/hostname").read_text() not in built.stderr.replace("hostname", "")
    assert not pb.tagged(built.tag)
    assert_store_consistent(pb.store_root)


def test_case_32_cache_source_inside_the_cache_mounts_that_directory(pb: Builder) -> None:
    cache_id = f"sourcein-{uuid.uuid4().hex[:8]}"
    mount = f"--mount=type=cache,id={cache_id}"
    dockerfile = (
        f"FROM busybox\n{_nonce()}"
        f"RUN {mount},target=/cache mkdir -p /cache/sub/d && echo kept > /cache/sub/d/f"
        " && ln -s /sub/d /cache/inroot\n"
        f"RUN {mount},source=sub,target=/s {mount},source=inroot/f,target=/f.txt"
        " cat /s/d/f /f.txt > /seen && touch /s/written\n"
        f"RUN {mount},target=/cache ls /cache/sub > /listing\n"
    )
    built = pb.build(dockerfile)
    assert built.files["/seen"].text == "kept\nkept\n"
    assert built.files["/listing"].text.split() == ["d", "written"]


# --------------------------------------------------------------------------- case 33


def test_case_33_secret_left_nowhere_and_its_mount_stubs_not_in_the_layer(
    pb: Builder, sentinels: Sentinels
) -> None:
    """The value search of tests/integration/test_build_secrets.py, plus the config, history,
    cache records and the mount stubs (targets whose directories the image lacks)."""
    value = "pybuild-case-33-" + os.urandom(24).hex()
    src = pb.workdir / "secret.txt"
    src.write_text(value)
    dockerfile = (
        f"FROM busybox\n{_nonce()}"
        "RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok > /default.sha\n"
        "RUN --mount=type=secret,id=tok,target=/deep/er/tok,env=TOK"
        ' printf %s "$TOK" | sha256sum > /env.sha && cat /deep/er/tok > /dev/null\n'
    )
    tmpdir = pb.workdir / "tmpdir"  # pybuild's temporary directory for this build
    tmpdir.mkdir()
    built = pb.build(
        dockerfile, args=["--secret", f"id=tok,src={src}"], env={"TMPDIR": str(tmpdir)}
    )
    digest = hashlib.sha256(value.encode()).hexdigest()
    assert built.files["/default.sha"].text.split()[0] == digest
    assert built.files["/env.sha"].text.split()[0] == digest
    # the mount stubs (/run/secrets/tok; /deep/er/tok and its parents) are in no layer
    stubs = {"run", "run/secrets", "run/secrets/tok", "deep", "deep/er", "deep/er/tok"}
    for index in range(len(built.image.layers)):
        assert stubs.isdisjoint(built.layer_names(index)), built.layer_names(index)
    needle = value.encode()
    assert needle not in built.image.raw_config  # config and history
    assert needle not in (built.stdout + built.stderr).encode()  # logs
    cache = [p for p in (pb.store_root / "cache").rglob("*") if p.is_file()]
    assert [p for p in cache if needle in p.read_bytes()] == []
    tops = (pb.store_root, tmpdir, Path("/dev/shm"))  # layers, blobs, state, temporary files
    assert files_containing(tops, needle, skip=(src,)) == []
    assert_store_consistent(pb.store_root)
