"""Run one container with an OCI runtime binary (runc, or crun with the same CLI).

``runc run`` in the foreground without a terminal; runc's stdout and stderr are one pipe,
streamed chunk by chunk to ``on_output``. (runc relays the container's stdout and stderr
through two pipes of its own, so each stream keeps its order but their interleaving can differ
from the order of the writes.) With a memory or pids limit (builds always have one),
``--keep`` leaves the stopped container (and its cgroup) in place so its OOM counter and its
refused forks (``pids.events``) can be read before ``runc delete``; without one,
``runc run`` deletes the container itself as it exits, which saves a ``runc delete`` process
per RUN step (as BuildKit, pybuild then reports an OOM kill by the host as exit code 137).
runc's own diagnostics go to a JSON log file in the bundle, not into the step output. Whatever
happens (exit, exception, KeyboardInterrupt) the container is killed and
deleted before ``run`` returns or raises: ``runc list`` never shows a leftover.

cgroups: a container's cgroup is nested under pybuild's own, so the limits a CI job puts on
the builder also bind its steps. On cgroup v1 (and hybrid hosts) ``linux.cgroupsPath`` is
``pybuild/<id>``, which runc resolves relative to its own cgroup in each hierarchy, i.e.
pybuild's. cgroup v2 needs more: runc resolves a relative path against the *parent* of its
cgroup (a sibling of pybuild's, outside its limits), and v2's "no internal processes" rule
forbids enabling controllers for children of a cgroup that holds processes. So, as podman
(``MoveUnderCgroupSubtree``) and docker-in-docker's entrypoint do, :func:`v2_container_parent`
moves the processes of pybuild's cgroup ``<own>`` into a leaf ``<own>/init``, enables the
available controllers in ``<own>``, and containers go to ``<own>/pybuild/<id>``. When ``<own>``
is the root (a container with its own cgroup namespace) nothing moves: ``/pybuild/<id>`` is
already below it. When the move is refused (a cgroup not delegated to us), containers go to
``/pybuild/<id>`` as before and pybuild says so once on stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from builder.errors import EnvironmentUnavailableError, ExecutionError
from builder.runtime.runc_version import runc_warnings
from builder.store.fsutil import atomic_write
from builder.timings import phase

KILL_GRACE_SECONDS: Final = 10.0
DEFAULT_STATE_ROOT: Final = Path("/run/pybuild/runc")

OutputCallback = Callable[[bytes], None]
_DPKG_STATUS: Final = Path("/var/lib/dpkg/status")


def _check_key(exe: str) -> str:
    """What the runtime check depends on: the binary (path and stat), the package database."""
    parts = [exe]
    for path in (Path(exe), _DPKG_STATUS):
        try:
            st = path.stat()
        except OSError:
            parts.append("-")
            continue
        parts.append(f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}")
    return "|".join(parts)


def _debian_package_version(package: str) -> str | None:
    """The installed version of a Debian package, or None (not installed, no dpkg)."""
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitStatus:
    """How the container ended. ``code`` is the process's exit code (128+N for signal N);
    ``oom_killed`` when the cgroup's OOM killer fired; ``runtime_error`` is the runtime's own
    error message when it failed before or around the process (bad spec, exec failure)."""

    code: int
    oom_killed: bool = False
    memory_limit: int | None = None
    pids_exhausted: bool = False  # a fork failed at the cgroup's pids limit
    pids_limit: int | None = None
    runtime_error: str = ""


class Runtime(Protocol):
    """An OCI runtime as the engine and ``pybuild run`` use it (``Runc`` and ``Crun``; built by
    the composition root, ``builder.api``)."""

    def run(self, bundle: Path, spec: dict[str, Any], *, on_output: OutputCallback) -> ExitStatus:
        """Write ``spec`` as ``bundle/config.json``, run it to completion, clean up."""
        ...

    def swap_accounting(self) -> bool:
        """Whether a memory limit can also cap swap on this host."""
        ...

    def kill_all(self) -> None:
        """Kill every container this runtime is running now (Ctrl-C, a failed stage)."""
        ...

    def forward_signal(self, signum: int) -> None:
        """Send ``signum`` to the container being run (``pybuild run``'s signal proxy)."""
        ...

    def settle(self) -> None:
        """Wait for the deletes still running in the background (``deferred_deletes``);
        raise ``ExecutionError`` if one failed."""
        ...


# --------------------------------------------------------------------------- cgroups


@dataclass(frozen=True, slots=True, kw_only=True)
class CgroupLayout:
    """Where this process's memory (and pids) controller lives."""

    v1_memory_dir: Path | None  # our own memory cgroup directory (v1 / hybrid)
    unified_root: Path | None  # the cgroup2 mount when memory is on v2
    v1_pids_dir: Path | None = None  # our own pids cgroup directory (v1 / hybrid)
    v2_own: str = "/"  # our own cgroup in the v2 hierarchy ("0::" of /proc/self/cgroup)

    @property
    def is_v2(self) -> bool:
        return self.v1_memory_dir is None and self.unified_root is not None


def _mountinfo() -> list[list[str]]:
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            return [line.split() for line in f if line.strip()]
    except OSError:
        return []


def cgroup_layout() -> CgroupLayout:
    """Find the memory controller from /proc/self/mountinfo and /proc/self/cgroup."""
    own: dict[str, str] = {}
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) == 3:
                    for ctrl in parts[1].split(",") if parts[1] else [""]:
                        own[ctrl] = parts[2]
    except OSError:
        return CgroupLayout(v1_memory_dir=None, unified_root=None)
    unified = None
    v1: dict[str, Path] = {}
    for fields in _mountinfo():
        try:
            sep = fields.index("-")
        except ValueError:
            continue
        fstype, options = fields[sep + 1], fields[sep + 3] if len(fields) > sep + 3 else ""
        root, mountpoint = fields[3], fields[4]
        for controller in ("memory", "pids"):
            if fstype == "cgroup" and controller in options.split(",") and controller in own:
                mine = own[controller]
                rel = os.path.relpath(mine, root) if root != "/" else mine
                rel = "" if rel == "." else rel.lstrip("/")
                v1.setdefault(controller, Path(mountpoint, rel))
        if fstype == "cgroup2" and unified is None:
            unified = Path(mountpoint)
    v2_own = own.get("", "/") or "/"
    if "memory" in v1:
        return CgroupLayout(
            v1_memory_dir=v1["memory"], unified_root=None, v1_pids_dir=v1.get("pids"), v2_own=v2_own
        )
    return CgroupLayout(
        v1_memory_dir=None, unified_root=unified, v1_pids_dir=v1.get("pids"), v2_own=v2_own
    )


