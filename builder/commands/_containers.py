"""What the container commands share: opening the containers of a store, docker's output
shapes (``ps`` columns, STATUS and PORTS texts, ``inspect``'s JSON), ``run -d``."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from builder.commands._format import human_duration
from builder.commands._io import add_root_argument, memory_size
from builder.commands._store import open_store
from builder.errors import BuildError

if TYPE_CHECKING:
    from builder.containers.lifecycle import Containers
    from builder.containers.state import Container


def open_containers(args: argparse.Namespace) -> Containers:
    # lazy: `pybuild run` without -d loads this module, not the container machinery
    from builder.containers.lifecycle import Containers

    return Containers(open_store(args))


def add_container_arguments(parser: argparse.ArgumentParser, *, many: bool = True) -> None:
    if many:
        parser.add_argument("containers", nargs="+", metavar="CONTAINER")
    else:
        parser.add_argument("container", metavar="CONTAINER")
    add_root_argument(parser)


def each(args: argparse.Namespace, action: Any) -> int:
    """docker's multi-container commands: act on each, print its name, report failures last."""
    containers = open_containers(args)
    status = 0
    for ref in args.containers:
        try:
            action(containers, containers.store.find(ref))
            print(ref)
        except BuildError as exc:
            print(f"Error response from daemon: {exc.message}", file=sys.stderr)
            status = 1
    return status


# -- texts -------------------------------------------------------------------------------------


def ports_text(container: Container) -> str:
    # lazy: `pybuild run` without -d loads this module, not the container machinery
    from builder.containers.state import Status

    if container.state.status is not Status.RUNNING:
        return ""
    return ", ".join(str(p) for p in container.state.ports)


def status_text(container: Container, now: float | None = None) -> str:
    # lazy: `pybuild run` without -d loads this module, not the container machinery
    from builder.containers.state import Status

    current = time.time() if now is None else now
    state = container.state
    match state.status:
        case Status.CREATED:
            return "Created"
        case Status.RUNNING:
            text = f"Up {human_duration(current - (state.started_at or current))}"
            if state.health:
                text += (
                    " (health: starting)" if state.health == "starting" else f" ({state.health})"
                )
            return text
        case Status.RESTARTING:
            ago = human_duration(current - (state.finished_at or current))
            return f"Restarting ({state.exit_code}) {ago} ago"
        case Status.EXITED:
            ago = human_duration(current - (state.finished_at or current))
            return f"Exited ({state.exit_code}) {ago} ago"
        case Status.DEAD:
            return "Dead"


def command_text(container: Container, *, truncate: bool = True) -> str:
    text = " ".join(container.config.argv)
    if truncate and len(text) > 20:
        text = text[:19] + "…"
    return json.dumps(text, ensure_ascii=False)


def rfc3339(when: float | None) -> str:
    if when is None:
        return "0001-01-01T00:00:00Z"
    moment = datetime.datetime.fromtimestamp(when, datetime.UTC)
    return moment.isoformat().replace("+00:00", "Z")


