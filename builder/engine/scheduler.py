"""Execute a :class:`~builder.plan.BuildPlan`: cache lookup, else run each step into a layer.

Every layer the engine handles is also a *layer directory* cached by chain ID (the
:class:`~builder.snapshot.base.Snapshotter`); a stage's rootfs is a mount of its layer
directories. RUN and WORKDIR write into the mount's upper directory, COPY/ADD into a fresh
directory; either becomes the new layer (``write_layer``) and the layer directory of the new
chain. Independent stages run in parallel.

The snapshotter and the runtime (:class:`Machinery`) come from the composition root
(``builder.api``) through a factory, called when a step first runs: a build that hits the
cache everywhere never sets them up.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, assert_never

from builder.context.sourcefs import DirectorySource, FileSource
from builder.digest import Digest
from builder.engine.events import (
    EventSink,
    VertexCached,
    VertexDone,
    VertexExplain,
    VertexLog,
    VertexStarted,
    Warning_,
)
from builder.engine.explain import MissRecords, StepRecord, explain_miss
from builder.engine.fetch import UrlFetcher
from builder.engine.results import StepResult
from builder.engine.reuse import CopyReuse
from builder.engine.vertices import Counter
from builder.errors import BuildError, ExecutionError, RunStepError, with_span
from builder.oci import mutate
from builder.oci.image import EMPTY, ImageValue, Layer
from builder.oci.types import History, ImageConfig
from builder.plan import (
    BuildPlan,
    ConfigStep,
    CopyStep,
    FromContext,
    FromImage,
    FromScratch,
    FromStage,
    ImageBase,
    PathSource,
    RunStep,
    ScratchBase,
    Source,
    StageBase,
    StagePlan,
    Step,
    WorkdirStep,
)
from builder.plan.cachekey import cache_key, describe_inputs, step_cache_payload
from builder.store import CacheRecord, Store, paths
from builder.store.fsutil import is_full, no_space_during
from builder.timings import phase

if TYPE_CHECKING:
    from builder.engine.secrets import SecretStore
    from builder.engine.ssh import SshAgents
    from builder.runtime.network import NetworkProvider
    from builder.runtime.oci import Runtime
    from builder.snapshot.base import Snapshotter


class CacheLookup(Protocol):
    """Cache records beyond the store's (``--cache-from``, ``builder.engine.remotecache``): a
    found record's ``layer`` fetches its blob, and writes the record to the store, when read."""

    def find(self, key: Digest) -> CacheRecord | None: ...
    def layer(self, record: CacheRecord) -> Layer: ...
    def seed(self, cache_id: str, directory: Path) -> None: ...


class ImageSource(Protocol):
    """Gives the layers of a resolved base image (the resolver keeps them)."""

    def image(self, digest: Digest) -> ImageValue: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Machinery:
    """What executing a step needs beyond the store (built by ``builder.api``)."""

    snapshotter: Snapshotter
    runtime: Runtime


@dataclass(frozen=True, slots=True, kw_only=True)
class StageResult:
    layers: tuple[Layer, ...]
    config: ImageConfig
    key: Digest
    steps: tuple[StepResult, ...] = ()
    base_layers: int = 0  # how many of ``layers`` (and config.diff_ids) the base gave
    base_history: int = 0  # how many config.history entries the base gave


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    no_cache: bool = False
    network: str = "default"
    memory: int | None = None
    cpus: float | None = None
    pids_limit: int | None = None  # RUN steps' cgroup pids.max
    source_date_epoch: int | None = None
    secrets: SecretStore | None = None  # values by id for RUN --mount=type=secret
    ssh: SshAgents | None = None  # agent sockets by id for RUN --mount=type=ssh
    cache_from: CacheLookup | None = None  # imported caches, asked after the store's


