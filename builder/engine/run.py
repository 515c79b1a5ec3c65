"""Execute one RUN step in a container whose root is a mounted overlay of the stage's layers.

``run_step`` works on a mounted rootfs and returns the mount stubs it created there; the caller
unmounts, then calls ``clean_upper(upper, stubs)`` before turning the upper dir into a layer.
``run_on_layers`` does mount + run + unmount + clean in one call.

Per step (BuildKit semantics):

- the user is resolved in the rootfs (``resolve_user``); a missing working directory is
  created owned by that user; env gets PATH, HOSTNAME and HOME defaults;
- ``RUN <<EOF`` scripts starting with ``#!`` (``step.heredoc_files``) are written to a
  directory outside the rootfs and bind-mounted read-only at their directory (``/dev/pipes``);
- ``--mount``: ``bind`` (read-only unless ``rw``; with ``rw`` the writes go to a throwaway
  overlay), ``cache`` (a persistent directory named by the hash of its id under
  ``MountSources.cache_dir``, seeded from ``from=``/``source=`` when created; ``sharing`` by
  flocks: see :mod:`builder.engine.cachemounts`), ``tmpfs``, ``secret`` (a private copy with mode
  0400 bound read-only from /dev/shm, or an environment variable, the step's bundle then on
  /dev/shm too; never in the rootfs), ``ssh`` (a socket of its own, outside the rootfs, relaying
  to the agent ``--ssh`` named; ``SSH_AUTH_SOCK`` names the first ssh mount's target unless
  the step's env sets it; a missing id skips the mount unless ``required``);
- an image whose ``/proc``, ``/dev`` or ``/sys`` is a symlink (or any non-directory) gets an
  init layer of plain directories above it (``init_layer``, as moby's), so the runtime never
  mounts through the link; the step's layer and the image keep the image's entries;
- a non-zero exit raises ``RunStepError`` with BuildKit's message
  ``process "/bin/sh -c exit 3" did not complete successfully: exit code: 3`` and the last
  lines of output; an OOM kill says ``killed: out of memory (limit 64MiB)``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

from builder.engine import cachemounts
from builder.errors import ExecutionError, RunStepError
from builder.fs import paths
from builder.fs.root import PATH_FLAGS, Root
from builder.plan.steps import FromScratch
from builder.runtime.network import BuildNetworks, NetworkMode, NetworkProvider
from builder.runtime.oci import ExitStatus, OutputCallback, Runtime
from builder.runtime.spec import (
    DEFAULT_HOSTNAME,
    SYSTEM_MOUNT_ROOTS,
    SYSTEM_ROOT_NAMES,
    ProcessSpec,
    Resources,
    SpecMount,
    bind,
    build_spec,
    default_env,
    is_system_path,
    tmpfs,
    write_etc_files,
)
from builder.runtime.users import resolve_user
from builder.snapshot.base import Mounter
from builder.snapshot.overlay import (
    MountStubs,
    MountTarget,
    Overlay,
    bind_mount,
    clean_upper,
    init_layer,
    mkdir_in_root,
    prepare_mountpoints,
    remove_tree,
)
from builder.store.locks import locked_dir
from builder.syntax import ir
from builder.syntax.gotext import go_quote
from builder.timings import phase

if TYPE_CHECKING:
    from builder.engine.secrets import SecretStore
    from builder.engine.ssh import SshAgents
    from builder.plan import RunFile, RunMount, RunStep, Source

__all__ = [
    "CacheBases",
    "MountSources",
    "Resources",
    "failure_message",
    "run_on_layers",
    "run_step",
]

BUNDLE_PREFIX: Final = "pybuild-run-"  # a step's runtime bundle (store tmp/ or /dev/shm)
SECRETS_PREFIX: Final = "pybuild-secrets-"  # a step's secret files (/dev/shm)
OUTPUT_TAIL_LINES: Final = 20
OUTPUT_TAIL_BYTES: Final = 64 * 1024


def cache_mount_id(m: RunMount) -> str:
    """A cache mount's id: ``id=``, else its target."""
    return m.id or m.mount.cache_id or m.target


def cache_mount_dir(cache_dir: Path, namespace: str, cache_id: str) -> Path:
    """The shared directory of cache mount ``cache_id`` without ``from=`` (the id is hashed:
    never a path)."""
    return cache_dir / cachemounts.cache_name(namespace, cache_id)


