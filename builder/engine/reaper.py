"""The start-up reaper (SECURITY.md S10): what a killed pybuild left behind, cleared by the next.

Every temporary thing a build makes is a directory made by ``store.locks.locked_dir`` and
flocked by its maker for its whole life; the kernel drops the flock when the maker dies, so
"the lock is free" means "abandoned", whatever PIDs say:

- RUN bundles ``<store>/tmp/pybuild-run-*`` (and ``/dev/shm/pybuild-run-*`` for steps with a
  secret in their environment), with the overlays of ``rw`` bind mounts inside;
- secret files ``/dev/shm/pybuild-secrets-*``;
- the snapshotter's ``<store>/snapshots/.extract-*``, ``.scratch-*`` and ``.ovl-*`` (overlay
  mounts of running steps and of COPY sources);
- the RUN containers in the runtime roots ``<store>/runc`` and ``<store>/crun``: a container
  whose bundle is abandoned (or gone) is killed and deleted (``runc delete --force``).

Mounts left below an abandoned directory are unmounted (lazily when busy) before it is removed.
A live build's directories and containers are skipped: their flocks are held. Ingest files are
reaped by ``Store.open`` (they have their own flock and grace period); detached containers
(``pybuild run -d``) are supervised by conmon and never touched here.

Cost when nothing is stale: one ``scandir`` per directory above (``/dev/shm`` included), and
one JSON read per container of a live build; no process is started.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from builder.engine.run import BUNDLE_PREFIX, SECRETS_PREFIX
from builder.snapshot.layerdirs import EXTRACT_PREFIX, SCRATCH_PREFIX, reap_locked_dirs
from builder.snapshot.overlay import PRIVATE_PREFIX
from builder.store import paths
from builder.store.locks import NEW_GRACE_SECONDS, abandoned

__all__ = ["Reaped", "reap"]

SHM: Final = Path("/dev/shm")
_RUNTIME_TIMEOUT: Final = 60


@dataclass(frozen=True, slots=True, kw_only=True)
class Reaped:
    """What one pass removed."""

    containers: tuple[str, ...] = ()
    directories: tuple[Path, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.containers or self.directories)


def _bundle_of(state_dir: Path, runtime: str, container_id: str) -> Path | None:
    """The bundle a runtime container was started from; None when it cannot be told."""
    try:
        state = json.loads((state_dir / container_id / "state.json").read_text())
        labels = state.get("config", {}).get("labels") or []
        for label in labels:
            if isinstance(label, str) and label.startswith("bundle="):
                return Path(label.removeprefix("bundle="))
    except (OSError, ValueError, AttributeError):
        pass
    # crun keeps another layout: ask it
    with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError, AttributeError):
        done = subprocess.run(
            [runtime, "--root", str(state_dir), "state", container_id],
            capture_output=True,
            timeout=_RUNTIME_TIMEOUT,
            check=False,
        )
        bundle = json.loads(done.stdout or b"{}").get("bundle")
        if isinstance(bundle, str) and bundle:
            return Path(bundle)
    return None


def _young(path: Path) -> bool:
    """Made less than the grace period ago: a runtime may not have written its state yet."""
    try:
        return time.time() - path.stat().st_mtime < NEW_GRACE_SECONDS
    except OSError:
        return False


def _owner_gone(bundle: Path | None) -> bool:
    """Whether nobody holds the bundle's flock any more (a missing bundle: its step ended)."""
    if bundle is None or not bundle.is_dir():
        return True
    fd = abandoned(bundle)
    if fd is None:
        return False
    os.close(fd)
    return True


def _reap_containers(store_root: Path) -> list[str]:
    removed: list[str] = []
    for runtime in paths.RUNTIMES:
        state_dir = paths.runtime_state_dir(store_root, runtime)
        try:
            with os.scandir(state_dir) as it:
                ids = sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            continue
        for container_id in ids:
            if not container_id.startswith("pybuild-"):
                continue
            bundle = _bundle_of(state_dir, runtime, container_id)
            if bundle is None and _young(state_dir / container_id):
                continue  # being created: its state names no bundle yet
            if not _owner_gone(bundle):
                continue
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    [runtime, "--root", str(state_dir), "delete", "--force", container_id],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=_RUNTIME_TIMEOUT,
                    check=False,
                )
            if not (state_dir / container_id).exists():
                removed.append(f"{runtime}:{container_id}")
    return removed


def reap(store_root: Path, *, shm: Path = SHM) -> Reaped:
    """Clear what dead builds left in the store at ``store_root`` and in ``shm``."""
    containers = _reap_containers(store_root)  # first: their processes keep mounts busy
    directories = [
        *reap_locked_dirs(store_root / paths.TMP, (BUNDLE_PREFIX,)),
        *reap_locked_dirs(
            store_root / paths.SNAPSHOTS, (EXTRACT_PREFIX, SCRATCH_PREFIX, PRIVATE_PREFIX)
        ),
        *reap_locked_dirs(shm, (BUNDLE_PREFIX, SECRETS_PREFIX)),
    ]
    return Reaped(containers=tuple(containers), directories=tuple(directories))
