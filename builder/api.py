"""The composition root: ``build(options)`` wires parser, planner, store, context and engine.

This is the one place that picks concrete implementations (the store under ``--root``, runc or
crun, overlayfs, the local context, the registry for base images that are not in the store):
:func:`open_machinery` builds the snapshotter and the runtime for both ``pybuild build`` and
``pybuild run``. The public Python API (``import builder``) wraps these functions.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from builder import timings
from builder.buildargs import resolve_build_args
from builder.digest import Digest
from builder.engine.events import (
    Event,
    EventSink,
    VertexDone,
    VertexStarted,
    VertexStatus,
    Warning_,
)
from builder.engine.vertices import Vertices
from builder.errors import BuildError, ContextError, DockerfileError, StoreError
from builder.timings import phase
from builder.units import parse_bool

# Everything else loads inside build(), after the no-op check: a rebuild whose inputs did not
# change is answered without the parser, planner, store or engine (see builder.engine.noop).
if TYPE_CHECKING:
    from collections.abc import Iterator

    from builder.context.ignore import PatternMatcher
    from builder.engine import noop
    from builder.engine.named import NamedContexts
    from builder.engine.outputs import Output
    from builder.engine.remotecache import CacheImporter, CacheSpec
    from builder.engine.results import StepResult
    from builder.engine.scheduler import Machinery, Scheduler, StageResult
    from builder.engine.secrets import SecretSpec
    from builder.engine.ssh import SshSpec
    from builder.lint.inputs import LintInputs
    from builder.oci.descriptor import Descriptor, Platform
    from builder.oci.image import ImageValue
    from builder.plan import BuildPlan, ResolvedImage, Step
    from builder.registry.client import RegistryClient
    from builder.store import ImageRecord, Store
    from builder.syntax.transform import Analysis
    from builder.syntax.tree import AST

CHECK_ARG = "BUILDKIT_DOCKERFILE_CHECK"  # build arg: replaces the # check= directive
_runtime_warned: set[str] = set()  # runtimes whose warning this process printed


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildOptions:
    context: str  # a directory, a git URL, a tarball or Dockerfile URL, or "-" (stdin)
    dockerfile: str | None = None  # None: CONTEXT/Dockerfile; "-": stdin
    tags: tuple[str, ...] = ()
    build_args: tuple[tuple[str, str | None], ...] = ()
    target: str | None = None
    no_cache: bool = False
    pull: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    network: str = "default"  # RUN steps' network: default (private), none, host
    allow: tuple[str, ...] = ()  # entitlements (--allow): network.host, security.insecure
    platform: str | None = None
    memory: int | None = None
    cpus: float | None = None
    pids_limit: int = 4096  # RUN steps' pids limit (spec.DEFAULT_PIDS_LIMIT); 0: unlimited
    runtime: str = "runc"
    root: str | None = None
    secrets: tuple[SecretSpec, ...] = ()  # --secret; values are read when a step mounts them
    ssh: tuple[SshSpec, ...] = ()  # --ssh; key files get a private agent when a step needs it
    build_contexts: tuple[str, ...] = ()  # --build-context NAME=VALUE (builder.engine.named)
    source_date_epoch: int | None = None  # --source-date-epoch; None: $SOURCE_DATE_EPOCH
    squash: bool = False  # --squash: the target stage's new layers folded into one
    cache_from: tuple[CacheSpec, ...] = ()  # --cache-from: registry or local caches to import
    cache_to: tuple[CacheSpec, ...] = ()  # --cache-to: where to export this build's cache
    outputs: tuple[Output, ...] = ()  # -o/--output, --push (builder.engine.outputs); (): the store


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildResult:
    """What a build made: the image ID (config digest), the manifest digest, the names it
    was given, and how each layer step went (cached or executed), in Dockerfile order."""

    image_id: Digest
    digest: Digest
    tags: tuple[str, ...]
    steps: tuple[StepResult, ...] = ()
    descriptor: Descriptor | None = None  # the exported manifest, when outputs were given


class StoreResolver:
    """Resolves base images: the local store first, else (or with ``--pull``) the registry.

    ``bases`` records each name and the digest of the index.json entry it resolved to.
    """

    def __init__(self, store: Store, *, pull: bool, vertices: Vertices) -> None:
        self.store = store
        self.always_pull = pull
        self.vertices = vertices
        self.bases: dict[str, Digest] = {}
        self._images: dict[Digest, ImageValue] = {}
        self._lock = threading.Lock()
        self._client: RegistryClient | None = None

    def resolve(self, ref: str, platform: Platform) -> ResolvedImage:
        # lazy: the build machinery loads after the no-op check (builder.engine.noop), not at import
        from builder.plan import ResolvedImage
        from builder.reference import parse

        store = self.store
        name = str(parse(ref))
        n = self.vertices.run(f"[internal] load metadata for {name}")
        try:
            record: ImageRecord | None = None
            if not self.always_pull:
                try:
                    record = store.resolve(name)
                except StoreError:
                    record = None
            if record is None:
                record = self._pull(store, name, platform)
            image = store.load_image(record.descriptor, platform=platform)
        except BuildError as err:
            self.vertices.sink.emit(VertexDone(vertex=n, error=err.message))
            raise
        with self._lock:
            self._images[image.digest] = image
            self.bases[name] = record.descriptor.digest
        self.vertices.sink.emit(VertexDone(vertex=n))
        return ResolvedImage(ref=name, digest=image.digest, config=image.config)

    def _pull(self, store: Store, name: str, platform: Platform) -> ImageRecord:
        # lazy: the registry client (httpx) loads only when a base image is pulled
        from builder.registry.client import RegistryClient
        from builder.registry.remote import pull

        with self._lock:
            if self._client is None:
                self._client = RegistryClient.from_environment()
            client = self._client
        return pull(store, name, client=client, platform=platform)

    def image(self, digest: Digest) -> ImageValue:
        with self._lock:
            return self._images[digest]


def source_date_epoch(options: BuildOptions) -> int | None:
    """``--source-date-epoch``, else ``$SOURCE_DATE_EPOCH`` when it is a whole number."""
    if options.source_date_epoch is not None:
        return options.source_date_epoch
    text = os.environ.get("SOURCE_DATE_EPOCH")
    return int(text) if text and text.isdigit() else None


def _noop_request(
    options: BuildOptions,
    root: Path,
    context_dir: Path,
    dockerfile: Path | None,
    build_args: tuple[tuple[str, str], ...],
) -> noop.Request | None:
    """The no-op record this build may use and write, or None (``--pull``, a Dockerfile from
    stdin, named contexts: their content is only known by reading them, ``--cache-to``: its
    export runs every time). ``--no-cache`` is not part of the request: such a build never uses a
    record, but it writes the one a plain rebuild will use, since that rebuild hits the cache
    records it wrote."""
    if options.pull or dockerfile is None or options.build_contexts or options.cache_to:
        return None
    # lazy: builds with --pull or a Dockerfile on stdin skip the no-op check
    from builder.engine import noop

    settings: dict[str, object] = {
        "tags": list(options.tags),
        "build_args": [list(a) for a in build_args],
        "target": options.target,
        "labels": [list(x) for x in options.labels],
        "network": options.network,
        "allow": sorted(options.allow),
        "platform": options.platform,
        "memory": options.memory,
        "cpus": options.cpus,
        "pids_limit": options.pids_limit,
        "runtime": options.runtime,
        "source_date_epoch": source_date_epoch(options),
    }
    if options.squash:
        settings["squash"] = True
    if options.cache_from:
        settings["cache_from"] = [s.label for s in options.cache_from]
    return noop.request(root=root, context=context_dir, dockerfile=dockerfile, settings=settings)


def open_machinery(
    store: Store,
    *,
    runtime: str = "runc",
    terminal: bool = False,
    interactive: bool = False,
    deferred_deletes: bool = False,
) -> Machinery:
    """The snapshotter (overlayfs layer directories) and the OCI runtime (``runtime``: runc or
    crun; ``terminal``: runc on a pseudo-terminal, ``interactive`` with stdin) for ``store``.
    ``deferred_deletes``: a build's (see ``Runc``); the scheduler settles them at its end.
    Raises ``EnvironmentUnavailableError`` when they cannot work here (no root, the runtime's
    binary missing)."""
    # lazy: the runtime and snapshotter load once the first step runs
    from builder.engine.scheduler import Machinery
    from builder.runtime.oci import Crun, Runc
    from builder.runtime.terminal import TerminalRunc
    from builder.snapshot.layerdirs import LayerDirs
    from builder.store.paths import RUNTIMES, runtime_check_file, runtime_state_dir

    oci: Runc
    match runtime:
        case "runc" if terminal:
            oci = TerminalRunc(root=runtime_state_dir(store.root, runtime), interactive=interactive)
        case "runc":
            oci = Runc(
                root=runtime_state_dir(store.root, runtime),
                deferred_deletes=deferred_deletes,
                check_file=runtime_check_file(store.root, runtime),
            )
        case "crun" if terminal:
            raise BuildError("a terminal (-t) needs --runtime runc")
        case "crun":
            oci = Crun(
                root=runtime_state_dir(store.root, runtime),
                deferred_deletes=deferred_deletes,
                check_file=runtime_check_file(store.root, runtime),
            )
        case _:
            raise BuildError(f"unknown runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    # a missing binary or no root: a clear EnvironmentUnavailableError
    warn_runtime(oci.binary, oci.check())
    # Layer dirs are not synced: each is trusted in the boot that wrote it, and extracted
    # again from its (fsynced) blob after a crash (see builder.snapshot.layerdirs).
    return Machinery(snapshotter=LayerDirs(store, durable=False), runtime=oci)


def warn_runtime(binary: str, warnings: tuple[str, ...]) -> None:
    """Print the runtime's warnings (runc without the CVE fixes) as one ``warning:`` line on
    stderr, once per process and runtime: ``pybuild run`` and every build stage ask again."""
    if warnings and binary not in _runtime_warned:
        _runtime_warned.add(binary)
        print(f"warning: {'; '.join(warnings)}", file=sys.stderr)


def build(options: BuildOptions, *, sink: EventSink) -> BuildResult:
    """Build ``options.context`` and store (and tag) the resulting image."""
    # lazy: `import builder.api` stays light; a build loads what it needs
    from builder.store.paths import default_store_root

    if options.secrets:
        # lazy: only builds given --secret; checked before anything runs, as buildx does
        from builder.engine.secrets import secret_store

        secret_store(options.secrets)
    if options.ssh:
        # lazy: only builds given --ssh; sockets and key files checked before anything runs
        from builder.engine.ssh import ssh_agents

        ssh_agents(options.ssh)
    if options.build_contexts:
        # lazy: only builds given --build-context; checked before anything runs, as buildx does
        from builder.engine.named import check_contexts, parse_build_context

        check_contexts([parse_build_context(text) for text in options.build_contexts])
    build_args = resolve_build_args(options.build_args)
    root = Path(options.root) if options.root else default_store_root()
    if not options.outputs:
        return _build_any(options, root=root, build_args=build_args, sink=sink)
    # lazy: only builds given -o/--push hold the store from the build to the export
    from builder.store import Store

    numbered = _Numbered(sink)  # the exporters' vertices follow the build's
    # one lease from the build to the export: a concurrent prune keeps the (maybe untagged) image
    with Store.open(root).lease():
        result = _build_any(options, root=root, build_args=build_args, sink=numbered)
        return _export(options, root, result, numbered)


def _build_any(
    options: BuildOptions,
    *,
    root: Path,
    build_args: tuple[tuple[str, str], ...],
    sink: EventSink,
) -> BuildResult:
    if is_local_context(options.context):
        context_dir = Path(options.context)
        with phase("read Dockerfile"):
            name, data, dockerfile_path = _read_dockerfile(options, context_dir)
        return _build_prepared(
            options,
            _Input(directory=context_dir, name=name, data=data, path=dockerfile_path),
            root=root,
            build_args=build_args,
            sink=sink,
        )
    return _build_remote(options, root=root, build_args=build_args, sink=sink)


class _Numbered:
    """Passes events on, remembering the highest vertex number seen."""

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink
        self.last = 0
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        number = getattr(event, "vertex", 0)
        with self._lock:
            self.last = max(self.last, number)
        self.sink.emit(event)

    def close(self, *, ok: bool) -> None:
        self.sink.close(ok=ok)


def _export(options: BuildOptions, root: Path, result: BuildResult, sink: _Numbered) -> BuildResult:
    """Write the built image to ``options.outputs`` (builder.engine.outputs)."""
    # lazy: only builds given -o/--push load the exporters
    from builder.engine.export import Exporter
    from builder.engine.vertices import Counter
    from builder.reference import parse as parse_ref
    from builder.store import Store

    counter = Counter(value=sink.last)
    with phase("export (outputs)"):
        store = Store.open(root)
        with store.lease():
            exporter = Exporter(store, sink=sink, next_vertex=counter.next)
            exported = exporter.export(result.digest, options.outputs)
    return replace(
        result,
        digest=exported.descriptor.digest,
        tags=tuple(str(parse_ref(name)) for name in exported.names),
        descriptor=exported.descriptor,
    )


def is_local_context(context: str) -> bool:
    """Whether CONTEXT names a local directory. The docker CLI's order: ``-`` is stdin, an
    existing directory wins over a URL, then git URLs, then http(s) URLs; anything else is a
    local path (and fails as one)."""
    # lazy: urls is small, but `import builder.api` loads nothing a build may not need
    from builder.urls import is_git_url, is_http_url

    if context == "-":
        return False
    return os.path.isdir(context) or not (is_git_url(context) or is_http_url(context))


def default_dockerfile(context_dir: Path) -> Path:
    """``CONTEXT/Dockerfile``, or ``CONTEXT/dockerfile`` when only that one exists."""
    path = context_dir / "Dockerfile"
    if not path.exists() and (context_dir / "dockerfile").exists():
        return context_dir / "dockerfile"
    return path


def _read_dockerfile(options: BuildOptions, context_dir: Path) -> tuple[str, bytes, Path | None]:
    """(display name, content, path for `<Dockerfile>.dockerignore` lookup)."""
    if options.dockerfile == "-":
        return "Dockerfile", sys.stdin.buffer.read(), None
    path = Path(options.dockerfile) if options.dockerfile else default_dockerfile(context_dir)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ContextError(
            f"failed to read dockerfile: open {path}: {err.strerror or err}"
        ) from None
    return path.name, data, path


def _build_remote(
    options: BuildOptions,
    *,
    root: Path,
    build_args: tuple[tuple[str, str], ...],
    sink: EventSink,
) -> BuildResult:
    """A git, tarball or Dockerfile URL, or stdin: fetched into the store, then built."""
    # lazy: a local context never loads the fetch code or opens the store here
    from builder.context.prepare import prepare
    from builder.store import Store

    # A remote or streamed context lives in the store (git/ and tmp/): hold the store lease
    # from the fetch to the end of the build, so that a concurrent prune leaves it alone.
    store = Store.open(root)
    with store.lease():
        keep = parse_bool(dict(build_args).get("BUILDKIT_CONTEXT_KEEP_GIT_DIR", "")) is True
        n = 1  # the first vertex; the build's own vertices follow it
        sink.emit(
            VertexStarted(
                vertex=n, name=f"[internal] load remote build context {_display(options)}"
            )
        )
        try:
            with phase("fetch the build context"):
                prepared = prepare(
                    options.context, options.dockerfile, store_root=root, keep_git_dir=keep
                )
        except BuildError as err:
            sink.emit(VertexDone(vertex=n, error=err.message))
            raise
        sink.emit(VertexDone(vertex=n))
        try:
            given = _Input(
                directory=prepared.directory,
                name=prepared.dockerfile_name,
                data=prepared.dockerfile,
                path=prepared.dockerfile_path,
                reusable=prepared.reusable,
            )
            return _build_prepared(
                options, given, root=root, build_args=build_args, sink=sink, vertex_offset=n
            )
        finally:
            prepared.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Input:
    """The context directory and the Dockerfile of one build."""

    directory: Path
    name: str  # the Dockerfile's display name
    data: bytes
    path: Path | None  # for the <Dockerfile>.dockerignore lookup and no-op records
    reusable: bool = True  # the same input gives the same directory (no-op records may apply)


def _display(options: BuildOptions) -> str:
    # lazy: only remote contexts name a URL
    from builder.urls import redact

    return "from stdin" if options.context == "-" else redact(options.context)


def _build_prepared(
    options: BuildOptions,
    prepared: _Input,
    *,
    root: Path,
    build_args: tuple[tuple[str, str], ...],
    sink: EventSink,
    vertex_offset: int = 0,
) -> BuildResult:
    name, data = prepared.name, prepared.data
    dockerfile_path = prepared.path
    context_dir = prepared.directory
    request = None
    if prepared.reusable:
        request = _noop_request(options, root, context_dir, dockerfile_path, build_args)
    if request is None:
        plain = _build(
            options,
            sink=sink,
            name=name,
            data=data,
            dockerfile_path=dockerfile_path,
            context_dir=context_dir,
            build_args=build_args,
            vertex_offset=vertex_offset,
        )
        return plain.result
    # lazy: builds with --pull or a Dockerfile on stdin skip the no-op check
    from builder.engine import noop

    # Scanned before anything reads the context: a change made during the build shows next time.
    with phase("no-op check (context scan, record)"):
        seen = noop.observe(request, data)
        found = None if options.no_cache else noop.check(request, seen)
    if found is not None:
        hit, events = found
        timings.note("no-op record matched: progress replayed, nothing else ran")
        noop.replay(events, sink)
        # lazy: the engine is not loaded when a no-op record answers the build
        from builder.engine.results import StepResult

        return BuildResult(
            image_id=Digest.parse(hit.image_id),
            digest=Digest.parse(hit.digest),
            tags=hit.tags,
            steps=tuple(
                StepResult(
                    stage=stage,
                    text=text,
                    cached=True,
                    layer=Digest.parse(layer),
                    diff_id=Digest.parse(diff_id),
                    duration=0.0,
                )
                for stage, text, layer, diff_id in hit.steps
            ),
        )
    noop.forget(request)  # whatever this build ends as, the old record no longer holds
    recorder = noop.Recorder(sink=sink)
    built = _build(
        options,
        sink=recorder,
        name=name,
        data=data,
        dockerfile_path=dockerfile_path,
        context_dir=context_dir,
        build_args=build_args,
        vertex_offset=vertex_offset,
    )
    if built.outcome is not None:
        with phase("no-op record write"):
            written = noop.record(request, seen, built.outcome, recorder)
        timings.note("no-op record written" if written else "no no-op record written")
    return built.result


@dataclass(frozen=True, slots=True, kw_only=True)
class _Built:
    result: BuildResult
    outcome: noop.Outcome | None  # None when no no-op record may describe this build


def _build(
    options: BuildOptions,
    *,
    sink: EventSink,
    name: str,
    data: bytes,
    dockerfile_path: Path | None,
    context_dir: Path,
    build_args: tuple[tuple[str, str], ...],
    vertex_offset: int = 0,
) -> _Built:
    with phase("imports: parser, planner, engine"):
        # lazy: the build machinery loads after the no-op check (builder.engine.noop)
        from builder.context.local import LocalContext
        from builder.engine.reaper import reap
        from builder.engine.scheduler import EngineSettings, Scheduler, final_image, timestamp
        from builder.engine.secrets import secret_store
        from builder.engine.ssh import ssh_agents
        from builder.oci.descriptor import Platform
        from builder.plan import PlanRequest, entitlements, plan
        from builder.reference import parse as parse_ref
        from builder.runtime.network import BuildNetworks
        from builder.store import Store, default_store_root
        from builder.store.paths import CONTEXTS
        from builder.syntax.parser import parse
        from builder.syntax.transform import analyze
        from builder.units import human_size

    for tag in options.tags:
        parse_ref(tag)  # reject a bad -t before doing any work
    vertices = Vertices(sink)
    vertices.counter.value = vertex_offset  # after "[internal] load remote build context"
    text = data.decode("utf-8", "surrogateescape")
    n = vertices.run(
        f"[internal] load build definition from {name}",
        f"transferring dockerfile: {human_size(len(data))} done",
    )
    try:
        with phase("parse"):
            ast = parse(text, path=name)
            analysis = analyze(ast)
        if analysis.errors or analysis.dockerfile is None:
            raise analysis.errors[0]
        dockerfile = analysis.dockerfile
    except BuildError as err:
        sink.emit(VertexDone(vertex=n, error=str(err)))
        raise
    sink.emit(VertexDone(vertex=n))

    store = Store.open(Path(options.root) if options.root else default_store_root())
    if os.geteuid() == 0:  # only root makes mounts and runtime containers
        with phase("start-up reaper"):
            reap(store.root)
    platform = Platform.parse(options.platform) if options.platform else Platform.host()
    epoch = source_date_epoch(options)
    with store.lease(), BuildNetworks() as networks, ssh_agents(options.ssh) as ssh:
        n = vertices.run("[internal] load .dockerignore")
        with phase("context open (.dockerignore)"):
            context = LocalContext.open(
                context_dir, dockerfile_path, state_dir=store.root / CONTEXTS
            )
        sink.emit(VertexDone(vertex=n))
        importer: CacheImporter | None = None
        try:
            resolver = StoreResolver(store, pull=options.pull, vertices=vertices)
            images = _named_contexts(options, resolver, store, epoch)
            request = PlanRequest(
                build_args=build_args,
                target=options.target,
                platform=platform,
                build_platform=Platform.host(),
                labels=options.labels,
                no_cache=options.no_cache,
                platform_explicit=options.platform is not None,
                named_contexts=images.keys if images is not None else frozenset(),
            )
            checks = _check_inputs(options, build_args, platform, context.matcher, store)
            try:
                with phase("plan (base images resolved)"):
                    build_plan = plan(dockerfile, request, images or resolver)
            except BuildError:
                _lint(ast, analysis, checks, sink, fail=False)  # shown before the error
                raise
            reachable = frozenset(stage.index for stage in build_plan.stages)
            with phase("lint"):
                _lint(ast, analysis, replace(checks, reachable=reachable), sink)
            entitlements.check(
                build_plan,
                entitlements.parse_entitlements(options.allow),
                default_network=options.network,
            )
            for warning in build_plan.warnings:
                sink.emit(Warning_(message=warning.message))
            identity = f"{context.root}\0{dockerfile_path or name}"
            if options.cache_from:
                # lazy: only builds given --cache-from or --cache-to load it
                from builder.engine import remotecache

                importer = remotecache.import_caches(options.cache_from, store, vertices)
            scheduler = Scheduler(
                store=store,
                images=images or resolver,
                context=context,
                sink=sink,
                settings=EngineSettings(
                    no_cache=options.no_cache,
                    network=options.network,
                    memory=options.memory,
                    cpus=options.cpus,
                    pids_limit=options.pids_limit or None,
                    source_date_epoch=epoch,
                    secrets=secret_store(options.secrets),
                    ssh=ssh if options.ssh else None,
                    cache_from=importer,
                ),
                machinery=lambda: open_machinery(
                    store, runtime=options.runtime, deferred_deletes=True
                ),
                identity=identity,
                counter=vertices.counter,
                networks=networks,
            )
            with phase("steps"):
                result = scheduler.run(build_plan)
            built_layers = result.layers
            if options.squash:
                result = _squashed(scheduler, build_plan, result, epoch)
            n = vertices.run("exporting to image")
            with phase("export (config, manifest, index write)"):
                created = timestamp(epoch) if epoch is not None else None
                image = final_image(result, created=created)
                names = tuple(str(parse_ref(t)) for t in options.tags)
                record = store.write_image(image, names)
            sink.emit(VertexStatus(vertex=n, text="exporting layers done"))
            sink.emit(VertexStatus(vertex=n, text=f"writing image {image.id} done"))
            for tag in record.names:
                sink.emit(VertexStatus(vertex=n, text=f"naming to {tag} done"))
            sink.emit(VertexDone(vertex=n))
            if options.cache_to:
                # lazy: only builds given --cache-from or --cache-to load it
                from builder.engine import remotecache

                remotecache.export_caches(
                    options.cache_to,
                    store,
                    vertices,
                    scheduler.cache_records,
                    built=built_layers,
                    steps=tuple(_steps(build_plan)),
                    created=timestamp(),
                )
        finally:
            context.close()
            if importer is not None:  # after the image: imported layers are fetched when read
                importer.close()
    steps = scheduler.step_results(build_plan)
    built = BuildResult(image_id=image.id, digest=image.digest, tags=record.names, steps=steps)
    outcome = None
    if not _fetches_remote(build_plan):
        # lazy: builds with --pull or a Dockerfile on stdin skip the no-op check
        from builder.engine.noop import Outcome

        hits = scheduler.cache_records
        outcome = Outcome(
            image_id=str(image.id),
            digest=str(image.digest),
            tags=record.names,
            bases=tuple(sorted((k, str(v)) for k, v in resolver.bases.items())),
            cache_keys=tuple(key.hex for key, _ in hits),
            blobs=tuple(sorted({d.hex for _, roots in hits for d in roots})),
            uses_context=_reads_context(build_plan),
            steps=tuple((s.stage, s.text, str(s.layer), str(s.diff_id)) for s in steps),
        )
    return _Built(result=built, outcome=outcome)


def _named_contexts(
    options: BuildOptions, resolver: StoreResolver, store: Store, epoch: int | None
) -> NamedContexts | None:
    """``--build-context``: a resolver answering them before ``resolver`` (None without)."""
    if not options.build_contexts:
        return None
    # lazy: only builds given --build-context load it
    from builder.engine.named import NamedContexts, parse_build_context

    return NamedContexts(
        resolver,
        [parse_build_context(text) for text in options.build_contexts],
        store=store,
        sink=resolver.vertices.sink,
        next_vertex=resolver.vertices.counter.next,
        source_date_epoch=epoch,
    )


def _squashed(
    scheduler: Scheduler, build_plan: BuildPlan, result: StageResult, epoch: int | None
) -> StageResult:
    """``--squash``: the target stage with its layers above its base folded into one."""
    # lazy: only --squash loads it
    from builder.engine.scheduler import final_image, timestamp
    from builder.engine.squash import squash
    from builder.plan import ImageBase

    stage = next(s for s in build_plan.stages if s.index == build_plan.target_index)
    base = stage.base
    created = timestamp(epoch) if epoch is not None else None
    with phase("squash"):
        return squash(
            scheduler.store,
            scheduler.snapshotter,
            result,
            unsquashed_id=final_image(result, created=created).id,
            base=str(base.resolved.digest) if isinstance(base, ImageBase) else "",
            source_date_epoch=epoch,
        )


def _check_inputs(
    options: BuildOptions,
    build_args: tuple[tuple[str, str], ...],
    platform: Platform,
    matcher: PatternMatcher | None,
    store: Store,
) -> LintInputs:
    # lazy: the build machinery loads after the no-op check (builder.engine.noop), not at import
    from builder.engine.checks import base_images
    from builder.lint.inputs import LintInputs
    from builder.oci.descriptor import Platform

    args = dict(build_args)
    return LintInputs(
        check=args.get(CHECK_ARG),
        build_args=args,
        target=options.target,
        target_platform=platform,
        build_platform=Platform.host(),
        ignore=matcher,
        base_image=base_images(store),
    )


def _lint(
    ast: AST, analysis: Analysis, inputs: LintInputs, sink: EventSink, *, fail: bool = True
) -> None:
    """Emit the build-check warnings (BuildKit's short form); raise when they fail the build."""
    # lazy: the build machinery loads after the no-op check (builder.engine.noop), not at import
    from builder.lint.config import CheckOptionError
    from builder.lint.runner import lint

    try:
        result = lint(ast, analysis, inputs)
    except CheckOptionError as err:
        where = f"build-arg:{CHECK_ARG}" if inputs.check is not None else "check options"
        raise DockerfileError(f"failed to parse {where}: {err.message}") from None
    for finding in result.findings:
        line = f" (line {finding.span.line})" if finding.span is not None else ""
        sink.emit(Warning_(message=f"{finding.rule}: {finding.message}{line}"))
    failure = result.failure()
    if fail and failure is not None:
        raise DockerfileError(failure, span=result.findings[0].span)


def _steps(build_plan: BuildPlan) -> Iterator[Step]:
    for stage in build_plan.stages:
        yield from stage.steps


def _reads_context(build_plan: BuildPlan) -> bool:
    # lazy: the build machinery loads after the no-op check (builder.engine.noop), not at import
    from builder.plan import FromContext

    return any(
        isinstance(source, FromContext)
        for step in _steps(build_plan)
        for source in step.input_sources
    )


def _fetches_remote(build_plan: BuildPlan) -> bool:
    """ADD of a URL or git source: its content is only known by fetching it."""
    # lazy: the build machinery loads after the no-op check (builder.engine.noop), not at import
    from builder.plan import CopyStep, GitSource, UrlSource

    return any(
        isinstance(step, CopyStep)
        and any(isinstance(src, UrlSource | GitSource) for src in step.sources)
        for step in _steps(build_plan)
    )