class CacheBases(Protocol):
    """Where ``RUN --mount=type=cache,from=...`` caches are seeded from."""

    def key(self, source: Source) -> str:
        """The identity of ``source``'s content (part of the cache directory's name)."""
        ...

    def root(self, source: Source) -> AbstractContextManager[Path]:
        """``source``'s root filesystem, unchanged while the context is open."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class MountSources:
    """Host-side inputs of ``--mount``s, provided by the scheduler.

    ``bind_root`` maps a mount's ``source`` (context, stage, image) to a host directory that
    stays unchanged while the step runs (the context dir, a read-only mount of the stage);
    ``source_path`` is resolved inside it. ``secrets`` gives secret values by id, ``ssh``
    the agent sockets by id.
    ``cache_dir`` holds cache mounts (:mod:`builder.engine.cachemounts`; ``cache_namespace``
    is ``BUILDKIT_CACHE_MOUNT_NS``); ``cache_bases`` gives the ``from=`` of a new one.
    """

    bind_root: Callable[[Source | None], Path] | None = None
    secrets: SecretStore | None = None
    ssh: SshAgents | None = None
    cache_dir: Path | None = None
    cache_namespace: str = ""
    # fills a cache directory just created (``--cache-from`` of a ``mounts=true`` export)
    cache_seed: Callable[[str, Path], None] | None = None
    cache_bases: CacheBases | None = None  # the from= of a new cache directory


# --------------------------------------------------------------------------- helpers


def _format_limit(limit: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= size and limit % size == 0:
            return f"{limit // size}{unit}"
    return f"{limit} bytes"


def failure_message(args: Sequence[str], status: ExitStatus) -> str:
    message = (
        f"process {go_quote(' '.join(args))} did not complete successfully:"
        f" exit code: {status.code}"
    )
    if status.oom_killed:
        limit = (
            f" (limit {_format_limit(status.memory_limit)})"
            if status.memory_limit is not None
            else ""
        )
        message += f": killed: out of memory{limit}"
    elif status.pids_exhausted:
        limit = f" ({status.pids_limit})" if status.pids_limit is not None else ""
        message += f": pids limit reached{limit}"
    elif status.runtime_error:
        message += f": {status.runtime_error}"
    return message


class _Tail:
    """Keeps the last bytes of the output and forwards every chunk."""

    def __init__(self, forward: OutputCallback) -> None:
        self.forward = forward
        self.chunks: deque[bytes] = deque()
        self.size = 0

    def __call__(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)
        while self.size - len(self.chunks[0]) >= OUTPUT_TAIL_BYTES:
            self.size -= len(self.chunks.popleft())
        self.forward(chunk)

    def text(self, lines: int = OUTPUT_TAIL_LINES) -> str:
        data = b"".join(self.chunks).decode("utf-8", errors="replace")
        return "\n".join(data.rstrip("\n").splitlines()[-lines:])


def resolve_in_root(root_dir: Path, path: str) -> Path | None:
    """Host path of ``path`` inside ``root_dir`` with every symlink resolved in-root (the final
    one too), or None if it does not exist. The result has no symlink components."""
    try:
        with Root(root_dir) as root:
            entry = root.resolve(path)
    except NotADirectoryError:
        return None
    except OSError as exc:
        raise ExecutionError(f"{path}: {exc.strerror}") from None
    return root_dir.joinpath(*entry.comps) if entry.st is not None else None


# --------------------------------------------------------------------------- mounts


@dataclass(frozen=True, slots=True, kw_only=True)
class _Planned:
    """A mount to give the runtime, before its destination is made canonical."""

    destination: str
    directory: bool
    mount: SpecMount


class _MountBuilder:
    def __init__(
        self,
        stack: contextlib.ExitStack,
        bundle: Path,
        sources: MountSources,
        step: RunStep,
    ) -> None:
        self.stack = stack
        self.bundle = bundle
        self.sources = sources
        self.step = step
        self.env: list[str] = []
        self.secret_dir: Path | None = None
        self.ssh_dir: Path | None = None
        self.ssh_env = False

    def plan(self, m: RunMount) -> _Planned | None:
        spec = m.mount
        match spec.type:
            case ir.MountType.BIND:
                return self._bind(m)
            case ir.MountType.CACHE:
                return self._cache(m)
            case ir.MountType.TMPFS:
                return _Planned(
                    destination=m.target,
                    directory=True,
                    mount=tmpfs(m.target, size=spec.size_limit),
                )
            case ir.MountType.SECRET:
                return self._secret(m)
            case ir.MountType.SSH:
                return self._ssh(m)
            case _:
                raise ExecutionError(f"unsupported mount type {spec.type!r}")

    def _bind(self, m: RunMount) -> _Planned:
        if self.sources.bind_root is None:
            raise ExecutionError(f"no source available for the bind mount at {m.target}")
        root = self.sources.bind_root(m.source)
        host = resolve_in_root(root, m.source_path)
        if host is None:
            raise ExecutionError(f"mount source {m.source_path!r} not found")
        is_dir = host.is_dir()
        if not m.mount.readonly:
            host = self._writable_copy(host, is_dir)
        return _Planned(
            destination=m.target,
            directory=is_dir,
            mount=bind(host, m.target, readonly=m.mount.readonly),
        )

    def _writable_copy(self, host: Path, is_dir: bool) -> Path:
        """An overlay over the source whose writes are thrown away with the bundle."""
        lower = host if is_dir else host.parent
        upper = Path(tempfile.mkdtemp(prefix="rw-", dir=self.bundle))
        upper.chmod(0o755)
        merged = self.stack.enter_context(Overlay().mount([lower], upper))
        return merged if is_dir else merged / host.name

    def _cache(self, m: RunMount) -> _Planned:
        spec = m.mount
        base = self.sources.cache_dir
        if base is None:
            raise ExecutionError(f"no cache directory configured for the cache mount {m.target}")
        source = None if isinstance(m.source, FromScratch) else m.source
        bases = self.sources.cache_bases
        seed = ""
        if source is not None:
            if bases is None:
                raise ExecutionError(f"no source available for the cache mount at {m.target}")
            seed = f"{bases.key(source)}\0{m.source_path}"
        cache_id = cache_mount_id(m)
        name = cachemounts.cache_name(self.sources.cache_namespace, cache_id, seed)

        def create(path: Path) -> None:
            if source is None or bases is None:
                path.mkdir(0o700)
                os.chown(path, spec.uid or 0, spec.gid or 0)
                path.chmod(spec.mode if spec.mode is not None else 0o755)
                if self.sources.cache_seed is not None:
                    self.sources.cache_seed(cache_id, path)
                return
            with bases.root(source) as root:
                _seed(root, m.source_path, path)

        directory = self.stack.enter_context(cachemounts.use(base, name, spec.share_mode, create))
        if source is None and m.source_path != "/":
            return self._cache_source(directory, m)  # a subpath of the cache itself
        return _Planned(
            destination=m.target,
            directory=True,
            mount=bind(directory, m.target, readonly=spec.readonly),
        )

    def _cache_source(self, directory: Path, m: RunMount) -> _Planned:
        """``source=`` of a cache mount: resolved inside the cache directory (a symlink out of
        it resolves in-root, as BuildKit's fix for CVE-2024-23651), opened, and pinned: the
        opened path is bind-mounted into the bundle and the runtime gets that mount, so a step
        sharing the cache cannot swap a component for a symlink between this check and the
        runtime's mount. (The runtime cannot mount ``/proc/<pid>/fd/<n>`` itself: a bind's
        source must be in its own mount namespace.)"""
        source = m.mount.source or ""
        try:
            with Root(directory) as root:
                entry = root.resolve(m.source_path)
                if entry.st is None:
                    raise FileNotFoundError
                fd = root.open_file(entry.comps, PATH_FLAGS) if entry.comps else root.open_dir(())
        except (FileNotFoundError, NotADirectoryError):
            raise ExecutionError(
                f"cache mount source {go_quote(source)} not found in cache"
                f" {go_quote(m.id or m.target)}"
            ) from None
        except OSError as exc:
            raise ExecutionError(f"cache mount source {go_quote(source)}: {exc.strerror}") from None
        try:
            kind = stat.S_IFMT(os.fstat(fd).st_mode)
            if kind not in (stat.S_IFDIR, stat.S_IFREG):  # swapped meanwhile, or a device
                raise ExecutionError(
                    f"cache mount source {go_quote(source)} is not a directory or a regular file"
                )
            pinned = Path(tempfile.mkdtemp(prefix="cache-source-", dir=self.bundle)) / "src"
            if kind == stat.S_IFDIR:
                pinned.mkdir()
            else:
                pinned.touch()
            self.stack.enter_context(
                bind_mount(Path(f"/proc/self/fd/{fd}"), pinned, readonly=False)
            )
        finally:
            os.close(fd)
        return _Planned(
            destination=m.target,
            directory=kind == stat.S_IFDIR,
            mount=bind(pinned, m.target, readonly=m.mount.readonly),
        )

    def _secret(self, m: RunMount) -> _Planned | None:
        spec = m.mount
        secret_id = m.id or spec.id or os.path.basename(m.target)
        data = self.sources.secrets.get(secret_id) if self.sources.secrets is not None else None
        if data is None:
            if spec.required:
                raise ExecutionError(f"secret {secret_id}: not found")
            return None
        if spec.env:
            self.env.append(f"{spec.env}={data.decode('utf-8', errors='replace')}")
        if not m.target:
            return None
        if self.secret_dir is None:
            parent = _memory_dir() or self.bundle
            # locked while the step runs: the start-up reaper removes it if this process dies
            self.secret_dir, lock = locked_dir(parent, SECRETS_PREFIX)
            self.stack.callback(os.close, lock)
            self.stack.callback(shutil.rmtree, self.secret_dir, True)
        sdir = Path(tempfile.mkdtemp(dir=self.secret_dir))
        sdir.chmod(0o711)
        path = sdir / "secret"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chown(path, spec.uid or 0, spec.gid or 0)
        path.chmod(spec.mode if spec.mode is not None else 0o400)
        return _Planned(destination=m.target, directory=False, mount=bind(path, m.target))

    def _ssh(self, m: RunMount) -> _Planned | None:
        # lazy: only steps with an ssh mount load the relay
        from builder.engine.ssh import AgentRelay

        spec = m.mount
        if not self.ssh_env:  # BuildKit: the first ssh mount's target, unless the env sets it
            self.ssh_env = True
            if not any(e.startswith("SSH_AUTH_SOCK=") for e in self.step.env):
                self.env.append(f"SSH_AUTH_SOCK={m.target}")
        ssh_id = m.id or "default"
        upstream = self.sources.ssh.socket(ssh_id) if self.sources.ssh is not None else None
        if upstream is None:
            if spec.required:
                raise ExecutionError(f"no SSH key {go_quote(ssh_id)} forwarded from the client")
            return None
        if self.ssh_dir is None:
            # short and private: a socket path has at most 107 bytes; outside the rootfs
            self.ssh_dir = Path(tempfile.mkdtemp(prefix="pybuild-ssh-"))
            self.stack.callback(shutil.rmtree, self.ssh_dir, True)
        relay = AgentRelay(
            Path(tempfile.mkdtemp(dir=self.ssh_dir)) / "agent.sock",
            upstream,
            mode=spec.mode if spec.mode is not None else 0o600,
            uid=spec.uid or 0,
            gid=spec.gid or 0,
        )
        self.stack.callback(relay.close)
        return _Planned(destination=m.target, directory=False, mount=bind(relay.path, m.target))


def _seed(root: Path, source_path: str, new: Path) -> None:
    """Fill the new cache directory ``new`` with a copy of ``source_path`` of ``root`` (a
    stage's or image's rootfs), resolved in-root; owners, modes, links and times are kept."""
    host = resolve_in_root(root, source_path)
    if host is None:
        raise ExecutionError(f"cache mount source {source_path!r} not found")
    if not host.is_dir():
        raise ExecutionError(f"cache mount source {source_path!r} is not a directory")
    # cp -a: ownership, modes, times, xattrs, hard links, devices; symlinks copied, not followed
    done = subprocess.run(
        ["cp", "-a", "--no-target-directory", str(host), str(new)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        raise ExecutionError(
            f"cache mount source {source_path!r}: copy failed: {detail[-1] if detail else ''}"
        )


def _memory_dir() -> Path | None:
    """``/dev/shm`` (a tmpfs) when writable, for files holding secret values."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


