"""Containers on disk: ``<store>/containers/<id>/`` holds everything one container has.

- ``config.json``: what ``run`` asked for (:class:`ContainerConfig`), fixed at creation;
- ``state.json``: what is happening now (:class:`ContainerState`), replaced atomically;
- ``upper/``: the writable layer (kept across stop/start, gone with ``rm``); ``rootfs/`` its
  overlay mount while running; ``bundle/`` the runtime spec; ``ctr.log`` the output (conmon's
  format, see :mod:`builder.containers.logs`); ``exits/`` conmon's exit-status file;
- ``lock``: an flock every change of the state holds.

Names are unique: creation holds ``containers/.lock`` while it checks and writes the name.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from builder.errors import BuildError
from builder.runtime.network import PortMapping
from builder.store.paths import CONTAINER_IMAGE, containers_dir

NAME_PATTERN: Final = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class Status(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    RESTARTING = "restarting"
    EXITED = "exited"
    DEAD = "dead"


@dataclass(frozen=True, slots=True, kw_only=True)
class Bind:
    """``-v HOSTDIR:CDIR[:ro]`` / ``--mount type=bind,...`` (or a VOLUME's directory)."""

    source: str
    destination: str
    readonly: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    """HEALTHCHECK with docker's defaults applied; seconds."""

    test: tuple[str, ...]
    interval: float = 30.0
    timeout: float = 30.0
    start_period: float = 0.0
    start_interval: float = 5.0
    retries: int = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    name: str = "no"  # no | on-failure | always | unless-stopped
    max_retries: int = 0  # on-failure:N; 0 = unlimited

    def __str__(self) -> str:
        if self.name == "on-failure" and self.max_retries:
            return f"{self.name}:{self.max_retries}"
        return self.name


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerConfig:
    id: str
    name: str
    image: str  # as the user named it
    image_id: str  # the config digest
    manifest: dict[str, Any]  # the image's manifest descriptor (a prune root)
    created: float
    argv: tuple[str, ...]
    env: tuple[str, ...]
    workdir: str
    user: str
    hostname: str
    network: str
    ports: tuple[PortMapping, ...] = ()
    binds: tuple[Bind, ...] = ()
    volumes: tuple[str, ...] = ()  # the image's VOLUMEs: a directory each, removed with rm
    memory: int | None = None
    cpus: float | None = None
    pids_limit: int | None = None
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    stop_signal: str = "SIGTERM"
    stop_timeout: int = 10
    tty: bool = False
    auto_remove: bool = False
    health: Health | None = None
    runtime: str = "runc"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "image": self.image,
            "image_id": self.image_id,
            "manifest": self.manifest,
            "created": self.created,
            "argv": list(self.argv),
            "env": list(self.env),
            "workdir": self.workdir,
            "user": self.user,
            "hostname": self.hostname,
            "network": self.network,
            "ports": [p.to_json() for p in self.ports],
            "binds": [
                {"source": b.source, "destination": b.destination, "readonly": b.readonly}
                for b in self.binds
            ],
            "volumes": list(self.volumes),
            "memory": self.memory,
            "cpus": self.cpus,
            "pids_limit": self.pids_limit,
            "restart": {"name": self.restart.name, "max_retries": self.restart.max_retries},
            "stop_signal": self.stop_signal,
            "stop_timeout": self.stop_timeout,
            "tty": self.tty,
            "auto_remove": self.auto_remove,
            "health": None
            if self.health is None
            else {
                "test": list(self.health.test),
                "interval": self.health.interval,
                "timeout": self.health.timeout,
                "start_period": self.health.start_period,
                "start_interval": self.health.start_interval,
                "retries": self.health.retries,
            },
            "runtime": self.runtime,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ContainerConfig:
        health = d.get("health")
        return cls(
            id=d["id"],
            name=d["name"],
            image=d["image"],
            image_id=d["image_id"],
            manifest=d["manifest"],
            created=float(d["created"]),
            argv=tuple(d["argv"]),
            env=tuple(d["env"]),
            workdir=d["workdir"],
            user=d["user"],
            hostname=d["hostname"],
            network=d["network"],
            ports=tuple(PortMapping.from_json(p) for p in d.get("ports", ())),
            binds=tuple(Bind(**b) for b in d.get("binds", ())),
            volumes=tuple(d.get("volumes", ())),
            memory=d.get("memory"),
            cpus=d.get("cpus"),
            pids_limit=d.get("pids_limit"),
            restart=RestartPolicy(**d.get("restart", {})),
            stop_signal=d.get("stop_signal", "SIGTERM"),
            stop_timeout=int(d.get("stop_timeout", 10)),
            tty=bool(d.get("tty", False)),
            auto_remove=bool(d.get("auto_remove", False)),
            health=None
            if health is None
            else Health(
                test=tuple(health["test"]),
                interval=float(health["interval"]),
                timeout=float(health["timeout"]),
                start_period=float(health["start_period"]),
                start_interval=float(health["start_interval"]),
                retries=int(health["retries"]),
            ),
            runtime=d.get("runtime", "runc"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerState:
    status: Status = Status.CREATED
    pid: int = 0
    conmon_pid: int = 0
    monitor_pid: int = 0  # the HEALTHCHECK monitor
    network_pids: tuple[int, ...] = ()
    ports: tuple[PortMapping, ...] = ()  # as published (a host port 0 made concrete)
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    restart_count: int = 0
    stopping: bool = False  # stop/kill by the user: the restart policy does not apply
    health: str = ""  # "", starting, healthy, unhealthy
    failing_streak: int = 0
    health_log: tuple[dict[str, Any], ...] = ()
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "pid": self.pid,
            "conmon_pid": self.conmon_pid,
            "monitor_pid": self.monitor_pid,
            "network_pids": list(self.network_pids),
            "ports": [p.to_json() for p in self.ports],
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "exit_code": self.exit_code,
            "restart_count": self.restart_count,
            "stopping": self.stopping,
            "health": self.health,
            "failing_streak": self.failing_streak,
            "health_log": list(self.health_log),
            "error": self.error,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ContainerState:
        return cls(
            status=Status(d.get("status", "created")),
            pid=int(d.get("pid", 0)),
            conmon_pid=int(d.get("conmon_pid", 0)),
            monitor_pid=int(d.get("monitor_pid", 0)),
            network_pids=tuple(d.get("network_pids", ())),
            ports=tuple(PortMapping.from_json(p) for p in d.get("ports", ())),
            started_at=d.get("started_at"),
            finished_at=d.get("finished_at"),
            exit_code=d.get("exit_code"),
            restart_count=int(d.get("restart_count", 0)),
            stopping=bool(d.get("stopping", False)),
            health=str(d.get("health", "")),
            failing_streak=int(d.get("failing_streak", 0)),
            health_log=tuple(d.get("health_log", ())),
            error=str(d.get("error", "")),
        )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True, kw_only=True)
class Container:
    config: ContainerConfig
    state: ContainerState
    directory: Path

    @property
    def short_id(self) -> str:
        return self.config.id[:12]


class ContainerStore:
    """The containers of one image store."""

    def __init__(self, store_root: Path) -> None:
        self.store_root = store_root
        self.root = containers_dir(store_root)

    def directory(self, container_id: str) -> Path:
        return self.root / container_id

    @contextlib.contextmanager
    def _flock(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def locked(self, container_id: str) -> contextlib.AbstractContextManager[None]:
        """Hold the container's lock (every state change does)."""
        return self._flock(self.directory(container_id) / "lock")

    def create(self, config: ContainerConfig) -> Container:
        if not NAME_PATTERN.match(config.name):
            raise BuildError(
                f'Invalid container name ("{config.name}"), only [a-zA-Z0-9][a-zA-Z0-9_.-]'
                " are allowed"
            )
        with self._flock(self.root / ".lock"):
            for other in self.all():
                if other.config.name == config.name:
                    raise BuildError(
                        f'Conflict. The container name "/{config.name}" is already in use by'
                        f' container "{other.config.id}". You have to remove (or rename) that'
                        " container to be able to reuse that name."
                    )
            directory = self.directory(config.id)
            directory.mkdir(parents=True)
            for sub in ("upper", "exits", "sockets", "bundle"):
                (directory / sub).mkdir()
            (directory / "upper").chmod(0o755)
            _write_json(directory / CONTAINER_IMAGE, config.manifest)  # a prune root
            _write_json(directory / "config.json", config.to_json())
            _write_json(directory / "state.json", ContainerState().to_json())
        return self.load(config.id)

    def load(self, container_id: str) -> Container:
        directory = self.directory(container_id)
        try:
            config = json.loads((directory / "config.json").read_text())
            state = json.loads((directory / "state.json").read_text())
        except (OSError, ValueError):
            raise BuildError(f"No such container: {container_id}") from None
        return Container(
            config=ContainerConfig.from_json(config),
            state=ContainerState.from_json(state),
            directory=directory,
        )

    def save_state(self, container_id: str, state: ContainerState) -> None:
        _write_json(self.directory(container_id) / "state.json", state.to_json())

    def update(self, container_id: str, **changes: Any) -> ContainerState:
        """Change some state fields (the caller holds the lock)."""
        state = replace(self.load(container_id).state, **changes)
        self.save_state(container_id, state)
        return state

    def all(self) -> list[Container]:
        if not self.root.is_dir():
            return []
        out = []
        for child in self.root.iterdir():
            if child.name.startswith(".") or not (child / "config.json").is_file():
                continue
            with contextlib.suppress(BuildError):
                out.append(self.load(child.name))
        out.sort(key=lambda c: c.config.created, reverse=True)
        return out

    def find(self, ref: str) -> Container:
        """By name, full ID or unique ID prefix (docker's lookup order)."""
        name = ref.removeprefix("/")
        containers = self.all()
        for c in containers:
            if c.config.name == name or c.config.id == ref:
                return c
        matches = [c for c in containers if ref and c.config.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise BuildError(f"Multiple IDs found with provided prefix: {ref}")
        raise BuildError(f"No such container: {ref}")

    def delete(self, container_id: str) -> None:
        shutil.rmtree(self.directory(container_id), ignore_errors=False)


def now() -> float:
    return time.time()
