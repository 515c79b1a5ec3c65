"""No-op rebuilds: answer a rebuild whose inputs are unchanged from a record of the last one.

A rebuild whose inputs did not change hits the cache at every step and produces the image the
last build produced. Finding that out the ordinary way costs a process most of its time in
imports (parser, planner, engine) before any cache lookup. So every successful build also writes
a *no-op record*: everything the build depended on, in a form that can be re-checked with
``stat`` and a few small reads, and the progress a rebuild would show (a step that ran is
recorded as ``CACHED``, as the cache would answer it next time, without its output). The next
identical request checks the record first and, if every input is unchanged, replays the events
and returns the same image, without parsing, planning or loading the engine. That holds for the
first rebuild after a build that ran steps too: the image of a fully cached build is the one the
build that filled the cache made (history times come from the cache records).

What a record pins (any difference sends the build the ordinary way, which rewrites the record):

- the request: context and Dockerfile paths, tags, build args (values from the environment
  resolved), target, labels, platform, network, limits, runtime, ``SOURCE_DATE_EPOCH``, the host
  architecture and pybuild's own code (size and mtime of every module and grammar file);
- the Dockerfile's bytes and both possible ``.dockerignore`` files' bytes (or their absence);
- when any step read the context: the ``lstat`` of every entry below the context root (type,
  mode, owner, size, inode, device, mtime and ctime; ctime cannot be set back, so any write,
  rename, chmod or xattr change shows). Entries changed less than the racy window before the scan
  are not trusted (a second change within the timestamp granularity could keep the same stat),
  and then no record is written. The window is ``RACY_NS`` (2 s) on a filesystem with whole-second
  timestamps and ``RACY_FINE_NS`` where the context root's ctime has a sub-second part (ext4,
  xfs, btrfs, tmpfs). There a file's timestamp is the kernel's coarse clock, at most one tick
  (10 ms at HZ=100) behind the clock the scan reads: a second change can keep a first change's
  stat only when both fall in one tick, so a change more than two ticks before the scan is
  settled. The window is three ticks (30 ms). The scan is taken *before*
  the build reads the context, so a change made while the build runs makes the next check fail
  rather than be missed;
- each base image name and the manifest digest ``index.json`` gives it;
- each step's cache record file, whether the build found it or wrote it (inode, size, mtime: a
  record rewritten by ``--no-cache`` is a new file) and the blobs it names;
- the image: its manifest and config blobs exist and every tag still names that manifest.

Builds with ``--pull``, a Dockerfile from stdin, or that fetch remote sources (``ADD <url>``,
git) never use or write records. A ``--no-cache`` build never uses one but writes the record of
the same request without ``--no-cache``: that rebuild hits the cache records it wrote. A record
is a disposable cache file (``<store>/buildinfo/noop-<request>.json``, written by rename, not
fsynced): a missing, torn or stale one only costs the ordinary path.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import stat
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from builder.engine.events import (
    Event,
    EventSink,
    VertexCached,
    VertexDone,
    VertexExplain,
    VertexLog,
    VertexStarted,
    VertexStatus,
    Warning_,
)
from builder.errors import BuildError
from builder.store.paths import (
    BUILDINFO,
    REF_NAME,
    blob_path,
    cache_record_path,
    index_path,
    store_lock_path,
)

if TYPE_CHECKING:
    from builder.context.ignore import MatchInfo, PatternMatcher

FORMAT: Final = 1
RACY_NS: Final = 2_000_000_000
RACY_FINE_NS: Final = 30_000_000
IGNORE_FILE: Final = ".dockerignore"
MAX_RECORD_BYTES: Final = 4 << 20
_HEX: Final = frozenset("0123456789abcdef")

# An event as stored: ("start"|"cached", vertex, name), ("status", vertex, text),
# ("done", vertex, None), ("warning", 0, message).
StoredEvent = tuple[str, int, str | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One build request, reduced to the record it would use."""

    root: Path  # the store
    key: str  # sha256 hex of the request and pybuild's code
    context: Path  # absolute
    dockerfile: Path
    ignore_files: tuple[Path, ...]  # <Dockerfile>.dockerignore, <context>/.dockerignore

    @property
    def path(self) -> Path:
        return self.root / BUILDINFO / f"noop-{self.key}.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """The inputs as they were before the build read them."""

    scanned_ns: int
    dockerfile: str  # sha256 hex of the bytes the build parses
    ignore_files: tuple[str | None, ...]  # sha256 hex per candidate, None when absent
    context: str | None  # sha256 hex of the context scan; None when untrusted (racy, unreadable)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a build produced and depended on (written as the record)."""

    image_id: str
    digest: str
    tags: tuple[str, ...]
    bases: tuple[tuple[str, str], ...]  # normalised name -> digest of its index.json entry
    cache_keys: tuple[str, ...]  # hex keys of the cache records the build used
    blobs: tuple[str, ...]  # hex digests that must exist (record roots, manifest, config)
    uses_context: bool
    # (stage, step text, layer digest, diff ID) of each layer step, to report the steps again
    steps: tuple[tuple[str, str, str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    image_id: str
    digest: str
    tags: tuple[str, ...]
    steps: tuple[tuple[str, str, str, str], ...] = ()


def request(
    *,
    root: Path,
    context: Path,
    dockerfile: Path,
    settings: Mapping[str, object],
) -> Request:
    """The request for a build of ``context`` with ``dockerfile``; ``settings`` are the options
    that can change the result (JSON values)."""
    context = Path(os.path.abspath(context))
    dockerfile = Path(os.path.abspath(dockerfile))
    payload = {
        "format": FORMAT,
        "code": code_fingerprint(),
        "machine": os.uname().machine,
        "context": os.fsdecode(context),
        "dockerfile": os.fsdecode(dockerfile),
        "settings": dict(settings),
    }
    data = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return Request(
        root=root,
        key=hashlib.sha256(data).hexdigest(),
        context=context,
        dockerfile=dockerfile,
        ignore_files=(Path(f"{dockerfile}{IGNORE_FILE}"), context / IGNORE_FILE),
    )


def observe(req: Request, dockerfile_bytes: bytes, *, now_ns: int | None = None) -> Observation:
    """Scan the inputs; call before the build reads the context or its ignore file.

    ``now_ns`` (default: the clock) is the scan time the racy-entry rule measures from.
    """
    scanned = time.time_ns() if now_ns is None else now_ns
    matcher = ignore_matcher(req)
    return Observation(
        scanned_ns=scanned,
        dockerfile=hashlib.sha256(dockerfile_bytes).hexdigest(),
        ignore_files=tuple(_file_sha256(p) for p in req.ignore_files),
        context=context_signature(
            req.context, racy_after=scanned - racy_window(req.context), matcher=matcher
        ),
    )


def racy_window(root: Path) -> int:
    """How long before a scan a change is too recent to trust (see the module docstring)."""
    try:
        ctime = os.lstat(root).st_ctime_ns
    except OSError:
        return RACY_NS
    return RACY_FINE_NS if ctime % 1_000_000_000 else RACY_NS


# -- checking ---------------------------------------------------------------------------------


def check(req: Request, seen: Observation) -> tuple[Hit, tuple[StoredEvent, ...]] | None:
    """The recorded result if every input of ``req`` is as recorded, else None."""
    try:
        with open(req.path, "rb") as fh:
            raw = fh.read(MAX_RECORD_BYTES + 1)
        if len(raw) > MAX_RECORD_BYTES:
            return None
        return _check(req, seen, _dict(json.loads(raw)))
    except (OSError, KeyError, TypeError, ValueError):  # missing, unreadable or malformed
        return None


def _check(
    req: Request, seen: Observation, record: dict[str, object]
) -> tuple[Hit, tuple[StoredEvent, ...]] | None:
    if record.get("format") != FORMAT or record.get("request") != req.key:
        return None
    if record["dockerfile"] != seen.dockerfile:
        return None
    if list(seen.ignore_files) != record["ignore_files"]:
        return None
    if record["uses_context"] and (seen.context is None or seen.context != record["context"]):
        return None
    digest = _hex(record["digest"])
    image_id = _hex(record["image_id"])
    tags = tuple(str(t) for t in _list(record["tags"]))
    # Store lease: a prune (exclusive lock) in progress means "take the ordinary path".
    try:
        lock = os.open(store_lock_path(req.root), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return None
        if not _index_matches(req.root, record, digest, tags):
            return None
        blobs = (digest, image_id, *(_hex(b) for b in _list(record["blobs"])))
        if not all(os.path.isfile(blob_path(req.root, b)) for b in blobs):
            return None
        for entry in _list(record["cache_records"]):
            key, ino, size, mtime = _list(entry)
            try:
                st = os.stat(cache_record_path(req.root, _hex(key)))
            except OSError:
                return None
            if (st.st_ino, st.st_size, st.st_mtime_ns) != (ino, size, mtime):
                return None
    finally:
        os.close(lock)
    events = tuple(_event(e) for e in _list(record["events"]))
    steps = tuple(_step(s) for s in _list(record.get("steps", [])))
    hit = Hit(image_id=f"sha256:{image_id}", digest=f"sha256:{digest}", tags=tags, steps=steps)
    return hit, events


def _step(item: object) -> tuple[str, str, str, str]:
    stage, text, layer, diff_id = (str(x) for x in _list(item))
    return stage, text, layer, diff_id


def _index_matches(
    root: Path, record: dict[str, object], digest: str, tags: tuple[str, ...]
) -> bool:
    try:
        with open(index_path(root), "rb") as fh:
            index = json.load(fh)
    except (OSError, ValueError):
        return False
    by_name: dict[str, str] = {}
    digests: set[str] = set()
    for item in _list(_dict(index).get("manifests", [])):
        entry = _dict(item)
        d = str(entry.get("digest", ""))
        digests.add(d)
        name = _dict(entry.get("annotations") or {}).get(REF_NAME)
        if isinstance(name, str):
            by_name.setdefault(name, d)
    want = f"sha256:{digest}"
    if tags and any(by_name.get(t) != want for t in tags):
        return False
    if not tags and want not in digests:
        return False
    return all(by_name.get(str(name)) == str(d) for name, d in _pairs(record["bases"]))


def replay(events: Iterable[StoredEvent], sink: EventSink) -> None:
    """Emit the recorded progress again (with the current times)."""
    for kind, vertex, text in events:
        match kind:
            case "start":
                sink.emit(VertexStarted(vertex=vertex, name=str(text)))
            case "cached":
                sink.emit(VertexCached(vertex=vertex, name=str(text)))
            case "status":
                sink.emit(VertexStatus(vertex=vertex, text=str(text)))
            case "done":
                sink.emit(VertexDone(vertex=vertex))
            case "warning":
                sink.emit(Warning_(message=str(text)))
            case _:  # _event() admits no other kind
                raise ValueError(f"unknown progress event {kind!r}")


# -- recording ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Recorder:
    """A sink that forwards every event and keeps, for the record, the progress a rebuild would
    show: a step that ran (it explains its cache miss) is kept as ``CACHED``, without its output
    or status lines, which is how the cache answers it next time. ``failed`` turns true when a
    vertex failed: such a build writes no record.
    """

    sink: EventSink
    events: list[StoredEvent] = field(default_factory=list)
    failed: bool = False
    ran: set[int] = field(default_factory=set)  # vertices of the steps that ran
    lock: threading.Lock = field(default_factory=threading.Lock)

    def emit(self, event: Event) -> None:
        with self.lock:
            match event:
                case VertexStarted(vertex=n, name=name):
                    self.events.append(("start", n, name))
                case VertexCached(vertex=n, name=name):
                    self.events.append(("cached", n, name))
                case VertexStatus(vertex=n, text=text):
                    if n not in self.ran:
                        self.events.append(("status", n, text))
                case VertexDone(vertex=n, error=error):
                    self.events.append(("done", n, None))
                    self.failed = self.failed or error is not None
                case Warning_(message=message):
                    self.events.append(("warning", 0, message))
                case VertexExplain(vertex=n):
                    self._as_cached(n)
                case VertexLog():
                    pass
            self.sink.emit(event)  # under the lock: recorded and shown in the same order

    def _as_cached(self, vertex: int) -> None:
        """Vertex ``vertex`` runs: a rebuild shows it as a cache hit, with no status lines
        (dropped from here on by :meth:`emit`, and before now by :meth:`stored`)."""
        self.ran.add(vertex)

    def stored(self) -> list[StoredEvent]:
        """The events for the record, read once at the end: one pass however many steps ran."""
        ran = self.ran
        kept: list[StoredEvent] = []
        for kind, n, text in self.events:
            if n not in ran:
                kept.append((kind, n, text))
            elif kind == "start":
                kept.append(("cached", n, text))
            elif kind != "status":
                kept.append((kind, n, text))
        return kept

    def close(self, *, ok: bool) -> None:
        self.sink.close(ok=ok)


def record(req: Request, seen: Observation, outcome: Outcome, recorder: Recorder) -> bool:
    """Write the record of a successful build; False when it must not be written."""
    if recorder.failed:
        return False
    if outcome.uses_context and seen.context is None:
        return False  # the context changed too recently (or could not be scanned) to be trusted
    entries: list[list[object]] = []
    for key in outcome.cache_keys:
        try:
            st = os.stat(cache_record_path(req.root, key))
        except OSError:
            return False
        entries.append([key, st.st_ino, st.st_size, st.st_mtime_ns])
    data = {
        "format": FORMAT,
        "request": req.key,
        "recorded_ns": seen.scanned_ns,
        "dockerfile": seen.dockerfile,
        "ignore_files": list(seen.ignore_files),
        "uses_context": outcome.uses_context,
        "context": seen.context if outcome.uses_context else None,
        "image_id": outcome.image_id.removeprefix("sha256:"),
        "digest": outcome.digest.removeprefix("sha256:"),
        "tags": list(outcome.tags),
        "bases": [list(b) for b in outcome.bases],
        "blobs": [b.removeprefix("sha256:") for b in outcome.blobs],
        "cache_records": entries,
        "events": [list(e) for e in recorder.stored()],
        "steps": [list(s) for s in outcome.steps],
    }
    path = req.path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(json.dumps(data, sort_keys=True, separators=(",", ":")).encode())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    return True


def forget(req: Request) -> None:
    """Drop the record of ``req`` (a build that did not end fully cached)."""
    with contextlib.suppress(OSError):  # a store we cannot write: the build will say so
        req.path.unlink(missing_ok=True)


# -- scans --------------------------------------------------------------------------------------


def context_signature(
    root: Path, *, racy_after: int | None = None, matcher: PatternMatcher | None = None
) -> str | None:
    """sha256 over the ``lstat`` of every entry below ``root`` (symlinks not followed) that
    ``matcher`` (the build's ``.dockerignore``) does not exclude.

    An excluded file is invisible to the build and skipped; so is an excluded directory below
    which no ``!`` exception can re-include anything (fsutil's shortcut); other excluded
    directories are walked like included ones. None when a directory cannot be read, or when
    ``racy_after`` (ns) is given and a walked entry's mtime or ctime is later than it.
    """
    h = hashlib.sha256()
    try:
        st = os.lstat(root)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    limit = racy_after if racy_after is not None else 1 << 62
    if st.st_mtime_ns > limit or st.st_ctime_ns > limit:
        return None
    h.update(_stat_line(".", st))
    top = os.fsdecode(root)
    stack: list[tuple[str, str, MatchInfo | None]] = [(top, "", None)]
    is_dir = stat.S_ISDIR
    # Directory order is as the filesystem lists it: stable while a directory is unchanged,
    # and a changed directory has a new ctime anyway (an order change only costs a miss).
    while stack:
        directory, prefix, parent = stack.pop()
        try:
            with os.scandir(directory) as it:
                for entry in it:
                    rel = prefix + entry.name
                    info = None
                    if matcher is not None:
                        excluded, info = matcher.match(rel, parent)
                        if excluded and not (
                            entry.is_dir(follow_symlinks=False) and matcher.may_reinclude_below(rel)
                        ):
                            continue
                    est = entry.stat(follow_symlinks=False)
                    if est.st_mtime_ns > limit or est.st_ctime_ns > limit:
                        return None
                    h.update(_stat_line(rel, est))
                    if is_dir(est.st_mode):
                        stack.append((entry.path, rel + "/", info))
        except OSError:
            return None
    return h.hexdigest()


def ignore_matcher(req: Request) -> PatternMatcher | None:
    """The ``.dockerignore`` the build will apply, chosen as ``LocalContext.open`` chooses it.

    None when there is none, and when that cannot be told for sure (a symlinked or unreadable
    ignore file, a bad pattern): the whole context is then walked, which is always safe."""
    candidate, root_file = req.ignore_files
    data: bytes | None = None
    try:
        fd = os.open(candidate, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        fd = -1
    except OSError:
        return None
    if fd >= 0:
        try:
            fst = os.fstat(fd)
            if stat.S_ISREG(fst.st_mode):
                data = _read_all(fd)
            elif not stat.S_ISDIR(fst.st_mode):
                return None
        except OSError:
            return None
        finally:
            os.close(fd)
    if data is None:
        try:
            lst = os.lstat(root_file)
        except OSError:
            return None
        if stat.S_ISDIR(lst.st_mode):
            return None  # not a file: no ignore file
        if not stat.S_ISREG(lst.st_mode):
            return None  # a symlink, resolved in-root by the build: walk everything
        try:
            with open(root_file, "rb") as fh:
                data = fh.read()
        except OSError:
            return None
    # lazy: the .dockerignore matcher loads only when the context has one
    from builder.context.ignore import load_ignore_file

    try:
        return load_ignore_file(data, name=IGNORE_FILE) or None
    except BuildError:
        return None


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _stat_line(rel: str, st: os.stat_result) -> bytes:
    return (
        f"{rel}\0{st.st_mode:o} {st.st_uid} {st.st_gid} {st.st_size} {st.st_ino} {st.st_dev}"
        f" {st.st_mtime_ns} {st.st_ctime_ns}\n"
    ).encode("utf-8", "surrogateescape")


def code_fingerprint() -> str:
    """Changes whenever a module or grammar file of this pybuild changes (size or mtime)."""
    package = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    stack = [os.fspath(package)]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    stack.append(entry.path)
            elif entry.name.endswith((".py", ".lark")):
                st = entry.stat()
                h.update(f"{entry.path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    grammar = package.parent / "grammar" / "dockerfile.lark"
    try:
        st = os.stat(grammar)
        h.update(f"{grammar}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    except OSError:
        pass
    return h.hexdigest()


def _file_sha256(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:  # unreadable, a directory, a loop: distinct from "absent"
        return f"error:{exc.errno}"


# -- record parsing -----------------------------------------------------------------------------


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise TypeError("expected a list")
    return value


def _dict(value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise TypeError("expected an object")
    return value


def _pairs(value: object) -> list[tuple[object, object]]:
    out: list[tuple[object, object]] = []
    for item in _list(value):
        a, b = _list(item)
        out.append((a, b))
    return out


def _hex(value: object) -> str:
    text = str(value)
    if len(text) != 64 or not _HEX.issuperset(text):
        raise ValueError(f"not a sha256 hex digest: {text!r}")
    return text


def _event(value: object) -> StoredEvent:
    kind, vertex, text = _list(value)
    if kind not in ("start", "cached", "status", "done", "warning") or not isinstance(vertex, int):
        raise ValueError(f"not an event: {value!r}")
    return (str(kind), vertex, None if text is None else str(text))
