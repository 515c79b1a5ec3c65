"""The typed, validated form of a Dockerfile: what BuildKit's ``instructions`` package produces.

One frozen dataclass per instruction, built from the syntax tree by
:func:`builder.syntax.transform.to_ir`. Values are the raw words of the Dockerfile: nothing is
variable-expanded here (BuildKit expands when a step is dispatched; see
:mod:`builder.syntax.substitute`). Flags are parsed and validated: booleans are ``bool``,
durations are nanoseconds, ``RUN --mount`` values are :class:`Mount` records.

Every node carries a :class:`~builder.errors.Span` so that later errors can point at it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

from builder.errors import Diagnostic, Span
from builder.syntax.tree import Directive

# --------------------------------------------------------------------------- shared records


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyValue:
    """One ``key=value`` of ENV or LABEL; ``legacy`` for the ``ENV key value`` form."""

    key: str
    value: str
    legacy: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ArgDecl:
    """One name of an ARG instruction; ``default`` is ``None`` when no ``=`` was given."""

    key: str
    default: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InlineFile:
    """A heredoc of RUN (BuildKit's ``ShellInlineFile``): ``data`` is the body as written."""

    name: str
    data: str
    chomp: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class InlineSource:
    """A heredoc used as a COPY/ADD source (BuildKit's ``SourceContent``).

    ``path`` is the heredoc name (the file name it gets), ``data`` the body with leading tabs
    already removed for ``<<-``, ``expand`` whether variables in it are expanded (the delimiter
    was not quoted).
    """

    path: str
    data: str
    expand: bool = True


class MountType(enum.StrEnum):
    BIND = "bind"
    CACHE = "cache"
    TMPFS = "tmpfs"
    SECRET = "secret"
    SSH = "ssh"


class ShareMode(enum.StrEnum):
    SHARED = "shared"
    PRIVATE = "private"
    LOCKED = "locked"


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    """One ``RUN --mount=...`` (BuildKit's ``instructions.Mount``).

    ``None`` means "not given"; the defaults BuildKit applies when it runs the step are:
    cache ``id`` = target, ``sharing`` = shared, cache ``mode`` 0755, secret ``mode`` 0400,
    ssh ``mode`` 0600, ``uid``/``gid`` 0, secret target ``/run/secrets/<id>``, ssh id
    ``default``. ``readonly`` is already resolved: read-only by default except for cache and
    tmpfs mounts.

    ``spec`` is the flag value as written. ``dynamic`` is true when some option value may change
    under variable expansion; such options are checked again, after expansion, by
    :func:`builder.syntax.substitute.substitute`.
    """

    spec: str
    type: MountType = MountType.BIND
    from_: str | None = None
    source: str | None = None
    target: str | None = None
    readonly: bool = True
    size_limit: int = 0
    id: str | None = None
    sharing: ShareMode | None = None
    required: bool = False
    env: str | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    dynamic: bool = False

    @property
    def cache_id(self) -> str | None:
        """The cache key of a cache mount: ``id``, else the target."""
        return self.id or self.target

    @property
    def share_mode(self) -> ShareMode:
        return self.sharing or ShareMode.SHARED


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    """One ``RUN --device=name[,required]`` (BuildKit's ``instructions.Device``)."""

    name: str
    required: bool = False


class NetworkMode(enum.StrEnum):
    DEFAULT = "default"
    NONE = "none"
    HOST = "host"


class SecurityMode(enum.StrEnum):
    SANDBOX = "sandbox"
    INSECURE = "insecure"


# --------------------------------------------------------------------------- instructions


@dataclass(frozen=True, slots=True, kw_only=True)
class _Base:
    span: Span
    keyword: str  # as written (BuildKit's Name())
    original: str  # the instruction text, trimmed (BuildKit's String())


@dataclass(frozen=True, slots=True, kw_only=True)
class From(_Base):
    base: str
    stage_name: str | None = None  # lower-cased, validated
    platform: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Run(_Base):
    """``command`` is one string when ``prepend_shell`` (shell form), else the exec argv.

    ``breaks``: where the source continued a shell-form command on its next line, as offsets
    into the command (the escape-newline is not part of it). Only ``pybuild fmt`` uses them, to
    keep the command's lines as written; the same on CMD, ENTRYPOINT and HEALTHCHECK CMD.
    """

    command: tuple[str, ...]
    prepend_shell: bool
    breaks: tuple[int, ...] = ()
    heredocs: tuple[InlineFile, ...] = ()
    mounts: tuple[Mount, ...] = ()
    network: NetworkMode = NetworkMode.DEFAULT
    security: SecurityMode = SecurityMode.SANDBOX
    devices: tuple[Device, ...] = ()
    flags_used: tuple[str, ...] = ()  # flag names given, in order of first use


@dataclass(frozen=True, slots=True, kw_only=True)
class Cmd(_Base):
    command: tuple[str, ...]
    prepend_shell: bool
    breaks: tuple[int, ...] = ()  # see Run


@dataclass(frozen=True, slots=True, kw_only=True)
class Entrypoint(_Base):
    command: tuple[str, ...]
    prepend_shell: bool
    breaks: tuple[int, ...] = ()  # see Run


@dataclass(frozen=True, slots=True, kw_only=True)
class Copy(_Base):
    sources: tuple[str, ...]  # file paths (globs), not heredocs
    dest: str
    heredocs: tuple[InlineSource, ...] = ()
    from_: str | None = None
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    parents: bool = False
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Add(_Base):
    sources: tuple[str, ...]
    dest: str
    heredocs: tuple[InlineSource, ...] = ()
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    exclude: tuple[str, ...] = ()
    checksum: str | None = None
    keep_git_dir: bool | None = None  # None: not given
    unpack: bool | None = None  # None: not given (BuildKit decides by source kind)


@dataclass(frozen=True, slots=True, kw_only=True)
class Env(_Base):
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Arg(_Base):
    args: tuple[ArgDecl, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Label(_Base):
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Expose(_Base):
    ports: tuple[str, ...]  # sorted as raw strings, as BuildKit does


@dataclass(frozen=True, slots=True, kw_only=True)
class Volume(_Base):
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class User(_Base):
    user: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Workdir(_Base):
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Shell(_Base):
    shell: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Healthcheck(_Base):
    """``test`` is ``("NONE",)``, ``("CMD", argv...)`` or ``("CMD-SHELL", command)``.

    Durations are nanoseconds; 0 means "not set" (inherit or use the default), as in the image
    config. ``retries`` 0 likewise. ``breaks`` are those of the ``CMD-SHELL`` command (see Run).
    """

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0
    breaks: tuple[int, ...] = ()

    @property
    def disabled(self) -> bool:
        return self.test == ("NONE",)


@dataclass(frozen=True, slots=True, kw_only=True)
class StopSignal(_Base):
    signal: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Maintainer(_Base):
    maintainer: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OnBuild(_Base):
    """``expression`` is the trigger as stored in the image config (heredoc bodies appended).

    ``trigger`` is the trigger parsed as an instruction, or ``None`` when it would fail: BuildKit
    only parses it in the build that uses this image, so that failure is a warning here.
    """

    expression: str
    trigger: Instruction | None = None


Instruction: TypeAlias = (
    From
    | Run
    | Cmd
    | Entrypoint
    | Copy
    | Add
    | Env
    | Arg
    | Label
    | Expose
    | Volume
    | User
    | Workdir
    | Shell
    | Healthcheck
    | StopSignal
    | Maintainer
    | OnBuild
)


# --------------------------------------------------------------------------- file level


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    """A FROM and the instructions up to the next FROM.

    ``name`` is the lower-cased ``AS`` name (or ``None``), ``index`` the position among stages
    (``COPY --from=0``), ``base`` the raw image or stage reference, ``platform`` the raw
    ``--platform`` value.
    """

    name: str | None
    base: str
    platform: str | None
    instructions: tuple[Instruction, ...]
    span: Span
    index: int = 0
    from_: From | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Dockerfile:
    path: str
    stages: tuple[Stage, ...]
    global_args: tuple[Arg, ...] = ()  # ARGs before the first FROM
    directives: tuple[Directive, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()  # warnings from parsing and instruction checks
    escape: str = "\\"

    def stage(self, name: str) -> Stage | None:
        """The stage named ``name`` (case-insensitive), else ``None``.

        When two stages share the name (a DuplicateStageName warning), the last one, as in
        BuildKit.
        """
        lower = name.lower()
        for stage in reversed(self.stages):
            if stage.name == lower:
                return stage
        return None


__all__ = [
    "Add",
    "Arg",
    "ArgDecl",
    "Cmd",
    "Copy",
    "Device",
    "Dockerfile",
    "Entrypoint",
    "Env",
    "Expose",
    "From",
    "Healthcheck",
    "InlineFile",
    "InlineSource",
    "Instruction",
    "KeyValue",
    "Label",
    "Maintainer",
    "Mount",
    "MountType",
    "NetworkMode",
    "OnBuild",
    "Run",
    "SecurityMode",
    "ShareMode",
    "Shell",
    "Stage",
    "StopSignal",
    "User",
    "Volume",
    "Workdir",
]
