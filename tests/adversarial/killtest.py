"""Kill test (SECURITY.md section 3, case 26): SIGKILL pybuild at random moments, then check that
the next pybuild start leaves the store as if nothing had happened.

A two-stage build whose layers are big enough to take a while to export, pushed (``build
--push``) to a ``docker-registry`` on 127.0.0.1 (started here), is SIGKILLed after a seeded
random delay. The delays are stratified over the duration of an uninterrupted build (one delay
drawn in each of N equal slices of it, in shuffled order), so the kills land at start-up,
during RUN, COPY, layer export, image export and push. Only pybuild itself is killed, as the
kernel's OOM killer or ``kill -9`` would: its runc, slirp4netns and container processes live on.

After each kill:

1. what the killed build left is counted (mounts under the store, runc containers, ``tmp/``,
   ``ingest/`` and ``snapshots/.*`` entries, live processes it had started);
2. ``pybuild fsck`` must report the store clean;
3. the same build and push, run again (the next start: its reaper runs first), must succeed;
4. then no mount, runc container, temp entry or process may be left, of either build; but for
   a ``.new-*`` entry (the kill landed between the creation of a directory or file and its
   flock, ``store.locks.locked_dir``): by design the first start after ``NEW_GRACE_SECONDS``
   reaps it, which the test checks once at the end.

Run ``python -m tests.adversarial.killtest --kills 50`` from the repository root (as root, with
runc and docker-registry installed: ``make stress``); ``tests/adversarial/test_kill.py`` runs it
with a few kills in ``make test``. Exit status 0 when every check passed.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from builder.snapshot.overlay import mounts_under
from builder.store.locks import NEW_GRACE_SECONDS, NEW_PREFIX
from tests.integration.registry.regserver import RegistryServer

REPO = Path(__file__).resolve().parents[2]
PYBUILD = str(Path(sys.executable).with_name("pybuild"))
MAKE_BUSYBOX = REPO / "scripts" / "make-busybox.sh"
STEP_TIMEOUT = 600.0  # generous: 2 shared cores, many helpers

# Stage 1's RUN writes 600 small files and 4 MB of random bytes (its layer export takes a
# noticeable share of the build), stage 2 copies them and runs again; every kill uses a new SALT so
# nothing is a cache hit and every blob is pushed anew.
DOCKERFILE = """\
FROM busybox AS gen
ARG SALT
RUN mkdir /files && for i in $(seq 1 600); do echo "$SALT $i" > /files/$i; done \\
    && head -c 4000000 /dev/urandom > /blob