def _heredoc_mounts(bundle: Path, files: Sequence[RunFile]) -> list[_Planned]:
    by_dir: dict[str, Path] = {}
    for item in files:
        directory, name = os.path.split(paths.clean_abs(item.path))
        if not name:
            raise ExecutionError(f"invalid heredoc file path {item.path!r}")
        host = by_dir.get(directory)
        if host is None:
            host = Path(tempfile.mkdtemp(prefix="heredoc-", dir=bundle))
            host.chmod(0o755)
            by_dir[directory] = host
        target = host / name
        target.write_text(item.data)
        target.chmod(item.mode)
    return [_Planned(destination=d, directory=True, mount=bind(h, d)) for d, h in by_dir.items()]


# --------------------------------------------------------------------------- run


def _network(step: RunStep, override: str | None) -> NetworkMode:
    network = str(override or step.network or "default")
    try:
        return NetworkMode(network)
    except ValueError:
        raise ExecutionError(f"unsupported network mode {network!r}") from None


def run_step(
    rootfs: Path,
    step: RunStep,
    *,
    runtime: Runtime,
    on_output: OutputCallback,
    network: str | None = None,
    networks: NetworkProvider | None = None,
    resources: Resources | None = None,
    sources: MountSources | None = None,
    bundle_dir: Path | None = None,
) -> MountStubs:
    """Run ``step`` with ``rootfs`` (a mounted overlay) as the container root.

    ``network`` overrides the step's mode; ``networks`` gives the namespace to join (a build
    shares one private namespace across its steps); without it the step gets its own.

    Returns the mount stubs created in the rootfs: unmount, then ``clean_upper(upper, stubs)``.
    Raises ``RunStepError`` on a non-zero exit, ``ExecutionError`` for set-up problems (the
    scheduler attaches the step's span).
    """
    with contextlib.ExitStack() as stack:
        provider = networks if networks is not None else stack.enter_context(BuildNetworks())
        return _run_step(
            rootfs,
            step,
            runtime=runtime,
            on_output=on_output,
            network=_network(step, network),
            networks=provider,
            resources=resources,
            sources=sources or MountSources(),
            bundle_dir=bundle_dir,
        )


