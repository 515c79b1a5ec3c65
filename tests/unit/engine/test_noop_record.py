"""No-op rebuild records (builder.engine.noop): what invalidates them, and what they replay."""

from __future__ import annotations

import fcntl
import io
import json
import os
import time
from pathlib import Path

import pytest

from builder.digest import Digest
from builder.engine import noop
from builder.engine.events import (
    RecordingSink,
    VertexCached,
    VertexDone,
    VertexExplain,
    VertexLog,
    VertexStarted,
    VertexStatus,
    Warning_,
)
from builder.oci import mutate
from builder.oci.image import EMPTY, BytesLayer, ImageValue
from builder.oci.layer import LayerEntry, write_layer
from builder.oci.types import History
from builder.store import CacheRecord, Store

LATER = 10**19  # a scan time far after every file's mtime: nothing counts as racy
TAG = "docker.io/library/app:latest"
BASE = "docker.io/library/busybox:latest"


def image(*layers: dict[str, bytes]) -> ImageValue:
    img = EMPTY
    for i, files in enumerate(layers):
        out = io.BytesIO()
        entries = [LayerEntry(path=p, data=d) for p, d in sorted(files.items())]
        result = write_layer(entries, out, source_date_epoch=0)
        layer = BytesLayer(data=out.getvalue(), diff_id=result.diff_id)
        img = mutate.append_layer(img, layer, history=History(created_by=f"step {i}"))
    return img


