"""The scheduler with a fake snapshotter and a fake runtime (no root, no runc, no overlayfs).

Real plans (parser + planner), a real store and a real build context; only the machinery the
composition root would build is faked: the snapshotter keeps plain directories and "mounts" by
handing out the upper directory, the runtime interprets a few shell words (``touch``, ``echo``,
``exit``, ``interrupt``) in that directory. ``tests/integration`` runs the same scheduler with
overlayfs and runc.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from builder.context.local import LocalContext
from builder.digest import Digest, chain_id
from builder.engine.events import (
    Event,
    RecordingSink,
    VertexCached,
    VertexDone,
    VertexExplain,
    VertexLog,
    VertexStarted,
)
from builder.engine.scheduler import (
    EngineSettings,
    Machinery,
    Scheduler,
    StageResult,
    final_image,
)
from builder.errors import ContextError, RunStepError
from builder.oci.image import ImageValue
from builder.oci.layer_apply import list_entries
from builder.oci.mediatype import MediaType
from builder.oci.types import Platform
from builder.plan import BuildPlan, PlanRequest, ResolvedImage, plan
from builder.runtime.oci import ExitStatus, OutputCallback
from builder.snapshot.base import LayerBlob
from builder.store import Store
from builder.syntax.parser import parse
from builder.syntax.transform import to_ir

AMD64 = Platform(os="linux", architecture="amd64")


# --------------------------------------------------------------------------- fakes


@dataclass
class FakeSnapshotter:
    """Layer directories as plain directories under ``root``; records what the engine asks."""

    root: Path
    calls: list[tuple[str, str]] = field(default_factory=list)

    def _dir(self, chain: tuple[Digest, ...]) -> Path:
        return self.root / chain_id(chain).hex

    def ensure(self, layers: Sequence[LayerBlob]) -> tuple[Path, ...]:
        diff_ids = tuple(layer.diff_id for layer in layers)
        out = []
        for i in range(len(diff_ids)):
            path = self._dir(diff_ids[: i + 1])
            if not path.is_dir():
                self.calls.append(("extract", path.name))
                path.mkdir(parents=True)
            out.append(path)
        return tuple(out)

    def trusted_path(self, chain: tuple[Digest, ...]) -> Path | None:
        path = self._dir(chain)
        return path if path.is_dir() else None

    @contextlib.contextmanager
    def scratch_dir(self) -> Iterator[Path]:
        path = Path(tempfile.mkdtemp(prefix="scratch-", dir=self.root))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def adopt(self, chain: tuple[Digest, ...], directory: Path) -> Path:
        target = self._dir(chain)
        self.calls.append(("commit", target.name))
        if target.is_dir():
            shutil.rmtree(directory)
        else:
            directory.rename(target)
        return target

    @contextlib.contextmanager
    def mount(self, lowers: Sequence[Path], upper: Path | None) -> Iterator[Path]:
        """Writes go to ``upper`` itself (the fake keeps no merged view of the lowers)."""
        self.calls.append(("mount", "rw" if upper is not None else "ro"))
        if upper is not None:
            yield upper
            return
        with tempfile.TemporaryDirectory(dir=self.root) as merged:
            for lower in lowers:
                shutil.copytree(lower, merged, dirs_exist_ok=True, symlinks=True)
            yield Path(merged)


@dataclass
class FakeRuntime:
    """Runs ``/bin/sh -c SCRIPT`` by interpreting ``;``-separated words in the rootfs:
    ``touch PATH``, ``echo WORDS``, ``exit N``, ``interrupt`` (Ctrl-C while it runs)."""

    ran: list[tuple[str, ...]] = field(default_factory=list)
    killed: int = 0
    settled: int = 0
    signals: list[int] = field(default_factory=list)

    def run(self, bundle: Path, spec: dict[str, Any], *, on_output: OutputCallback) -> ExitStatus:
        args = tuple(spec["process"]["args"])
        self.ran.append(args)
        rootfs = Path(spec["root"]["path"])
        assert args[:2] == ("/bin/sh", "-c")
        for command in args[2].split(";"):
            word, _, rest = command.strip().partition(" ")
            match word:
                case "touch":
                    (rootfs / rest.lstrip("/")).write_text(f"made by {args[2]}\n")
                case "echo":
                    on_output(f"{rest}\n".encode())
                case "exit":
                    return ExitStatus(code=int(rest))
                case "interrupt":
                    raise KeyboardInterrupt
                case _:
                    raise AssertionError(f"the fake runtime has no {word!r}")
        return ExitStatus(code=0)

    def swap_accounting(self) -> bool:
        return False

    def kill_all(self) -> None:
        self.killed += 1

    def forward_signal(self, signum: int) -> None:
        self.signals.append(signum)

    def settle(self) -> None:
        self.settled += 1


class NoImages:
    def resolve(self, ref: str, platform: Platform) -> ResolvedImage:
        raise AssertionError(f"these tests use FROM scratch, not {ref}")

    def image(self, digest: Digest) -> ImageValue:
        raise AssertionError(f"no image {digest}")


@dataclass
class Rig:
    store: Store
    context_dir: Path
    snapshotter: FakeSnapshotter
    runtime: FakeRuntime
    machinery_made: int = 0

    def machinery(self) -> Machinery:
        self.machinery_made += 1
        return Machinery(snapshotter=self.snapshotter, runtime=self.runtime)

    def plan(self, dockerfile: str) -> BuildPlan:
        request = PlanRequest(platform=AMD64, build_platform=AMD64)
        return plan(to_ir(parse(dockerfile)), request, NoImages())

    def build(
        self, dockerfile: str, *, no_cache: bool = False, sink: RecordingSink | None = None
    ) -> tuple[StageResult, list[Event], Scheduler]:
        """Build with a new scheduler (``sink`` keeps the events when the build raises)."""
        sink = sink if sink is not None else RecordingSink()
        context = LocalContext.open(self.context_dir, state_dir=self.store.root / "contexts")
        scheduler = Scheduler(
            store=self.store,
            images=NoImages(),
            context=context,
            sink=sink,
            settings=EngineSettings(no_cache=no_cache, network="none"),  # no slirp4netns
            machinery=self.machinery,
            identity="test-build",
        )
        try:
            result = scheduler.run(self.plan(dockerfile))
        finally:
            context.close()
        return result, sink.events, scheduler


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    context = tmp_path / "context"
    context.mkdir()
    (context / "a.txt").write_text("alpha\n")
    snapshots = tmp_path / "fake-snapshots"
    snapshots.mkdir()
    return Rig(
        store=Store.open(tmp_path / "store"),
        context_dir=context,
        snapshotter=FakeSnapshotter(root=snapshots),
        runtime=FakeRuntime(),
    )


DOCKERFILE = """\
FROM scratch
WORKDIR /w
COPY a.txt /a.txt
RUN touch /b.txt; echo built b
ENV DONE=1
"""


def started(events: list[Event]) -> list[str]:
    return [e.name for e in events if isinstance(e, VertexStarted)]


def cached(events: list[Event]) -> list[str]:
    return [e.name for e in events if isinstance(e, VertexCached)]


def layer_files(store: Store, result: StageResult) -> list[set[str]]:
    out = []
    for layer in result.layers:
        with layer.open_compressed() as stream:
            out.append({e.name.rstrip("/") for e in list_entries(stream)})
    return out


# --------------------------------------------------------------------------- tests


def test_first_build_executes_every_layer_step_in_order(rig: Rig) -> None:
    result, events, scheduler = rig.build(DOCKERFILE)
    assert started(events) == [
        "[2/4] WORKDIR /w",
        "[3/4] COPY a.txt /a.txt",
        "[4/4] RUN touch /b.txt; echo built b",
    ]
    assert cached(events) == []
    assert rig.runtime.ran == [("/bin/sh", "-c", "touch /b.txt; echo built b")]
    assert [kind for kind, _ in rig.snapshotter.calls if kind == "commit"] == ["commit"] * 3
    assert b"built b\n" in b"".join(e.data for e in events if isinstance(e, VertexLog))
    files = layer_files(rig.store, result)
    assert "w" in files[0]
    assert "a.txt" in files[1]
    assert "b.txt" in files[2]
    assert not any(name.startswith(("proc", "dev", "sys")) for name in files[2])  # stubs gone
    steps = scheduler.step_results(rig.plan(DOCKERFILE))
    assert [(s.text, s.cached) for s in steps] == [
        ("WORKDIR /w", False),
        ("COPY a.txt /a.txt", False),
        ("RUN touch /b.txt; echo built b", False),
    ]
    assert [s.diff_id for s in steps] == [layer.diff_id for layer in result.layers]
    assert [s.layer for s in steps] == [layer.descriptor.digest for layer in result.layers]
    assert rig.runtime.settled == 1  # the runtime's background deletes are over


def test_second_build_is_all_cache_hits_and_never_sets_up_machinery(rig: Rig) -> None:
    first, _, _ = rig.build(DOCKERFILE)
    made = rig.machinery_made
    second, events, scheduler = rig.build(DOCKERFILE)
    assert started(events) == []
    assert cached(events) == [
        "[2/4] WORKDIR /w",
        "[3/4] COPY a.txt /a.txt",
        "[4/4] RUN touch /b.txt; echo built b",
    ]
    assert rig.machinery_made == made  # the factory was not called again
    assert len(rig.runtime.ran) == 1
    assert second.key == first.key
    assert [x.diff_id for x in second.layers] == [x.diff_id for x in first.layers]
    assert all(s.cached for s in scheduler.step_results(rig.plan(DOCKERFILE)))
    assert final_image(second).id == final_image(first).id


def test_changed_source_misses_from_its_step_on(rig: Rig) -> None:
    rig.build(DOCKERFILE)
    (rig.context_dir / "a.txt").write_text("beta\n")
    _, events, _ = rig.build(DOCKERFILE)
    assert cached(events) == ["[2/4] WORKDIR /w"]
    assert started(events) == ["[3/4] COPY a.txt /a.txt", "[4/4] RUN touch /b.txt; echo built b"]
    reasons = [e.reason for e in events if isinstance(e, VertexExplain)]
    assert "a.txt" in reasons[0]
    assert len(rig.runtime.ran) == 2


def test_no_cache_executes_everything_again(rig: Rig) -> None:
    rig.build(DOCKERFILE)
    _, events, _ = rig.build(DOCKERFILE, no_cache=True)
    assert cached(events) == []
    assert len(started(events)) == 3
    assert {e.reason for e in events if isinstance(e, VertexExplain)} == {"--no-cache"}
    assert len(rig.runtime.ran) == 2


def test_failing_run_raises_with_its_dockerfile_line(rig: Rig) -> None:
    dockerfile = "FROM scratch\nCOPY a.txt /\nRUN echo about to fail; exit 3\nRUN touch /never\n"
    with pytest.raises(RunStepError) as info:
        rig.build(dockerfile)
    err = info.value
    assert err.span is not None
    assert (err.span.file, err.span.line) == ("Dockerfile", 3)
    assert err.exit_code == 3
    assert "about to fail" in err.output_tail
    assert str(err).startswith("Dockerfile:3:1: process ")
    assert rig.runtime.ran == [("/bin/sh", "-c", "echo about to fail; exit 3")]
    assert rig.runtime.killed == 1  # a failed step stops whatever else is running
    assert rig.runtime.settled == 1


def test_failure_event_carries_the_message(rig: Rig) -> None:
    sink = RecordingSink()
    with pytest.raises(RunStepError):
        rig.build("FROM scratch\nRUN exit 2\n", sink=sink)
    done = [e for e in sink.events if isinstance(e, VertexDone) and e.error]
    assert len(done) == 1
    assert done[0].error is not None
    assert done[0].error.endswith("exit code: 2")


def test_missing_copy_source_names_its_line(rig: Rig) -> None:
    with pytest.raises(ContextError) as info:
        rig.build("FROM scratch\n\nCOPY missing.txt /\n")
    assert info.value.span is not None
    assert info.value.span.line == 3
    assert rig.machinery_made == 0  # the cache key failed before anything ran


def test_interrupt_kills_every_running_container(rig: Rig) -> None:
    dockerfile = "FROM scratch AS a\nRUN interrupt\nFROM scratch\nCOPY --from=a / /\n"
    sink = RecordingSink()
    with pytest.raises(KeyboardInterrupt):
        rig.build(dockerfile, sink=sink)
    assert rig.runtime.killed == 1
    assert [e.error for e in sink.events if isinstance(e, VertexDone) and e.error] == [
        "interrupted"
    ]


def test_copy_from_a_stage_reads_its_layers(rig: Rig) -> None:
    dockerfile = "FROM scratch AS a\nRUN touch /made\nFROM scratch\nCOPY --from=a /made /copied\n"
    result, _events, scheduler = rig.build(dockerfile)
    assert "copied" in layer_files(rig.store, result)[0]
    assert ("mount", "ro") in rig.snapshotter.calls  # the stage's rootfs, read-only
    steps = scheduler.step_results(rig.plan(dockerfile))
    assert [(s.stage, s.text) for s in steps] == [
        ("a", "RUN touch /made"),
        ("stage-1", "COPY --from=a /made /copied"),
    ]


def test_final_image_is_assembled_from_the_stage(rig: Rig) -> None:
    result, _, _ = rig.build(DOCKERFILE)
    image = final_image(result)
    assert image.manifest.media_type == MediaType.OCI_MANIFEST
    assert image.config.diff_ids == tuple(x.diff_id for x in result.layers)
    assert [d.digest for d in image.manifest.layers] == [x.descriptor.digest for x in result.layers]
    assert image.config.config.env[-1] == "DONE=1"
    times = [h.created for h in result.config.history if h.created]
    assert image.config.created == max(times)
    pinned = final_image(result, created="2001-02-03T04:05:06Z")
    assert pinned.config.created == "2001-02-03T04:05:06Z"
    docker = final_image(result, docker=True)
    assert docker.manifest.media_type == MediaType.DOCKER_MANIFEST
    assert {d.media_type for d in docker.manifest.layers} == {MediaType.DOCKER_LAYER_GZIP}
    assert docker.id == image.id  # same config bytes
    assert docker.digest != image.digest


def test_cold_copy_reads_each_file_once_and_keys_as_a_hashed_one(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Content not known: the COPY copies first, hashing as it copies; its key is the one the
    ordinary hash-then-copy path computes (the second build hits it)."""
    data = rig.context_dir / "d"
    data.mkdir()
    for i in range(40):
        (data / f"f{i:02}").write_bytes(f"file {i}\n".encode() * (i + 1))
    source_reads: list[str] = []
    real_open = os.open

    def counting(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        # the context's files are opened by name in their directory; the layer writer opens
        # the copies by full path
        if kwargs.get("dir_fd") is not None and not flags & os.O_CREAT:
            source_reads.append(os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting)
    dockerfile = "FROM scratch\nCOPY d/ /d/\n"
    first, events, scheduler = rig.build(dockerfile)
    assert started(events) == ["[2/2] COPY d/ /d/"]
    assert sorted(n for n in source_reads if n.startswith("f")) == [f"f{i:02}" for i in range(40)]
    assert scheduler.context.content_cache.hashed == 40
    assert layer_files(rig.store, first)[0] == {"d"} | {f"d/f{i:02}" for i in range(40)}
    second, events, scheduler = rig.build(dockerfile)
    assert cached(events) == ["[2/2] COPY d/ /d/"]
    assert second.key == first.key
    assert rig.machinery_made == 1  # the step was built before: hashed first, then a hit


def test_cold_copy_with_no_cache_gives_the_layer_of_a_warm_one(rig: Rig) -> None:
    data = rig.context_dir / "d"
    data.mkdir()
    for i in range(20):
        (data / f"f{i:02}").write_text(f"{i}\n")
    dockerfile = "FROM scratch\nCOPY d/ /d/\n"
    cold, _, _ = rig.build(dockerfile, no_cache=True)
    warm, _, scheduler = rig.build(dockerfile, no_cache=True)
    assert scheduler.context.content_cache.hashed == 20  # racy entries: hashed again
    assert [x.diff_id for x in warm.layers] == [x.diff_id for x in cold.layers]
    assert warm.key == cold.key


def test_cold_copy_from_a_stage_mounts_it_once(rig: Rig) -> None:
    """Copied first, hashing as it copies: the key is read from the same mount of the stage."""
    dockerfile = "FROM scratch AS a\nRUN touch /made\nFROM scratch\nCOPY --from=a /made /copied\n"
    first, _, _ = rig.build(dockerfile)
    # one read-only mount of stage a, one of the (empty) image the COPY writes onto
    assert rig.snapshotter.calls.count(("mount", "ro")) == 2
    assert "copied" in layer_files(rig.store, first)[0]
    rig.snapshotter.calls.clear()
    second, events, _ = rig.build(dockerfile, no_cache=True)
    assert rig.snapshotter.calls.count(("mount", "ro")) == 2
    assert second.key == first.key  # (its layer differs: the RUN gave /made a new mtime)
    rig.snapshotter.calls.clear()
    third, events, _ = rig.build(dockerfile)  # built before: hashed from a mount, then a hit
    assert cached(events) == [
        "[a 2/2] RUN touch /made",
        "[stage-1 2/2] COPY --from=a /made /copied",
    ]
    assert third.key == first.key
