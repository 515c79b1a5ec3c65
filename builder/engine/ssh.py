"""SSH agent forwarding: ``--ssh default|ID[=SOCKET|KEY[,KEY...]]`` and the relay a step mounts.

:func:`parse_ssh_spec` reads the flag as buildx does (``ID`` before the first ``=``, then a
comma-separated list of paths); :func:`ssh_agents` checks the specs as BuildKit's ssh provider
does: no path (or ``default`` alone) means ``$SSH_AUTH_SOCK``, a path is either one agent
socket or private key files, never both. Keys are served by a private ``ssh-agent`` that
:class:`SshAgents` starts the first time a step asks for that id (``ssh-add`` loads the keys;
a key with a passphrase fails) and kills when the build ends; BuildKit loads them into an
in-process agent instead.

A ``RUN --mount=type=ssh`` step gets its own socket (:class:`AgentRelay`, in a private
directory outside the rootfs, with the mount's mode and owner) that relays each connection to
the agent. The build's cache key holds the mount's id, never key material.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from builder.errors import BuildError, ExecutionError

__all__ = [
    "DEFAULT_ID",
    "AgentRelay",
    "SshAgents",
    "SshSpec",
    "parse_ssh_spec",
    "ssh_agents",
]

DEFAULT_ID: Final = "default"
_AGENT_START_TIMEOUT: Final = 60.0
_CHUNK: Final = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class SshSpec:
    """One ``--ssh``: its id and the agent socket or key files (none: ``$SSH_AUTH_SOCK``)."""

    id: str
    paths: tuple[str, ...] = ()


def parse_ssh_spec(text: str) -> SshSpec:
    """``default|ID[=SOCKET|KEY[,KEY...]]`` as buildx parses ``--ssh``."""
    ssh_id, sep, rest = text.partition("=")
    if not ssh_id:
        raise BuildError(f"invalid ssh spec {text!r}: expected default|ID[=SOCKET|KEY[,KEY...]]")
    return SshSpec(id=ssh_id, paths=tuple(rest.split(",")) if sep else ())


@dataclass(frozen=True, slots=True, kw_only=True)
class _Source:
    socket: str | None = None  # an agent's socket
    keys: tuple[str, ...] = ()  # or private key files for a private agent


def _source(spec: SshSpec) -> _Source:
    paths = list(spec.paths)
    if not paths or paths == [""]:
        paths = [os.environ.get("SSH_AUTH_SOCK", "")]
    if not paths[0]:
        raise BuildError("invalid empty ssh agent socket: make sure SSH_AUTH_SOCK is set")
    agent: str | None = None
    keys: list[str] = []
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            raise BuildError(f"--ssh {spec.id}: failed to stat {path}: {exc.strerror}") from None
        if stat.S_ISSOCK(mode):
            if agent is not None:
                raise BuildError(f"--ssh {spec.id}: only single socket allowed")
            agent = path
        else:
            keys.append(path)
    if agent is not None and keys:
        raise BuildError(f"--ssh {spec.id}: invalid combination of keys and sockets")
    return _Source(socket=agent, keys=tuple(keys))


class SshAgents:
    """The build's agents by id; :meth:`socket` starts a private agent for key files on
    first use. Close it (or use it as a context manager) to stop those agents."""

    def __init__(self, sources: Mapping[str, _Source]) -> None:
        self._sources = dict(sources)
        self._started: dict[str, str] = {}
        self._agents: list[tuple[subprocess.Popen[bytes], Path]] = []
        self._lock = threading.Lock()

    def __contains__(self, ssh_id: object) -> bool:
        return ssh_id in self._sources

    def socket(self, ssh_id: str) -> str | None:
        """The agent socket for ``ssh_id``, or None when the build was given no such id."""
        source = self._sources.get(ssh_id)
        if source is None:
            return None
        if source.socket is not None:
            return source.socket
        with self._lock:
            path = self._started.get(ssh_id)
            if path is None:
                path = self._started[ssh_id] = self._start_agent(ssh_id, source.keys)
            return path

    def _start_agent(self, ssh_id: str, keys: tuple[str, ...]) -> str:
        agent = shutil.which("ssh-agent")
        add = shutil.which("ssh-add")
        if agent is None or add is None:
            raise ExecutionError(
                f"--ssh {ssh_id}: key files need ssh-agent and ssh-add (openssh-client)"
            )
        directory = Path(tempfile.mkdtemp(prefix="pybuild-ssh-agent-"))
        path = str(directory / "agent.sock")
        proc = subprocess.Popen(
            [agent, "-D", "-a", path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._agents.append((proc, directory))
        assert proc.stdout is not None
        # with -D the agent prints its variables once the socket listens
        if not proc.stdout.readline():
            raise ExecutionError(f"--ssh {ssh_id}: ssh-agent did not start")
        env = {**os.environ, "SSH_AUTH_SOCK": path, "SSH_ASKPASS_REQUIRE": "never"}
        env.pop("DISPLAY", None)
        for key in keys:
            done = subprocess.run(
                [add, "-q", "--", key],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=env,
                timeout=_AGENT_START_TIMEOUT,
                check=False,
            )
            if done.returncode != 0:
                lines = done.stderr.decode(errors="replace").strip().splitlines()
                detail = lines[-1] if lines else f"ssh-add exited {done.returncode}"
                raise ExecutionError(f"--ssh {ssh_id}: failed to load key {key}: {detail}")
        return path

    def close(self) -> None:
        with self._lock:
            agents, self._agents = self._agents, []
            self._started.clear()
        for proc, directory in agents:
            proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            shutil.rmtree(directory, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def ssh_agents(specs: Iterable[SshSpec]) -> SshAgents:
    """Check ``specs`` as BuildKit's ssh provider does (nothing is started yet)."""
    sources: dict[str, _Source] = {}
    for spec in specs:
        if spec.id in sources:
            raise BuildError(f"invalid duplicate ID {spec.id}")
        sources[spec.id] = _source(spec)
    return SshAgents(sources)