def inspect_json(container: Container) -> dict[str, Any]:
    """``docker container inspect``'s shape (the fields pybuild has)."""
    # lazy: `pybuild run` without -d loads this module, not the container machinery
    from builder.containers.state import Status

    config, state = container.config, container.state
    ports: dict[str, list[dict[str, str]] | None] = {}
    for p in state.ports or config.ports:
        ports.setdefault(f"{p.container_port}/{p.proto}", []).append(  # type: ignore[union-attr]
            {"HostIp": p.host_ip, "HostPort": str(p.host_port)}
        )
    health: dict[str, Any] | None = None
    if config.health is not None:
        health = {
            "Status": state.health or "starting",
            "FailingStreak": state.failing_streak,
            "Log": list(state.health_log),
        }
    return {
        "Id": config.id,
        "Created": rfc3339(config.created),
        "Path": config.argv[0],
        "Args": list(config.argv[1:]),
        "State": {
            "Status": str(state.status),
            "Running": state.status is Status.RUNNING,
            "Paused": False,
            "Restarting": state.status is Status.RESTARTING,
            "OOMKilled": False,
            "Dead": state.status is Status.DEAD,
            "Pid": state.pid,
            "ExitCode": state.exit_code or 0,
            "Error": state.error,
            "StartedAt": rfc3339(state.started_at),
            "FinishedAt": rfc3339(state.finished_at),
            **({"Health": health} if health is not None else {}),
        },
        "Image": config.image_id,
        "Name": f"/{config.name}",
        "RestartCount": state.restart_count,
        "HostConfig": {
            "NetworkMode": config.network,
            "PortBindings": {
                f"{p.container_port}/{p.proto}": [
                    {"HostIp": p.host_ip, "HostPort": str(p.host_port or "")}
                ]
                for p in config.ports
            },
            "RestartPolicy": {
                "Name": config.restart.name,
                "MaximumRetryCount": config.restart.max_retries,
            },
            "AutoRemove": config.auto_remove,
            "Binds": [
                f"{b.source}:{b.destination}{':ro' if b.readonly else ''}" for b in config.binds
            ],
            "Memory": config.memory or 0,
            "NanoCpus": int((config.cpus or 0) * 1e9),
            "PidsLimit": config.pids_limit,
        },
        "Config": {
            "Hostname": config.hostname,
            "User": config.user,
            "Tty": config.tty,
            "Env": list(config.env),
            "Cmd": list(config.argv),
            "Image": config.image,
            "WorkingDir": config.workdir,
            "StopSignal": config.stop_signal,
            "StopTimeout": config.stop_timeout,
        },
        "NetworkSettings": {
            "Ports": ports,
            "IPAddress": "10.0.2.100" if config.network == "default" else "",
        },
    }


# -- run -------------------------------------------------------------------------------------


def add_container_flags(parser: argparse.ArgumentParser) -> None:
    """``docker run``'s flags for a container that outlives the command (``-d``) or is
    published (``-p``), and its network."""
    parser.add_argument("-d", "--detach", action="store_true", help="run in the background")
    parser.add_argument("-i", "--interactive", action="store_true", help="keep STDIN open")
    parser.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    parser.add_argument(
        "--network",
        default="default",
        choices=("default", "none", "host"),
        help="default: a private network with outbound access (slirp4netns); none; host",
    )
    parser.add_argument(
        "-p",
        "--publish",
        action="append",
        default=[],
        metavar="[IP:]HOST:CONTAINER[/PROTO]",
        help="publish a container port on the host (default network only)",
    )
    parser.add_argument("--env-file", action="append", default=[], metavar="FILE")
    parser.add_argument("-v", "--volume", action="append", default=[], metavar="HOSTDIR:CDIR[:ro]")
    parser.add_argument(
        "--mount", action="append", default=[], metavar="type=bind,source=S,target=T[,readonly]"
    )
    parser.add_argument("--restart", default="no", metavar="no|on-failure[:N]|always")
    parser.add_argument("--memory", "-m", type=memory_size, metavar="BYTES")
    parser.add_argument("--cpus", type=float, metavar="N")
    parser.add_argument("--pids-limit", type=int, metavar="N")
    parser.add_argument("--stop-signal", metavar="SIGNAL")
    if not any(a.dest == "runtime" for a in parser._actions):
        parser.add_argument("--runtime", default="runc", choices=("runc", "crun"))


def wants_container(args: argparse.Namespace) -> bool:
    """A run that needs a container record: ``-d``, or what only such a container does."""
    return bool(
        args.detach
        or args.publish
        or args.volume
        or args.mount
        or args.restart != "no"
        or args.pids_limit
    )


