"""OCI runtime ``config.json`` for one build step, the way Docker/BuildKit configure it.

What a RUN gets (and why):

- process: argv, env, cwd, uid/gid with ``additionalGids`` that always include the primary gid
  (BuildKit's ``ensureAdditionalGids``), no terminal, ``noNewPrivileges: false`` (Docker and
  BuildKit allow setuid binaries such as ``sudo`` during builds).
- capabilities: Docker's default set in bounding/effective/permitted, none inheritable or
  ambient (moby after CVE-2022-24769).
- rlimits: ``RLIMIT_NOFILE`` soft = hard = min(1048576, this process's hard limit): raising a
  hard limit needs ``CAP_SYS_RESOURCE``, which pybuild may lack (runc would fail to start).
- namespaces: mount, pid, ipc, uts, and network as :mod:`builder.runtime.network` decides: the
  build's private namespace (``default``), a fresh one with just ``lo`` (``none``), or none at
  all (``host``, an entitlement).
- mounts: /proc, /dev (tmpfs with null, zero, full, random, urandom, tty), /dev/pts, /dev/shm,
  /dev/mqueue, /sys (read-only), /sys/fs/cgroup (read-only), and /etc/resolv.conf,
  /etc/hosts, /etc/hostname bound read-only from generated files.
- masked and read-only paths: Docker's defaults.
- hostname: ``buildkitsandbox`` unless the step says otherwise (BuildKit's default; scripts and
  /etc/hosts agree with what ``docker build`` shows).
- cgroups: memory limit (swap = limit when the host accounts swap, so a hog is OOM-killed rather
  than swapped), CPU quota (``--cpus`` style, period 100 ms) and a pids limit when requested
  (builds default to ``DEFAULT_PIDS_LIMIT``, podman's choice of bound, so a fork bomb stops).
- seccomp: docker's default profile (:mod:`builder.runtime.seccomp`), kept to the rules that
  apply to the container's capabilities and this machine; the runtime compiles it to BPF.
- privileged (``RUN --security=insecure``, granted with ``--allow security.insecure``): what
  BuildKit gives it (containerd's ``WithPrivileged``, ``WithAllDevicesAllowed``,
  ``WithHostDevices``, writable sysfs and cgroupfs): every capability the kernel has, no
  seccomp, no masked or read-only paths, the host's devices, /sys and /sys/fs/cgroup writable.
"""

from __future__ import annotations

import ipaddress
import os
import resource
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from builder.errors import ExecutionError
from builder.fs import paths
from builder.runtime.network import Attachment, NetworkMode
from builder.runtime.seccomp import default_profile

DEFAULT_HOSTNAME: Final = "buildkitsandbox"
DEFAULT_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_NOFILE: Final = 1048576
CPU_PERIOD_US: Final = 100_000
DEFAULT_PIDS_LIMIT: Final = 4096  # RUN steps of a build (pybuild build --pids-limit)
OCI_VERSION: Final = "1.0.2"

DEFAULT_CAPABILITIES: Final = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

# capability(7) names by number; a privileged container gets those of pybuild's bounding set
ALL_CAPABILITIES: Final = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

MASKED_PATHS: Final = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)

READONLY_PATHS: Final = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

# (path, major, minor): created by runc in the /dev tmpfs, mode 0666 root:root
DEFAULT_DEVICES: Final = (
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
)

# mounts every container gets, in mount order (destinations below /dev, /proc, /sys live
# inside the fresh filesystems, never in the rootfs)
SYSTEM_MOUNT_ROOTS: Final = ("/proc", "/dev", "/sys")
SYSTEM_ROOT_NAMES: Final = tuple(root.lstrip("/") for root in SYSTEM_MOUNT_ROOTS)


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    """cgroup limits for a step; ``None`` means unlimited."""

    memory: int | None = None
    cpus: float | None = None
    pids: int | None = None  # processes and threads of the container's cgroup

    def __post_init__(self) -> None:
        if self.memory is not None and self.memory < 6 * 1024 * 1024:
            raise ExecutionError(f"memory limit {self.memory} is too small (minimum 6MiB)")
        if self.cpus is not None and not 0.01 <= self.cpus <= 1024:
            raise ExecutionError(f"invalid CPU limit {self.cpus} (0.01 to 1024)")
        if self.pids is not None and self.pids < 1:
            raise ExecutionError(f"invalid pids limit {self.pids} (at least 1)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSpec:
    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecMount:
    """One entry of ``mounts`` (runtime-spec ``config.md#mounts``)."""

    destination: str
    type: str
    source: str
    options: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "type": self.type,
            "source": self.source,
            "options": list(self.options),
        }


def bind(source: Path | str, destination: str, *, readonly: bool = True) -> SpecMount:
    options = ("rbind", "ro") if readonly else ("rbind", "rw")
    return SpecMount(destination=destination, type="bind", source=str(source), options=options)