def _run_step(
    rootfs: Path,
    step: RunStep,
    *,
    runtime: Runtime,
    on_output: OutputCallback,
    network: NetworkMode,
    networks: NetworkProvider,
    resources: Resources | None,
    sources: MountSources,
    bundle_dir: Path | None,
) -> MountStubs:
    user = resolve_user(rootfs, step.user)
    hostname = step.hostname or DEFAULT_HOSTNAME
    workdir = paths.clean_abs(step.workdir or "/")
    if any(m.mount.type is ir.MountType.SECRET and m.mount.env for m in step.mounts):
        # the runtime's config.json holds a secret env value: keep it in memory, off the disk
        bundle_dir = _memory_dir() or bundle_dir
    if bundle_dir is not None:
        bundle_dir.mkdir(parents=True, exist_ok=True)
    # locked while the step runs: the start-up reaper removes it (and deletes its container)
    # once this process is gone (builder.engine.reaper)
    bundle, bundle_lock = locked_dir(bundle_dir or Path(tempfile.gettempdir()), BUNDLE_PREFIX)
    try:
        with contextlib.ExitStack() as stack:
            if not is_system_path(workdir):
                try:
                    mkdir_in_root(rootfs, workdir, uid=user.uid, gid=user.gid)
                except ExecutionError as err:
                    detail = err.message.split(": ", 1)[-1]
                    raise ExecutionError(
                        f"failed to create working directory {workdir}: {detail}"
                    ) from None
            with phase(f"network attach ({network})"):
                attachment = networks.attach(network)
            etc = write_etc_files(bundle / "etc", hostname, network=attachment)
            planned = [
                _Planned(destination=mount.destination, directory=False, mount=mount)
                for mount in etc.mounts()
            ]
            planned += _heredoc_mounts(bundle, step.heredoc_files)
            builder = _MountBuilder(stack, bundle, sources, step)
            for m in step.mounts:  # later mounts on one destination win, as in BuildKit
                item = builder.plan(m)
                if item is not None:
                    planned.append(item)
            with phase("mount points and spec"):
                mounts, stubs = _materialise(rootfs, planned)
            env = default_env((*step.env, *builder.env), hostname=hostname, home=user.home or "/")
            process = ProcessSpec(
                args=tuple(step.args),
                env=env,
                cwd=workdir,
                uid=user.uid,
                gid=user.gid,
                additional_gids=user.additional_gids,
            )
            spec = build_spec(
                rootfs=rootfs,
                process=process,
                hostname=hostname,
                network=attachment,
                mounts=mounts,
                resources=resources,
                # entitled by --allow security.insecure (checked on the plan, before any step)
                privileged=str(step.security) == "insecure",
                swap_accounting=resources is not None
                and resources.memory is not None
                and runtime.swap_accounting(),
            )
            tail = _Tail(on_output)
            status = runtime.run(bundle, spec, on_output=tail)
    finally:
        try:
            remove_tree(bundle)
        finally:
            os.close(bundle_lock)
    if status.code != 0:
        raise RunStepError(
            failure_message(step.args, status),
            exit_code=status.code,
            output_tail=tail.text(),
        )
    return stubs


