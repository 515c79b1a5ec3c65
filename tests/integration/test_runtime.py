"""RUN in a real runc container over overlayfs (root + runc required; never skipped)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.engine.run import MountSources, run_on_layers, run_step
from builder.engine.secrets import SecretSpec, secret_store
from builder.errors import ExecutionError, RunStepError, Span
from builder.oci.layer_apply import list_entries
from builder.oci.types import History
from builder.plan.steps import RunFile, RunMount, RunStep
from builder.runtime.oci import Runc
from builder.runtime.spec import Resources
from builder.snapshot import LayerDirs, Overlay, mounts_under
from builder.store import Store
from builder.syntax import ir

pytestmark = pytest.mark.integration

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "app:x:1000:1000:App:/home/app:/bin/sh\n"
    "nobody2:x:65534:65534::/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:root\napp:x:1000:\nwheel:x:10:root,app\nstaff:x:50:app\n"


def _require_environment() -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("not running as root")
    if shutil.which("runc") is None:
        problems.append("runc not found in PATH")
    if not Path("/usr/bin/busybox").is_file():
        problems.append("/usr/bin/busybox (static) is missing")
    if problems:
        pytest.fail(
            "integration tests for RUN need root, runc and /usr/bin/busybox: "
            + "; ".join(problems),
            pytrace=False,
        )


def make_busybox_rootfs(directory: Path) -> Path:
    """A minimal image filesystem: static busybox with every applet, passwd/group, /tmp."""
    (directory / "bin").mkdir(parents=True)
    (directory / "etc").mkdir()
    (directory / "tmp").mkdir()
    os.chmod(directory / "tmp", 0o1777)
    shutil.copy("/usr/bin/busybox", directory / "bin" / "busybox")
    applets = subprocess.run(
        ["/usr/bin/busybox", "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", directory / "bin" / applet)
    (directory / "etc" / "passwd").write_text(PASSWD)
    (directory / "etc" / "group").write_text(GROUP)
    (directory / "home" / "app").mkdir(parents=True)
    os.chown(directory / "home" / "app", 1000, 1000)
    return directory


def Step(
    *,
    args: tuple[str, ...],
    env: tuple[str, ...] = ("PATH=/bin",),
    user: str = "",
    workdir: str = "/",
    **kw: object,
) -> RunStep:
    """A planner RunStep (what run_step takes) with the defaults these tests share."""
    return RunStep(
        span=Span(file="Dockerfile", line=1),
        text="RUN " + " ".join(args),
        history=History(),
        args=args,
        env=env,
        cache_env=env,
        user=user,
        workdir=workdir,
        **kw,  # type: ignore[arg-type]
    )


def sh(script: str, **kw: object) -> RunStep:
    return Step(args=("/bin/sh", "-c", script), **kw)


@dataclass
class Env:
    store: Store
    dirs: LayerDirs
    lowers: tuple[Path, ...]
    runtime: Runc
    base: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    _require_environment()
    base = tmp_path_factory.mktemp("runtime")
    rootfs = make_busybox_rootfs(base / "rootfs")
    store = Store.open(base / "store")
    layer = store.write_layer(rootfs)
    dirs = LayerDirs(store, durable=False)
    lowers = dirs.ensure([layer])
    runtime = Runc(root=base / "runc-state")
    yield Env(store=store, dirs=dirs, lowers=lowers, runtime=runtime, base=base)
    assert runtime.list_containers() == ()
    assert mounts_under(base) == ()


@dataclass
class Result:
    output: str
    upper: Path
    entries: tuple[str, ...]


def run(env: Env, step: RunStep, **kw: object) -> Result:
    """Run ``step`` on the busybox image; return its output and the layer entries made."""
    chunks: list[bytes] = []
    keep = env.base / f"upper-{os.urandom(4).hex()}"
    with env.dirs.scratch_dir() as upper:
        try:
            run_on_layers(
                env.lowers,
                upper,
                step,
                runtime=env.runtime,
                on_output=chunks.append,
                bundle_dir=env.base / "bundles",
                **kw,  # type: ignore[arg-type]
            )
        finally:
            assert mounts_under(env.base) == ()
            assert env.runtime.list_containers() == ()
        layer = env.store.write_layer(upper, overlay=True)
        os.rename(upper, keep)
    with layer.open_compressed() as f:
        names = tuple(h.name for h in list_entries(f))
    return Result(output=b"".join(chunks).decode(), upper=keep, entries=names)


def bind_mount(target: str, *, readonly: bool = True, source_path: str = "/") -> RunMount:
    mount = ir.Mount(spec=f"type=bind,target={target}", target=target, readonly=readonly)
    return RunMount(mount=mount, target=target, source="ctx", source_path=source_path)


# --------------------------------------------------------------------------- basics


def test_echo_output_is_streamed(env: Env) -> None:
    result = run(env, sh("echo hello; echo to-stderr >&2; echo again"))
    # runc copies stdout and stderr separately: each stream keeps its order, not their mix
    lines = result.output.splitlines()
    assert sorted(lines) == ["again", "hello", "to-stderr"]
    assert lines.index("hello") < lines.index("again")
    assert result.entries == ()  # nothing changed: no stubs, no copied-up /etc


def test_exit_code_raises_run_step_error(env: Env) -> None:
    with pytest.raises(RunStepError) as info:
        run(env, sh("echo some output; exit 3"))
    err = info.value
    assert err.exit_code == 3
    assert str(err) == (
        'process "/bin/sh -c echo some output; exit 3" did not complete successfully: exit code: 3'
    )
    assert err.output_tail == "some output"


def test_output_tail_keeps_last_lines(env: Env) -> None:
    with pytest.raises(RunStepError) as info:
        run(env, sh("for i in $(seq 1 100); do echo line$i; done; exit 1"))
    assert info.value.output_tail.splitlines() == [f"line{i}" for i in range(81, 101)]


def test_missing_executable_reports_runtime_error(env: Env) -> None:
    with pytest.raises(RunStepError) as info:
        run(env, Step(args=("/nonexistent",)))
    assert info.value.exit_code != 0
    assert 'process "/nonexistent" did not complete successfully' in str(info.value)
    assert "nonexistent" in str(info.value).split("exit code:", 1)[1]


def test_errors_get_their_span_from_the_scheduler_not_here(env: Env) -> None:
    # run_step leaves the span to the scheduler, which attaches it to every step's error
    # (tests/unit/engine/test_scheduler.py); `pybuild run` errors then carry none
    with pytest.raises(RunStepError) as info:
        run(env, sh("exit 2"))
    assert info.value.span is None
    assert str(info.value).startswith("process ")


# --------------------------------------------------------------------------- process config


def test_env_defaults_hostname_and_home(env: Env) -> None:
    result = run(env, sh('echo "$FOO|$HOME|$HOSTNAME|$PATH"; hostname', env=("FOO=bar baz",)))
    default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert result.output.splitlines() == [
        f"bar baz|/root|buildkitsandbox|{default_path}",
        "buildkitsandbox",
    ]


def test_hosts_resolv_hostname_files(env: Env) -> None:
    result = run(env, sh("cat /etc/hosts /etc/hostname; ls /etc"))
    lines = result.output.splitlines()
    assert lines[:3] == [
        "127.0.0.1\tlocalhost buildkitsandbox",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "buildkitsandbox",
    ]
    assert {"hosts", "hostname", "resolv.conf", "passwd", "group"} <= set(lines[3:])
    assert result.entries == ()


def test_user_by_name_gets_groups_home_and_workdir(env: Env) -> None:
    result = run(env, sh("id -u; id -g; id -G; echo $HOME; pwd", user="app", workdir="/home/app"))
    assert result.output.splitlines() == ["1000", "1000", "1000 10 50", "/home/app", "/home/app"]


def test_user_with_group_has_no_supplementary_groups(env: Env) -> None:
    result = run(env, sh("id -u; id -g; id -G", user="app:wheel"))
    assert result.output.splitlines() == ["1000", "10", "10"]


def test_numeric_user_without_entry(env: Env) -> None:
    result = run(env, sh("id -u; id -g; echo $HOME", user="4242"))
    assert result.output.splitlines() == ["4242", "0", "/"]


def test_root_gets_member_groups(env: Env) -> None:
    result = run(env, sh("id -G"))
    assert result.output.split() == ["0", "10"]


def test_unknown_user_is_an_error(env: Env) -> None:
    with pytest.raises(ExecutionError) as info:
        run(env, sh("true", user="ghost"))
    assert str(info.value) == "unable to find user ghost: no matching entries in passwd file"


def test_missing_workdir_is_created_owned_by_user(env: Env) -> None:
    result = run(env, sh("pwd; stat -c '%u %g %a' .", user="app", workdir="/srv/app/data"))
    assert result.output.splitlines() == ["/srv/app/data", "1000 1000 755"]
    assert result.entries == ("srv/", "srv/app/", "srv/app/data/")
    assert (result.upper / "srv" / "app").stat().st_uid == 1000


def test_capabilities_rlimit_and_no_new_privs(env: Env) -> None:
    result = run(env, sh("grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status; ulimit -n"))
    fields = dict(line.split(":\t") for line in result.output.splitlines()[:3])
    assert fields["CapBnd"] == fields["CapEff"] == "00000000a80425fb"  # Docker's default set
    assert fields["NoNewPrivs"] == "0"
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert int(result.output.splitlines()[3]) == min(1048576, hard)


def test_only_stdio_fds_are_open(env: Env) -> None:
    result = run(env, sh("ls /proc/self/fd"))
    assert sorted(result.output.split()) == ["0", "1", "2", "3"]  # 3 is ls's own dir fd


def test_network_none_has_only_loopback(env: Env) -> None:
    result = run(env, sh("cat /proc/net/dev"), network="none")
    names = {line.split(":")[0].strip() for line in result.output.splitlines()[2:]}
    assert names == {"lo"}


def test_default_network_is_a_private_namespace(env: Env) -> None:
    result = run(env, sh("cat /proc/net/dev; cat /etc/resolv.conf"))
    lines = result.output.splitlines()
    names = {line.split(":")[0].strip() for line in lines[2:] if ":" in line}
    assert names == {"lo", "tap0"}
    assert "nameserver 10.0.2.3" in lines


def test_host_network_is_the_host_namespace(env: Env) -> None:
    result = run(env, sh("cat /proc/net/dev"), network="host")
    names = {line.split(":")[0].strip() for line in result.output.splitlines()[2:]}
    host = Path("/proc/net/dev").read_text().splitlines()[2:]
    assert names == {line.split(":")[0].strip() for line in host}


def test_masked_and_readonly_paths(env: Env) -> None:
    masked = [p for p in ("/proc/keys", "/proc/timer_list", "/proc/kcore") if Path(p).is_file()]
    assert masked, "the host has none of the masked /proc files this test reads"
    script = f"wc -c < {masked[0]}; (echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null || echo ro"
    result = run(env, sh(script))
    assert result.output.split() == ["0", "ro"]


# --------------------------------------------------------------------------- the upper dir


def test_written_files_and_deletions_are_the_layer(env: Env) -> None:
    result = run(
        env,
        sh(
            "mkdir -p /data && echo x > /data/f && rm /etc/group && rm -r /home/app && touch /tmp/t"
        ),
    )
    assert result.entries == (
        "data/",
        "data/f",
        "etc/",
        "etc/.wh.group",
        "home/",
        "home/.wh.app",
        "tmp/",
        "tmp/t",
    )
    group = result.upper / "etc" / "group"
    assert stat.S_ISCHR(group.lstat().st_mode)
    assert group.lstat().st_rdev == 0
    assert sorted(os.listdir(result.upper)) == ["data", "etc", "home", "tmp"]  # no stubs


def test_etc_mtime_is_restored_after_stub_removal(env: Env) -> None:
    result = run(env, sh("echo y > /etc/extra"))
    assert result.entries == ("etc/", "etc/extra")
    upper_etc = (result.upper / "etc").stat()
    lower_etc = (env.lowers[0] / "etc").stat()
    assert sorted(os.listdir(result.upper / "etc")) == ["extra"]
    assert upper_etc.st_mode == lower_etc.st_mode


def test_stub_cleanup_never_follows_symlinks_out(env: Env, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "y").write_text("keep")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    step = sh(f"mv /x /x.old && ln -s {canary} /x", mounts=(bind_mount("/x/y"),))
    result = run(env, step, sources=MountSources(bind_root=lambda _source: ctx))
    assert (canary / "y").read_text() == "keep"
    assert os.readlink(result.upper / "x") == str(canary)
    # the stub the step moved away is the step's own change; the symlink is kept as made
    assert result.entries == ("x", "x.old/", "x.old/.wh..wh..opq", "x.old/y/")


def test_dev_symlink_in_image_is_refused(env: Env, tmp_path: Path) -> None:
    layer_dir = tmp_path / "evil"
    layer_dir.mkdir()
    os.symlink("../../../../tmp/pwn", layer_dir / "dev")
    with env.dirs.scratch_dir() as upper, pytest.raises(ExecutionError) as info:
        run_on_layers(
            [*env.lowers, layer_dir],
            upper,
            sh("true"),
            runtime=env.runtime,
            on_output=lambda _b: None,
        )
    assert "/dev is a symbolic link" in str(info.value)
    assert mounts_under(env.base) == ()
    assert mounts_under(tmp_path) == ()


# --------------------------------------------------------------------------- mounts


def test_bind_mount_read_only_from_context(env: Env, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("from context\n")
    step = sh(
        "cat /ctx/a.txt; touch /ctx/new 2>/dev/null || echo read-only", mounts=(bind_mount("/ctx"),)
    )
    result = run(env, step, sources=MountSources(bind_root=lambda _source: ctx))
    assert result.output.splitlines() == ["from context", "read-only"]
    assert sorted(os.listdir(ctx)) == ["a.txt"]
    assert result.entries == ()


def test_bind_mount_rw_writes_are_discarded(env: Env, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "sub").mkdir(parents=True)
    (ctx / "sub" / "f").write_text("orig")
    step = sh(
        "echo changed > /m/f; touch /m/g; cat /m/f",
        mounts=(bind_mount("/m", readonly=False, source_path="sub"),),
    )
    result = run(env, step, sources=MountSources(bind_root=lambda _source: ctx))
    assert result.output.strip() == "changed"
    assert (ctx / "sub" / "f").read_text() == "orig"
    assert sorted(os.listdir(ctx / "sub")) == ["f"]
    assert result.entries == ()


def test_bind_source_symlink_cannot_escape_its_root(env: Env, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    os.symlink("/", ctx / "rootlink")
    (ctx / "inside").write_text("in-root file\n")
    step = sh("cat /m", mounts=(bind_mount("/m", source_path="rootlink/inside"),))
    result = run(env, step, sources=MountSources(bind_root=lambda _source: ctx))
    assert result.output == "in-root file\n"  # "/" resolved to the context root, not the host's
    step2 = sh("ls /m", mounts=(bind_mount("/m", source_path="rootlink/etc/passwd"),))
    with pytest.raises(ExecutionError, match="mount source 'rootlink/etc/passwd' not found"):
        run(env, step2, sources=MountSources(bind_root=lambda _source: ctx))


def test_cache_mount_persists_and_stays_out_of_the_layer(env: Env, tmp_path: Path) -> None:
    def cache(sharing: ir.ShareMode | None = None) -> RunMount:
        m = ir.Mount(
            spec="type=cache,target=/root/.cache",
            type=ir.MountType.CACHE,
            target="/root/.cache",
            readonly=False,
            sharing=sharing,
        )
        return RunMount(mount=m, target="/root/.cache", id="/root/.cache")

    sources = MountSources(cache_dir=tmp_path / "caches")
    first = run(env, sh("echo 1 >> /root/.cache/f", mounts=(cache(),)), sources=sources)
    assert first.entries == ()
    second = run(
        env, sh("cat /root/.cache/f", mounts=(cache(ir.ShareMode.LOCKED),)), sources=sources
    )
    assert second.output == "1\n"
    third = run(
        env, sh("ls -A /root/.cache", mounts=(cache(ir.ShareMode.PRIVATE),)), sources=sources
    )
    assert third.output == "f\n"  # nobody holds the cache: private gets the same one


def test_tmpfs_mount(env: Env) -> None:
    m = ir.Mount(
        spec="type=tmpfs,target=/scratch",
        type=ir.MountType.TMPFS,
        target="/scratch",
        readonly=False,
    )
    step = sh(
        "echo x > /scratch/f && grep ' /scratch ' /proc/mounts | cut -d' ' -f3",
        mounts=(RunMount(mount=m, target="/scratch"),),
    )
    result = run(env, step)
    assert result.output.strip() == "tmpfs"
    assert result.entries == ()


def test_secret_mount_is_private_and_never_in_the_layer(env: Env, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    value = os.urandom(16).hex()
    secret.write_text(value)
    m = ir.Mount(spec="type=secret,id=tok", type=ir.MountType.SECRET, id="tok", target=None)
    step = sh(
        "cat /run/secrets/tok; echo; stat -c '%a %u' /run/secrets/tok; echo $TOKEN",
        mounts=(RunMount(mount=m, target="/run/secrets/tok", id="tok"),),
    )
    result = run(
        env,
        step,
        sources=MountSources(secrets=secret_store([SecretSpec(id="tok", file=str(secret))])),
    )
    assert result.output.splitlines() == [value, "400 0", ""]
    assert result.entries == ()
    env_mount = ir.Mount(
        spec="type=secret,id=tok,env=TOKEN", type=ir.MountType.SECRET, id="tok", env="TOKEN"
    )
    step2 = sh("echo $TOKEN", mounts=(RunMount(mount=env_mount, target="", id="tok"),))
    assert (
        run(
            env,
            step2,
            sources=MountSources(secrets=secret_store([SecretSpec(id="tok", file=str(secret))])),
        ).output
        == value + "\n"
    )


def test_required_secret_missing(env: Env) -> None:
    m = ir.Mount(
        spec="type=secret,id=nope,required", type=ir.MountType.SECRET, id="nope", required=True
    )
    step = sh("true", mounts=(RunMount(mount=m, target="/run/secrets/nope", id="nope"),))
    with pytest.raises(ExecutionError, match="secret nope: not found"):
        run(env, step)


def test_ssh_mount_without_agent_is_skipped_unless_required(env: Env) -> None:
    m = ir.Mount(spec="type=ssh", type=ir.MountType.SSH)
    target = "/run/buildkit/ssh_agent.0"
    step = sh(
        'test ! -e /run/buildkit/ssh_agent.0 && echo "$SSH_AUTH_SOCK"',
        mounts=(RunMount(mount=m, target=target, id="default"),),
    )
    assert run(env, step).output == target + "\n"
    required = ir.Mount(spec="type=ssh,required", type=ir.MountType.SSH, required=True)
    step = sh("true", mounts=(RunMount(mount=required, target=target, id="default"),))
    with pytest.raises(ExecutionError, match='no SSH key "default" forwarded from the client'):
        run(env, step)


def test_heredoc_script_is_mounted_read_only(env: Env) -> None:
    script = RunFile(path="/dev/pipes/EOF", data="#!/bin/sh\necho from heredoc $0\n")
    result = run(env, Step(args=("/dev/pipes/EOF",), heredoc_files=(script,)))
    assert result.output == "from heredoc /dev/pipes/EOF\n"
    assert result.entries == ()


# --------------------------------------------------------------------------- cleanup


def test_interrupt_kills_container_and_cleans_up(env: Env) -> None:
    def on_output(chunk: bytes) -> None:
        if b"started" in chunk:
            raise KeyboardInterrupt

    with env.dirs.scratch_dir() as upper, pytest.raises(KeyboardInterrupt):
        run_on_layers(
            env.lowers,
            upper,
            sh("echo started; sleep 1000"),
            runtime=env.runtime,
            on_output=on_output,
        )
    assert env.runtime.list_containers() == ()
    assert mounts_under(env.base) == ()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert "sleep 1000" not in ps


def test_run_step_on_a_mount_leaves_nothing(env: Env) -> None:
    with env.dirs.scratch_dir() as upper:
        with Overlay().mount(env.lowers, upper) as rootfs, pytest.raises(RunStepError):
            run_step(rootfs, sh("exit 1"), runtime=env.runtime, on_output=lambda _b: None)
        assert env.runtime.list_containers() == ()
    assert mounts_under(env.base) == ()


def test_memory_limit_kills_a_hog_with_an_oom_message(env: Env) -> None:
    hog = sh('x=$(head -c 300000000 /dev/zero | tr "\\0" a); echo survived')
    with pytest.raises(RunStepError) as info:
        run(env, hog, resources=Resources(memory=32 * 1024 * 1024))
    assert info.value.exit_code == 137
    assert str(info.value).endswith(
        "did not complete successfully: exit code: 137: killed: out of memory (limit 32MiB)"
    )


def test_cpu_limit_is_applied(env: Env) -> None:
    result = run(
        env,
        sh("cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max"),
        resources=Resources(cpus=0.5),
    )
    assert result.output.split()[0] == "50000"


def test_planner_run_step_is_accepted(env: Env) -> None:
    step = RunStep(
        span=Span(file="Dockerfile", line=3),
        text="RUN echo $GREETING",
        history=History(created_by="RUN /bin/sh -c echo $GREETING"),
        args=("/bin/sh", "-c", "echo $GREETING from $(pwd)"),
        env=("PATH=/bin", "GREETING=hi"),
        cache_env=("PATH=/bin", "GREETING=hi"),
        user="app",
        workdir="/home/app",
    )
    assert run(env, step).output == "hi from /home/app\n"


@pytest.mark.parametrize("fd", range(3, 9))
def test_workdir_through_a_leaked_fd_never_reaches_the_host(env: Env, fd: int) -> None:
    # CVE-2024-21626: process.cwd=/proc/self/fd/N used to land in the host mount namespace
    try:
        result = run(env, sh("ls ../../../", workdir=f"/proc/self/fd/{fd}"))
    except RunStepError:
        return  # refused: fine
    assert "usr" not in result.output.split()  # the host has /usr, the busybox rootfs has not
