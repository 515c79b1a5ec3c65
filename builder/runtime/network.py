"""One network mechanism for RUN steps and containers.

Three modes, as in BuildKit and docker:

- ``default``: a private network namespace whose only way out is **slirp4netns** (a user-mode
  TCP/IP stack in a process on the host side). The namespace has ``lo`` and ``tap0``
  (10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3); outbound connections are made by slirp4netns
  as ordinary sockets of the host. Nothing is created on the host: no bridge, veth or iptables
  rule. slirp4netns runs with ``--disable-host-loopback``, so the gateway address does *not*
  lead to services bound to the host's 127.0.0.1 (rootless podman's and BuildKit's default).
- ``none``: a fresh namespace with only ``lo`` (the runtime creates it).
- ``host``: the host's namespace. Builds need the ``network.host`` entitlement for it.

Cost: starting a namespace with slirp4netns takes a few milliseconds, so a build starts one,
lazily, and shares it across its RUN steps (:class:`BuildNetworks`); BuildKit keeps a pool of
prepared namespaces for the same reason. A namespace is held by a small process (``sleep``
under ``unshare --net``); the runtime joins it through ``/proc/PID/ns/net``.

Port publishing (``pybuild run -p``) goes through slirp4netns's API socket (``add_hostfwd``):
slirp4netns listens on the host address and port and forwards to the container's address.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, assert_never

from builder.errors import BuildError, EnvironmentUnavailableError, ExecutionError

SLIRP_GUEST_ADDR: Final = "10.0.2.100"
SLIRP_GATEWAY: Final = "10.0.2.2"
SLIRP_DNS: Final = "10.0.2.3"
SLIRP_MTU: Final = 65520
SLIRP_DEVICE: Final = "tap0"
READY_TIMEOUT: Final = 10.0  # seconds for slirp4netns to configure the namespace
API_TIMEOUT: Final = 10.0


class NetworkMode(enum.StrEnum):
    DEFAULT = "default"
    NONE = "none"
    HOST = "host"

    @classmethod
    def parse(cls, text: str) -> NetworkMode:
        try:
            return cls(text)
        except ValueError:
            raise BuildError(f"invalid network mode {text!r}: use default, none or host") from None


# --------------------------------------------------------------------------- attachment


@dataclass(frozen=True, slots=True, kw_only=True)
class Attachment:
    """How one container is networked: what the runtime spec and /etc files get."""

    mode: NetworkMode
    netns: str | None = None  # the namespace to join (``default``), e.g. /proc/PID/ns/net
    address: str | None = None  # the container's address in that namespace

    def namespace(self) -> dict[str, str] | None:
        """The runtime-spec ``linux.namespaces`` entry (None: stay in the host's)."""
        match self.mode:
            case NetworkMode.HOST:
                return None
            case NetworkMode.NONE:
                return {"type": "network"}
            case NetworkMode.DEFAULT:
                if self.netns is None:
                    return {"type": "network"}  # no way out: never fall back to the host's
                return {"type": "network", "path": self.netns}
            case _:
                assert_never(self.mode)

    def resolv_conf(self, host_resolv_conf: str) -> str:
        """``/etc/resolv.conf``: slirp's DNS forwarder on the private network (with the host's
        ``search`` and ``options`` lines, as docker keeps them), the host's file otherwise."""
        if self.mode is not NetworkMode.DEFAULT or self.netns is None:
            return host_resolv_conf
        kept = [
            line
            for line in host_resolv_conf.splitlines()
            if line.split()[:1] in (["search"], ["options"], ["domain"])
        ]
        return "".join(f"{line}\n" for line in [f"nameserver {SLIRP_DNS}", *kept])


# --------------------------------------------------------------------------- slirp4netns


def _executable(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise EnvironmentUnavailableError(
            f"{name} not found in PATH: the private network needs it (Debian package {package};"
            " scripts/setup-system.sh installs it), or use --network host or none"
        )
    return found


def _wait_ready(fd: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ExecutionError("slirp4netns did not configure the network in time")
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
        if ready:
            if os.read(fd, 1) == b"1":
                return
            break
        if proc.poll() is not None:
            break
    detail = b""
    if proc.stderr is not None:
        with contextlib.suppress(OSError):
            proc.wait(timeout=1)
            detail = proc.stderr.read() or b""
    message = detail.decode(errors="replace").strip().splitlines()
    raise ExecutionError(
        "slirp4netns failed to set up the network" + (f": {message[-1]}" if message else "")
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PortMapping:
    """``-p [IP:]HOST:CONTAINER[/PROTO]``."""

    host_ip: str
    host_port: int
    container_port: int
    proto: str = "tcp"

    def __str__(self) -> str:
        return f"{self.host_ip}:{self.host_port}->{self.container_port}/{self.proto}"

    def to_json(self) -> dict[str, Any]:
        return {
            "host_ip": self.host_ip,
            "host_port": self.host_port,
            "container_port": self.container_port,
            "proto": self.proto,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PortMapping:
        return cls(
            host_ip=str(data["host_ip"]),
            host_port=int(data["host_port"]),
            container_port=int(data["container_port"]),
            proto=str(data.get("proto", "tcp")),
        )


def parse_publish(text: str) -> PortMapping:
    """Docker's ``-p`` syntax: ``[IP:]HOST:CONTAINER[/tcp|udp]`` (HOST may be empty or 0:
    pick a free port). ``-p CONTAINER`` alone publishes on a free port of every address."""
    spec, _, proto = text.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise BuildError(f"invalid proto: {proto}")
    host_ip = "0.0.0.0"
    if spec.startswith("["):  # [::1]:8080:80
        end = spec.find("]")
        if end < 0:
            raise BuildError(f"invalid IP address: {spec}")
        host_ip, spec = spec[1:end], spec[end + 2 :]
    parts = spec.split(":")
    match parts:
        case [container]:
            host = ""
        case [host, container]:
            pass
        case [ip, host, container]:
            host_ip = ip or "0.0.0.0"
        case _:
            raise BuildError(f"invalid port format: {text}")
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host_ip else socket.AF_INET, host_ip)
    except OSError:
        raise BuildError(f"invalid IP address: {host_ip}") from None
    if not container.isdigit() or not 0 < int(container) < 65536:
        raise BuildError(f"invalid containerPort: {container}")
    if host and (not host.isdigit() or not 0 <= int(host) < 65536):
        raise BuildError(f"invalid hostPort: {host}")
    return PortMapping(
        host_ip=host_ip,
        host_port=int(host) if host else 0,
        container_port=int(container),
        proto=proto,
    )


def claim_port(mapping: PortMapping) -> PortMapping:
    """Check that the host port is free (and pick one when it is 0): docker's wording when not."""
    family = socket.AF_INET6 if ":" in mapping.host_ip else socket.AF_INET
    kind = socket.SOCK_DGRAM if mapping.proto == "udp" else socket.SOCK_STREAM
    with socket.socket(family, kind) as probe:
        if kind == socket.SOCK_STREAM:  # connections in TIME_WAIT do not make a port busy
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((mapping.host_ip, mapping.host_port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise BuildError(
                    f"Bind for {mapping.host_ip}:{mapping.host_port} failed:"
                    " port is already allocated"
                ) from None
            raise BuildError(
                f"cannot publish {mapping.host_ip}:{mapping.host_port}: {exc.strerror}"
            ) from None
        port = probe.getsockname()[1]
    return PortMapping(
        host_ip=mapping.host_ip,
        host_port=int(port),
        container_port=mapping.container_port,
        proto=mapping.proto,
    )


class PrivateNetwork:
    """A network namespace held by a process, with slirp4netns giving it a way out.

    ``tied`` networks end with this process: the holder waits on a pipe and slirp4netns gets
    an ``--exit-fd``, so a killed pybuild leaves neither behind. Untied ones (detached
    containers) live in their own session until :meth:`close` or :func:`stop_pids`.
    """

    def __init__(
        self,
        holder: subprocess.Popen[bytes],
        slirp: subprocess.Popen[bytes],
        *,
        exit_w: int | None,
        api_socket: Path | None,
    ) -> None:
        self._holder = holder
        self._slirp = slirp
        self._exit_w = exit_w
        self.api_socket = api_socket
        self._closed = False

    @property
    def netns(self) -> str:
        return f"/proc/{self._holder.pid}/ns/net"

    @property
    def pids(self) -> tuple[int, int]:
        """(namespace holder, slirp4netns)."""
        return (self._holder.pid, self._slirp.pid)

    def attachment(self) -> Attachment:
        return Attachment(mode=NetworkMode.DEFAULT, netns=self.netns, address=SLIRP_GUEST_ADDR)

    @classmethod
    def start(cls, *, tied: bool = True, api_socket: Path | None = None) -> PrivateNetwork:
        unshare = _executable("unshare", "util-linux")
        slirp_exe = _executable("slirp4netns", "slirp4netns")
        if tied:
            # `read` returns when pybuild's end of the pipe closes (exit, crash or kill)
            holder_cmd = [unshare, "--net", "--", "/bin/sh", "-c", "read _"]
        else:
            holder_cmd = [unshare, "--net", "--", "sleep", "infinity"]
        holder = subprocess.Popen(
            holder_cmd,
            stdin=subprocess.PIPE if tied else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,
        )
        ready_r, ready_w = os.pipe()
        exit_r, exit_w = os.pipe() if tied else (-1, -1)
        try:
            _wait_for_namespace(holder)
            cmd = [
                slirp_exe,
                "--configure",
                f"--mtu={SLIRP_MTU}",
                "--disable-host-loopback",
                "--enable-seccomp",
                f"--ready-fd={ready_w}",
            ]
            if tied:
                cmd.append(f"--exit-fd={exit_r}")
            if api_socket is not None:  # relative: socket paths are limited to 108 bytes
                cmd.append(f"--api-socket={api_socket.name}")
            cmd += [str(holder.pid), SLIRP_DEVICE]
            slirp = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                close_fds=True,
                pass_fds=(ready_w, exit_r) if tied else (ready_w,),
                start_new_session=True,
                cwd=api_socket.parent if api_socket is not None else None,
            )
        except BaseException:
            _stop(holder)
            for fd in (ready_r, ready_w, exit_r, exit_w):
                if fd >= 0:
                    os.close(fd)
            raise
        os.close(ready_w)
        if exit_r >= 0:
            os.close(exit_r)
        network = cls(holder, slirp, exit_w=exit_w if tied else None, api_socket=api_socket)
        try:
            _wait_ready(ready_r, slirp, READY_TIMEOUT)
        except BaseException:
            network.close()
            raise
        finally:
            os.close(ready_r)
        if slirp.stderr is not None:  # drained so slirp4netns never blocks on a full pipe
            threading.Thread(target=_drain, args=(slirp.stderr,), daemon=True).start()
        return network

    def add_hostfwd(self, mapping: PortMapping) -> None:
        """Publish ``mapping`` (slirp4netns listens on the host address and port)."""
        if self.api_socket is None:
            raise ExecutionError("this network has no API socket: ports cannot be published")
        request = {
            "execute": "add_hostfwd",
            "arguments": {
                "proto": mapping.proto,
                "host_addr": mapping.host_ip,
                "host_port": mapping.host_port,
                "guest_port": mapping.container_port,
            },
        }
        reply = _api_call(self.api_socket, request)
        if "error" in reply:
            desc = (
                reply["error"].get("desc", reply["error"])
                if isinstance(reply["error"], dict)
                else reply["error"]
            )
            raise BuildError(f"Bind for {mapping.host_ip}:{mapping.host_port} failed: {desc}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._exit_w is not None:
            os.close(self._exit_w)
        if self._holder.stdin is not None:
            self._holder.stdin.close()
        _stop(self._slirp)
        _stop(self._holder)

    def __enter__(self) -> PrivateNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _drain(stream: Any) -> None:
    with contextlib.suppress(OSError, ValueError):
        while stream.read(65536):
            pass


def _wait_for_namespace(holder: subprocess.Popen[bytes]) -> None:
    """Wait until ``unshare`` has moved the holder into its new namespace."""
    own = os.stat("/proc/self/ns/net").st_ino
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if os.stat(f"/proc/{holder.pid}/ns/net").st_ino != own:
                return
        except FileNotFoundError:
            pass
        if holder.poll() is not None:
            raise ExecutionError(f"unshare --net failed (exit status {holder.returncode})")
        time.sleep(0.0005)
    raise ExecutionError("unshare --net did not create the network namespace in time")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def stop_pids(pids: tuple[int, ...], *, names: tuple[str, ...] = ("sleep", "slirp4netns")) -> None:
    """Kill an untied network's processes (recorded by a container) from another pybuild
    process. A pid is only killed while its command name is one of ``names``: a recycled pid
    belongs to someone else."""
    killed = []
    for pid in pids:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm in names:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    deadline = time.monotonic() + 5
    while killed and time.monotonic() < deadline:  # until their sockets are closed
        killed = [pid for pid in killed if _running(pid)]
        time.sleep(0.005)


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a zombie has closed its sockets)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _api_call(path: Path, request: dict[str, Any]) -> dict[str, Any]:
    with contextlib.ExitStack() as stack, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(API_TIMEOUT)
        try:
            # through the directory's fd: a long store path would not fit in sun_path
            fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            stack.callback(os.close, fd)
            sock.connect(f"/proc/self/fd/{fd}/{path.name}")
            sock.sendall(json.dumps(request).encode())
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        except OSError as exc:
            raise ExecutionError(f"slirp4netns API {path}: {exc}") from None
    try:
        reply = json.loads(data or b"{}")
    except ValueError:
        raise ExecutionError(f"slirp4netns API {path}: bad reply {data[:200]!r}") from None
    return reply if isinstance(reply, dict) else {"error": {"desc": str(reply)}}


# --------------------------------------------------------------------------- per build


class NetworkProvider(Protocol):
    """Gives a container its network for a mode (:class:`BuildNetworks` for a build)."""

    def attach(self, mode: NetworkMode) -> Attachment: ...


class BuildNetworks:
    """The networks of one build: one private namespace, started when a RUN step first asks
    for the default network and shared by all of them; ``none`` and ``host`` need nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._private: PrivateNetwork | None = None

    def attach(self, mode: NetworkMode) -> Attachment:
        match mode:
            case NetworkMode.DEFAULT:
                with self._lock:
                    if self._private is None:
                        self._private = PrivateNetwork.start(tied=True)
                    return self._private.attachment()
            case NetworkMode.NONE | NetworkMode.HOST:
                return Attachment(mode=mode)
            case _:
                assert_never(mode)

    def close(self) -> None:
        with self._lock:
            private, self._private = self._private, None
        if private is not None:
            private.close()

    def __enter__(self) -> BuildNetworks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
