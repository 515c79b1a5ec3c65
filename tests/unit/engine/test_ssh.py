"""``--ssh`` specs parsed as buildx does and checked as BuildKit's ssh provider does; the
relay a step mounts forwards bytes both ways to the agent socket and leaves nothing behind."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from builder.engine.ssh import AgentRelay, SshSpec, parse_ssh_spec, ssh_agents
from builder.errors import BuildError


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("default", SshSpec(id="default")),
        ("default=", SshSpec(id="default", paths=("",))),
        ("git=/run/agent.sock", SshSpec(id="git", paths=("/run/agent.sock",))),
        ("keys=a,b", SshSpec(id="keys", paths=("a", "b"))),
    ],
)
def test_parse(text: str, spec: SshSpec) -> None:
    assert parse_ssh_spec(text) == spec


def test_parse_refuses_an_empty_id() -> None:
    with pytest.raises(BuildError, match="invalid ssh spec"):
        parse_ssh_spec("=a")


def _listening(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    return server


def test_default_is_the_agent_socket_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = tmp_path / "a.sock"
    with _listening(sock):
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        agents = ssh_agents([parse_ssh_spec("default"), parse_ssh_spec("other=")])
        assert agents.socket("default") == str(sock)
        assert agents.socket("other") == str(sock)
        assert agents.socket("absent") is None
        monkeypatch.delenv("SSH_AUTH_SOCK")
        with pytest.raises(BuildError, match="make sure SSH_AUTH_SOCK is set"):
            ssh_agents([parse_ssh_spec("default")])


def test_relay_forwards_both_ways_with_the_mount_mode(tmp_path: Path) -> None:
    upstream = tmp_path / "agent.sock"
    with _listening(upstream) as server:

        def echo_upper() -> None:
            conn, _ = server.accept()
            with conn:
                while data := conn.recv(1024):
                    conn.sendall(data.upper())

        worker = threading.Thread(target=echo_upper)
        worker.start()
        relay = AgentRelay(
            tmp_path / "relay.sock", str(upstream), mode=0o640, uid=os.getuid(), gid=os.getgid()
        )
        try:
            st = os.stat(relay.path)
            assert stat.S_ISSOCK(st.st_mode)
            assert stat.S_IMODE(st.st_mode) == 0o640
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(str(relay.path))
                client.sendall(b"request")
                client.shutdown(socket.SHUT_WR)
                reply = b""
                while chunk := client.recv(1024):
                    reply += chunk
            assert reply == b"REQUEST"
        finally:
            relay.close()
        worker.join()
    assert not relay.path.exists()
