"""Container lifecycle: start, stop, kill, remove, exec, and the clean-up after an exit.

A detached container is supervised by **conmon** (podman's monitor): conmon runs ``runc
create``, holds the container's stdio and writes it to ``ctr.log``, waits for the exit and
writes the status to ``exits/<id>``, then runs its exit command, ``python -m builder
container cleanup ID``: that deletes the runtime's container, stops the network, unmounts
the root and applies the restart policy. No pybuild process needs to stay around.

Per start: the image's layer directories plus the container's own ``upper/`` are mounted as
one overlay at ``rootfs/`` (so what the container writes survives stop/start and goes with
``rm``), with an init layer ``init/`` on top when the image's ``/proc``, ``/dev`` or ``/sys``
is not a directory (:func:`builder.snapshot.overlay.init_layer`); the network comes from
:mod:`builder.runtime.network` (a private namespace with slirp4netns whose API socket
publishes ``-p`` ports); the spec is the one RUN steps get
(:func:`builder.runtime.spec.build_spec`) with the container's process, limits and mounts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from builder.containers.config import (
    command,
    environment,
    health,
    random_name,
    restart_policy,
    stop_signal,
)
from builder.containers.state import (
    Bind,
    Container,
    ContainerConfig,
    ContainerState,
    ContainerStore,
    Status,
    now,
)
from builder.errors import BuildError, EnvironmentUnavailableError, ExecutionError
from builder.oci.descriptor import Descriptor
from builder.runtime.network import (
    Attachment,
    NetworkMode,
    PrivateNetwork,
    claim_port,
    parse_publish,
    stop_pids,
)
from builder.runtime.oci import cgroup_layout, cgroups_path_for, read_runc_log
from builder.runtime.spec import (
    SYSTEM_ROOT_NAMES,
    ProcessSpec,
    Resources,
    SpecMount,
    bind,
    build_spec,
    default_env,
    write_etc_files,
)
from builder.runtime.users import resolve_user
from builder.snapshot.layerdirs import LayerDirs
from builder.snapshot.overlay import (
    MountTarget,
    init_layer,
    mkdir_in_root,
    mount_persistent,
    mounts_under,
    prepare_mountpoints,
    unmount,
)
from builder.store import Store, paths

START_TIMEOUT: Final = 20.0  # seconds for conmon + runc create
CLEANUP_WAIT: Final = 20.0  # seconds to wait for conmon's exit command after a kill
MAX_RESTART_DELAY: Final = 2.0


def _new_dir(path: Path) -> contextlib.AbstractContextManager[Path]:
    """``path`` made now and kept (a container's init layer lives as long as its mount)."""
    path.mkdir()
    return contextlib.nullcontext(path)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    """What ``pybuild run`` was asked (docker's flags, before the image's config applies)."""

    image: str
    command: tuple[str, ...] = ()
    name: str | None = None
    entrypoint: str | None = None
    env: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    network: str = "default"
    publish: tuple[str, ...] = ()
    binds: tuple[Bind, ...] = ()
    memory: int | None = None
    cpus: float | None = None
    pids_limit: int | None = None
    restart: str = "no"
    stop_signal: str | None = None
    stop_timeout: int = 10
    tty: bool = False
    auto_remove: bool = False
    runtime: str = "runc"


def docker_hosts(hostname: str, address: str | None) -> str:
    """docker's /etc/hosts for a container."""
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "ff00::0\tip6-mcastprefix",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
    ]
    if address:
        lines.append(f"{address}\t{hostname}")
    return "\n".join(lines) + "\n"


def _alive(pid: int, name: str) -> bool:
    if pid <= 0:
        return False
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == name
    except OSError:
        return False


