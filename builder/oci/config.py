"""The image configuration document (OCI image config, Docker casing inside ``config``).

Empty values are omitted when serialised (Go's ``omitempty``), so an empty tuple and an absent
field are the same thing. Fields this model does not know are kept in ``extra`` and written back.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace

from builder.digest import Digest
from builder.errors import StoreError
from builder.oci._json import (
    Extra,
    as_object,
    canonical_json,
    extra_of,
    get_bool,
    get_key_set,
    get_list,
    get_opt_int,
    get_opt_str,
    get_str,
    get_str_map,
    get_str_tuple,
    load_object,
    put_extra,
)

MAX_CONFIG_BYTES = 20 * 1024 * 1024  # containerd's importer jsonLimit


def format_created(epoch_seconds: int) -> str:
    """RFC 3339 UTC timestamp as Go writes ``time.Time`` (``1970-01-01T00:00:00Z``)."""
    t = datetime.datetime.fromtimestamp(epoch_seconds, tz=datetime.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True, kw_only=True)
class Healthcheck:
    """``HEALTHCHECK``; durations are nanoseconds as in Docker's JSON."""

    test: tuple[str, ...] = ()
    interval: int | None = None
    timeout: int | None = None
    start_period: int | None = None
    start_interval: int | None = None
    retries: int | None = None
    extra: Extra = ()

    _KEYS = (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start_period", "StartPeriod"),
        ("start_interval", "StartInterval"),
        ("retries", "Retries"),
    )
    _KNOWN = frozenset({"Test", *(k for _, k in _KEYS)})

    @classmethod
    def from_json(cls, value: object, what: str) -> Healthcheck:
        d = as_object(value, what)
        return cls(
            test=get_str_tuple(d, "Test", what),
            interval=get_opt_int(d, "Interval", what),
            timeout=get_opt_int(d, "Timeout", what),
            start_period=get_opt_int(d, "StartPeriod", what),
            start_interval=get_opt_int(d, "StartInterval", what),
            retries=get_opt_int(d, "Retries", what),
            extra=extra_of(d, cls._KNOWN),
        )

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.test:
            out["Test"] = list(self.test)
        for attr, key in self._KEYS:
            value = getattr(self, attr)
            if value:
                out[key] = value
        put_extra(out, self.extra)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerConfig:
    """The ``config`` object: how to run the image (Docker's field names)."""

    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    working_dir: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    stop_signal: str = ""
    args_escaped: bool = False
    healthcheck: Healthcheck | None = None
    on_build: tuple[str, ...] = ()
    shell: tuple[str, ...] = ()
    extra: Extra = ()

    _KNOWN = frozenset(
        {
            "User",
            "ExposedPorts",
            "Env",
            "Entrypoint",
            "Cmd",
            "Volumes",
            "WorkingDir",
            "Labels",
            "StopSignal",
            "ArgsEscaped",
            "Healthcheck",
            "OnBuild",
            "Shell",
        }
    )

    def env_value(self, name: str) -> str | None:
        """The value of ``name`` in ``Env`` (last one wins), or None."""
        found: str | None = None
        for item in self.env:
            key, _, value = item.partition("=")
            if key == name:
                found = value
        return found

    def with_env(self, name: str, value: str) -> ContainerConfig:
        """Set ``name=value``, replacing an existing entry in place (Docker keeps the order)."""
        entry = f"{name}={value}"
        env = list(self.env)
        for i, item in enumerate(env):
            if item.partition("=")[0] == name:
                env[i] = entry
                return replace(self, env=tuple(env))
        return replace(self, env=(*env, entry))

    @classmethod
    def from_json(cls, value: object, what: str) -> ContainerConfig:
        d = as_object(value, what)
        health = d.get("Healthcheck")
        return cls(
            user=get_str(d, "User", what),
            exposed_ports=get_key_set(d, "ExposedPorts", what),
            env=get_str_tuple(d, "Env", what),
            entrypoint=get_str_tuple(d, "Entrypoint", what),
            cmd=get_str_tuple(d, "Cmd", what),
            volumes=get_key_set(d, "Volumes", what),
            working_dir=get_str(d, "WorkingDir", what),
            labels=get_str_map(d, "Labels", what),
            stop_signal=get_str(d, "StopSignal", what),
            args_escaped=get_bool(d, "ArgsEscaped", what),
            healthcheck=None
            if health is None
            else Healthcheck.from_json(health, f"{what} Healthcheck"),
            on_build=get_str_tuple(d, "OnBuild", what),
            shell=get_str_tuple(d, "Shell", what),
            extra=extra_of(d, cls._KNOWN),
        )

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.user:
            out["User"] = self.user
        if self.exposed_ports:
            out["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.env:
            out["Env"] = list(self.env)
        if self.entrypoint:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            out["Cmd"] = list(self.cmd)
        if self.volumes:
            out["Volumes"] = {v: {} for v in self.volumes}
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.args_escaped:
            out["ArgsEscaped"] = True
        if self.healthcheck is not None:
            out["Healthcheck"] = self.healthcheck.to_json()
        if self.on_build:
            out["OnBuild"] = list(self.on_build)
        if self.shell:
            out["Shell"] = list(self.shell)
        put_extra(out, self.extra)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class History:
    created: str | None = None
    created_by: str = ""
    author: str = ""
    comment: str = ""
    empty_layer: bool = False
    extra: Extra = ()

    _KNOWN = frozenset({"created", "created_by", "author", "comment", "empty_layer"})

    @classmethod
    def from_json(cls, value: object, what: str) -> History:
        d = as_object(value, what)
        return cls(
            created=get_opt_str(d, "created", what),
            created_by=get_str(d, "created_by", what),
            author=get_str(d, "author", what),
            comment=get_str(d, "comment", what),
            empty_layer=get_bool(d, "empty_layer", what),
            extra=extra_of(d, cls._KNOWN),
        )

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.created is not None:
            out["created"] = self.created
        if self.created_by:
            out["created_by"] = self.created_by
        if self.author:
            out["author"] = self.author
        if self.comment:
            out["comment"] = self.comment
        if self.empty_layer:
            out["empty_layer"] = True
        put_extra(out, self.extra)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageConfig:
    """The whole config blob: platform, creation data, run config, rootfs diff_ids, history."""

    architecture: str = "amd64"
    os: str = "linux"
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()
    created: str | None = None
    author: str = ""
    config: ContainerConfig = field(default_factory=ContainerConfig)
    diff_ids: tuple[Digest, ...] = ()
    history: tuple[History, ...] = ()
    extra: Extra = ()
    rootfs_extra: Extra = ()

    _KNOWN = frozenset(
        {
            "architecture",
            "os",
            "variant",
            "os.version",
            "os.features",
            "created",
            "author",
            "config",
            "rootfs",
            "history",
        }
    )

    @classmethod
    def from_bytes(cls, data: bytes, *, what: str = "image config") -> ImageConfig:
        d = load_object(data, what, limit=MAX_CONFIG_BYTES)
        rootfs = as_object(d.get("rootfs", {"type": "layers"}), f"{what} rootfs")
        rootfs_type = get_str(rootfs, "type", f"{what} rootfs")
        if rootfs_type != "layers":
            raise StoreError(f"{what}: unsupported rootfs type {rootfs_type!r}")
        diff_ids: list[Digest] = []
        for i, raw in enumerate(get_list(rootfs, "diff_ids", f"{what} rootfs")):
            if not isinstance(raw, str):
                raise StoreError(f"{what}: rootfs diff_id {i} must be a string")
            try:
                diff_ids.append(Digest.parse(raw))
            except StoreError as exc:
                raise StoreError(f"{what}: rootfs diff_id {i}: {exc.message}") from None
        config = d.get("config")
        return cls(
            architecture=get_str(d, "architecture", what),
            os=get_str(d, "os", what),
            variant=get_str(d, "variant", what),
            os_version=get_str(d, "os.version", what),
            os_features=get_str_tuple(d, "os.features", what),
            created=get_opt_str(d, "created", what),
            author=get_str(d, "author", what),
            config=ContainerConfig()
            if config is None
            else ContainerConfig.from_json(config, f"{what} config"),
            diff_ids=tuple(diff_ids),
            history=tuple(
                History.from_json(h, f"{what} history {i}")
                for i, h in enumerate(get_list(d, "history", what))
            ),
            extra=extra_of(d, cls._KNOWN),
            rootfs_extra=extra_of(rootfs, frozenset({"type", "diff_ids"})),
        )

    def to_json(self) -> dict[str, object]:
        rootfs: dict[str, object] = {
            "type": "layers",
            "diff_ids": [str(d) for d in self.diff_ids],
        }
        put_extra(rootfs, self.rootfs_extra)
        out: dict[str, object] = {
            "architecture": self.architecture,
            "os": self.os,
            "config": self.config.to_json(),
            "rootfs": rootfs,
        }
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        if self.created is not None:
            out["created"] = self.created
        if self.author:
            out["author"] = self.author
        if self.history:
            out["history"] = [h.to_json() for h in self.history]
        put_extra(out, self.extra)
        return out

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())
