"""The values a build plan is made of: requests, bases, sources, steps, stages and the plan.

Everything here is frozen data. :func:`builder.plan.planner.plan` produces a :class:`BuildPlan`;
the scheduler walks its stages (dependencies first) and executes or reuses each step.

Step kinds:

* :class:`RunStep` runs a command in a container and produces a layer.
* :class:`CopyStep` copies files (COPY and ADD) and produces a layer.
* :class:`WorkdirStep` creates the working directory and produces a layer (BuildKit's mkdir).
* :class:`ConfigStep` only changes the image config (ENV, LABEL, CMD, ...); no layer.

A step's ``history`` is the entry BuildKit writes into the image config for it (``created`` is
left to the scheduler). ONBUILD is the one instruction BuildKit records no history for, so its
:class:`ConfigStep` has ``history=None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeAlias, assert_never

from builder.digest import Digest
from builder.errors import Diagnostic, Span
from builder.oci.types import History, ImageConfig, Platform
from builder.syntax import ir

# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedImage:
    """A base or source image: its normalised reference, manifest digest and config."""

    ref: str
    digest: Digest
    config: ImageConfig


class ImageConfigResolver(Protocol):
    """Looks an image up (local store, then registry); the planner's only way out."""

    def resolve(self, ref: str, platform: Platform) -> ResolvedImage: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRequest:
    """What the user asked for.

    ``build_args`` are ``--build-arg`` pairs in order (a repeated name: the last one wins).
    ``platform`` is the target platform, ``build_platform`` the platform the build runs on.
    ``platform_explicit`` is true when the user gave ``--platform``: the target image's
    os/architecture are then set to it (BuildKit leaves them as the base image has them
    otherwise). ``named_contexts`` are the keys of the ``--build-context`` names: a stage named
    like one is replaced by it (its instructions are not run); the resolver answers the
    context for every other reference to it.
    """

    build_args: tuple[tuple[str, str], ...] = ()
    target: str | None = None
    platform: Platform
    build_platform: Platform
    labels: tuple[tuple[str, str], ...] = ()
    no_cache: bool = False
    platform_explicit: bool = False
    named_contexts: frozenset[str] = frozenset()  # --build-context keys (plan.named.context_key)


# --------------------------------------------------------------------------- bases and sources


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageBase:
    """``FROM image``: ``ref`` as written after ARG expansion."""

    ref: str
    platform: Platform
    resolved: ResolvedImage


@dataclass(frozen=True, slots=True, kw_only=True)
class StageBase:
    """``FROM <earlier stage>``."""

    index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ScratchBase:
    """``FROM scratch``."""


Base: TypeAlias = ImageBase | StageBase | ScratchBase


