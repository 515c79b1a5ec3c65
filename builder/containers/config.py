"""``docker run``'s rules for turning an image config and the command line into a container
config (pure: no processes, no files but ``--env-file``).

- argv: ENTRYPOINT + (the command line's CMD, else the image's CMD); ``--entrypoint`` replaces
  ENTRYPOINT and drops the image's CMD; an empty result is docker's "no command specified".
- env: the image's ENV, then ``--env-file`` lines, then ``-e`` (``-e K`` takes K from the
  caller's environment, and is dropped if unset, as docker does).
- workdir ``-w`` else WORKDIR else ``/``; user ``-u`` else USER; STOPSIGNAL else SIGTERM;
  HEALTHCHECK with docker's defaults (30s interval and timeout, 3 retries).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from builder.containers.state import Bind, Health, RestartPolicy
from builder.errors import BuildError
from builder.oci.config import ContainerConfig as ImageRunConfig

_NS = 1_000_000_000


def command(
    image: ImageRunConfig, *, entrypoint: str | None, args: Sequence[str], image_name: str
) -> tuple[str, ...]:
    ep: Sequence[str] = image.entrypoint
    cmd: Sequence[str] = image.cmd
    if entrypoint is not None:
        ep, cmd = ([entrypoint] if entrypoint else []), []
    if args:
        cmd = args
    argv = (*ep, *cmd)
    if not argv:
        raise BuildError(f"{image_name}: no command specified")
    return argv


def environment(
    image: ImageRunConfig,
    *,
    env: Sequence[str],
    env_files: Sequence[str],
    caller: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    caller_env = os.environ if caller is None else caller
    merged: dict[str, str] = {}
    for item in image.env:
        key, _, value = item.partition("=")
        merged[key] = value
    items: list[str] = []
    for path in env_files:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise BuildError(f"open {path}: {exc.strerror}") from None
        items += [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    items += list(env)
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise BuildError(f"invalid environment variable: {item}")
        if sep:
            merged[key] = value
        elif key in caller_env:
            merged[key] = caller_env[key]
    return tuple(f"{k}={v}" for k, v in merged.items())


def stop_signal(image: ImageRunConfig, override: str | None) -> str:
    text = override or image.stop_signal or "SIGTERM"
    return signal_name(text)


def signal_name(text: str) -> str:
    """``SIGTERM``, ``TERM``, ``15`` -> ``SIGTERM`` (docker accepts all three)."""
    value = text.strip().upper()
    if value.isdigit():
        try:
            return signal.Signals(int(value)).name
        except ValueError:
            raise BuildError(f"Invalid signal: {text}") from None
    name = value if value.startswith("SIG") else f"SIG{value}"
    if name not in signal.Signals.__members__:
        raise BuildError(f"Invalid signal: {text}")
    return name


def health(image: ImageRunConfig) -> Health | None:
    check = image.healthcheck
    if check is None or not check.test or check.test[0] == "NONE":
        return None
    kind, *rest = check.test
    match kind:
        case "CMD":
            test = tuple(rest)
        case "CMD-SHELL":
            test = ("/bin/sh", "-c", " ".join(rest))
        case _:
            return None

    def seconds(ns: int | None, default: float) -> float:
        return ns / _NS if ns else default

    return Health(
        test=test,
        interval=seconds(check.interval, 30.0),
        timeout=seconds(check.timeout, 30.0),
        start_period=seconds(check.start_period, 0.0),
        start_interval=seconds(check.start_interval, 5.0),
        retries=check.retries or 3,
    )


def restart_policy(text: str) -> RestartPolicy:
    name, _, count = text.partition(":")
    match name:
        case "no" | "always" | "unless-stopped":
            if count:
                raise BuildError(f"maximum retry count cannot be used with restart policy '{name}'")
            return RestartPolicy(name=name)
        case "on-failure":
            if count and not count.isdigit():
                raise BuildError(f"invalid restart policy format: {text}")
            return RestartPolicy(name=name, max_retries=int(count or 0))
        case _:
            raise BuildError(f"invalid restart policy format: {text}")


def parse_volume(text: str) -> Bind:
    """``-v HOSTDIR:CDIR[:ro|rw]`` (bind mounts only; named volumes are not supported)."""
    parts = text.split(":")
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        source, destination, mode = parts
    elif len(parts) == 2:
        (source, destination), mode = parts, "rw"
    else:
        raise BuildError(f"invalid volume specification: '{text}'")
    if not source.startswith("/"):
        raise BuildError(
            f"invalid volume specification: '{text}': only bind mounts of absolute host paths"
            " are supported"
        )
    if not destination.startswith("/"):
        raise BuildError(f"invalid volume specification: '{text}': mount path must be absolute")
    if not os.path.exists(source):
        raise BuildError(f"invalid mount config: bind source path does not exist: {source}")
    return Bind(source=source, destination=destination, readonly=mode == "ro")


def parse_mount(text: str) -> Bind:
    """``--mount type=bind,source=S,target=T[,readonly]``."""
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        fields[key.strip().lower()] = value if sep else "true"
    kind = fields.get("type", "volume")
    if kind != "bind":
        raise BuildError(f"invalid mount config: type {kind!r} is not supported (only bind)")
    source = fields.get("source") or fields.get("src") or ""
    target = fields.get("target") or fields.get("destination") or fields.get("dst") or ""
    readonly = fields.get("readonly", fields.get("ro", "false")) in ("true", "1")
    if not source or not target:
        raise BuildError("invalid mount config: source and target are required")
    return parse_volume(f"{source}:{target}:{'ro' if readonly else 'rw'}")


_ADJECTIVES = ("brave", "calm", "eager", "fond", "gentle", "happy", "keen", "lucid", "quirky")
_NAMES = ("babbage", "curie", "euler", "gauss", "hopper", "lovelace", "noether", "turing")


def random_name(taken: set[str]) -> str:
    """docker's ``adjective_scientist`` names."""
    while True:
        raw = os.urandom(2)
        name = f"{_ADJECTIVES[raw[0] % len(_ADJECTIVES)]}_{_NAMES[raw[1] % len(_NAMES)]}"
        if name not in taken:
            return name
        name = f"{name}{raw[0]}"
        if name not in taken:
            return name