def _materialise(
    rootfs: Path, planned: Sequence[_Planned]
) -> tuple[tuple[SpecMount, ...], MountStubs]:
    """Create the rootfs destinations (in-root) and order mounts parents-first."""
    in_rootfs = [p for p in planned if not is_system_path(p.destination)]
    targets = [MountTarget(destination=d) for d in SYSTEM_MOUNT_ROOTS]
    targets += [MountTarget(destination=p.destination, directory=p.directory) for p in in_rootfs]
    canonical, stubs = prepare_mountpoints(rootfs, targets)
    for root, real in zip(SYSTEM_MOUNT_ROOTS, canonical, strict=False):
        if real != root:
            # runc would follow it: a /dev symlink made runc touch host files (moby's init
            # layer exists for this); refuse instead of mounting somewhere else
            raise ExecutionError(
                f"the image's {root} is a symbolic link (to {real}); refusing to run a"
                " container on it"
            )
    system_count = len(SYSTEM_MOUNT_ROOTS)
    dest_of = {id(p): c for p, c in zip(in_rootfs, canonical[system_count:], strict=True)}
    final: dict[str, SpecMount] = {}
    for p in planned:
        dest = dest_of.get(id(p), paths.clean_abs(p.destination))
        m = p.mount
        final[dest] = SpecMount(
            destination=dest, type=m.type, source=m.source, options=m.options
        )  # a later mount on the same destination wins (BuildKit's dedupMounts)
    ordered = sorted(final.values(), key=lambda sm: paths.split(sm.destination))
    return tuple(ordered), stubs


