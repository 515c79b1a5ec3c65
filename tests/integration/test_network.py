"""RUN networking: a private namespace through slirp4netns by default, ``none``, and ``host``
only with the ``network.host`` entitlement.

The reachability tests run pybuild inside a network namespace the test makes (``unshare
--net``), with its test servers in there too, so no packet leaves the machine: slirp4netns
then makes its outbound connections inside that namespace.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginekit import Builder

pytestmark = pytest.mark.integration

IFACES = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort"
OUTSIDE_ADDR = "10.200.0.1"  # an address of the test's namespace that is not loopback


def _host_ifaces() -> list[str]:
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return sorted(line.split(":")[0].strip() for line in lines)


def test_default_network_is_private(pb: Builder) -> None:
    built = pb.build(
        "FROM busybox\n"
        f"RUN {IFACES} > /ifaces.txt && cat /etc/resolv.conf > /resolv.txt"
        " && ip -4 addr show tap0 | grep -o 'inet [0-9./]*' > /addr.txt\n"
        f"RUN --network=none {IFACES} > /none.txt\n"
    )
    assert built.files["/ifaces.txt"].text.split() == ["lo", "tap0"]
    assert built.files["/resolv.txt"].text.splitlines()[0] == "nameserver 10.0.2.3"
    assert built.files["/addr.txt"].text == "inet 10.0.2.100/24\n"
    assert built.files["/none.txt"].text == "lo\n"
    assert _host_ifaces() != ["lo", "tap0"]  # the host really has other interfaces


def test_network_none_for_the_whole_build(pb: Builder) -> None:
    built = pb.build(f"FROM busybox\nRUN {IFACES} > /cli.txt\n", args=["--network", "none"])
    assert built.files["/cli.txt"].text == "lo\n"


def test_run_network_host_needs_the_entitlement(pb: Builder) -> None:
    dockerfile = f"FROM busybox\nRUN true\nRUN --network=host {IFACES} > /host.txt\n"
    refused = pb.build(dockerfile, check=False)
    assert refused.returncode == 1
    assert "Dockerfile:3" in refused.stderr
    assert "entitlement network.host is not allowed" in refused.stderr
    allowed = pb.build(dockerfile, args=["--allow", "network.host"], context_name="c2")
    assert allowed.files["/host.txt"].text.split() == _host_ifaces()
    # a cached step is checked too (BuildKit checks before solving)
    again = pb.build(dockerfile, check=False, context_name="c3")
    assert again.returncode == 1
    assert "entitlement network.host is not allowed" in again.stderr


def test_build_network_host_needs_the_entitlement(pb: Builder) -> None:
    refused = pb.build("FROM busybox\nRUN true\n", args=["--network", "host"], check=False)
    assert refused.returncode == 1
    assert "entitlement network.host is not allowed" in refused.stderr
    unknown = pb.build("FROM busybox\n", args=["--allow", "network.bridge"], check=False)
    assert "unknown entitlement network.bridge" in unknown.stderr


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Namespace:
    enter: tuple[str, ...]  # command prefix that runs a program inside the namespace
    outside_port: int
    loopback_port: int


def _serve(enter: tuple[str, ...], address: str, body: str, tmp: Path) -> subprocess.Popen[bytes]:
    root = tmp / f"www-{address}"
    root.mkdir()
    (root / "index.html").write_text(body)
    return subprocess.Popen(
        [*enter, sys.executable, "-m", "http.server", "--bind", address, "-d", str(root), "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _port_of(enter: tuple[str, ...], address: str) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        out = subprocess.run(
            [*enter, "cat", "/proc/net/tcp"], capture_output=True, text=True, check=True
        ).stdout
        wanted = "".join(f"{int(x):02X}" for x in reversed(address.split(".")))
        for line in out.splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            ip, port = local.split(":")
            if ip == wanted and state == "0A":  # LISTEN
                return int(port, 16)
        time.sleep(0.05)
    raise AssertionError(f"no server listening on {address}")


@pytest.fixture
def namespace(tmp_path: Path) -> Iterator[_Namespace]:
    """A network namespace with ``lo`` up, 127.0.0.1 and OUTSIDE_ADDR on it, and an HTTP
    server on each address (started by the test, inside the namespace)."""
    holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "infinity"])
    servers: list[subprocess.Popen[bytes]] = []
    try:
        netns = f"/proc/{holder.pid}/ns/net"
        deadline = time.monotonic() + 10
        while Path(netns).stat().st_ino == Path("/proc/self/ns/net").stat().st_ino:
            assert time.monotonic() < deadline, "unshare did not make a namespace"
            time.sleep(0.01)
        enter = ("nsenter", f"--net={netns}", "--")
        subprocess.run([*enter, "ip", "link", "set", "lo", "up"], check=True)
        subprocess.run([*enter, "ip", "addr", "add", f"{OUTSIDE_ADDR}/32", "dev", "lo"], check=True)
        servers.append(_serve(enter, OUTSIDE_ADDR, "reached outside\n", tmp_path))
        servers.append(_serve(enter, "127.0.0.1", "host loopback\n", tmp_path))
        yield _Namespace(
            enter=enter,
            outside_port=_port_of(enter, OUTSIDE_ADDR),
            loopback_port=_port_of(enter, "127.0.0.1"),
        )
    finally:
        for proc in [*servers, holder]:
            proc.kill()
            proc.wait()


def test_default_network_reaches_out_through_slirp(pb: Builder, namespace: _Namespace) -> None:
    inside = dataclasses.replace(pb, command_prefix=namespace.enter)
    built = inside.build(
        "FROM busybox\n"
        f"RUN wget -q -O /outside.txt http://{OUTSIDE_ADDR}:{namespace.outside_port}/\n"
        # slirp runs with --disable-host-loopback: its gateway does not lead to the loopback
        # services of the namespace pybuild runs in
        f"RUN wget -q -T 5 -O /loop.txt http://10.0.2.2:{namespace.loopback_port}/"
        " || echo refused > /loop.txt\n"
        f"RUN {IFACES} > /ifaces.txt\n"
    )
    assert built.files["/outside.txt"].text == "reached outside\n"
    assert built.files["/loop.txt"].text == "refused\n"
    assert built.files["/ifaces.txt"].text.split() == ["lo", "tap0"]
    # the build's slirp4netns ended with it
    assert _processes_named("slirp4netns", Path(f"/proc/{_holder_pid(namespace)}/ns/net")) == []


def _holder_pid(namespace: _Namespace) -> int:
    return int(namespace.enter[1].split("/")[2])


def _processes_named(name: str, netns: Path) -> list[int]:
    """Pids of processes called ``name`` whose network namespace is ``netns``."""
    wanted = netns.stat().st_ino
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() == name and (
                (proc / "ns" / "net").stat().st_ino == wanted
            ):
                found.append(int(proc.name))
        except OSError:
            continue
    return found