def run_container(args: argparse.Namespace) -> int:
    """``pybuild run`` through a supervised container: ``-d`` prints its ID; attached, the
    output is followed and the exit code returned (``--rm`` removes it after)."""
    # lazy: `pybuild run` without -d loads this module, not the container machinery
    from builder.containers.config import parse_mount, parse_volume
    from builder.containers.lifecycle import RunRequest

    containers = open_containers(args)
    binds = tuple(parse_volume(v) for v in args.volume) + tuple(parse_mount(m) for m in args.mount)
    request = RunRequest(
        image=args.image,
        command=tuple(args.command),
        name=args.name,
        entrypoint=args.entrypoint,
        env=tuple(args.env),
        env_files=tuple(args.env_file),
        workdir=args.workdir,
        user=args.user,
        hostname=args.hostname or None,
        network=args.network,
        publish=tuple(args.publish),
        binds=binds,
        memory=args.memory,
        cpus=args.cpus,
        pids_limit=args.pids_limit,
        restart=args.restart,
        stop_signal=args.stop_signal,
        stop_timeout=args.stop_timeout if args.stop_timeout >= 0 else 10,
        tty=args.tty,
        auto_remove=args.rm and args.detach,  # attached: removed after following it
        runtime=args.runtime,
    )
    container = containers.create(request)
    if args.detach:
        try:
            containers.start(container)
        except BuildError:
            if args.rm:
                containers.remove(containers.store.load(container.config.id), force=True)
            raise
        print(container.config.id)
        return 0
    proxy = _SignalProxy(containers, container.config.id, stop_timeout=args.stop_timeout)
    with proxy.installed():
        try:
            containers.start(container)
            proxy.started()
            return _follow(containers, container.config.id)
        finally:
            if args.rm:
                final = containers.store.load(container.config.id)
                containers.remove(final, force=True)


class _SignalProxy:
    """docker run's signal proxy for an attached container: SIGINT, SIGTERM and SIGHUP go to
    the container (once it has started: a signal during start is sent right after it); like
    ``docker stop``, a container still running ``--stop-timeout`` seconds after the first
    signal is killed."""

    def __init__(self, containers: Containers, container_id: str, *, stop_timeout: int) -> None:
        self.containers = containers
        self.container_id = container_id
        self.stop_timeout = stop_timeout
        self.pending: list[int] = []
        self.running = False
        self.timer: threading.Timer | None = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {s: signal.signal(s, self._handle) for s in stops}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.timer is not None:
                self.timer.cancel()

    def started(self) -> None:
        self.running = True
        while self.pending:
            self._forward(self.pending.pop(0))

    def _handle(self, signum: int, frame: object) -> None:
        if not self.running:
            self.pending.append(signum)
            return
        self._forward(signum)

    def _forward(self, signum: int) -> None:
        container = self.containers.store.load(self.container_id)
        with contextlib.suppress(BuildError):
            self.containers.kill(container, signal.Signals(signum).name)
        if self.timer is None and self.stop_timeout >= 0:
            self.timer = threading.Timer(self.stop_timeout, self._kill)
            self.timer.daemon = True
            self.timer.start()

    def _kill(self) -> None:
        container = self.containers.store.load(self.container_id)
        with contextlib.suppress(BuildError):
            self.containers.kill(container, "SIGKILL")


def _follow(containers: Containers, container_id: str) -> int:
    """Copy the container's output until it exits; its exit code."""
    # lazy: `pybuild run` without -d loads this module, not the container machinery
    from builder.containers.logs import Entry, read_logs

    # lazy: `pybuild run` without -d loads this module, not the container machinery
    from builder.containers.state import Status

    def write(entry: Entry) -> None:
        stream = sys.stderr.buffer if entry.stream == "stderr" else sys.stdout.buffer
        stream.write(entry.data)
        stream.flush()

    def running() -> bool:
        state = containers.refresh(containers.store.load(container_id)).state
        return state.status in (Status.RUNNING, Status.RESTARTING)

    read_logs(containers.store.directory(container_id) / "ctr.log", write, follow=running)
    return containers.store.load(container_id).state.exit_code or 0