def _stop_monitor(pid: int, container_id: str) -> None:
    """End a container's health monitor (checked by its command line: pids are reused)."""
    if pid <= 0:
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return
    if b"health" in cmdline and container_id.encode() in cmdline:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Containers:
    """Container operations over one image store."""

    def __init__(self, store: Store) -> None:
        self.images = store
        self.store = ContainerStore(Path(store.root))
        self.runtime_root = Path(store.root) / paths.CONTAINER_RUNTIME

    # -- create ------------------------------------------------------------------------------

    def create(self, request: RunRequest) -> Container:
        """A new container for ``request`` (docker's rules, :mod:`builder.containers.config`)."""
        record = self.images.resolve(request.image)
        image = self.images.load_image(record.descriptor)
        run_config = image.config.config
        container_id = os.urandom(32).hex()
        taken = {c.config.name for c in self.store.all()}
        ports = tuple(parse_publish(p) for p in request.publish)
        for mapping in ports:
            claim_port(mapping)  # refuse a busy port before anything is made
        config = ContainerConfig(
            id=container_id,
            name=request.name or random_name(taken),
            image=request.image,
            image_id=str(record.config_digest),
            manifest=record.descriptor.to_json(),
            created=now(),
            argv=command(
                run_config,
                entrypoint=request.entrypoint,
                args=request.command,
                image_name=request.image,
            ),
            env=environment(run_config, env=request.env, env_files=request.env_files),
            workdir=request.workdir or run_config.working_dir or "/",
            user=request.user if request.user is not None else run_config.user,
            hostname=request.hostname or container_id[:12],
            network=request.network,
            ports=ports,
            binds=request.binds,
            volumes=tuple(
                v for v in run_config.volumes if v not in {b.destination for b in request.binds}
            ),
            memory=request.memory,
            cpus=request.cpus,
            pids_limit=request.pids_limit,
            restart=restart_policy(request.restart),
            stop_signal=stop_signal(run_config, request.stop_signal),
            stop_timeout=request.stop_timeout,
            tty=request.tty,
            auto_remove=request.auto_remove,
            health=health(run_config),
            runtime=request.runtime,
        )
        return self.store.create(config)

    # -- runtime -----------------------------------------------------------------------------

    def _runtime(self, container: Container) -> str:
        found = shutil.which(container.config.runtime)
        if found is None:
            raise EnvironmentUnavailableError(f"{container.config.runtime}: not found in PATH")
        return found

    def _runc(self, container: Container, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [self._runtime(container), "--root", str(self.runtime_root), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )

    # -- start -------------------------------------------------------------------------------

    def start(self, container: Container, *, restarting: bool = False) -> Container:
        """Start ``container`` (a no-op when it runs). Raises with the runtime's error."""
        cid = container.config.id
        with self.store.locked(cid):
            current = self.store.load(cid)
            if restarting and current.state.stopping:
                return current  # stopped while it waited to restart
            if current.state.status is Status.RUNNING and _alive(
                current.state.conmon_pid, "conmon"
            ):
                return current
            try:
                state = self._start(current)
            except BaseException as exc:
                self._teardown(current, network_pids=())
                message = exc.message if isinstance(exc, BuildError) else str(exc)
                self.store.update(
                    cid,
                    status=Status.EXITED if current.state.started_at else Status.CREATED,
                    error=message,
                    pid=0,
                )
                raise
            if restarting:
                state = replace(state, restart_count=current.state.restart_count + 1)
            else:
                state = replace(state, restart_count=current.state.restart_count)
            self.store.save_state(cid, state)
        if container.config.health is not None:
            monitor = self._spawn(["container", "health", cid])
            with self.store.locked(cid):
                self.store.update(cid, monitor_pid=monitor)
        return self.store.load(cid)

    def _start(self, container: Container) -> ContainerState:
        config, directory = container.config, container.directory
        exe = self._runtime(container)
        image = self.images.load_image(Descriptor.from_json(config.manifest, "container image"))
        lowers = LayerDirs(self.images).ensure(image.layers)
        rootfs, ovl, init = directory / "rootfs", directory / "ovl", directory / "init"
        if mounts_under(rootfs):
            unmount(str(rootfs))
        shutil.rmtree(ovl, ignore_errors=True)
        shutil.rmtree(init, ignore_errors=True)
        ovl.mkdir()
        rootfs.mkdir(exist_ok=True)
        with init_layer(lowers, SYSTEM_ROOT_NAMES, lambda: _new_dir(init)) as stack:
            mount_persistent(stack, directory / "upper", work_parent=ovl, merged=rootfs)
        user = resolve_user(rootfs, config.user)
        workdir = mkdir_in_root(rootfs, config.workdir, uid=user.uid, gid=user.gid)
        mode = NetworkMode(config.network)
        network: PrivateNetwork | None = None
        ports = tuple(claim_port(p) for p in config.ports)
        try:
            if mode is NetworkMode.DEFAULT:
                sock = directory / "sockets" / "slirp.sock"
                sock.unlink(missing_ok=True)
                network = PrivateNetwork.start(tied=False, api_socket=sock)
                for mapping in ports:
                    network.add_hostfwd(mapping)
                attachment = network.attachment()
            else:
                if ports:
                    raise BuildError(f"-p needs the default network, not --network {mode}")
                attachment = Attachment(mode=mode)
            spec = self._spec(container, rootfs, attachment, user, workdir)
            (directory / "bundle" / "config.json").write_text(json.dumps(spec, indent=1))
            conmon_pid = self._conmon(container, exe)
            pid = int((directory / "pidfile").read_text().strip())
            started = self._runc(container, "start", config.id)
            if started.returncode != 0:
                raise ExecutionError(
                    f"{config.runtime} start: {started.stderr.decode(errors='replace').strip()}"
                )
        except BaseException:
            if network is not None:
                network.close()
            raise
        return ContainerState(
            status=Status.RUNNING,
            pid=pid,
            conmon_pid=conmon_pid,
            network_pids=network.pids if network is not None else (),
            ports=ports,
            started_at=now(),
            health="starting" if config.health is not None else "",
        )

    def _spec(
        self,
        container: Container,
        rootfs: Path,
        attachment: Attachment,
        user: Any,
        workdir: str,
    ) -> dict[str, Any]:
        config, directory = container.config, container.directory
        etc = write_etc_files(
            directory / "etc",
            config.hostname,
            network=attachment,
            hosts=docker_hosts(config.hostname, attachment.address),
        )
        planned: list[SpecMount] = list(etc.mounts())
        for index, volume in enumerate(config.volumes):
            host = directory / "volumes" / str(index)
            host.mkdir(parents=True, exist_ok=True)
            planned.append(bind(host, volume, readonly=False))
        planned += [bind(b.source, b.destination, readonly=b.readonly) for b in config.binds]
        targets = [
            MountTarget(destination=m.destination, directory=Path(m.source).is_dir())
            for m in planned
        ]
        canonical, _ = prepare_mountpoints(rootfs, targets)
        mounts = [
            SpecMount(destination=dest, type=m.type, source=m.source, options=m.options)
            for m, dest in zip(planned, canonical, strict=True)
        ]
        env = default_env(config.env, hostname=config.hostname, home=user.home or "/")
        spec = build_spec(
            rootfs=rootfs,
            process=ProcessSpec(
                args=config.argv,
                env=env,
                cwd=workdir,
                uid=user.uid,
                gid=user.gid,
                additional_gids=user.additional_gids,
            ),
            hostname=config.hostname,
            network=attachment,
            mounts=mounts,
            resources=Resources(
                memory=config.memory,
                cpus=config.cpus,
                pids=config.pids_limit if config.pids_limit and config.pids_limit > 0 else None,
            ),
        )
        spec["process"]["terminal"] = config.tty
        spec["linux"]["cgroupsPath"] = cgroups_path_for(config.id, cgroup_layout())
        return spec

    def _conmon(self, container: Container, runtime: str) -> int:
        """Start conmon (it daemonizes); wait until ``runc create`` made the container."""
        conmon = shutil.which("conmon")
        if conmon is None:
            raise EnvironmentUnavailableError(
                "conmon not found in PATH: detached containers need it (Debian package conmon)"
            )
        config, directory = container.config, container.directory
        for stale in (directory / "pidfile", directory / "conmon.pid"):
            stale.unlink(missing_ok=True)
        (directory / "exits" / config.id).unlink(missing_ok=True)
        if (self.runtime_root / config.id).exists():  # left by a crash: runc create would fail
            self._runc(container, "delete", "--force", config.id)
        self.runtime_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        exit_command = [sys.executable, "-m", "builder", "container", "cleanup"]
        exit_command += ["--root", str(self.images.root), config.id]
        cmd = [
            conmon,
            "--api-version=1",
            f"--cid={config.id}",
            f"--cuuid={config.id}",
            f"--name={config.name}",
            f"--runtime={runtime}",
            f"--bundle={directory / 'bundle'}",
            f"--container-pidfile={directory / 'pidfile'}",
            f"--conmon-pidfile={directory / 'conmon.pid'}",
            f"--log-path=k8s-file:{directory / 'ctr.log'}",
            f"--log-size-max={LOG_SIZE_MAX}",
            f"--exit-dir={directory / 'exits'}",
            f"--socket-dir-path={directory / 'sockets'}",
            f"--runtime-arg=--root={self.runtime_root}",
            f"--runtime-arg=--log={directory / 'runtime.log'}",
            "--runtime-arg=--log-format=json",
            f"--exit-command={exit_command[0]}",
            *(f"--exit-command-arg={a}" for a in exit_command[1:]),
        ]
        if config.tty:
            cmd.append("--terminal")
        done = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=START_TIMEOUT,
            check=False,
            cwd=directory,
        )
        if done.returncode != 0:
            raise ExecutionError(f"conmon: {done.stderr.decode(errors='replace').strip()}")
        deadline = time.monotonic() + START_TIMEOUT
        while not (directory / "pidfile").exists():
            if (directory / "exits" / config.id).exists() or time.monotonic() > deadline:
                raise ExecutionError(self._create_error(container))
            time.sleep(0.005)
        return int((directory / "conmon.pid").read_text().strip())

    def _create_error(self, container: Container) -> str:
        message = read_runc_log(container.directory / "runtime.log")
        return message or f"{container.config.runtime} create failed"

    def _spawn(self, args: list[str]) -> int:
        """Run ``pybuild ARGS`` detached (the health monitor); its pid."""
        return subprocess.Popen(
            [sys.executable, "-m", "builder", *args, "--root", str(self.images.root)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,
        ).pid

    # -- exit --------------------------------------------------------------------------------

    def cleanup(self, container: Container) -> None:
        """After the container's process exited (conmon's exit command, or a later command
        that finds conmon gone): record the status, release everything, maybe restart."""
        cid = container.config.id
        with self.store.locked(cid):
            current = self.store.load(cid)
            if current.state.status not in (Status.RUNNING, Status.RESTARTING):
                return
            if (
                _alive(current.state.conmon_pid, "conmon")
                and not (current.directory / "exits" / cid).exists()
            ):
                return  # still running
            code = self._exit_code(current)
            self._teardown(current, network_pids=current.state.network_pids)
            policy = current.config.restart
            restart = not current.state.stopping and (
                policy.name in ("always", "unless-stopped")
                or (
                    policy.name == "on-failure"
                    and code != 0
                    and (
                        policy.max_retries == 0 or current.state.restart_count < policy.max_retries
                    )
                )
            )
            self.store.save_state(
                cid,
                replace(
                    current.state,
                    status=Status.RESTARTING if restart else Status.EXITED,
                    exit_code=code,
                    finished_at=now(),
                    pid=0,
                    conmon_pid=0,
                    network_pids=(),
                    monitor_pid=0,
                    health="unhealthy" if current.state.health == "unhealthy" else "",
                ),
            )
        if restart:
            time.sleep(min(MAX_RESTART_DELAY, 0.1 * 2**current.state.restart_count))
            try:
                self.start(self.store.load(cid), restarting=True)
            except BuildError:
                with self.store.locked(cid):
                    self.store.update(cid, status=Status.EXITED)
        elif current.config.auto_remove:
            self.remove(self.store.load(cid), force=True)

    def _exit_code(self, container: Container) -> int:
        try:
            text = (container.directory / "exits" / container.config.id).read_text().strip()
            return int(text)
        except (OSError, ValueError):
            return 137  # conmon died without writing a status: the process is gone

    def _teardown(self, container: Container, *, network_pids: tuple[int, ...]) -> None:
        with contextlib.suppress(OSError, subprocess.SubprocessError, EnvironmentUnavailableError):
            self._runc(container, "delete", "--force", container.config.id)
        stop_pids(network_pids)
        _stop_monitor(container.state.monitor_pid, container.config.id)
        rootfs = container.directory / "rootfs"
        for target in reversed(mounts_under(rootfs)):
            unmount(target)
        shutil.rmtree(container.directory / "ovl", ignore_errors=True)

    def refresh(self, container: Container) -> Container:
        """The container with its state made true: a "running" one whose conmon is gone is
        cleaned up now (conmon's exit command did not run, e.g. it was killed)."""
        if container.state.status is Status.RUNNING and not _alive(
            container.state.conmon_pid, "conmon"
        ):
            self.cleanup(container)
            return self.store.load(container.config.id)
        return container

    # -- stop, kill, remove ------------------------------------------------------------------

    def _wait_exit(self, container: Container, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        cid = container.config.id
        while time.monotonic() < deadline:
            state = self.store.load(cid).state
            if state.status not in (Status.RUNNING, Status.RESTARTING):
                return True
            if not _alive(state.conmon_pid, "conmon") and state.status is Status.RUNNING:
                self.cleanup(self.store.load(cid))
            time.sleep(0.02)
        return False

    def kill(self, container: Container, sig: str = "SIGKILL", *, stopping: bool = True) -> None:
        cid = container.config.id
        current = self.refresh(container)
        if current.state.status is not Status.RUNNING:
            raise BuildError(
                f"Cannot kill container: {container.config.name}: container {cid} is not running"
            )
        if stopping:
            with self.store.locked(cid):
                self.store.update(cid, stopping=True)
        done = self._runc(current, "kill", cid, sig.removeprefix("SIG"))
        if done.returncode != 0 and self.store.load(cid).state.status is Status.RUNNING:
            message = done.stderr.decode(errors="replace").strip()
            if "not running" not in message and "container not" not in message:
                raise ExecutionError(f"cannot kill container {cid}: {message}")

    def stop(self, container: Container, timeout: int | None = None) -> None:
        """docker stop: STOPSIGNAL, then SIGKILL after ``timeout`` seconds."""
        current = self.refresh(container)
        if current.state.status is Status.RESTARTING:
            with self.store.locked(current.config.id):
                self.store.update(current.config.id, stopping=True, status=Status.EXITED)
            return
        if current.state.status is not Status.RUNNING:
            return
        wait = current.config.stop_timeout if timeout is None else timeout
        with contextlib.suppress(BuildError):
            self.kill(current, current.config.stop_signal)
        if wait >= 0 and not self._wait_exit(current, float(wait)):
            with contextlib.suppress(BuildError):
                self.kill(current, "SIGKILL")
        if not self._wait_exit(current, CLEANUP_WAIT):
            raise ExecutionError(f"container {current.config.name} did not stop")

    def remove(self, container: Container, *, force: bool = False) -> None:
        current = self.refresh(container)
        if current.state.status in (Status.RUNNING, Status.RESTARTING):
            if not force:
                raise BuildError(
                    f'cannot remove container "/{current.config.name}": container is running:'
                    " stop the container before removing or force remove"
                )
            with self.store.locked(current.config.id):
                self.store.update(current.config.id, stopping=True)
            with contextlib.suppress(BuildError):
                self.kill(current, "SIGKILL")
            if not self._wait_exit(current, CLEANUP_WAIT):
                self.cleanup(self.store.load(current.config.id))
        with self.store.locked(current.config.id):
            latest = self.store.load(current.config.id)
            self._teardown(latest, network_pids=latest.state.network_pids)
            if mounts_under(latest.directory):
                raise ExecutionError(f"container {current.config.name}: its root is still mounted")
        self.store.delete(current.config.id)

    # -- exec --------------------------------------------------------------------------------

    def exec(
        self,
        container: Container,
        argv: list[str],
        *,
        tty: bool = False,
        interactive: bool = False,
        env: tuple[str, ...] = (),
        workdir: str | None = None,
        user: str | None = None,
    ) -> int:
        current = self.refresh(container)
        if current.state.status is not Status.RUNNING:
            raise BuildError(f"container {current.config.id} is not running")
        cmd = [self._runtime(current), "--root", str(self.runtime_root), "exec"]
        if tty:
            cmd.append("--tty")
        for item in env:
            cmd += ["--env", item]
        if workdir:
            cmd += ["--cwd", workdir]
        if user:
            resolved = resolve_user(current.directory / "rootfs", user)
            cmd += ["--user", f"{resolved.uid}:{resolved.gid}"]
            for gid in resolved.additional_gids:
                cmd += ["--additional-gids", str(gid)]
        cmd += [current.config.id, *argv]
        proc = subprocess.run(
            cmd,
            stdin=None if interactive else subprocess.DEVNULL,
            check=False,
        )
        return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode

    def exec_capture(self, container: Container, argv: tuple[str, ...], timeout: float) -> int:
        """Run ``argv`` in the container quietly; its exit code (the health check's probe)."""
        cmd = [self._runtime(container), "--root", str(self.runtime_root), "exec"]
        cmd += [container.config.id, *argv]
        try:
            proc = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return -1
        return proc.returncode


LOG_SIZE_MAX: Final = 10 * 1024 * 1024  # bytes of ctr.log before conmon starts it afresh