_V2_PARENT: dict[tuple[Path, str], str] = {}  # per process: where containers go (see module doc)
_V2_LOCK = threading.Lock()


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write(text)


def v2_container_parent(unified_root: Path, own: str) -> str:
    """The v2 cgroup (absolute in the hierarchy) to create containers' cgroups in: below
    ``own`` after moving its processes into ``own/init``; ``/pybuild`` when that is refused."""
    key = (unified_root, own)
    with _V2_LOCK:
        found = _V2_PARENT.get(key)
        if found is None:
            found = _nest_v2(unified_root, own)
            _V2_PARENT[key] = found
        return found


def _nest_v2(unified_root: Path, own: str) -> str:
    if own.strip("/") == "":
        return "/pybuild"
    parent, _, name = own.rstrip("/").rpartition("/")
    if name == "init" and parent:  # moved by us (or another pybuild) already
        with contextlib.suppress(OSError):
            if (unified_root / parent.strip("/") / "cgroup.subtree_control").read_text().strip():
                return f"{parent}/pybuild"
    base = unified_root / own.strip("/")
    try:
        controllers = (base / "cgroup.controllers").read_text().split()
        enabled = (base / "cgroup.subtree_control").read_text().split()
        if set(controllers) - set(enabled):
            leaf = base / "init"
            leaf.mkdir(exist_ok=True)
            # one pid per write: cgroup.procs takes one; repeat while processes appear
            for _ in range(10):
                procs = (base / "cgroup.procs").read_text().split()
                if not procs:
                    break
                for pid in procs:
                    with contextlib.suppress(ProcessLookupError):
                        _write(leaf / "cgroup.procs", pid)
            _write(
                base / "cgroup.subtree_control",
                " ".join(f"+{c}" for c in controllers if c not in enabled),
            )
    except OSError as exc:
        print(
            f"warning: cannot nest RUN containers' cgroups under {own} ({exc.strerror});"
            " they go to /pybuild, outside this process's cgroup limits",
            file=sys.stderr,
        )
        return "/pybuild"
    return f"{own.rstrip('/')}/pybuild"


