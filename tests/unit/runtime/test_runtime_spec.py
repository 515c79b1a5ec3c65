"""config.json generation for a build step (no root needed)."""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

import pytest

from builder.errors import ExecutionError
from builder.runtime.network import Attachment, NetworkMode
from builder.runtime.spec import (
    DEFAULT_CAPABILITIES,
    DEFAULT_PATH,
    ProcessSpec,
    Resources,
    bind,
    build_spec,
    default_env,
    hosts_content,
    is_system_path,
    nofile_limit,
    resolv_conf_content,
    tmpfs,
    write_etc_files,
)


def spec(**kw: Any) -> dict[str, Any]:
    process = kw.pop("process", ProcessSpec(args=("/bin/sh", "-c", "true"), env=("A=1",)))
    return build_spec(rootfs=Path("/merged"), process=process, **kw)


def test_process_section() -> None:
    p = ProcessSpec(
        args=("/bin/sh", "-c", "id"),
        env=("PATH=/bin",),
        cwd="/app",
        uid=1000,
        gid=1000,
        additional_gids=(10, 1000, 50),
    )
    doc = spec(process=p)
    proc = doc["process"]
    assert proc["args"] == ["/bin/sh", "-c", "id"]
    assert proc["env"] == ["PATH=/bin"]
    assert proc["cwd"] == "/app"
    assert proc["terminal"] is False
    assert proc["noNewPrivileges"] is False
    # the primary gid first and only once (BuildKit's ensureAdditionalGids)
    assert proc["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000, 10, 50]}
    assert doc["root"] == {"path": "/merged", "readonly": False}
    assert doc["ociVersion"].startswith("1.")


def test_docker_default_capabilities_only() -> None:
    caps = spec()["process"]["capabilities"]
    assert set(caps) == {"bounding", "effective", "permitted"}
    for kind in caps.values():
        assert kind == list(DEFAULT_CAPABILITIES)
    assert len(DEFAULT_CAPABILITIES) == 14
    assert "CAP_SYS_ADMIN" not in DEFAULT_CAPABILITIES
    assert "CAP_NET_ADMIN" not in DEFAULT_CAPABILITIES


def test_nofile_never_above_the_hard_limit() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    expected = 1048576 if hard == resource.RLIM_INFINITY else min(1048576, hard)
    assert nofile_limit() == expected
    assert spec()["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "hard": expected, "soft": expected}
    ]
    assert spec(nofile=512)["process"]["rlimits"][0]["hard"] == 512


def namespaces(doc: dict[str, Any]) -> set[str]:
    return {n["type"] for n in doc["linux"]["namespaces"]}


def test_namespaces_by_network_mode() -> None:
    base = {"pid", "ipc", "uts", "mount"}
    assert namespaces(spec()) == {*base, "network"}  # no attachment: only lo, never the host's
    host = Attachment(mode=NetworkMode.HOST)
    assert namespaces(spec(network=host)) == base
    none = spec(network=Attachment(mode=NetworkMode.NONE))
    assert {"type": "network"} in none["linux"]["namespaces"]
    private = Attachment(mode=NetworkMode.DEFAULT, netns="/proc/42/ns/net")
    joined = spec(network=private)["linux"]["namespaces"]
    assert {"type": "network", "path": "/proc/42/ns/net"} in joined


def test_system_mounts_then_step_mounts() -> None:
    extra = (bind("/host/ctx", "/ctx"), tmpfs("/scratch", size=1024))
    mounts = spec(mounts=extra)["mounts"]
    dests = [m["destination"] for m in mounts]
    assert dests == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
        "/ctx",
        "/scratch",
    ]
    by_dest = {m["destination"]: m for m in mounts}
    assert by_dest["/sys"]["options"][-1] == "ro"
    assert by_dest["/dev"]["type"] == "tmpfs"
    assert by_dest["/ctx"] == {
        "destination": "/ctx",
        "type": "bind",
        "source": "/host/ctx",
        "options": ["rbind", "ro"],
    }
    assert by_dest["/scratch"]["options"] == ["nosuid", "nodev", "size=1024"]
    assert bind("/a", "/b", readonly=False).options == ("rbind", "rw")


