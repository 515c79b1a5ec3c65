"""The vendored seccomp profile, converted to runtime-spec ``linux.seccomp``, and the privileged
spec of ``RUN --security=insecure`` (no root needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from builder.runtime import seccomp
from builder.runtime.spec import (
    ALL_CAPABILITIES,
    DEFAULT_CAPABILITIES,
    ProcessSpec,
    all_capabilities,
    build_spec,
    host_devices,
)

PROFILE = json.loads(seccomp.PROFILE.read_text())


def _rules(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [r for r in doc["syscalls"] if name in r["names"]]


def _convert(caps: tuple[str, ...], machine: str = "x86_64") -> dict[str, Any]:
    return seccomp.convert(
        PROFILE, capabilities=caps, machine=machine, kernel_release="6.1.0-13-amd64"
    )


def test_the_vendored_profile_is_named_with_its_source_and_licence() -> None:
    notice = seccomp.PROFILE.with_name("seccomp.NOTICE").read_text()
    assert "containers/common" in notice
    assert "Apache License, Version 2.0" in notice
    assert PROFILE["defaultAction"] == "SCMP_ACT_ERRNO"


def test_capability_conditions_pick_one_rule_of_each_pair() -> None:
    doc = _convert(DEFAULT_CAPABILITIES)
    # CAP_SYS_CHROOT is a default capability: chroot allowed, its EPERM twin dropped
    assert [r["action"] for r in _rules(doc, "chroot")] == ["SCMP_ACT_ALLOW"]
    # CAP_SYS_ADMIN is not: bpf and friends answer EPERM
    (bpf,) = _rules(doc, "bpf")
    assert (bpf["action"], bpf["errnoRet"]) == ("SCMP_ACT_ERRNO", 1)
    assert doc["defaultAction"] == "SCMP_ACT_ERRNO"
    assert doc["defaultErrnoRet"] == 38  # ENOSYS for syscalls the profile does not know
    assert all(set(r) <= {"names", "action", "errnoRet", "args"} for r in doc["syscalls"])
    admin = _convert((*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"))
    assert [r["action"] for r in _rules(admin, "bpf")] == ["SCMP_ACT_ALLOW"]


def test_architecture_conditions_and_sub_architectures() -> None:
    amd64 = _convert(DEFAULT_CAPABILITIES)
    assert amd64["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert _rules(amd64, "arch_prctl")
    assert not _rules(amd64, "cacheflush")
    arm64 = _convert(DEFAULT_CAPABILITIES, machine="aarch64")
    assert arm64["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert _rules(arm64, "cacheflush")
    assert not _rules(arm64, "arch_prctl")


def test_argument_filters_are_kept() -> None:
    rules = _rules(_convert(DEFAULT_CAPABILITIES), "personality")
    assert {r["args"][0]["value"] for r in rules} >= {0, 8, 0xFFFFFFFF}
    assert all(r["args"][0]["op"] == "SCMP_CMP_EQ" for r in rules)


def _spec(**kw: Any) -> dict[str, Any]:
    process = ProcessSpec(args=("true",), env=())
    return build_spec(rootfs=Path("/merged"), process=process, **kw)


def test_every_step_gets_the_profile_and_a_privileged_one_none() -> None:
    default = _spec()
    assert default["linux"]["seccomp"] == seccomp.default_profile(DEFAULT_CAPABILITIES)
    assert default["linux"]["maskedPaths"]
    privileged = _spec(privileged=True)
    linux = privileged["linux"]
    assert "seccomp" not in linux
    assert "maskedPaths" not in linux
    assert "readonlyPaths" not in linux
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert privileged["process"]["capabilities"]["bounding"] == all_capabilities()
    sys_mounts = {m["destination"]: m["options"] for m in privileged["mounts"]}
    assert "rw" in sys_mounts["/sys"]
    assert "rw" in sys_mounts["/sys/fs/cgroup"]
    assert "ro" in {m["destination"]: m["options"] for m in default["mounts"]}["/sys"]


def test_all_capabilities_are_those_of_the_bounding_set(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapBnd:\t000001fffeffffff\n")
    caps = all_capabilities(status)
    assert "CAP_SYS_ADMIN" in caps
    assert "CAP_CHECKPOINT_RESTORE" in caps
    assert "CAP_SYS_RESOURCE" not in caps  # bit 24 is clear
    assert len(caps) == len(ALL_CAPABILITIES) - 1


def test_host_devices_skip_the_containers_own() -> None:
    devices = host_devices(Path("/dev"))
    paths = {d["path"] for d in devices}
    assert "/dev/null" not in paths
    assert "/dev/console" not in paths
    assert not any(p.startswith(("/dev/pts/", "/dev/shm/")) for p in paths)
    assert all(d["type"] in ("c", "b") for d in devices)