def run_on_layers(
    lowers: Sequence[Path],
    upper: Path,
    step: RunStep,
    *,
    runtime: Runtime,
    on_output: OutputCallback,
    network: str | None = None,
    networks: NetworkProvider | None = None,
    resources: Resources | None = None,
    sources: MountSources | None = None,
    bundle_dir: Path | None = None,
    overlay: Mounter | None = None,
    init_dir: Callable[[], AbstractContextManager[Path]] | None = None,
) -> None:
    """Mount ``lowers`` + ``upper`` (with ``overlay``, the snapshotter; default a plain
    overlayfs mount), run ``step``, unmount, and strip the mount stubs from ``upper``, which
    is then exactly the step's layer (``store.write_layer(upper, overlay=True)``). On failure
    ``upper`` holds partial changes: discard it.

    ``init_dir`` (the snapshotter's ``scratch_dir``) makes an init layer when the image's
    ``/proc``, ``/dev`` or ``/sys`` is not a directory (see ``init_layer``); without it such
    an image is refused."""
    with contextlib.ExitStack() as stack:
        if init_dir is not None:
            lowers = stack.enter_context(init_layer(lowers, SYSTEM_ROOT_NAMES, init_dir))
        rootfs = stack.enter_context((overlay or Overlay()).mount(lowers, upper))
        stack.enter_context(phase("run"))
        stubs = run_step(
            rootfs,
            step,
            runtime=runtime,
            on_output=on_output,
            network=network,
            networks=networks,
            resources=resources,
            sources=sources,
            bundle_dir=bundle_dir,
        )
    with phase("upper dir: mount stubs removed"):
        clean_upper(upper, stubs)