def cgroups_path_for(container_id: str, layout: CgroupLayout) -> str:
    if layout.is_v2 and layout.unified_root is not None:
        return f"{v2_container_parent(layout.unified_root, layout.v2_own)}/{container_id}"
    return f"pybuild/{container_id}"


def memory_cgroup_dir(cgroups_path: str, layout: CgroupLayout) -> Path | None:
    if layout.v1_memory_dir is not None:
        if cgroups_path.startswith("/"):
            return None  # absolute v1 paths are not used by pybuild
        return layout.v1_memory_dir / cgroups_path
    if layout.unified_root is not None:
        return layout.unified_root / cgroups_path.lstrip("/")
    return None


def pids_cgroup_dir(cgroups_path: str, layout: CgroupLayout) -> Path | None:
    if layout.v1_pids_dir is not None:
        return None if cgroups_path.startswith("/") else layout.v1_pids_dir / cgroups_path
    if layout.is_v2 and layout.unified_root is not None:
        return layout.unified_root / cgroups_path.lstrip("/")
    return None


def pids_max_count(directory: Path) -> int:
    """``max`` of a pids cgroup's ``pids.events``: forks refused at its limit (v1 and v2)."""
    try:
        text = (directory / "pids.events").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "max" and fields[1].isdigit():
            return int(fields[1])
    return 0


def oom_kill_count(directory: Path) -> int:
    """``oom_kill`` of a memory cgroup (v2 ``memory.events``, v1 ``memory.oom_control``)."""
    for name in ("memory.events", "memory.oom_control"):
        try:
            text = (directory / name).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[0] == "oom_kill" and fields[1].isdigit():
                return int(fields[1])
    return 0


def host_has_swap() -> bool:
    try:
        lines = Path("/proc/swaps").read_text().splitlines()
    except OSError:
        return False
    return len(lines) > 1


# --------------------------------------------------------------------------- runc