@dataclass(frozen=True, slots=True, kw_only=True)
class FromContext:
    """Files come from the build context (``.dockerignore`` applies)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FromStage:
    """Files come from the final filesystem of an earlier stage."""

    index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FromImage:
    """Files come from an image (``COPY --from=alpine``, ``--mount=from=alpine``)."""

    image: ResolvedImage


@dataclass(frozen=True, slots=True, kw_only=True)
class FromScratch:
    """An empty filesystem: ``--from=scratch``, and the default source of a cache mount."""


Source: TypeAlias = FromContext | FromStage | FromImage | FromScratch


# --------------------------------------------------------------------------- step parts


@dataclass(frozen=True, slots=True, kw_only=True)
class RunMount:
    """One ``RUN --mount`` after expansion, with what BuildKit derives from it.

    ``mount`` is the expanded :class:`ir.Mount` (type, readonly, sharing, mode, uid, gid, size,
    env, required, ...). ``target`` is absolute (a relative target is joined onto the working
    directory; for secret and ssh mounts it is the BuildKit default when none was given, and
    ``""`` for a secret exposed only as an environment variable or an ssh mount without
    target). ``source`` says where a bind or cache mount's files come from (``None`` for tmpfs,
    secret and ssh), ``source_path`` the absolute path inside that source. ``id`` is the cache
    id (``id`` or the cleaned target), the secret id or the ssh id; ``None`` for bind and tmpfs.
    """

    mount: ir.Mount
    target: str
    source: Source | None = None
    source_path: str = "/"
    id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFile:
    """A file to provide read-only before running (``RUN <<EOF`` whose body starts ``#!``).

    BuildKit mounts a directory holding it at ``/dev/pipes/``; ``path`` is the file's absolute
    path inside the container.
    """

    path: str
    data: str
    mode: int = 0o755


@dataclass(frozen=True, slots=True, kw_only=True)
class PathSource:
    """A COPY/ADD source path or glob (expanded, as written) in the step's file source."""

    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UrlSource:
    """An HTTP(S) file (ADD only); ``checksum`` is ``--checksum``, checked when fetched."""

    url: str
    checksum: Digest | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GitSource:
    """A git repository (ADD only), as BuildKit's ``dfgitutil.ParseGitRef`` recognises it;
    ``checksum`` is ``--checksum`` (a commit SHA or a prefix of one)."""

    url: str
    checksum: str | None = None


CopySource: TypeAlias = PathSource | UrlSource | GitSource


def source_text(source: CopySource) -> str:
    """The source as the Dockerfile wrote it (after expansion)."""
    match source:
        case PathSource():
            return source.path
        case UrlSource() | GitSource():
            return source.url
        case _:
            assert_never(source)


@dataclass(frozen=True, slots=True, kw_only=True)
class InlineFile:
    """A heredoc source of COPY/ADD: a file ``name`` with ``data`` (already expanded)."""

    name: str
    data: str
    mode: int = 0o644


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True, slots=True, kw_only=True)
class _StepBase:
    """``text`` is the instruction as written (keyword upper-cased), ``onbuild`` marks a
    trigger inherited from the base image."""

    span: Span
    text: str
    onbuild: bool = False

    @property
    def input_sources(self) -> tuple[Source, ...]:
        """Content inputs the scheduler passes to :func:`cache_key`, in this order."""
        return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStep(_StepBase):
    """``args`` is the argv (SHELL prepended for the shell form); ``env`` what the process
    sees (image ENV, ARGs in scope, then proxy build-args not declared as ARG); ``cache_env``
    is ``env`` without those undeclared proxy values. ``user`` ``""`` means root."""

    history: History
    args: tuple[str, ...]
    env: tuple[str, ...]
    cache_env: tuple[str, ...]
    user: str
    workdir: str
    mounts: tuple[RunMount, ...] = ()
    network: str = "default"
    security: str = "sandbox"
    devices: tuple[ir.Device, ...] = ()
    heredoc_files: tuple[RunFile, ...] = ()
    hostname: str = "buildkitsandbox"

    @property
    def input_sources(self) -> tuple[Source, ...]:
        """The sources of bind mounts (and cache mounts' ``from=``) that read a context or
        stage, in mount order."""
        out: list[Source] = []
        for m in self.mounts:
            kind = m.mount.type
            if kind in (ir.MountType.BIND, ir.MountType.CACHE) and isinstance(
                m.source, FromContext | FromStage
            ):
                out.append(m.source)
        return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class CopyStep(_StepBase):
    """COPY (``is_add`` false) or ADD. ``dest`` is expanded but not joined with ``workdir``.

    ``sources`` are the expanded sources, classified by kind (the planner has checked them),
    ``inline_files`` the heredoc sources.
    ``unpack`` is ``None`` when ``--unpack`` was not given (BuildKit: local archives are
    unpacked by ADD, remote ones are not).
    """

    history: History
    is_add: bool
    sources: tuple[CopySource, ...]
    dest: str
    workdir: str
    source: Source
    inline_files: tuple[InlineFile, ...] = ()
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    parents: bool = False
    excludes: tuple[str, ...] = ()
    unpack: bool | None = None
    keep_git_dir: bool | None = None

    @property
    def input_sources(self) -> tuple[Source, ...]:
        return (self.source,)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkdirStep(_StepBase):
    """Create ``path`` (absolute, cleaned) with parents, owned by ``user`` (``""``: root)."""

    history: History
    path: str
    user: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigStep(_StepBase):
    """A metadata-only instruction; its effect is already in the stage's config."""

    history: History | None
    instruction: str  # the keyword, upper case


Step: TypeAlias = RunStep | CopyStep | WorkdirStep | ConfigStep


# --------------------------------------------------------------------------- stages and plan


@dataclass(frozen=True, slots=True, kw_only=True)
class StagePlan:
    """One stage, ready to run.

    ``config`` is the image config this stage ends with, as BuildKit writes it: the base
    config (``created`` cleared, OnBuild not inherited) with every change of the stage, its
    ``history`` extended by every step's entry. Its ``diff_ids`` are the base's only: the
    scheduler appends a diff ID per executed layer step and sets the timestamps.
    ``display_name`` is BuildKit's progress name (``build``, ``stage-2``, or ``""`` when the
    Dockerfile has a single stage).
    """

    index: int
    name: str | None
    display_name: str
    base: Base
    platform: Platform
    steps: tuple[Step, ...]
    config: ImageConfig
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildPlan:
    """The stages the target needs, dependencies first; ``dependencies`` maps every planned
    stage index to the planned stages it needs (its base stage and ``--from`` stages)."""

    stages: tuple[StagePlan, ...]
    target_index: int
    dependencies: tuple[tuple[int, tuple[int, ...]], ...]
    warnings: tuple[Diagnostic, ...] = ()

    @property
    def target(self) -> StagePlan:
        return self.stage(self.target_index)

    def stage(self, index: int) -> StagePlan:
        for s in self.stages:
            if s.index == index:
                return s
        raise KeyError(index)

    def deps_of(self, index: int) -> tuple[int, ...]:
        for i, deps in self.dependencies:
            if i == index:
                return deps
        return ()


__all__ = [
    "Base",
    "BuildPlan",
    "ConfigStep",
    "CopySource",
    "CopyStep",
    "FromContext",
    "FromImage",
    "FromScratch",
    "FromStage",
    "GitSource",
    "ImageBase",
    "ImageConfigResolver",
    "InlineFile",
    "PathSource",
    "PlanRequest",
    "ResolvedImage",
    "RunFile",
    "RunMount",
    "RunStep",
    "ScratchBase",
    "Source",
    "StageBase",
    "StagePlan",
    "Step",
    "UrlSource",
    "WorkdirStep",
    "source_text",
]
