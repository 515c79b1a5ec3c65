"""The network mechanism's pure parts: ``-p`` parsing, /etc/resolv.conf, entitlements."""

from __future__ import annotations

import socket

import pytest

from builder.errors import BuildError
from builder.plan.entitlements import Entitlement, parse_entitlements
from builder.runtime.network import (
    Attachment,
    NetworkMode,
    PortMapping,
    claim_port,
    parse_publish,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8080:80", PortMapping(host_ip="0.0.0.0", host_port=8080, container_port=80)),
        ("127.0.0.1:8080:80", PortMapping(host_ip="127.0.0.1", host_port=8080, container_port=80)),
        ("127.0.0.1::80", PortMapping(host_ip="127.0.0.1", host_port=0, container_port=80)),
        ("80", PortMapping(host_ip="0.0.0.0", host_port=0, container_port=80)),
        (
            "53:53/udp",
            PortMapping(host_ip="0.0.0.0", host_port=53, container_port=53, proto="udp"),
        ),
        ("[::1]:8080:80", PortMapping(host_ip="::1", host_port=8080, container_port=80)),
    ],
)
def test_parse_publish(text: str, expected: PortMapping) -> None:
    assert parse_publish(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8080:80/sctp", "invalid proto: sctp"),
        ("a:b:c:d", "invalid port format: a:b:c:d"),
        ("300.1.1.1:80:80", "invalid IP address: 300.1.1.1"),
        ("8080:http", "invalid containerPort: http"),
        ("99999:80", "invalid hostPort: 99999"),
    ],
)
def test_parse_publish_errors(text: str, message: str) -> None:
    with pytest.raises(BuildError, match=message):
        parse_publish(text)


def test_claim_port_refuses_a_busy_port_with_dockers_wording() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        mapping = PortMapping(host_ip="127.0.0.1", host_port=port, container_port=80)
        with pytest.raises(BuildError) as err:
            claim_port(mapping)
    assert str(err.value) == f"Bind for 127.0.0.1:{port} failed: port is already allocated"
    picked = claim_port(PortMapping(host_ip="127.0.0.1", host_port=0, container_port=80))
    assert picked.host_port > 0


def test_resolv_conf_private_network_uses_slirp_dns_and_keeps_search() -> None:
    host = "nameserver 127.0.0.53\nsearch example.test\noptions edns0\n"
    private = Attachment(mode=NetworkMode.DEFAULT, netns="/proc/1/ns/net")
    assert private.resolv_conf(host) == (
        "nameserver 10.0.2.3\nsearch example.test\noptions edns0\n"
    )
    assert Attachment(mode=NetworkMode.HOST).resolv_conf(host) == host
    assert Attachment(mode=NetworkMode.NONE).resolv_conf(host) == host


def test_network_mode_parse() -> None:
    assert NetworkMode.parse("none") is NetworkMode.NONE
    with pytest.raises(BuildError, match="invalid network mode 'bridge'"):
        NetworkMode.parse("bridge")


def test_parse_entitlements() -> None:
    assert parse_entitlements(["network.host,security.insecure"]) == {
        Entitlement.NETWORK_HOST,
        Entitlement.SECURITY_INSECURE,
    }
    with pytest.raises(BuildError, match=r"unknown entitlement device\.gpu"):
        parse_entitlements(["device.gpu"])
