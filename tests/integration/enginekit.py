"""Helpers and fixtures for the build-engine tests that run the real CLI.

``Builder`` writes a Dockerfile and context files, runs the real CLI (``pybuild build``) against
the session store and returns a ``Built`` that reads the image back from the store: the raw
config JSON, its history, and the filesystem flattened by applying the layers with
``builder.oci.layer_apply.apply_layer`` (path -> type, mode, owner, content or link target).
Imported as ``enginekit`` (pytest puts this directory on ``sys.path``), like ``cmdkit``; the
fixtures at the end (``store_root``, ``busybox_history``, ``pb``) are imported by name into
``tests/integration/conftest.py`` and ``tests/adversarial/conftest.py``.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from builder.oci.image import ImageValue
from builder.oci.layer_apply import apply_layer, list_entries
from builder.oci.tarformat import TarHeader
from builder.store import Store

REPO = Path(__file__).resolve().parents[2]
PYBUILD = str(Path(sys.executable).with_name("pybuild"))
MAKE_BUSYBOX = REPO / "scripts" / "make-busybox.sh"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUILD_TIMEOUT = 120.0
_TAGS = itertools.count(1)


def require_environment() -> None:
    """Integration tests fail (never skip) without root, runc and a static busybox."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not running as root")
    if shutil.which("runc") is None:
        problems.append("runc not found in PATH")
    if not Path("/bin/busybox").is_file():
        problems.append("/bin/busybox (Debian busybox-static) is missing")
    if not Path(PYBUILD).is_file():
        problems.append(f"{PYBUILD} is missing (pip install -e .)")
    if problems:
        pytest.fail("build integration tests need: " + "; ".join(problems), pytrace=False)


# --------------------------------------------------------------------------- context files


@dataclass(frozen=True, slots=True, kw_only=True)
class F:
    """A regular context file with explicit content and mode."""

    content: str | bytes = b""
    mode: int = 0o644


@dataclass(frozen=True, slots=True, kw_only=True)
class L:
    """A symlink in the context."""

    target: str


@dataclass(frozen=True, slots=True, kw_only=True)
class D:
    """An (empty) directory in the context."""

    mode: int = 0o755


ContextSpec = Mapping[str, "str | bytes | F | L | D"]


def write_context(directory: Path, files: ContextSpec) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, spec in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        match spec:
            case str() | bytes():
                path.write_bytes(spec.encode() if isinstance(spec, str) else spec)
                os.chmod(path, 0o644)
            case F():
                data = spec.content.encode() if isinstance(spec.content, str) else spec.content
                path.write_bytes(data)
                os.chmod(path, spec.mode)
            case L():
                if path.is_symlink() or path.exists():
                    path.unlink()
                os.symlink(spec.target, path)
            case D():
                path.mkdir(exist_ok=True)
                os.chmod(path, spec.mode)