FROM busybox
ARG SALT
COPY --from=gen /files /data/files/
COPY --from=gen /blob /data/
RUN cat /data/files/1 > /salt && sleep 0.5 && head -c 3000000 /dev/urandom > /more
"""


# --------------------------------------------------------------------------- observations


@dataclass(frozen=True, slots=True, kw_only=True)
class Leftovers:
    """What a build left under its store (and processes it started that still run)."""

    mounts: tuple[str, ...] = ()
    containers: tuple[str, ...] = ()
    tmp: tuple[str, ...] = ()
    ingest: tuple[str, ...] = ()
    snapshot_temps: tuple[str, ...] = ()
    processes: tuple[int, ...] = ()

    def without(self, names: Collection[str]) -> Leftovers:
        """These leftovers but the entries (``tmp/``, ``ingest/``, ``snapshots/``) ``names``."""
        return Leftovers(
            mounts=self.mounts,
            containers=self.containers,
            tmp=tuple(n for n in self.tmp if n not in names),
            ingest=tuple(n for n in self.ingest if n not in names),
            snapshot_temps=tuple(n for n in self.snapshot_temps if n not in names),
            processes=self.processes,
        )

    def entries(self, store: Path) -> dict[str, Path]:
        """The ``tmp/``, ``ingest/`` and ``snapshots/`` entries by name, with their paths."""
        return {
            **{n: store / "tmp" / n for n in self.tmp},
            **{n: store / "ingest" / n for n in self.ingest},
            **{n: store / "snapshots" / n for n in self.snapshot_temps},
        }

    def counts(self) -> dict[str, int]:
        return {
            "mounts": len(self.mounts),
            "runc containers": len(self.containers),
            "tmp entries": len(self.tmp),
            "ingest entries": len(self.ingest),
            "snapshot temp dirs": len(self.snapshot_temps),
            "processes": len(self.processes),
        }

    def total(self) -> int:
        return sum(self.counts().values())

    def describe(self) -> str:
        parts = [
            *(f"mount {m}" for m in self.mounts),
            *(f"runc container {c}" for c in self.containers),
            *(f"tmp/{n}" for n in self.tmp),
            *(f"ingest/{n}" for n in self.ingest),
            *(f"snapshots/{n}" for n in self.snapshot_temps),
            *(f"process {p} ({_cmdline(p)})" for p in self.processes),
        ]
        return "; ".join(parts) or "nothing"


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "gone"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:120]


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (read from /proc, not atomic: a snapshot)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            found = _proc_stat(int(entry.name))
            if found is not None:
                children[found[1]].append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def alive(pids: set[int]) -> tuple[int, ...]:
    """The processes of ``pids`` that still run (zombies do not count: they hold nothing)."""
    out = []
    for pid in sorted(pids):
        found = _proc_stat(pid)
        if found is not None and found[0] not in ("Z", "X"):
            out.append(pid)
    return tuple(out)


def runc_containers(store: Path) -> tuple[str, ...]:
    state = store / "runc"
    if not state.is_dir():
        return ()
    done = subprocess.run(
        ["runc", "--root", str(state), "list", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return tuple(line for line in done.stdout.split() if line)


def _names(directory: Path, *, hidden_only: bool = False) -> tuple[str, ...]:
    try:
        names = sorted(p.name for p in directory.iterdir())
    except FileNotFoundError:
        return ()
    return tuple(n for n in names if n.startswith(".") or not hidden_only)


def leftovers(store: Path, processes: Collection[int] = ()) -> Leftovers:
    return Leftovers(
        mounts=mounts_under(store),
        containers=runc_containers(store),
        tmp=_names(store / "tmp"),
        ingest=_names(store / "ingest"),
        snapshot_temps=_names(store / "snapshots", hidden_only=True),
        processes=alive(set(processes)),
    )


# --------------------------------------------------------------------------- phases


def build_phase(progress: str, store: Path) -> str:
    """Where a killed build was, from its ``--progress=plain`` output and what it left."""
    open_steps: dict[str, str] = {}
    for line in progress.splitlines():
        number, _, rest = line.partition(" ")
        if not number.startswith("#") or not rest:
            continue
        if rest.startswith(("[", "exporting to image", "pushing ")):
            open_steps[number] = rest
        elif rest.startswith(("DONE", "CACHED", "ERROR")):
            open_steps.pop(number, None)
    if not open_steps:
        if "pushing " in progress:
            return "after push"
        if "exporting to image" in progress:
            return "after image export"
        return "start-up" if "#" not in progress else "between steps"
    last = list(open_steps.values())[-1]
    if last.startswith("exporting to image"):
        return "image export"
    if last.startswith("pushing "):
        return "push"
    instruction = last.split("] ", 1)[-1].split(" ", 1)[0] if "] " in last else ""
    exporting = bool(_names(store / "ingest"))  # a layer blob was being written
    match instruction:
        case "RUN" | "COPY" if exporting:
            return f"{instruction}: layer export"
        case "RUN":
            if runc_containers(store):
                return "RUN: container running"
            if mounts_under(store):
                return "RUN: set-up or tear-down"
            return "RUN: upper dir scan"
        case "COPY":
            return "COPY: copying"
        case "FROM":
            return "FROM"
        case _:
            return "start-up" if "[internal]" in last else f"step {instruction or last}"


# --------------------------------------------------------------------------- the test


@dataclass(slots=True)
class Figures:
    kills: int = 0
    attempts: int = 0
    phases: collections.Counter[str] = field(default_factory=collections.Counter)
    found: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    in_window: int = 0  # ".new-*" entries: killed between creating and locking them

    def render(self, seed: int, calibration: float) -> str:
        lines = [
            f"kill test: seed {seed}, {self.kills} kills in {self.attempts} attempts"
            f" ({calibration:.1f}s per uninterrupted build and push), {self.seconds:.0f}s",
            "kills by phase:",
            *(f"  {name}: {n}" for name, n in sorted(self.phases.items())),
            f"left by the kills and reaped by the next start: {sum(self.found.values())}",
            *(f"  {name}: {n}" for name, n in sorted(self.found.items()) if n),
            f"  of which killed between creating and locking (.new-*, reaped once older than"
            f" {NEW_GRACE_SECONDS:g}s): {self.in_window}",
            f"failures: {len(self.failures)}",
            *(f"  {failure}" for failure in self.failures),
        ]
        return "\n".join(lines)


class KillTest:
    def __init__(
        self,
        workdir: Path,
        registry: RegistryServer,
        *,
        seed: int,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.log = log
        self.workdir = workdir
        self.store = workdir / "store"
        self.context = workdir / "ctx"
        self.registry = registry
        self.rng = random.Random(seed)
        self.env = {**os.environ, "PYBUILD_ROOT": str(self.store)}
        self.env.pop("SOURCE_DATE_EPOCH", None)
        self.figures = Figures()
        self.calibration = 0.0
        self.pending: dict[Path, str] = {}  # young ".new-*" leftovers -> the kill that left them

    # -- commands --------------------------------------------------------------------------

    def ref(self) -> str:
        return f"{self.registry.host}/killtest/app:latest"

    def command(self, salt: str) -> list[str]:
        return [
            PYBUILD,
            "build",
            "--progress=plain",
            "--push",
            "-t",
            self.ref(),
            "--build-arg",
            f"SALT={salt}",
            str(self.context),
        ]

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
        )

    def setup(self) -> None:
        self.context.mkdir(parents=True)
        (self.context / "Dockerfile").write_text(DOCKERFILE)
        made = self.run(["bash", str(MAKE_BUSYBOX), PYBUILD, "--root", str(self.store)])
        if made.returncode != 0:
            raise RuntimeError(f"scripts/make-busybox.sh failed:\n{made.stdout}{made.stderr}")

    def complete(self, salt: str) -> str | None:
        """Build and push to the end; the failure, or None."""
        done = self.run(self.command(salt))
        if done.returncode != 0:
            return f"the build exited {done.returncode}: {done.stderr[-2000:]}"
        return None

    def calibrate(self) -> float:
        """How long a warm build and push take (the first run extracts the base: not timed)."""
        for salt in ("warm-up", "calibration"):
            start = time.monotonic()
            failure = self.complete(salt)
            if failure is not None:
                raise RuntimeError(f"the uninterrupted build failed: {failure}")
        return time.monotonic() - start

    # -- one kill --------------------------------------------------------------------------

    def kill_at(self, salt: str, delay: float) -> tuple[str, set[int]] | None:
        """Build (and push), SIGKILLed ``delay`` seconds in. Returns the phase and the
        processes the killed build had started, or None if it ended before."""
        log = self.workdir / "logs" / f"{salt}.log"
        log.parent.mkdir(exist_ok=True)
        with log.open("w") as out:
            proc = subprocess.Popen(
                self.command(salt),
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
            )
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            started = descendants(proc.pid)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return build_phase(log.read_text(), self.store), started
        if proc.returncode != 0:
            self.figures.failures.append(f"a build failed unkilled: {log.read_text()[-2000:]}")
        return None

    def settle(self, processes: Collection[int], seconds: float = 30.0) -> Leftovers:
        """What is left, giving processes that were told to die a moment to go."""
        end = time.monotonic() + seconds
        found = leftovers(self.store, processes)
        while found.processes and time.monotonic() < end:
            time.sleep(0.2)
            found = leftovers(self.store, processes)
        return found

    def one(self, number: int, delay: float) -> bool:
        """One kill and its checks; False when the sequence ended before the kill."""
        salt = f"kill-{number}-{self.rng.getrandbits(32):08x}"
        killed = self.kill_at(salt, delay)
        if killed is None:
            return False
        phase, processes = killed
        self.figures.kills += 1
        self.figures.phases[phase] += 1
        label = f"kill {self.figures.kills} ({phase}, {delay:.2f}s)"
        left = leftovers(self.store, processes).without({p.name for p in self.pending})
        self.figures.found.update(left.counts())
        self.log(f"{label}: left {left.total()}: {left.describe()}")

        fsck = self.run([PYBUILD, "fsck"])
        if fsck.returncode != 0 or not fsck.stdout.startswith("ok:"):
            self.figures.failures.append(
                f"{label}: fsck exited {fsck.returncode}: {fsck.stdout}{fsck.stderr}".strip()
            )
        failure = self.complete(salt)  # the next build: its start-up reaper runs first
        if failure is not None:
            self.figures.failures.append(f"{label}: the next build failed: {failure}")
        after = self.settle(processes).without({p.name for p in self.pending})
        window = {n: p for n, p in after.entries(self.store).items() if n.startswith(NEW_PREFIX)}
        for path in window.values():  # the design's bound: reaped once older than the grace
            self.pending[path] = label
        self.figures.in_window += len(window)
        after = after.without(window)
        if after.total():
            self.figures.failures.append(
                f"{label}: left after the next build: {after.describe()}"
                f" (the kill left: {left.describe()})"
            )
        return True

    def check_pending(self) -> None:
        """Once the ``.new-*`` leftovers are older than the grace, a build reaps them."""
        if not self.pending:
            return
        times = [p.lstat().st_mtime for p in self.pending if os.path.lexists(p)]
        if times:
            time.sleep(max(0.0, max(times) + NEW_GRACE_SECONDS + 1 - time.time()))
        failure = self.complete("after-the-grace")
        if failure is not None:
            self.figures.failures.append(f"the build after the grace failed: {failure}")
        for path, label in self.pending.items():
            if os.path.lexists(path):
                self.figures.failures.append(f"{label}: {path} left after the grace")

    def main(self, kills: int) -> Figures:
        start = time.monotonic()
        self.setup()
        duration = self.calibration = self.calibrate()
        while self.figures.kills < kills and self.figures.attempts < 3 * kills:
            wanted = kills - self.figures.kills
            # one delay in each of `wanted` equal slices of the duration, in random order
            delays = [duration * (i + self.rng.random()) / wanted for i in range(wanted)]
            self.rng.shuffle(delays)
            for delay in delays:
                self.figures.attempts += 1
                self.one(self.figures.attempts, delay)
            duration *= 0.9  # slices past the end of a faster run: aim earlier next round
        self.check_pending()
        self.figures.seconds = time.monotonic() - start
        return self.figures


@contextmanager
def environment(workdir: Path | None) -> Iterator[tuple[Path, RegistryServer]]:
    """A work directory (made unless given) and a registry in it, both removed afterwards
    (the store's mounts were checked gone by then, so a plain removal is safe)."""
    made = workdir is None
    base = Path(tempfile.mkdtemp(prefix="pybuild-killtest-")) if workdir is None else workdir
    base.mkdir(parents=True, exist_ok=True)
    registry = RegistryServer(base / "registry").start()
    try:
        yield base, registry
    finally:
        registry.stop()
        if made and not mounts_under(base):
            shutil.rmtree(base, ignore_errors=True)


def run_kill_test(
    kills: int,
    seed: int,
    workdir: Path | None = None,
    *,
    log: Callable[[str], None] = lambda line: None,
) -> tuple[Figures, str]:
    """Run the kill test; the figures and their printable report. ``log`` gets a line per
    kill."""
    with environment(workdir) as (base, registry):
        test = KillTest(base, registry, seed=seed, log=log)
        figures = test.main(kills)
        if figures.kills < kills:
            figures.failures.append(f"only {figures.kills} of {kills} kills landed")
        return figures, figures.render(seed, test.calibration)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--kills", type=int, default=50, help="how many SIGKILLs (default 50)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--workdir", type=Path, help="keep the store and logs here")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    figures, report = run_kill_test(
        args.kills, seed, args.workdir, log=lambda line: print(line, file=sys.stderr, flush=True)
    )
    print(report)
    return 0 if not figures.failures else 1


if __name__ == "__main__":
    sys.exit(main())