class World:
    """A store with a base image, a built image, two cache records, and a build context."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = Store.open(tmp_path / "store")
        base = self.store.write_image(image({"bin/sh": b"sh"}), (BASE,))
        built = image({"bin/sh": b"sh"}, {"app/main.py": b"print(1)"})
        self.record = self.store.write_image(built, (TAG,))
        self.base_digest = base.digest
        self.keys: list[Digest] = []
        for i, layer in enumerate(built.layers):
            key = Digest.of_bytes(f"step {i}".encode())
            self.store.cache.put(
                CacheRecord(key=key, roots=(layer.descriptor,), created="2024-01-01T00:00:00Z")
            )
            self.keys.append(key)
        self.layer_digests = tuple(layer.descriptor.digest for layer in built.layers)
        self.context = tmp_path / "ctx"
        (self.context / "app").mkdir(parents=True)
        (self.context / "app" / "main.py").write_text("print(1)\n")
        (self.context / "Dockerfile").write_text("FROM busybox\nCOPY app /app\n")
        self.dockerfile = self.context / "Dockerfile"

    def request(self, **settings: object) -> noop.Request:
        return noop.request(
            root=self.store.root,
            context=self.context,
            dockerfile=self.dockerfile,
            settings={"tags": [TAG], **settings},
        )

    def observe(self, req: noop.Request, now_ns: int = LATER) -> noop.Observation:
        return noop.observe(req, self.dockerfile.read_bytes(), now_ns=now_ns)

    def outcome(self, *, uses_context: bool = True) -> noop.Outcome:
        return noop.Outcome(
            image_id=str(self.record.id),
            digest=str(self.record.digest),
            tags=(TAG,),
            bases=((BASE, str(self.base_digest)),),
            cache_keys=tuple(k.hex for k in self.keys),
            blobs=tuple(d.hex for d in self.layer_digests),
            uses_context=uses_context,
        )

    def cached_run(self) -> noop.Recorder:
        recorder = noop.Recorder(sink=RecordingSink())
        recorder.emit(VertexStarted(vertex=1, name="[internal] load build definition"))
        recorder.emit(VertexStatus(vertex=1, text="transferring dockerfile: 30B done"))
        recorder.emit(VertexDone(vertex=1))
        recorder.emit(Warning_(message="a lint warning"))
        recorder.emit(VertexCached(vertex=2, name="[2/2] COPY app /app"))
        recorder.emit(VertexDone(vertex=2))
        return recorder

    def remember(self, req: noop.Request, **outcome: bool) -> None:
        assert noop.record(req, self.observe(req), self.outcome(**outcome), self.cached_run())


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def hit(world: World, req: noop.Request) -> noop.Hit | None:
    found = noop.check(req, world.observe(req))
    return None if found is None else found[0]


def test_an_unchanged_rebuild_is_answered_from_the_record(world: World) -> None:
    req = world.request()
    assert noop.check(req, world.observe(req)) is None  # nothing recorded yet
    world.remember(req)
    found = noop.check(req, world.observe(req))
    assert found is not None
    result, events = found
    assert result == noop.Hit(
        image_id=str(world.record.id), digest=str(world.record.digest), tags=(TAG,)
    )
    sink = RecordingSink()
    noop.replay(events, sink)
    assert [type(e).__name__ for e in sink.events] == [
        "VertexStarted",
        "VertexStatus",
        "VertexDone",
        "Warning_",
        "VertexCached",
        "VertexDone",
    ]
    assert sink.events[1] == VertexStatus(vertex=1, text="transferring dockerfile: 30B done")
    assert sink.events[3] == Warning_(message="a lint warning")
    assert sink.events[4] == VertexCached(vertex=2, name="[2/2] COPY app /app")


def test_other_settings_are_another_request(world: World) -> None:
    req = world.request()
    world.remember(req)
    other = world.request(build_args=[["V", "2"]])
    assert other.key != req.key
    assert hit(world, other) is None
    assert hit(world, req) is not None


@pytest.mark.parametrize(
    "change",
    [
        "content",
        "same-size-content",
        "chmod",
        "new-file",
        "rename",
        "remove",
        "dockerfile",
        "dockerignore",
    ],
)
def test_a_changed_input_sends_the_build_the_ordinary_way(world: World, change: str) -> None:
    req = world.request()
    world.remember(req)
    main = world.context / "app" / "main.py"
    match change:
        case "content":
            main.write_text("print(2)  # longer\n")
        case "same-size-content":
            st = main.stat()
            main.write_text("print(2)\n")
            os.utime(main, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back; ctime moves
        case "chmod":
            main.chmod(0o600)
        case "new-file":
            (world.context / "app" / "extra.py").write_text("")
        case "rename":
            main.rename(world.context / "app" / "renamed.py")
        case "remove":
            main.unlink()
        case "dockerfile":
            world.dockerfile.write_text("FROM busybox\nCOPY app /srv\n")
        case "dockerignore":
            (world.context / ".dockerignore").write_text("*.md\n")
    assert hit(world, req) is None


def test_context_changes_do_not_matter_when_no_step_reads_it(world: World) -> None:
    req = world.request()
    world.remember(req, uses_context=False)
    (world.context / "app" / "main.py").write_text("print(2)\n")
    assert hit(world, req) is not None


def test_a_moved_base_name_or_tag_invalidates(world: World) -> None:
    req = world.request()
    world.remember(req)
    assert hit(world, req) is not None
    moved = world.store.write_image(image({"other": b"x"}), (BASE,))  # the base name moves
    assert hit(world, req) is None

    world.base_digest = moved.digest
    req2 = world.request(target="again")
    world.remember(req2)
    assert hit(world, req2) is not None
    world.store.write_image(image({"other": b"y"}), (TAG,))  # the tag moves
    assert hit(world, req2) is None


def test_a_rewritten_or_deleted_cache_record_invalidates(world: World) -> None:
    req = world.request()
    world.remember(req)
    record = world.store.cache.get(world.keys[1])
    assert record is not None
    world.store.cache.put(record)  # same key written again (as --no-cache does): a new file
    assert hit(world, req) is None

    world.remember(req)
    assert hit(world, req) is not None
    world.store.cache.delete(world.keys[0])
    assert hit(world, req) is None


def test_a_missing_layer_blob_invalidates(world: World) -> None:
    req = world.request()
    world.remember(req)
    os.chmod(world.store.cas.blob_path(world.layer_digests[-1]), 0o644)
    world.store.cas.delete(world.layer_digests[-1])
    assert hit(world, req) is None


def test_a_prune_in_progress_means_the_ordinary_path(world: World) -> None:
    req = world.request()
    world.remember(req)
    with open(world.store.root / "locks" / "store.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert hit(world, req) is None
    assert hit(world, req) is not None


def test_racy_context_entries_are_not_recorded(world: World) -> None:
    req = world.request()
    now = time.time_ns()
    seen = world.observe(req, now_ns=now)  # the files were written just now
    assert seen.context is None
    assert not noop.record(req, seen, world.outcome(), world.cached_run())
    assert noop.check(req, world.observe(req)) is None
    # without reading the context, the racy scan does not matter
    assert noop.record(req, seen, world.outcome(uses_context=False), world.cached_run())


def test_a_build_that_failed_writes_no_record(world: World) -> None:
    req = world.request()
    recorder = world.cached_run()
    recorder.emit(VertexDone(vertex=3, error="exit 1"))
    assert not noop.record(req, world.observe(req), world.outcome(), recorder)
    assert not req.path.exists()


def test_a_step_that_ran_is_recorded_as_the_cache_hit_a_rebuild_shows(world: World) -> None:
    req = world.request()
    recorder = world.cached_run()
    recorder.emit(VertexStarted(vertex=3, name="[3/3] RUN make"))
    recorder.emit(VertexExplain(vertex=3, reason="no earlier build of this step"))
    recorder.emit(VertexStatus(vertex=3, text="a status line"))
    recorder.emit(VertexLog(vertex=3, data=b"compiler output"))
    recorder.emit(VertexDone(vertex=3))
    assert noop.record(req, world.observe(req), world.outcome(), recorder)
    found = noop.check(req, world.observe(req))
    assert found is not None
    sink = RecordingSink()
    noop.replay(found[1], sink)
    cached, done = sink.events[-2:]
    assert cached == VertexCached(vertex=3, name="[3/3] RUN make")
    assert isinstance(done, VertexDone)
    assert (done.vertex, done.error) == (3, None)
    assert not any(isinstance(e, VertexStatus) and e.vertex == 3 for e in sink.events)


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"{not json",
        b"[]",
        b'{"format": 1}',
        b"x" * (noop.MAX_RECORD_BYTES + 1),
    ],
)
def test_a_damaged_record_is_a_miss(world: World, damage: bytes) -> None:
    req = world.request()
    world.remember(req)
    req.path.write_bytes(damage)
    assert hit(world, req) is None


def test_a_record_with_bad_values_is_a_miss(world: World) -> None:
    req = world.request()
    world.remember(req)
    good = json.loads(req.path.read_bytes())
    for key, value in (
        ("digest", "../../etc/passwd"),
        ("blobs", ["zz"]),
        ("cache_records", [["00", 1]]),
        ("events", [["launch", 1, "x"]]),
        ("bases", "nope"),
    ):
        req.path.write_text(json.dumps({**good, key: value}))
        assert hit(world, req) is None, key
    req.path.write_text(json.dumps(good))
    assert hit(world, req) is not None


def test_forget_drops_the_record(world: World) -> None:
    req = world.request()
    world.remember(req)
    noop.forget(req)
    assert hit(world, req) is None
    noop.forget(req)  # nothing left to forget: no error


# -- the context scan and the ignore file ---------------------------------------------------------


def make_tree(root: Path) -> None:
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("a")
    (root / "node_modules" / "pkg").mkdir(parents=True)
    (root / "node_modules" / "pkg" / "big.bin").write_bytes(b"0" * 100)
    (root / "notes.log").write_text("log")
    (root / "keep.log").write_text("keep")


def scan(world: World) -> str | None:
    req = world.request()
    return noop.context_signature(req.context, matcher=noop.ignore_matcher(req))


def test_excluded_files_and_directories_are_not_scanned(world: World) -> None:
    make_tree(world.context)
    (world.context / ".dockerignore").write_text("node_modules\n*.log\n!keep.log\n")
    before = scan(world)
    assert before is not None
    (world.context / "node_modules" / "pkg" / "big.bin").write_bytes(b"1" * 100)
    (world.context / "node_modules" / "pkg" / "new.bin").write_bytes(b"")
    (world.context / "notes.log").write_text("more log")
    assert scan(world) == before
    (world.context / "keep.log").write_text("re-included, so it counts")
    assert scan(world) != before


def test_an_exception_below_an_excluded_directory_keeps_it_scanned(world: World) -> None:
    make_tree(world.context)
    (world.context / ".dockerignore").write_text("node_modules\n!node_modules/pkg/keep.txt\n")
    before = scan(world)
    (world.context / "node_modules" / "pkg" / "keep.txt").write_text("back")
    assert scan(world) != before


def test_dockerfile_specific_ignore_file_wins(world: World) -> None:
    make_tree(world.context)
    (world.context / ".dockerignore").write_text("src\n")
    Path(f"{world.dockerfile}.dockerignore").write_text("node_modules\n")
    before = scan(world)
    (world.context / "node_modules" / "pkg" / "big.bin").write_bytes(b"2" * 100)
    assert scan(world) == before
    (world.context / "src" / "a.py").write_text("changed")  # only the root file excludes src
    assert scan(world) != before


@pytest.mark.parametrize("kind", ["symlink", "bad-pattern"])
def test_an_uncertain_ignore_file_scans_everything(world: World, kind: str) -> None:
    make_tree(world.context)
    if kind == "symlink":
        (world.context / "real-ignore").write_text("node_modules\n")
        (world.context / ".dockerignore").symlink_to("real-ignore")
    else:
        (world.context / ".dockerignore").write_text("node_modules\n[\n")
    assert noop.ignore_matcher(world.request()) is None
    before = scan(world)
    (world.context / "node_modules" / "pkg" / "big.bin").write_bytes(b"3" * 100)
    assert scan(world) != before


def test_scan_is_stable_and_sees_symlink_changes(world: World) -> None:
    link = world.context / "link"
    link.symlink_to("app/main.py")
    first = scan(world)
    assert first == scan(world)
    link.unlink()
    link.symlink_to("Dockerfile")
    assert scan(world) != first


def test_unreadable_or_missing_context_has_no_signature(tmp_path: Path) -> None:
    assert noop.context_signature(tmp_path / "missing") is None
    (tmp_path / "file").write_text("x")
    assert noop.context_signature(tmp_path / "file") is None


def test_code_fingerprint_is_stable() -> None:
    assert noop.code_fingerprint() == noop.code_fingerprint()
    assert len(noop.code_fingerprint()) == 64


def test_racy_window_follows_the_timestamp_granularity(tmp_path: Path) -> None:
    """A change is too recent to trust for 100 ms where timestamps have sub-second parts (the
    context root's ctime shows it), for 2 s on a filesystem with whole-second timestamps."""
    fine = tmp_path / "fine"
    fine.mkdir()
    ctime = os.lstat(fine).st_ctime_ns
    expected = noop.RACY_FINE_NS if ctime % 1_000_000_000 else noop.RACY_NS
    assert noop.racy_window(fine) == expected
    assert noop.racy_window(tmp_path / "missing") == noop.RACY_NS


def test_a_context_older_than_the_fine_window_is_trusted(world: World) -> None:
    req = world.request()
    if noop.racy_window(req.context) != noop.RACY_FINE_NS:
        pytest.fail("this filesystem has whole-second timestamps; the test needs sub-second ones")
    now = time.time_ns()
    assert world.observe(req, now_ns=now).context is None  # just written: racy
    later = now + noop.RACY_FINE_NS + 50_000_000  # 150 ms later, not 2 s
    assert world.observe(req, now_ns=later).context is not None