# --------------------------------------------------------------------------- images


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One path of a flattened image filesystem."""

    type: str  # "file" | "dir" | "symlink" | "char" | "block" | "fifo" | "socket"
    mode: int  # permission bits incl. setuid/setgid/sticky
    uid: int
    gid: int
    content: bytes = b""  # file content
    linkname: str = ""  # symlink target

    @property
    def text(self) -> str:
        return self.content.decode()


def _kind(st_mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "dir"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISCHR, "char"),
        (stat.S_ISBLK, "block"),
        (stat.S_ISFIFO, "fifo"),
    ):
        if test(st_mode):
            return name
    return "socket"


def flatten_image(image: ImageValue) -> dict[str, Entry]:
    """Apply every layer, bottom to top, into a temp dir; map ``/path`` to its :class:`Entry`."""
    with tempfile.TemporaryDirectory(prefix="pybuild-flat-") as tmp:
        root = Path(tmp) / "rootfs"
        root.mkdir()
        for i, layer in enumerate(image.layers):
            with layer.open_compressed() as stream:
                apply_layer(stream, root, expected_diff_id=layer.diff_id, name=f"layer {i}")
        out: dict[str, Entry] = {}
        for dirpath, dirnames, filenames in os.walk(root):
            for name in (*dirnames, *filenames):
                path = Path(dirpath, name)
                st = path.lstat()
                kind = _kind(st.st_mode)
                rel = "/" + str(path.relative_to(root))
                out[rel] = Entry(
                    type=kind,
                    mode=stat.S_IMODE(st.st_mode),
                    uid=st.st_uid,
                    gid=st.st_gid,
                    content=path.read_bytes() if kind == "file" else b"",
                    linkname=os.readlink(path) if kind == "symlink" else "",
                )
        return out


def layer_entries(image: ImageValue, index: int) -> tuple[TarHeader, ...]:
    """The tar entries of one layer, in archive order."""
    with image.layers[index].open_compressed() as stream:
        return list_entries(stream)


def layer_names(image: ImageValue, index: int) -> list[str]:
    """Entry names of one layer without ``./`` prefixes or trailing slashes, sorted."""
    names = (h.name.removeprefix("./").rstrip("/") for h in layer_entries(image, index))
    return sorted(n for n in names if n and n != ".")


@dataclass(slots=True)
class Built:
    """An image the CLI built (or the failed attempt), read back from the store."""

    store_root: Path
    tag: str
    returncode: int
    stdout: str
    stderr: str
    image_id: str = ""
    _image: ImageValue | None = None
    _files: dict[str, Entry] | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def image(self) -> ImageValue:
        if self._image is None:
            store = Store.open(self.store_root)
            # by ID: a later build may move the tag
            record = store.resolve(self.image_id or self.tag)
            self._image = store.load_image(record.descriptor)
        return self._image

    @property
    def raw_config(self) -> dict[str, Any]:
        data = json.loads(self.image.raw_config)
        assert isinstance(data, dict)
        return data

    @property
    def config(self) -> dict[str, Any]:
        """The ``config`` object of the image config (Env, Cmd, Labels, ...)."""
        value = self.raw_config.get("config", {})
        assert isinstance(value, dict)
        return value

    @property
    def history(self) -> list[dict[str, Any]]:
        value = self.raw_config.get("history", [])
        assert isinstance(value, list)
        return value

    def created_by(self, *, skip: int = 0) -> list[tuple[str, bool]]:
        """``(created_by, empty_layer)`` of each history entry after the first ``skip``."""
        entries = [
            (h.get("created_by", ""), bool(h.get("empty_layer", False))) for h in self.history
        ]
        return entries[skip:]

    @property
    def files(self) -> dict[str, Entry]:
        if self._files is None:
            self._files = flatten_image(self.image)
        return self._files

    def layer_names(self, index: int) -> list[str]:
        return layer_names(self.image, index)

    def error_line(self) -> str:
        """The one ``ERROR:`` line of a failed build (no traceback, no second error)."""
        assert self.returncode != 0, self.stderr
        assert "Traceback" not in self.stderr
        lines = [ln for ln in self.stderr.splitlines() if ln.startswith("ERROR: ")]
        assert len(lines) == 1, self.stderr
        return lines[0]


@dataclass(slots=True)
class Builder:
    """Runs the real CLI against the session store, in the test's own temp directory."""

    store_root: Path
    workdir: Path
    busybox_history: int
    # run pybuild through this (e.g. nsenter into a network namespace the test made)
    command_prefix: tuple[str, ...] = ()

    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("SOURCE_DATE_EPOCH", None)
        env["PYBUILD_ROOT"] = str(self.store_root)
        return env

    def new_tag(self, prefix: str = "it") -> str:
        return f"{prefix}{os.getpid()}-{next(_TAGS)}:latest"

    def context(self, files: ContextSpec | None = None, *, name: str = "ctx") -> Path:
        directory = self.workdir / name
        write_context(directory, files or {})
        return directory

    def cli(
        self,
        *argv: str,
        check: bool = False,
        timeout: float = BUILD_TIMEOUT,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*self.command_prefix, PYBUILD, *argv],
            capture_output=True,
            text=True,
            env={**self.environ(), **(env or {})},
            timeout=timeout,
            check=False,
            cwd=self.workdir,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"pybuild {' '.join(argv)} exited {proc.returncode}\n"
                f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return proc

    def build(
        self,
        dockerfile: str | None,
        files: ContextSpec | None = None,
        *,
        args: Sequence[str] = (),
        tag: str | None = None,
        check: bool = True,
        context_name: str = "ctx",
        dockerfile_name: str = "Dockerfile",
        context_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Built:
        """Write ``dockerfile`` (unless None) and ``files`` into a context and build it."""
        directory = context_dir or self.context(files, name=context_name)
        if context_dir is not None and files:
            write_context(directory, files)
        if dockerfile is not None:
            (directory / dockerfile_name).write_text(dockerfile)
        tag = tag or self.new_tag()
        iid = self.workdir / f"iid-{next(_TAGS)}"
        argv = ["build", "-t", tag, "--progress=plain", "--iidfile", str(iid)]
        if dockerfile_name != "Dockerfile":
            argv += ["-f", str(directory / dockerfile_name)]
        argv += [*args, str(directory)]
        proc = self.cli(*argv, env=env)
        built = Built(
            store_root=self.store_root,
            tag=tag,
            returncode=proc.returncode,
            stdout=proc.stdout,
            stderr=proc.stderr,
            image_id=iid.read_text() if iid.exists() else "",
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"build failed ({proc.returncode}):\n{dockerfile}\n--- stderr\n{proc.stderr}"
            )
        return built

    def build_context(
        self,
        context: str,
        *,
        args: Sequence[str] = (),
        tag: str | None = None,
        check: bool = True,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Built:
        """Build the CONTEXT argument ``context`` as given (a URL, ``-`` with ``stdin``...)."""
        tag = tag or self.new_tag()
        iid = self.workdir / f"iid-{next(_TAGS)}"
        argv = [PYBUILD, "build", "-t", tag, "--progress=plain", "--iidfile", str(iid)]
        proc = subprocess.run(
            [*argv, *args, context],
            input=stdin if stdin is not None else b"",
            capture_output=True,
            env={**self.environ(), **(env or {})},
            timeout=BUILD_TIMEOUT,
            check=False,
            cwd=self.workdir,
        )
        built = Built(
            store_root=self.store_root,
            tag=tag,
            returncode=proc.returncode,
            stdout=proc.stdout.decode(errors="replace"),
            stderr=proc.stderr.decode(errors="replace"),
            image_id=iid.read_text() if iid.exists() else "",
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"build of {context} failed:\n{built.stderr}")
        return built

    def tagged(self, tag: str) -> bool:
        """Whether ``tag`` names an image in the store."""
        from builder.errors import StoreError

        try:
            Store.open(self.store_root).resolve(tag)
        except StoreError:
            return False
        return True


def copy_store(seed: Path, dest: Path) -> Path:
    """A copy of the store ``seed`` at ``dest`` (e.g. the ``busybox_seed`` fixture's)."""
    shutil.copytree(seed, dest, symlinks=True)
    return dest


def without_runtime_warning(err: str) -> str:
    """stderr without the runtime check's ``warning: runc ...`` line: an old runc (this
    machine's Debian 1.1.5) is warned about, not refused (SECURITY.md case 30)."""
    return "".join(line for line in err.splitlines(True) if not line.startswith("warning: runc "))


def mounts() -> list[str]:
    return Path("/proc/mounts").read_text().splitlines()


def runc_containers(store_root: Path) -> list[str]:
    """IDs of the containers runc knows under the store's state root."""
    proc = subprocess.run(
        ["runc", "--root", str(store_root / "runc"), "list", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    return [line for line in proc.stdout.splitlines() if line.strip()]


def _regular_files(top: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            path = Path(dirpath, name)
            try:
                if stat.S_ISREG(path.lstat().st_mode):
                    yield path
            except OSError:
                continue  # removed meanwhile (another test's temp file)


def _contains(path: Path, needle: bytes) -> bool:
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if needle in data:
        return True
    if data[:2] == b"\x1f\x8b":  # a gzip layer blob: look inside
        try:
            return needle in gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return False
    return False


def files_containing(
    tops: Iterable[Path], needle: bytes, *, skip: Iterable[Path] = ()
) -> list[str]:
    """Regular files under ``tops`` (gzip blobs looked into) holding ``needle``, but ``skip``:
    where a secret value must not be left."""
    skipped = set(skip)
    return [
        str(path)
        for top in dict.fromkeys(tops)
        if top.is_dir()
        for path in _regular_files(top)
        if path not in skipped and _contains(path, needle)
    ]


def store_leftovers(store_root: Path) -> list[str]:
    """Mounts, runc containers and temporary directories a command left under the store."""
    found = [f"mount: {line}" for line in mounts() if str(store_root) in line]
    found += [f"runc container: {c}" for c in runc_containers(store_root)]
    for sub in ("tmp", "ingest"):
        found += [f"{sub}/{p.name}" for p in (store_root / sub).glob("*")]
    found += [f"snapshots/{p.name}" for p in (store_root / "snapshots").glob(".*")]
    return found


# --------------------------------------------------------------------------- fixtures
# Defined here so that every suite building with the real CLI (tests/integration,
# tests/adversarial) shares them: each conftest imports them by name.


def busybox_store(root: Path) -> Path:
    """``root`` made a store holding ``busybox:latest`` (scripts/make-busybox.sh)."""
    require_environment()
    proc = subprocess.run(
        ["bash", str(MAKE_BUSYBOX), PYBUILD, "--root", str(root)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"scripts/make-busybox.sh failed:\n{proc.stdout}\n{proc.stderr}")
    return root


@pytest.fixture(scope="session")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A store with ``busybox:latest`` (made offline by scripts/make-busybox.sh), per session."""
    root = busybox_store(tmp_path_factory.mktemp("store"))
    yield root
    # nothing a test did may leave a mount behind under the store
    leftovers = [line for line in mounts() if str(root) in line]
    assert not leftovers, f"mounts left under the store: {leftovers}"


@pytest.fixture(scope="session")
def busybox_seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding only ``busybox:latest``: copy it (``copy_store``) for a test that needs
    empty stores (no build cache) with the very same base image."""
    return busybox_store(tmp_path_factory.mktemp("seed") / "store")


@pytest.fixture(scope="session")
def busybox_history(store_root: Path) -> int:
    store = Store.open(store_root)
    image = store.load_image(store.resolve("busybox:latest").descriptor)
    return len(image.config.history)


@pytest.fixture
def pb(store_root: Path, busybox_history: int, tmp_path: Path) -> Builder:
    return Builder(store_root=store_root, workdir=tmp_path, busybox_history=busybox_history)
