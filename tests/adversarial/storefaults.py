"""What the store cases (docs/SECURITY.md section 3, cases 34-40) share: a base image in a real
``docker-registry`` on 127.0.0.1, a counting proxy in front of it, concurrent ``pybuild build``
processes, and reading a plain-progress log.

Imported as ``storefaults`` (the adversarial conftest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from enginekit import BUILD_TIMEOUT, MAKE_BUSYBOX, PYBUILD, REPO, busybox_store, require_environment
from regserver import FaultProxy, RegistryServer, ToolMissingError

from builder.digest import Digest
from builder.store import Store
from builder.store.paths import INGEST, RUNTIMES, SNAPSHOTS, TMP

BASE = "base/busybox:1"  # the base image's repository and tag in the test registry


def environ(store_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    env["PYBUILD_ROOT"] = str(store_root)
    return env


def pybuild(store_root: Path, *args: str, timeout: float = BUILD_TIMEOUT) -> None:
    """Run ``pybuild ARGS`` on ``store_root`` and fail the test if it fails."""
    proc = subprocess.run(
        [PYBUILD, *args],
        capture_output=True,
        text=True,
        env=environ(store_root),
        cwd=REPO,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"pybuild {' '.join(args)}:\n{proc.stdout}{proc.stderr}"


def start_registry(work: Path) -> RegistryServer:
    """A registry on 127.0.0.1 holding busybox (made offline) as ``BASE``."""
    require_environment()
    try:
        server = RegistryServer(work / "registry").start()
    except ToolMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        seed = work / "seed"
        busybox_store(seed)
        pybuild(seed, "tag", "busybox:latest", f"{server.host}/{BASE}")
        pybuild(seed, "push", f"{server.host}/{BASE}")
    except BaseException:
        server.stop()
        raise
    return server


def blob_gets(proxy: FaultProxy) -> collections.Counter[Digest]:
    """How often each blob was fetched (``GET /v2/<name>/blobs/<digest>``) through ``proxy``."""
    counts: collections.Counter[Digest] = collections.Counter()
    for method, path, _status, _headers in list(proxy.log):
        found = re.search(r"/blobs/(sha256:[0-9a-f]{64})$", path)
        if method == "GET" and found:
            counts[Digest.parse(found.group(1))] += 1
    return counts


def image_blobs(store_root: Path, ref: str) -> set[Digest]:
    """The config and layer digests of the image ``ref`` names in the store."""
    store = Store.open(store_root)
    image = store.load_image(store.resolve(ref).descriptor)
    return {image.manifest.config.digest, *(layer.digest for layer in image.manifest.layers)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    returncode: int
    stderr: str
    image_id: str


@dataclass(slots=True)
class Builds:
    """``pybuild build`` processes running at once on one store (``--progress=plain``)."""

    store_root: Path
    workdir: Path
    procs: list[tuple[subprocess.Popen[bytes], Path]]

    @classmethod
    def start(
        cls,
        store_root: Path,
        workdir: Path,
        contexts: Sequence[Path],
        *,
        pause: float = 0.0,
        tag: str = "adv-store",
    ) -> Builds:
        """One build per context (tagged ``<tag>:<n>``), ``pause`` seconds apart."""
        builds = cls(store_root=store_root, workdir=workdir, procs=[])
        for n, context in enumerate(contexts):
            iid = workdir / f"iid-{tag}-{n}"
            argv = [PYBUILD, "build", "-t", f"{tag}:{n}", "--progress=plain"]
            proc = subprocess.Popen(
                [*argv, "--iidfile", str(iid), str(context)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=environ(store_root),
                cwd=workdir,
            )
            builds.procs.append((proc, iid))
            if pause:
                time.sleep(pause)
        return builds

    def running(self) -> bool:
        return any(proc.poll() is None for proc, _ in self.procs)

    def wait(self, timeout: float) -> list[Finished]:
        """Wait for every build (``timeout`` for all together); kill the rest after it."""
        deadline = time.monotonic() + timeout
        done: list[Finished] = []
        try:
            for proc, iid in self.procs:
                _, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
                image_id = iid.read_text() if iid.exists() else ""
                done.append(
                    Finished(returncode=proc.returncode, stderr=err.decode(), image_id=image_id)
                )
        finally:
            for proc, _ in self.procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return done


def step_cached(stderr: str, instruction: str) -> bool:
    """Whether the plain-progress log shows the step ``instruction`` as CACHED."""
    found = re.search(rf"^#(\d+) \[[^\]]*\] {re.escape(instruction)}$", stderr, re.MULTILINE)
    assert found is not None, f"no step {instruction!r} in:\n{stderr}"
    return f"\n#{found.group(1)} CACHED\n" in stderr


def counting_proxy(server: RegistryServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(server.host)
    try:
        yield proxy
    finally:
        proxy.stop()


# --------------------------------------------------------------------------- a small disk


@dataclass(slots=True)
class SmallDisk:
    """A tmpfs of a few MB mounted in a private mount namespace that only pybuild sees.

    ``holder`` keeps the namespace alive; commands run in it through ``prefix`` (nsenter), and
    the test reads its files through ``/proc/<holder>/root`` (``outside``). The store is
    ``mount/store``; ``mount/filler`` is room for eating the free space.
    """

    holder: subprocess.Popen[bytes]
    mount: Path

    @property
    def prefix(self) -> tuple[str, ...]:
        return ("nsenter", "-t", str(self.holder.pid), "-m")

    @property
    def store(self) -> Path:
        return self.mount / "store"

    def outside(self, path: Path) -> Path:
        """``path`` (inside the namespace) as the test process reaches it."""
        return Path(f"/proc/{self.holder.pid}/root{path}")

    def sh(self, script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix, "sh", "-c", script],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )

    def resize(self, size: str) -> None:
        done = self.sh(f"mount -o remount,size={size} {self.mount}")
        assert done.returncode == 0, done.stderr

    def fill(self) -> None:
        """Eat every free page of the tmpfs with ``filler`` (the last write gets ENOSPC)."""
        self.sh(f"cat /dev/zero > {self.mount / 'filler'}")
        assert self.outside(self.mount / "filler").stat().st_size > 0

    def free(self) -> None:
        (self.outside(self.mount / "filler")).unlink()

    def leftovers(self) -> list[str]:
        """Mounts under the store, runtime containers, temp dirs and ingest files left."""
        info = Path(f"/proc/{self.holder.pid}/mountinfo").read_text().splitlines()
        found = [f"mount: {line}" for line in info if f"{self.store}/" in line]
        store = self.outside(self.store)
        for sub in (TMP, INGEST, *RUNTIMES):
            found += [f"{sub}/{p.name}" for p in (store / sub).glob("*")]
        found += [f"{SNAPSHOTS}/{p.name}" for p in (store / SNAPSHOTS).glob(".*")]
        return found

    def assert_consistent(self) -> None:
        """S, inside the namespace: fsck clean, nothing left behind."""
        fsck = self.sh(f"PYBUILD_ROOT={self.store} {PYBUILD} fsck")
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        assert self.leftovers() == []


@contextlib.contextmanager
def small_disk(directory: Path, size: str) -> Iterator[SmallDisk]:
    """A ``size`` tmpfs at ``directory`` in a new private mount namespace, with busybox imported
    into its store; the namespace (and the tmpfs) goes when the holder is killed."""
    directory.mkdir(parents=True, exist_ok=True)
    mount = f"mount -t tmpfs -o size={size},mode=0700 tmpfs {directory}"
    script = f"{mount} && echo ready && exec sleep infinity"
    holder = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"ready\n", "cannot mount a tmpfs in a new namespace"
        disk = SmallDisk(holder=holder, mount=directory)
        made = subprocess.run(
            [*disk.prefix, "bash", str(MAKE_BUSYBOX), PYBUILD, "--root", str(disk.store)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
        assert made.returncode == 0, made.stderr
        yield disk
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