def tmpfs(destination: str, *, size: int = 0, mode: int | None = None) -> SpecMount:
    options = ["nosuid", "nodev"]
    if size:
        options.append(f"size={size}")
    if mode is not None:
        options.append(f"mode={mode:o}")
    return SpecMount(destination=destination, type="tmpfs", source="tmpfs", options=tuple(options))


def system_mounts(*, privileged: bool = False) -> tuple[SpecMount, ...]:
    """The mounts of containerd's default spec minus ``/run`` (BuildKit removes it); sysfs and
    cgroupfs are writable in a privileged container."""
    sys_access = "rw" if privileged else "ro"
    return (
        SpecMount(
            destination="/proc", type="proc", source="proc", options=("nosuid", "noexec", "nodev")
        ),
        SpecMount(
            destination="/dev",
            type="tmpfs",
            source="tmpfs",
            options=("nosuid", "strictatime", "mode=755", "size=65536k"),
        ),
        SpecMount(
            destination="/dev/pts",
            type="devpts",
            source="devpts",
            options=("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"),
        ),
        SpecMount(
            destination="/dev/shm",
            type="tmpfs",
            source="shm",
            options=("nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
        ),
        SpecMount(
            destination="/dev/mqueue",
            type="mqueue",
            source="mqueue",
            options=("nosuid", "noexec", "nodev"),
        ),
        SpecMount(
            destination="/sys",
            type="sysfs",
            source="sysfs",
            options=("nosuid", "noexec", "nodev", sys_access),
        ),
        SpecMount(
            destination="/sys/fs/cgroup",
            type="cgroup",
            source="cgroup",
            options=("nosuid", "noexec", "nodev", "relatime", sys_access),
        ),
    )


def is_system_path(destination: str) -> bool:
    """True for paths strictly inside the fresh /proc, /dev or /sys filesystems: runc creates
    those mount points there, never in the rootfs."""
    clean = paths.clean_abs(destination)
    return any(clean.startswith(r + "/") for r in SYSTEM_MOUNT_ROOTS)


def nofile_limit() -> int:
    """``RLIMIT_NOFILE`` for the container: never above this process's hard limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 0:
        return MAX_NOFILE
    return min(MAX_NOFILE, hard)


def default_env(env: Sequence[str], *, hostname: str, home: str) -> tuple[str, ...]:
    """``env`` plus PATH, HOSTNAME and HOME when missing (Docker's container defaults)."""
    names = {e.split("=", 1)[0] for e in env}
    out = list(env)
    if "PATH" not in names:
        out.append(f"PATH={DEFAULT_PATH}")
    if "HOSTNAME" not in names:
        out.append(f"HOSTNAME={hostname}")
    if "HOME" not in names:
        out.append(f"HOME={home or '/'}")
    return tuple(out)


# --------------------------------------------------------------------------- /etc files


def hosts_content(hostname: str) -> str:
    """BuildKit's generated /etc/hosts."""
    return f"127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def _nameservers(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            out.append(fields[1])
    return out


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def resolv_conf_content(
    host_resolv: Path = Path("/etc/resolv.conf"),
    fallback: Path = Path("/run/systemd/resolve/resolv.conf"),
) -> str:
    """The host's resolv.conf; if it only names loopback resolvers (systemd-resolved's stub)
    and the upstream list exists, that one (BuildKit does the same)."""
    try:
        text = host_resolv.read_text(errors="replace")
    except OSError:
        text = ""
    servers = _nameservers(text)
    if servers and all(_is_loopback(s) for s in servers):
        try:
            upstream = fallback.read_text(errors="replace")
        except OSError:
            upstream = ""
        if _nameservers(upstream):
            return upstream
    return text


@dataclass(frozen=True, slots=True, kw_only=True)
class EtcFiles:
    resolv_conf: Path
    hosts: Path
    hostname: Path

    def mounts(self) -> tuple[SpecMount, ...]:
        return (
            bind(self.resolv_conf, "/etc/resolv.conf"),
            bind(self.hosts, "/etc/hosts"),
            bind(self.hostname, "/etc/hostname"),
        )


def write_etc_files(
    directory: Path, hostname: str, *, network: Attachment | None = None, hosts: str | None = None
) -> EtcFiles:
    """Write resolv.conf (for ``network``; the host's when None), hosts and hostname into
    ``directory`` (outside any rootfs)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = EtcFiles(
        resolv_conf=directory / "resolv.conf",
        hosts=directory / "hosts",
        hostname=directory / "hostname",
    )
    resolv = resolv_conf_content()
    files.resolv_conf.write_text(network.resolv_conf(resolv) if network is not None else resolv)
    files.hosts.write_text(hosts if hosts is not None else hosts_content(hostname))
    files.hostname.write_text(hostname + "\n")
    for path in (files.resolv_conf, files.hosts, files.hostname):
        path.chmod(0o644)
    return files


# --------------------------------------------------------------------------- privileged


def all_capabilities(status: Path = Path("/proc/self/status")) -> list[str]:
    """Every capability of this process's bounding set (containerd's
    ``WithAllCurrentCapabilities``: a container cannot get more than pybuild has)."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("CapBnd:"):
                mask = int(line.split()[1], 16)
                return [name for n, name in enumerate(ALL_CAPABILITIES) if mask >> n & 1]
    except (OSError, ValueError, IndexError):
        pass
    return list(DEFAULT_CAPABILITIES)


# containerd's HostDevices skips these directories of /dev and /dev/console
_HOST_DEVICE_SKIP: Final = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})
_HOST_DEVICE_OWN: Final = frozenset({"/dev/console", "/dev/ptmx"})  # the container's own


