"""The outcome checks of the adversarial and fault checklist (docs/SECURITY.md section 3).

Every case states one or more outcomes; each has one helper here:

* **E** (clean error): ``result = run_pybuild([...], store_root=...)`` (or ``pb.build(...,
  check=False)`` from ``enginekit``), then ``assert_clean_error(result, must_name=("Dockerfile:3",
  "sha256:..."))``: non-zero exit, no traceback, exactly one ``ERROR:`` line, naming each string.
* **C** (containment): the ``sentinels`` fixture (``Sentinels``) makes files outside the rootfs,
  the store and the context (in the test's temp dir and under ``/tmp``), watches host files such
  as ``/etc/passwd``, and after the test asserts them byte-, mode-, owner- and mtime-identical,
  no new entry among them, and the ``absent`` paths (``/tmp/pwn``...) still absent.
* **S** (store consistent): ``assert_store_consistent(store_root)``: ``pybuild fsck`` clean, no
  mount under the store, no runtime container, nothing in ``tmp/`` or ``ingest/``; then
  ``rerun_succeeds(pb, dockerfile, files)`` builds the same (fixed) build on the same store.

Imported as ``advkit`` (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

from enginekit import BUILD_TIMEOUT, PYBUILD, Builder, Built, ContextSpec, store_leftovers

from builder.store.paths import CONTAINER_RUNTIME, RUNTIMES, runtime_state_dir, state_dir

# Paths a successful attack would create (the checklist's /tmp/pwn and its variants).
PWNED = (Path("/tmp/pwn"), Path("/pwn"), Path("/etc/pwn"))
# Host files an escape would reach first; watched read-only (never written by a test).
HOST_FILES = (Path("/etc/passwd"), Path("/etc/shadow"), Path("/etc/hostname"))


class Result(NamedTuple):
    """A finished CLI run: unpacks as ``rc, stdout, stderr``."""

    returncode: int
    stdout: str
    stderr: str


class Finished(Protocol):
    """What ``assert_clean_error`` reads: a ``Result``, a ``Built`` or a ``CompletedProcess``."""

    @property
    def returncode(self) -> int: ...

    @property
    def stderr(self) -> str: ...


def run_pybuild(
    args: Sequence[str],
    *,
    store_root: Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    timeout: float = BUILD_TIMEOUT,
    prefix: Sequence[str] = (),
) -> Result:
    """Run ``pybuild ARGS`` (the installed CLI) on ``store_root``; never raises on failure."""
    environ = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    environ["PYBUILD_ROOT"] = str(store_root)
    environ.update(env or {})
    proc = subprocess.run(
        [*prefix, PYBUILD, *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=environ,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    return Result(
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )


def assert_clean_error(result: Finished, *, must_name: str | Sequence[str] = ()) -> str:
    """E: non-zero exit, no traceback, one ``ERROR:`` line naming each of ``must_name``.

    Returns that line. The line is the CLI's (``ERROR: <message>``, as docker prints); step
    output before it (``--progress=plain``) is allowed, a second error or a traceback is not.
    """
    names = (must_name,) if isinstance(must_name, str) else tuple(must_name)
    stderr = result.stderr
    assert result.returncode != 0, f"expected a failure, got exit 0\n{stderr}"
    assert result.returncode < 128, f"killed by a signal ({result.returncode})\n{stderr}"
    assert "Traceback" not in stderr, stderr
    assert "RecursionError" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1, f"expected one ERROR line:\n{stderr}"
    line = errors[0]
    for name in names:
        assert name in line, f"the error does not name {name!r}: {line}"
    return line


def assert_store_consistent(store_root: Path) -> None:
    """S: fsck clean; no mount, runtime container or temp dir left under the store."""
    proc = run_pybuild(["fsck", "--root", str(store_root)], store_root=store_root, cwd=store_root)
    assert proc.returncode == 0, f"fsck:\n{proc.stdout}{proc.stderr}"
    assert proc.stdout.startswith("ok: "), proc.stdout
    mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    assert [m for m in mountinfo if str(store_root) in m] == []
    assert store_leftovers(store_root) == []
    for runtime in RUNTIMES:
        state = runtime_state_dir(store_root, runtime)
        left = sorted(p.name for p in state.iterdir()) if state.is_dir() else []
        assert left == [], f"{runtime} containers left: {left}"
    detached = state_dir(store_root, CONTAINER_RUNTIME)
    if detached.is_dir():
        assert sorted(p.name for p in detached.iterdir()) == []


def rerun_succeeds(
    pb: Builder,
    dockerfile: str,
    files: ContextSpec | None = None,
    *,
    args: Sequence[str] = (),
    context_name: str = "rerun",
) -> Built:
    """S: the same (good) build succeeds on the store afterwards, leaving it consistent."""
    built = pb.build(dockerfile, files, args=args, context_name=context_name)
    assert built.ok
    assert_store_consistent(pb.store_root)
    return built


# --------------------------------------------------------------------------- containment


@dataclass(frozen=True, slots=True, kw_only=True)
class Fingerprint:
    kind: int
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    digest: str  # sha256 of the content (file) or the target (symlink); "" for others


def fingerprint(path: Path) -> Fingerprint:
    st = path.lstat()
    if stat.S_ISREG(st.st_mode):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    elif stat.S_ISLNK(st.st_mode):
        digest = hashlib.sha256(os.readlink(path).encode()).hexdigest()
    else:
        digest = ""
    return Fingerprint(
        kind=stat.S_IFMT(st.st_mode),
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        mtime_ns=st.st_mtime_ns,
        digest=digest,
    )


def _walk(root: Path) -> dict[str, Fingerprint]:
    """``root`` and everything under it (symlinks not followed), by path."""
    found = {str(root): fingerprint(root)}
    if root.is_dir() and not root.is_symlink():
        for dirpath, dirnames, filenames in os.walk(root):
            for name in (*dirnames, *filenames):
                path = Path(dirpath, name)
                found[str(path)] = fingerprint(path)
    return found


@dataclass(slots=True, kw_only=True)
class Sentinels:
    """Canary trees outside rootfs, store and context, and paths that must stay absent.

    ``create(base)`` makes two canary trees: ``base`` (beside the test's context) and a
    directory under ``/tmp`` (where the checklist's escapes aim). Each holds a secret file
    (0600), a setuid-free executable (0755), a directory (0700) and a symlink. ``secret`` is
    the secret's bytes, for asserting that they appear nowhere. ``check()`` compares every
    entry (and the watched host files) with the snapshot taken at creation.
    """

    trees: tuple[Path, ...]
    watched: tuple[Path, ...] = HOST_FILES
    absent: tuple[Path, ...] = PWNED
    secret: bytes = b""
    before: dict[str, Fingerprint] = field(default_factory=dict)

    @classmethod
    def create(cls, base: Path, *, absent: Sequence[Path] = PWNED) -> Sentinels:
        token = uuid.uuid4().hex
        tmp = Path("/tmp") / f"pybuild-sentinel-{token[:12]}"
        secret = f"sentinel-secret-{token}\n".encode()
        for root in (base, tmp):
            root.mkdir(parents=True)
            (root / "secret").write_bytes(secret)
            os.chmod(root / "secret", 0o600)
            (root / "tool").write_bytes(b"#!/bin/sh\necho sentinel\n")
            os.chmod(root / "tool", 0o755)
            (root / "private").mkdir()
            os.chmod(root / "private", 0o700)
            (root / "private" / "note").write_bytes(secret)
            os.symlink("secret", root / "link")
        for path in absent:
            assert not os.path.lexists(path), f"{path} exists before the test"
        watch = cls(trees=(base, tmp), absent=tuple(absent), secret=secret)
        watch.before = watch.snapshot()
        return watch

    def snapshot(self) -> dict[str, Fingerprint]:
        found: dict[str, Fingerprint] = {}
        for root in self.trees:
            found.update(_walk(root))
        for path in self.watched:
            if os.path.lexists(path):
                found[str(path)] = fingerprint(path)
        return found

    def check(self) -> None:
        """C: every sentinel and watched file unchanged, none added, the absent paths absent."""
        after = self.snapshot()
        assert after.keys() == self.before.keys(), (
            f"added: {sorted(after.keys() - self.before.keys())}, "
            f"removed: {sorted(self.before.keys() - after.keys())}"
        )
        changed = [p for p, fp in self.before.items() if after[p] != fp]
        assert changed == [], f"sentinels changed: {changed}"
        present = [str(p) for p in self.absent if os.path.lexists(p)]
        assert present == [], f"created outside the rootfs: {present}"

    def remove(self) -> None:
        for root in self.trees:
            shutil.rmtree(root, ignore_errors=True)


def assert_nowhere(secret: bytes, built: Built) -> None:
    """The bytes ``secret`` are in no file, link target, config or log of the build."""
    assert secret not in built.stdout.encode() + built.stderr.encode()
    if not built.ok:
        return
    assert secret not in built.image.raw_config
    for path, entry in built.files.items():
        assert secret not in entry.content, f"{path} holds the secret"
        assert secret.decode(errors="replace") not in entry.linkname
