"""The default seccomp profile of RUN steps and containers, as the OCI spec's ``linux.seccomp``.

The profile is docker's, as the containers projects ship it (``seccomp.json`` beside this file,
its source and licence in ``seccomp.NOTICE``). It is in docker's own format, which the OCI
runtime cannot read as is: each rule may carry ``includes``/``excludes`` conditions on the
container's capabilities, the architecture and the kernel version. :func:`default_profile`
keeps the rules whose conditions hold for this container, as moby's ``setupSeccomp`` and
containers/common's ``setupSeccomp`` do, and lists the native architecture with its
sub-architectures (x86_64 with x86 and x32), so 32-bit syscalls are filtered too.
"""

from __future__ import annotations

import functools
import json
import os
import platform
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Final

PROFILE: Final = Path(__file__).with_name("seccomp.json")

# uname machine -> (libseccomp architecture, Go's GOARCH as the profile's "arches" name it)
_ARCHES: Final = {
    "x86_64": ("SCMP_ARCH_X86_64", "amd64"),
    "aarch64": ("SCMP_ARCH_AARCH64", "arm64"),
    "armv7l": ("SCMP_ARCH_ARM", "arm"),
    "ppc64le": ("SCMP_ARCH_PPC64LE", "ppc64le"),
    "s390x": ("SCMP_ARCH_S390X", "s390x"),
    "riscv64": ("SCMP_ARCH_RISCV64", "riscv64"),
    "mips64": ("SCMP_ARCH_MIPS64", "mips64"),
}


def _kernel(release: str) -> tuple[int, int]:
    """(major, minor) of a kernel release such as ``6.1.0-13-amd64``."""
    numbers = [int("".join(c for c in part[:4] if c.isdigit()) or 0) for part in release.split(".")]
    numbers += [0, 0]
    return numbers[0], numbers[1]


def _holds(
    conditions: Mapping[str, Any], caps: Collection[str], arch: str, kernel: tuple[int, int]
) -> tuple[bool, bool]:
    """(all conditions hold, any condition holds) for one ``includes``/``excludes`` object."""
    tests: list[bool] = []
    if conditions.get("caps"):
        tests.append(all(c in caps for c in conditions["caps"]))
    if conditions.get("arches"):
        tests.append(arch in conditions["arches"])
    if conditions.get("minKernel"):
        tests.append(kernel >= _kernel(str(conditions["minKernel"])))
    return all(tests), any(tests)


def convert(
    profile: Mapping[str, Any],
    *,
    capabilities: Collection[str],
    machine: str,
    kernel_release: str,
) -> dict[str, Any]:
    """``profile`` (docker's format) as runtime-spec ``linux.seccomp`` for a container with
    ``capabilities`` on a ``machine`` (``uname -m``) running kernel ``kernel_release``."""
    native, goarch = _ARCHES.get(machine, ("", machine))
    architectures: list[str] = []
    for entry in profile.get("archMap") or ():
        if entry.get("architecture") == native:
            architectures = [native, *entry.get("subArchitectures", ())]
    kernel = _kernel(kernel_release)
    syscalls: list[dict[str, Any]] = []
    for rule in profile.get("syscalls") or ():
        included, _ = _holds(rule.get("includes") or {}, capabilities, goarch, kernel)
        _, excluded = _holds(rule.get("excludes") or {}, capabilities, goarch, kernel)
        if not included or excluded:
            continue
        out: dict[str, Any] = {"names": list(rule["names"]), "action": rule["action"]}
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            out["args"] = [
                {k: a[k] for k in ("index", "value", "valueTwo", "op") if k in a}
                for a in rule["args"]
            ]
        syscalls.append(out)
    doc: dict[str, Any] = {"defaultAction": profile["defaultAction"], "syscalls": syscalls}
    if profile.get("defaultErrnoRet") is not None:
        doc["defaultErrnoRet"] = profile["defaultErrnoRet"]
    if architectures:
        doc["architectures"] = architectures
    return doc


@functools.cache
def _profile() -> dict[str, Any]:
    data = json.loads(PROFILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@functools.cache
def default_profile(capabilities: tuple[str, ...]) -> dict[str, Any]:
    """The vendored profile for a container with ``capabilities``, on this machine."""
    return convert(
        _profile(),
        capabilities=capabilities,
        machine=platform.machine(),
        kernel_release=os.uname().release,
    )