@dataclass(frozen=True, slots=True, kw_only=True)
class _StepJob:
    """A layer step about to be looked up in the cache or run."""

    step: Step
    vertex: int
    name: str
    layers: tuple[Layer, ...]
    key: Digest
    identity: str  # names the step in its build, for miss explanations
    record: StepRecord
    prepared: Path | None = None  # a COPY's layer directory, copied before the key was known


class _StageCancelled(Exception):
    """Set on the stages still running when the build stops (one failed, or Ctrl-C)."""


class Scheduler:
    """One build: walks the plan's stages (dependencies first, in parallel where possible)."""

    def __init__(
        self,
        *,
        store: Store,
        images: ImageSource,
        context: FileSource,
        sink: EventSink,
        settings: EngineSettings,
        machinery: Callable[[], Machinery],
        identity: str,
        counter: Counter | None = None,
        networks: NetworkProvider | None = None,
    ) -> None:
        self.store = store
        self.images = images
        self.context = context
        self.sink = sink
        self.settings = settings
        self._make_machinery = machinery
        self.identity = identity  # names the build (context + Dockerfile) for miss explanations
        self._misses = MissRecords(store.root / paths.BUILDINFO, identity)
        self.counter = counter or Counter()
        self.networks = networks  # None: each RUN step starts its own private network
        self._stages: dict[int, Future[StageResult]] = {}  # every stage of the running plan
        self._lock = threading.Lock()
        self._machinery: Machinery | None = None
        # ADD URLs: each is downloaded once per build, into the store, for key and copy alike
        self._fetcher = UrlFetcher(store.cas)
        # (cache key, blobs of its record) of every step, taken from the cache or run and
        # recorded, for the build's no-op record (builder.engine.noop).
        self.cache_records: list[tuple[Digest, tuple[Digest, ...]]] = []

    def _tools(self) -> Machinery:
        """The snapshotter and the runtime, set up when a step first runs (a build that hits
        the cache everywhere never loads them)."""
        with self._lock:
            if self._machinery is None:
                self._machinery = self._make_machinery()
            return self._machinery

    @property
    def snapshotter(self) -> Snapshotter:
        return self._tools().snapshotter

    def step_results(self, plan: BuildPlan) -> tuple[StepResult, ...]:
        """The layer steps of every stage that ran, in plan order."""
        results = {
            index: future.result()
            for index, future in self._stages.items()
            if future.done() and future.exception() is None
        }
        return tuple(
            s for stage in plan.stages if stage.index in results for s in results[stage.index].steps
        )

    # -- stages ------------------------------------------------------------------------------

    def run(self, plan: BuildPlan) -> StageResult:
        """Build ``plan``'s target stage; the runtime's background work is over on return."""
        try:
            result = self._run_stages(plan)
        except BaseException:
            with contextlib.suppress(ExecutionError):  # never hide the original exception
                self._settle()
            raise
        self._settle()
        return result

    def _settle(self) -> None:
        with self._lock:
            machinery = self._machinery
        if machinery is not None:
            machinery.runtime.settle()

    def _run_stages(self, plan: BuildPlan) -> StageResult:
        """Run the plan's stages in threads. A stage starts at once and waits for another
        stage only where a step reads it (its base, ``COPY --from``, ``RUN --mount=from``), as
        BuildKit's solver does: the steps before a ``COPY --from`` run while the source stage
        builds. Stages are submitted dependencies first and references only point back, so
        the earliest unfinished stage always holds a worker: no wait can deadlock."""
        self._stages = {stage.index: Future[StageResult]() for stage in plan.stages}
        workers = max(1, min(4, len(plan.stages)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stage") as pool:
            submitted = [
                # each stage thread reports into the build's timings (builder.timings)
                pool.submit(contextvars.copy_context().run, self._stage_thread, plan, stage)
                for stage in plan.stages
            ]
            try:
                target = self._stage_result(plan.target_index)
                for future in self._stages.values():  # a stage nothing waited for failed?
                    future.result()
                return target
            except BaseException:
                for f in submitted:
                    f.cancel()
                for waiting in self._stages.values():  # a stage waiting for another stops too
                    with contextlib.suppress(InvalidStateError):
                        waiting.set_exception(_StageCancelled())
                with self._lock:
                    machinery = self._machinery
                if machinery is not None:  # stop running steps now, not when they finish
                    machinery.runtime.kill_all()
                raise

    def _stage_thread(self, plan: BuildPlan, stage: StagePlan) -> None:
        future = self._stages[stage.index]
        try:
            result = self._run_stage(plan, stage)
        except BaseException as exc:
            with contextlib.suppress(InvalidStateError):  # cancelled meanwhile
                future.set_exception(exc)
            return
        with contextlib.suppress(InvalidStateError):
            future.set_result(result)

    def _stage_result(self, index: int) -> StageResult:
        """The result of stage ``index``, once it is built (raises what stopped it)."""
        return self._stages[index].result()

    def _run_stage(self, plan: BuildPlan, stage: StagePlan) -> StageResult:
        layers, key, history = self._base(stage)
        base_layers = layers
        layer_steps = [s for s in stage.steps if not isinstance(s, ConfigStep)]
        total = len(layer_steps) + 1
        prefix = f"{stage.display_name} " if stage.display_name else ""
        self._from_vertex(stage, prefix, total)
        diff_ids = list(history_diff_ids(layers))
        entries = list(history)
        # History times: a layer step keeps the time its layer was first built (from the cache
        # record), a metadata step the time of the layer below it, so a build that hits the
        # cache everywhere produces the very same config and image ID, as BuildKit does.
        # With SOURCE_DATE_EPOCH every entry this Dockerfile adds is dated the epoch (BuildKit).
        created = next((h.created for h in reversed(history) if h.created), None)
        epoch = self.settings.source_date_epoch
        fixed = timestamp(epoch) if epoch is not None else None
        position = 1
        reports: list[StepResult] = []
        for step in stage.steps:
            if not isinstance(step, ConfigStep):
                position += 1
                name = f"[{prefix}{position}/{total}] {step.text}"
                began = time.monotonic()
                with phase(f"step {name}"):
                    layer, key, created, cached = self._step(
                        stage, step, name=name, layers=layers, parent=key, position=position
                    )
                layers = (*layers, layer)
                diff_ids.append(layer.diff_id)
                reports.append(
                    StepResult(
                        stage=stage.display_name,
                        text=step.text,
                        cached=cached,
                        layer=layer.descriptor.digest,
                        diff_id=layer.diff_id,
                        duration=time.monotonic() - began,
                    )
                )
            if step.history is not None:
                entries.append(replace(step.history, created=fixed or created))
        config = replace(stage.config, diff_ids=tuple(diff_ids), history=tuple(entries))
        return StageResult(
            layers=layers,
            config=config,
            key=key,
            steps=tuple(reports),
            base_layers=len(base_layers),
            base_history=len(history),
        )

    def _base(self, stage: StagePlan) -> tuple[tuple[Layer, ...], Digest, tuple[History, ...]]:
        base = stage.base
        match base:
            case ImageBase():
                image = self.images.image(base.resolved.digest)
                key = cache_key({"base": "image", "digest": str(image.digest)}, None, ())
                return image.layers, key, image.config.history
            case StageBase():
                dep = self._stage_result(base.index)
                return dep.layers, dep.key, dep.config.history
            case ScratchBase():
                return (), cache_key({"base": "scratch"}, None, ()), ()
            case _:
                assert_never(base)

    def _from_vertex(self, stage: StagePlan, prefix: str, total: int) -> None:
        base = stage.base
        match base:
            case ImageBase():
                text = f"FROM {base.resolved.ref}@{base.resolved.digest}"
            case StageBase():
                return  # BuildKit shows no vertex for FROM <stage>
            case ScratchBase():
                return
            case _:
                assert_never(base)
        n = self.counter.next()
        self.sink.emit(VertexStarted(vertex=n, name=f"[{prefix}1/{total}] {text}"))
        self.sink.emit(VertexDone(vertex=n))

    # -- steps -------------------------------------------------------------------------------

    def _step(
        self,
        stage: StagePlan,
        step: Step,
        *,
        name: str,
        layers: tuple[Layer, ...],
        parent: Digest,
        position: int,
    ) -> tuple[Layer, Digest, str, bool]:
        """The step's layer, the cache key of its chain, its creation time, whether cached.

        A ``COPY --from=<stage>`` is keyed by the content it copies. It also gets a *source
        key* (BuildKit's definition-based key: the op and the source stage's chain key), kept
        as an alias record naming the content key's chain; an imported cache
        (``--cache-from``) answers it first, so a build on an empty store needs neither the
        stage's files nor its layers to hit. The store's own alias records are not asked: a
        ``--no-cache`` rebuild of the stage may have changed its files under the same key.
        """
        alias = self._source_key(step, parent)
        if alias is not None and not self.settings.no_cache:
            hit = self._alias_hit(alias, name)
            if hit is not None:
                return hit
        layer, chain, created, cached = self._content_step(
            stage, step, name=name, layers=layers, parent=parent, position=position
        )
        if alias is not None:
            self._put_alias(alias, layer, chain, created)
        return layer, chain, created, cached

    def _source_key(self, step: Step, parent: Digest) -> Digest | None:
        if not isinstance(step, CopyStep) or not isinstance(step.source, FromStage):
            return None
        if not all(isinstance(src, PathSource) for src in step.sources):
            return None
        source = self._stage_result(step.source.index).key
        return cache_key({"by-source-key": step_cache_payload(step)}, parent, (source,))

    def _alias_hit(self, alias: Digest, name: str) -> tuple[Layer, Digest, str, bool] | None:
        imported = self.settings.cache_from
        record = imported.find(alias) if imported is not None else None
        chain = record.get("chain") if record is not None else None
        if imported is None or record is None or chain is None:
            return None
        layer = imported.layer(record)
        self._report_hit(alias, record, self.counter.next(), name)
        return layer, Digest.parse(chain), record.created, True

    def _put_alias(self, alias: Digest, layer: Layer, chain: Digest, created: str) -> None:
        self._put_record(alias, layer, created, chain=chain)

    def _report_hit(self, key: Digest, record: CacheRecord, vertex: int, name: str) -> None:
        """A cache hit: kept for the no-op record and --cache-to, shown as a cached vertex."""
        with self._lock:
            self.cache_records.append((key, tuple(r.digest for r in record.roots)))
        self.sink.emit(VertexCached(vertex=vertex, name=name))
        self.sink.emit(VertexDone(vertex=vertex))

    def _put_record(
        self, key: Digest, layer: Layer, created: str, *, chain: Digest | None = None
    ) -> None:
        """Store the cache record of ``key`` (``chain``: an alias's content-key chain) and keep
        it for the no-op record and --cache-to."""
        metadata: tuple[tuple[str, str], ...] = (("diff_id", str(layer.diff_id)),)
        if chain is not None:
            metadata += (("chain", str(chain)),)
        self.store.cache.put(
            CacheRecord(key=key, roots=(layer.descriptor,), metadata=metadata, created=created)
        )
        with self._lock:
            self.cache_records.append((key, (layer.descriptor.digest,)))

    def _content_step(
        self,
        stage: StagePlan,
        step: Step,
        *,
        name: str,
        layers: tuple[Layer, ...],
        parent: Digest,
        position: int,
    ) -> tuple[Layer, Digest, str, bool]:
        """``_step`` by the step's content key.

        A COPY's cache key needs the content digest of every file it reads, as BuildKit's
        does. When that content is known (the context's checksum cache, keyed by inode and
        stat, ``builder.context.checksum``) the key costs a walk and no read; the copy then
        runs only on a miss. When it is not (a cold build: a new checkout, a pruned store),
        hashing first and copying after would read every file twice; instead the COPY copies
        first, hashing each file in the one read that copies it, which seeds the checksum
        cache, and the key is computed afterwards from it (a stage's or image's files are
        never known beforehand: they are copied first too, and the key is read from the same
        mount of that stage). That is done only when the copy
        is needed anyway, or likely: with ``--no-cache``, or when this step of this build was
        never built in this store (no miss-explanation record). Should the key hit the cache
        after all, the copy is thrown away: one wasted write in a rare case, against a read
        of every file saved on every cold build.
        """
        identity = self._misses.identity(stage.name or stage.index, position)
        with contextlib.ExitStack() as stack:
            prepared: Path | None = None
            held: FileSource | None = None  # the source the copy read, read again for the key
            if self._copy_first(step, identity):
                assert isinstance(step, CopyStep)
                prepared = stack.enter_context(self.snapshotter.scratch_dir())
                held = stack.enter_context(self._file_source(step.source))
                with phase("copy files, hashing them (content not known yet)"):
                    self._execute_copy(step, layers, prepared, None, hashing=True, source=held)
            n = self.counter.next()
            with phase("source digests (context scan and hash)"):
                inputs, described_files = self._inputs(step, held)
            payload = step_cache_payload(step)
            link = isinstance(step, CopyStep) and step.link
            key = cache_key(payload, None if link else parent, inputs)
            # A --link layer is looked up without its parent, but what follows depends on both.
            chain = cache_key({"link": str(key)}, parent, ()) if link else key
            record = StepRecord(
                key=str(key),
                parent=str(parent),
                values=tuple(describe_inputs(step)),
                files=described_files,
            )
            job = _StepJob(
                step=step,
                vertex=n,
                name=name,
                layers=layers,
                key=key,
                identity=identity,
                record=record,
                prepared=prepared,
            )
            if self.settings.no_cache:
                layer, created = self._run_step(job)
                return layer, chain, created, False
            hit = self._cache_hit(job)
            if hit is None:
                # A miss: another build may be running this very step; wait for it, look again.
                with self.store.step_lock(key):
                    hit = self._cache_hit(job)
                    if hit is None:
                        layer, created = self._run_step(job)
                        return layer, chain, created, False
            return hit[0], chain, hit[1], True

    def _warn(self, message: str) -> None:
        self.sink.emit(Warning_(message=message))

    def _cache_hit(self, job: _StepJob) -> tuple[Layer, str] | None:
        """The cached layer of the step and its creation time, reported as a cached vertex."""
        found = self._lookup(job.key)
        if found is None:
            return None
        cached, layer = found
        self._report_hit(job.key, cached, job.vertex, job.name)
        self._misses.remember(job.identity, job.record)
        return layer, cached.created

    def _run_step(self, job: _StepJob) -> tuple[Layer, str]:
        """Execute a step the cache does not have and record its layer: (layer, created)."""
        step, n = job.step, job.vertex
        self.sink.emit(VertexStarted(vertex=n, name=job.name))
        previous = None if self.settings.no_cache else self._misses.recall(job.identity)
        reason = "--no-cache" if self.settings.no_cache else explain_miss(previous, job.record)
        self.sink.emit(VertexExplain(vertex=n, reason=reason))
        try:
            reuse = (
                None
                if job.prepared is not None
                else self._reuse(step, previous, job.record, job.layers)
            )
            layer = self._execute(step, job.layers, n, reuse, job.prepared)
        except BuildError as err:
            self.sink.emit(VertexDone(vertex=n, error=err.message))
            raise with_span(err, step.span) from None
        except KeyboardInterrupt:
            self.sink.emit(VertexDone(vertex=n, error="interrupted"))
            raise
        created = timestamp(self.settings.source_date_epoch)
        self._put_record(job.key, layer, created)
        self._misses.remember(job.identity, job.record)
        self.sink.emit(VertexDone(vertex=n))
        return layer, created

    def _copy_first(self, step: Step, identity: str) -> bool:
        """Whether ``step`` (``identity`` in its build) is a COPY whose files' content is not
        known, and that will likely miss the cache (see ``_step``)."""
        # lazy: only COPY/ADD digest their sources
        from builder.engine.copy_digest import content_unknown

        if not isinstance(step, CopyStep) or step.is_add or isinstance(step.source, FromScratch):
            return False
        if not all(isinstance(src, PathSource) for src in step.sources):
            return False
        if not self.settings.no_cache and (
            self.settings.cache_from is not None  # an imported cache may well have it
            or self._misses.known(identity)
        ):
            return False
        if not isinstance(step.source, FromContext):
            return True  # a stage's or image's files: their content is never known beforehand
        return content_unknown(self.context, step, fetcher=self._fetcher)

    def _lookup(self, key: Digest) -> tuple[CacheRecord, Layer] | None:
        """The record of ``key`` and its layer: the store's, else an imported cache's."""
        record = self.store.cache.get(key, on_corrupt=self._warn)
        layer = self._cached_layer(record) if record is not None else None
        if record is not None and layer is not None:
            return record, layer
        imported = self.settings.cache_from
        record = imported.find(key) if imported is not None else None
        if imported is None or record is None:
            return None
        return record, imported.layer(record)

    def _reuse(
        self,
        step: Step,
        previous: StepRecord | None,
        record: StepRecord,
        layers: tuple[Layer, ...],
    ) -> CopyReuse | None:
        """What an incremental COPY may take from its previous build (``engine.reuse``): the
        previous layer directory, when that build had the same instruction, parent and source
        paths, and the labels of the sources whose content digest is unchanged."""
        if not isinstance(step, CopyStep) or previous is None:
            return None
        if previous.parent != record.parent or previous.values != record.values:
            return None
        if [p for p, _ in previous.files] != [p for p, _ in record.files]:
            return None
        pairs = zip(previous.files, record.files, strict=True)
        changed = {p for (p, old), (_, new) in pairs if old != new}
        labels = frozenset(p for p, _ in record.files if p not in changed)
        cached = self.store.cache.get(Digest.parse(previous.key)) if labels else None
        layer = self._cached_layer(cached) if cached is not None else None
        if layer is None:
            return None
        root = self.snapshotter.trusted_path((*history_diff_ids(layers), layer.diff_id))
        return CopyReuse(root=root, labels=labels) if root is not None else None

    def _cached_layer(self, record: CacheRecord) -> Layer | None:
        # lazy: only a cache hit needs the store's layer type (loads the store layout)
        from builder.store import StoreLayer

        diff = record.get("diff_id")
        if diff is None or not record.roots:
            return None
        return StoreLayer(
            cas=self.store.cas, descriptor=record.roots[0], diff_id=Digest.parse(diff)
        )

    def _inputs(
        self, step: Step, held: FileSource | None = None
    ) -> tuple[tuple[Digest, ...], tuple[tuple[str, str], ...]]:
        """Content digests of what the step reads (COPY sources, bind-mount sources, the
        ``from=`` stage of a cache mount); ``held`` is a COPY's source already open."""
        # lazy: only COPY/ADD and bind mounts digest their sources
        from builder.engine.copy_digest import copy_source_digest, mount_source_digest

        if isinstance(step, CopyStep):
            with contextlib.ExitStack() as stack:
                source = (
                    held
                    if held is not None
                    else stack.enter_context(self._file_source(step.source))
                )
                result = copy_source_digest(source, step, fetcher=self._fetcher)
            files = tuple((p, str(d)) for p, d in result.files)
            return (result.digest,), files
        if isinstance(step, RunStep) and step.input_sources:
            # A bind mount (or a cache seed) reads like a COPY of its source path: hash those files.
            digests: list[Digest] = []
            named: list[tuple[str, str]] = []
            for m in step.mounts:
                if m.source is None or m.mount.type.value not in ("bind", "cache"):
                    continue
                if isinstance(m.source, FromContext | FromStage):
                    with self._file_source(m.source) as source:
                        result = mount_source_digest(source, m.source_path)
                    digests.append(result.digest)
                    named += ((p, str(d)) for p, d in result.files)
            return tuple(digests), tuple(named)
        return (), ()

    @contextlib.contextmanager
    def _file_source(self, source: Source) -> Iterator[FileSource]:
        """A FileSource for a COPY/mount source: the context, or a stage/image rootfs."""
        match source:
            case FromContext():
                yield self.context
            case FromStage():
                result = self._stage_result(source.index)
                with self._rootfs(result.layers) as root:
                    yield DirectorySource(root=root)
            case FromImage():
                image = self.images.image(source.image.digest)
                with self._rootfs(image.layers) as root:
                    yield DirectorySource(root=root)
            case FromScratch():
                with self.snapshotter.scratch_dir() as empty:
                    yield DirectorySource(root=empty)
            case _:
                assert_never(source)

    @contextlib.contextmanager
    def _rootfs(self, layers: Sequence[Layer], upper: Path | None = None) -> Iterator[Path]:
        snapshotter = self.snapshotter
        with snapshotter.mount(snapshotter.ensure(layers), upper) as merged:
            yield merged

    def _execute(
        self,
        step: Step,
        layers: tuple[Layer, ...],
        vertex: int,
        reuse: CopyReuse | None,
        prepared: Path | None = None,
    ) -> Layer:
        """The step's new layer; ``prepared`` is a COPY's layer directory already copied."""

        def on_output(data: bytes) -> None:
            self.sink.emit(VertexLog(vertex=vertex, data=data))

        # Out of disk space anywhere in the step (its writes, the layer export): one line
        # naming the step; the scratch directory and the ingest file go on the way out.
        with no_space_during(step.text), contextlib.ExitStack() as stack:
            out = prepared or stack.enter_context(self.snapshotter.scratch_dir())
            match step:
                case RunStep():
                    try:
                        self._execute_run(step, layers, out, on_output)
                    except RunStepError as err:
                        raise _out_of_space(err, step, out) from None
                    overlay = True
                case CopyStep():
                    if prepared is None:
                        self._execute_copy(step, layers, out, reuse)
                    overlay = False
                case WorkdirStep():
                    self._execute_workdir(step, layers, out)
                    overlay = True
                case ConfigStep():
                    raise ExecutionError("internal: a metadata step has no layer")
                case _:
                    assert_never(step)
            layer = self.store.write_layer(
                out, overlay=overlay, source_date_epoch=self.settings.source_date_epoch
            )
            chain = (*history_diff_ids(layers), layer.diff_id)
            self.snapshotter.adopt(chain, out)
        return layer

    def _execute_run(
        self,
        step: RunStep,
        layers: tuple[Layer, ...],
        upper: Path,
        on_output: Callable[[bytes], None],
    ) -> None:
        # lazy: loaded when a step executes: a fully cached build never needs it
        from builder.engine.context_view import visible_context
        from builder.engine.run import MountSources, Resources, run_on_layers

        tools = self._tools()
        with contextlib.ExitStack() as stack:
            roots: dict[int, Path] = {}
            for m in step.mounts:
                if m.source is not None and m.mount.type.value == "bind":
                    if isinstance(m.source, FromContext):  # without what .dockerignore hides
                        view = visible_context(self.context, tools.snapshotter)
                        roots[id(m.source)] = stack.enter_context(view)
                    else:
                        src = stack.enter_context(self._file_source(m.source))
                        roots[id(m.source)] = Path(src.root)
            run_on_layers(
                tools.snapshotter.ensure(layers),
                upper,
                step,
                runtime=tools.runtime,
                on_output=on_output,
                network=self.settings.network if step.network == "default" else step.network,
                networks=self.networks,
                resources=Resources(
                    memory=self.settings.memory,
                    cpus=self.settings.cpus,
                    pids=self.settings.pids_limit,
                ),
                sources=MountSources(
                    bind_root=lambda source: roots[id(source)],
                    cache_dir=self.store.root / paths.CACHEMOUNTS,
                    cache_seed=cache_from.seed
                    if (cache_from := self.settings.cache_from)
                    else None,
                    secrets=self.settings.secrets,
                    ssh=self.settings.ssh,
                    cache_bases=_CacheBases(self),
                ),
                bundle_dir=self.store.root / paths.TMP,
                overlay=tools.snapshotter,
                init_dir=tools.snapshotter.scratch_dir,
            )

    def _execute_copy(
        self,
        step: CopyStep,
        layers: tuple[Layer, ...],
        out: Path,
        reuse: CopyReuse | None,
        *,
        hashing: bool = False,
        source: FileSource | None = None,
    ) -> None:
        # lazy: loaded when a step executes: a fully cached build never needs it
        from builder.engine.chown import ChownResolver
        from builder.engine.copy import apply_copy

        with contextlib.ExitStack() as stack:
            if source is None:
                source = stack.enter_context(self._file_source(step.source))
            rootfs = None if step.link else stack.enter_context(self._rootfs(layers))
            stack.enter_context(phase("copy files"))
            apply_copy(
                source,
                step,
                rootfs=rootfs,
                out_dir=out,
                chown_resolver=ChownResolver(rootfs),
                source_date_epoch=self.settings.source_date_epoch,
                fetcher=self._fetcher,
                reuse=reuse,
                hashing=hashing,
            )

    def _execute_workdir(self, step: WorkdirStep, layers: tuple[Layer, ...], upper: Path) -> None:
        # lazy: loaded when a step executes: a fully cached build never needs it
        from builder.runtime.users import resolve_user
        from builder.snapshot.overlay import mkdir_in_root

        with self._rootfs(layers, upper) as rootfs:
            uid = gid = 0
            if step.user:
                user = resolve_user(rootfs, step.user)
                uid, gid = user.uid, user.gid
            mkdir_in_root(rootfs, step.path, uid=uid, gid=gid)


def _out_of_space(err: RunStepError, step: RunStep, upper: Path) -> RunStepError:
    """A RUN that failed while the store's filesystem is full failed for want of space (its
    command saw ENOSPC): say so before the command's own message."""
    if not is_full(upper):
        return err
    return RunStepError(
        f"no space left on device during {step.text}: {err.message}",
        exit_code=err.exit_code,
        output_tail=err.output_tail,
    )


class _CacheBases:
    """The ``from=`` of cache mounts (``run.CacheBases``): stages and images of this build."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def key(self, source: Source) -> str:
        match source:
            case FromStage():
                return f"stage {self._scheduler._stage_result(source.index).key}"
            case FromImage():
                return f"image {source.image.digest}"
            case FromContext():
                return "context"
            case FromScratch():
                return "scratch"
            case _:
                assert_never(source)

    @contextlib.contextmanager
    def root(self, source: Source) -> Iterator[Path]:
        with self._scheduler._file_source(source) as files:
            yield Path(files.root)


def history_diff_ids(layers: Sequence[Layer]) -> tuple[Digest, ...]:
    return tuple(layer.diff_id for layer in layers)


def final_image(
    result: StageResult, *, created: str | None = None, docker: bool = False
) -> ImageValue:
    """The image of the target stage: its layers, config and manifest, assembled with
    ``builder.oci.mutate`` on the empty image (layer media types follow the manifest's).

    ``created`` defaults to the newest history time, so an all-cached build is reproducible.
    """
    times = [h.created for h in result.config.history if h.created]
    image = mutate.append_layers(
        mutate.convert(EMPTY, docker=docker), *((layer, None) for layer in result.layers)
    )
    image = mutate.with_image_config(image, result.config)
    return mutate.with_created(image, created or (max(times) if times else None))


def timestamp(epoch: float | None = None) -> str:
    if epoch is None:
        epoch = time.time()
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