def test_masked_readonly_paths_devices_and_hostname() -> None:
    doc = spec(hostname="myhost")
    linux = doc["linux"]
    assert "/proc/kcore" in linux["maskedPaths"]
    assert "/sys/firmware" in linux["maskedPaths"]
    assert "/proc/sys" in linux["readonlyPaths"]
    assert "/proc/sysrq-trigger" in linux["readonlyPaths"]
    assert doc["hostname"] == "myhost"
    assert spec()["hostname"] == "buildkitsandbox"
    devices = {d["path"]: (d["major"], d["minor"]) for d in linux["devices"]}
    assert devices == {
        "/dev/null": (1, 3),
        "/dev/zero": (1, 5),
        "/dev/full": (1, 7),
        "/dev/random": (1, 8),
        "/dev/urandom": (1, 9),
        "/dev/tty": (5, 0),
    }
    rules = linux["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    assert linux["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert "cgroupsPath" not in linux  # the runtime sets it (it knows the container id)


def test_resources() -> None:
    none = spec()["linux"]["resources"]
    assert "memory" not in none
    assert "cpu" not in none
    assert "pids" not in none
    res = spec(resources=Resources(memory=64 << 20, cpus=1.5, pids=20))["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20}
    assert res["cpu"] == {"quota": 150000, "period": 100000}
    assert res["pids"] == {"limit": 20}
    swap = spec(resources=Resources(memory=64 << 20), swap_accounting=True)["linux"]["resources"]
    assert swap["memory"] == {"limit": 64 << 20, "swap": 64 << 20}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"memory": 1024}, "memory limit 1024 is too small"),
        ({"cpus": 0.0}, "invalid CPU limit 0.0"),
        ({"cpus": 5000.0}, "invalid CPU limit 5000.0"),
        ({"pids": 0}, "invalid pids limit 0"),
    ],
)
def test_bad_resources(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ExecutionError, match=message):
        Resources(**kwargs)


def test_default_env() -> None:
    env = default_env(("FOO=1",), hostname="h", home="/home/u")
    assert env == ("FOO=1", f"PATH={DEFAULT_PATH}", "HOSTNAME=h", "HOME=/home/u")
    kept = default_env(("PATH=/x", "HOME=/h", "HOSTNAME=other"), hostname="h", home="/r")
    assert kept == ("PATH=/x", "HOME=/h", "HOSTNAME=other")
    assert default_env((), hostname="h", home="")[-1] == "HOME=/"


def test_hosts_file_matches_buildkit() -> None:
    assert hosts_content("buildkitsandbox") == (
        "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    )


def test_resolv_conf_skips_a_loopback_stub(tmp_path: Path) -> None:
    host = tmp_path / "resolv.conf"
    upstream = tmp_path / "upstream.conf"
    host.write_text("nameserver 127.0.0.53\noptions edns0\n")
    upstream.write_text("nameserver 10.0.0.2\n")
    assert resolv_conf_content(host, upstream) == "nameserver 10.0.0.2\n"
    host.write_text("nameserver 1.1.1.1\n")
    assert resolv_conf_content(host, upstream) == "nameserver 1.1.1.1\n"
    host.write_text("nameserver ::1\n")
    assert resolv_conf_content(host, tmp_path / "missing") == "nameserver ::1\n"
    assert resolv_conf_content(tmp_path / "nothing", upstream) == ""


def test_write_etc_files(tmp_path: Path) -> None:
    files = write_etc_files(tmp_path / "etc", "box")
    assert files.hostname.read_text() == "box\n"
    assert "localhost box" in files.hosts.read_text()
    assert [m.destination for m in files.mounts()] == [
        "/etc/resolv.conf",
        "/etc/hosts",
        "/etc/hostname",
    ]
    assert all(m.options == ("rbind", "ro") for m in files.mounts())


@pytest.mark.parametrize(
    ("path", "inside"),
    [
        ("/dev/pipes", True),
        ("/dev", False),
        ("/proc/self", True),
        ("/sys/fs/cgroup", True),
        ("/device", False),
        ("//dev/x", True),
        ("/etc/hosts", False),
    ],
)
def test_is_system_path(path: str, inside: bool) -> None:
    assert is_system_path(path) is inside