def host_devices(root: Path = Path("/dev")) -> list[dict[str, Any]]:
    """The host's character and block devices as ``linux.devices`` entries (containerd's
    ``WithHostDevices``), for a privileged container."""
    out: list[dict[str, Any]] = []
    defaults = {path for path, _, _ in DEFAULT_DEVICES}

    def walk(directory: Path) -> None:
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            path = Path(entry.path)
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if entry.name not in _HOST_DEVICE_SKIP:
                    walk(path)
                continue
            kind = "c" if stat.S_ISCHR(st.st_mode) else "b" if stat.S_ISBLK(st.st_mode) else None
            in_container = "/dev/" + str(path.relative_to(root))
            if kind is None or in_container in defaults or in_container in _HOST_DEVICE_OWN:
                continue
            out.append(
                {
                    "path": in_container,
                    "type": kind,
                    "major": os.major(st.st_rdev),
                    "minor": os.minor(st.st_rdev),
                    "fileMode": stat.S_IMODE(st.st_mode),
                    "uid": st.st_uid,
                    "gid": st.st_gid,
                }
            )

    walk(root)
    return out


# --------------------------------------------------------------------------- spec


def _resources_json(
    resources: Resources, *, swap_accounting: bool, privileged: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "devices": [{"allow": True, "access": "rwm"}]
        if privileged
        else [
            {"allow": False, "access": "rwm"},
            *(
                {"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
                for _, major, minor in DEFAULT_DEVICES
            ),
            {"allow": True, "type": "c", "major": 136, "access": "rwm"},  # /dev/pts/*
            {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},  # ptmx
        ]
    }
    if resources.memory is not None:
        memory: dict[str, Any] = {"limit": resources.memory}
        if swap_accounting:
            memory["swap"] = resources.memory
        out["memory"] = memory
    if resources.cpus is not None:
        out["cpu"] = {"quota": round(resources.cpus * CPU_PERIOD_US), "period": CPU_PERIOD_US}
    if resources.pids is not None:
        out["pids"] = {"limit": resources.pids}
    return out


def build_spec(
    *,
    rootfs: Path,
    process: ProcessSpec,
    hostname: str = DEFAULT_HOSTNAME,
    network: Attachment | None = None,
    mounts: Sequence[SpecMount] = (),
    resources: Resources | None = None,
    swap_accounting: bool = False,
    nofile: int | None = None,
    readonly_rootfs: bool = False,
    privileged: bool = False,
) -> dict[str, Any]:
    """The runtime-spec document for one process on ``rootfs``.

    ``network`` None means a namespace with only ``lo``. ``mounts`` come after the system
    mounts (so they may sit below /dev, e.g. /dev/pipes). ``privileged``: see the module doc.
    ``linux.cgroupsPath`` is left to the runtime, which knows the container id.
    """
    netns = (network or Attachment(mode=NetworkMode.NONE)).namespace()
    limit = nofile if nofile is not None else nofile_limit()
    gids = [process.gid, *(g for g in process.additional_gids if g != process.gid)]
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if netns is not None:
        namespaces.append(netns)
    caps = all_capabilities() if privileged else list(DEFAULT_CAPABILITIES)
    devices = [
        {
            "path": path,
            "type": "c",
            "major": major,
            "minor": minor,
            "fileMode": 0o666,
            "uid": 0,
            "gid": 0,
        }
        for path, major, minor in DEFAULT_DEVICES
    ]
    linux: dict[str, Any] = {
        "resources": _resources_json(
            resources or Resources(), swap_accounting=swap_accounting, privileged=privileged
        ),
        "namespaces": namespaces,
        "devices": devices + host_devices() if privileged else devices,
    }
    if not privileged:
        linux["seccomp"] = default_profile(tuple(caps))
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": process.uid, "gid": process.gid, "additionalGids": gids},
            "args": list(process.args),
            "env": list(process.env),
            "cwd": process.cwd,
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": limit, "soft": limit}],
            "noNewPrivileges": False,
        },
        "root": {"path": str(rootfs), "readonly": readonly_rootfs},
        "hostname": hostname,
        "mounts": [m.to_json() for m in (*system_mounts(privileged=privileged), *mounts)],
        "linux": linux,
    }