def read_runc_log(path: Path) -> str:
    """The last error-level message of runc's JSON log ("" if none)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    last = ""
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") in ("error", "fatal"):
            last = str(record.get("msg", "")).strip()
    return last


def exit_code(returncode: int) -> int:
    """The runtime's exit status; 128+N when the runtime itself died of signal N, as a shell
    reports it (the runtime reports a container killed by signal N that way too)."""
    return 128 - returncode if returncode < 0 else returncode


class Runc:
    """runc (or a CLI-compatible runtime) driven as a subprocess.

    ``root`` is the runtime's state directory (``--root``); keep one per store so a startup
    reaper can ``runc --root ROOT list`` and delete what a killed build left.
    """

    name: str = "runc"

    supports_keep = True  # `run --keep` leaves the cgroup so an OOM kill can be read

    def __init__(
        self,
        binary: str | None = None,
        *,
        root: Path | None = None,
        no_pivot: bool = False,
        deferred_deletes: bool = False,
        check_file: Path | None = None,
    ) -> None:
        self._live: dict[str, subprocess.Popen[bytes]] = {}
        # A build's steps do not wait for ``runc delete`` of a container that exited (one Go
        # process, about 10 ms a RUN step): it runs beside the next step, and ``settle`` (the
        # end of the build) waits for it. The stopped container holds nothing the step needs:
        # its processes are gone, its rootfs is pybuild's own mount, its counters were read.
        self.deferred_deletes = deferred_deletes
        self.check_file = check_file  # where ``check`` keeps its answer (None: nowhere)
        self._deleting: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._live_lock = threading.Lock()
        self._pending_signals: list[int] = []  # see forward_signal
        self.binary = binary or self.name
        self.root = root or DEFAULT_STATE_ROOT
        self.no_pivot = no_pivot

    # -- environment -----------------------------------------------------------------------

    def executable(self) -> str:
        found = shutil.which(self.binary)
        if found is None:
            raise EnvironmentUnavailableError(
                f"{self.binary}: OCI runtime not found in PATH (install runc or crun; RUN needs it)"
            )
        return found

    def check(self) -> tuple[str, ...]:
        """Raise ``EnvironmentUnavailableError`` if RUN cannot work here; return warnings."""
        exe = self.executable()
        if os.geteuid() != 0:
            raise EnvironmentUnavailableError(
                "RUN needs root: pybuild mounts overlayfs and starts containers with "
                f"{self.binary} (rootless mode is not supported yet)"
            )
        key = _check_key(exe)
        cached = self._checked(key)
        if cached is not None:
            return cached
        warnings: list[str] = []
        try:
            out = subprocess.run(
                [exe, "--version"], capture_output=True, text=True, timeout=30, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise EnvironmentUnavailableError(f"{exe} --version failed: {exc}") from None
        if self.name == "runc":
            # runc fixes pybuild relies on; distributions backport them (runc_version).
            warnings.extend(runc_warnings(out, _debian_package_version("runc")))
        self._remember_check(key, warnings)
        return tuple(warnings)

    # The check's answer is kept in ``check_file``, keyed by the binary's identity and the
    # package database's stat (``runc --version`` and ``dpkg-query`` are two processes, about
    # 13 ms on the first step of every build). A lost or stale file only costs a check.
    def _checked(self, key: str) -> tuple[str, ...] | None:
        if self.check_file is None:
            return None
        try:
            doc = json.loads(self.check_file.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("key") != key:
            return None
        warnings = doc.get("warnings")
        if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
            return None
        return tuple(warnings)

    def _remember_check(self, key: str, warnings: list[str]) -> None:
        if self.check_file is None:
            return
        with contextlib.suppress(OSError):  # not kept: the next build checks again
            self.check_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(self.check_file, json.dumps({"key": key, "warnings": warnings}).encode())

    def swap_accounting(self) -> bool:
        if not host_has_swap():
            return False
        layout = cgroup_layout()
        if layout.v1_memory_dir is not None:
            return (layout.v1_memory_dir / "memory.memsw.limit_in_bytes").exists()
        return layout.unified_root is not None

    # -- running ---------------------------------------------------------------------------

    def _base(self, exe: str) -> list[str]:
        return [exe, "--root", str(self.root)]

    def _call(self, exe: str, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*self._base(exe), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )

    def run(self, bundle: Path, spec: dict[str, Any], *, on_output: OutputCallback) -> ExitStatus:
        exe = self.executable()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        container_id = f"pybuild-{os.urandom(8).hex()}"
        layout = cgroup_layout()
        cgroups_path = cgroups_path_for(container_id, layout)
        doc = dict(spec)
        doc["linux"] = {**spec.get("linux", {}), "cgroupsPath": cgroups_path}
        resources = doc["linux"].get("resources", {})
        memory_limit = resources.get("memory", {}).get("limit")
        pids_limit = resources.get("pids", {}).get("limit")
        # compact: json's C encoder (indent= would take the pure-Python one, ~3 ms a step)
        (bundle / "config.json").write_text(json.dumps(doc, separators=(",", ":")))
        log = bundle / f"{self.name}.log"
        cmd = [*self._base(exe), "--log", str(log), "--log-format", "json", "run"]
        # a limit's counters (OOM kills, refused forks) are read before the cgroup goes
        keep = self.supports_keep and (memory_limit is not None or pids_limit is not None)
        if keep:
            cmd.append("--keep")
        if self.no_pivot:
            cmd.append("--no-pivot")
        cmd += ["--bundle", str(bundle), container_id]
        with phase(f"{self.name} spawn"):
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                close_fds=True,
                start_new_session=True,  # a terminal's Ctrl-C reaches pybuild: it kills cleanly
            )
        assert proc.stdout is not None
        with self._live_lock:
            self._live[container_id] = proc
        try:
            self._send_pending(proc)
            fd = proc.stdout.fileno()
            with phase(f"{self.name} run (create, start, process, exit)"):
                while chunk := os.read(fd, 1 << 16):
                    on_output(chunk)
                code = exit_code(proc.wait())
            cgroup = memory_cgroup_dir(cgroups_path, layout) if keep else None
            oom = cgroup is not None and oom_kill_count(cgroup) > 0
            pids = pids_cgroup_dir(cgroups_path, layout) if keep and code != 0 else None
            exhausted = pids is not None and pids_max_count(pids) > 0
        except BaseException:
            proc.stdout.close()
            self._kill(exe, container_id, proc)
            with contextlib.suppress(ExecutionError):  # never hide the original exception
                self._delete(exe, container_id, proc)
            raise
        finally:
            with self._live_lock:
                self._live.pop(container_id, None)
            self._pending_signals.clear()
        proc.stdout.close()
        if keep and self.deferred_deletes:
            self._delete_later(exe, container_id)
        elif keep or (self.root / container_id).exists():  # runc died before deleting it
            with phase(f"{self.name} delete"):
                self._delete(exe, container_id, proc)
        error = read_runc_log(log) if code != 0 else ""
        return ExitStatus(
            code=code,
            oom_killed=oom,
            memory_limit=memory_limit if isinstance(memory_limit, int) else None,
            pids_exhausted=exhausted,
            pids_limit=pids_limit if isinstance(pids_limit, int) else None,
            runtime_error=error,
        )

    def kill_all(self) -> None:
        """Kill every container this object is running (Ctrl-C while stages run in threads:
        each thread then sees its step fail and cleans up as usual)."""
        with self._live_lock:
            live = tuple(self._live)
        exe = self.executable()
        for container_id in live:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self._call(exe, "kill", container_id, "KILL")

    def forward_signal(self, signum: int) -> None:
        """Send ``signum`` to the container being run, as ``docker run`` does with the signals
        it gets (``runc run`` relays every signal it receives to the container's process).

        Meant for a signal handler in the thread that calls :meth:`run`: it takes no lock, and
        a signal that comes while :meth:`run` starts the runtime is sent once it has started.
        """
        live = tuple(self._live.copy().values())
        if not live:
            self._pending_signals.append(signum)
        for proc in live:
            with contextlib.suppress(OSError):
                proc.send_signal(signum)

    def _send_pending(self, proc: subprocess.Popen[bytes]) -> None:
        while self._pending_signals:
            proc.send_signal(self._pending_signals.pop(0))

    def _kill(self, exe: str, container_id: str, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self._call(exe, "kill", container_id, "KILL")
        try:
            proc.wait(timeout=KILL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _delete(self, exe: str, container_id: str, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            self._kill(exe, container_id, proc)
        try:
            done = self._call(exe, "delete", "--force", container_id)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ExecutionError(f"{self.binary} delete {container_id} failed: {exc}") from None
        if done.returncode != 0 and (self.root / container_id).exists():
            message = done.stderr.decode(errors="replace").strip()
            raise ExecutionError(f"{self.binary} delete {container_id} failed: {message}")

    def _delete_later(self, exe: str, container_id: str) -> None:
        try:
            deleting = subprocess.Popen(
                [*self._base(exe), "delete", "--force", container_id],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                close_fds=True,
            )
        except OSError as exc:
            raise ExecutionError(f"{self.binary} delete {container_id} failed: {exc}") from None
        with self._live_lock:
            self._deleting.append((container_id, deleting))

    def settle(self) -> None:
        with self._live_lock:
            deleting, self._deleting = self._deleting, []
        failed = ""
        for container_id, proc in deleting:
            try:
                _, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            if proc.returncode != 0 and (self.root / container_id).exists() and not failed:
                message = err.decode(errors="replace").strip()
                failed = f"{self.binary} delete {container_id} failed: {message}"
        if failed:
            raise ExecutionError(failed)

    def list_containers(self) -> tuple[str, ...]:
        """Ids of the containers in this runtime root (for reapers and tests), once the
        deletes still running have ended."""
        self.settle()
        if not self.root.is_dir():
            return ()
        done = self._call(self.executable(), "list", "--format", "json")
        if done.returncode != 0:
            raise ExecutionError(
                f"{self.binary} list failed: {done.stderr.decode(errors='replace').strip()}"
            )
        try:
            items = json.loads(done.stdout or b"null") or []
        except ValueError:
            return ()
        return tuple(str(item.get("id", "")) for item in items if isinstance(item, dict))


class Crun(Runc):
    """crun: same CLI but no ``run --keep``. (crun 1.8 refuses hybrid cgroup v1/v2 hosts.)"""

    name = "crun"
    supports_keep = False