class AgentRelay:
    """A listening socket at ``path`` (mode ``mode``, owned by ``uid``:``gid``) whose every
    connection is relayed to the agent at ``upstream``, until :meth:`close`."""

    def __init__(self, path: Path, upstream: str, *, mode: int, uid: int, gid: int) -> None:
        self.path = path
        self._upstream = upstream
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        try:
            self._listener.bind(str(path))
            os.chown(path, uid, gid)
            os.chmod(path, mode)
            self._listener.listen(16)
        except OSError as exc:
            self._listener.close()
            raise ExecutionError(f"ssh agent socket {path}: {exc.strerror}") from None
        self._thread = threading.Thread(target=self._accept, name="ssh-relay", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                agent.connect(self._upstream)
            except OSError:
                agent.close()
                client.close()
                continue
            with self._lock:
                if self._closed:
                    client.close()
                    agent.close()
                    return
                self._open.update((client, agent))
            threading.Thread(
                target=self._pump, args=(client, agent), name="ssh-relay-conn", daemon=True
            ).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        live = 2
        with selectors.DefaultSelector() as sel:
            sel.register(a, selectors.EVENT_READ)
            sel.register(b, selectors.EVENT_READ)
            with contextlib.suppress(OSError, ValueError):
                while live:
                    for key, _ in sel.select():
                        src = key.fileobj
                        assert isinstance(src, socket.socket)
                        data = src.recv(_CHUNK)
                        if data:
                            peers[src].sendall(data)
                            continue
                        sel.unregister(src)
                        live -= 1
                        with contextlib.suppress(OSError):
                            peers[src].shutdown(socket.SHUT_WR)
        with self._lock:
            self._open.difference_update((a, b))
        a.close()
        b.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = list(self._open)
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self._listener.close()
        self._thread.join()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
