"""A stage's dispatch state: the image config being built and the variables in scope.

BuildKit's LLB state env is :attr:`State.vars` (insertion order is the order of the last set):
the image's ENV, then ARGs and ENVs as the stage declares them. The ARG names BuildKit treats
specially (platform ARGs, proxy build-args, the builder's own settings) are named here too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Final

from builder.errors import Span
from builder.oci.types import ContainerConfig, ImageConfig, Platform
from builder.syntax import ir

DEFAULT_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL: Final = ("/bin/sh", "-c")
WINDOWS_SHELL: Final = ("cmd", "/S", "/C")

PLATFORM_ARGS: Final = (
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDOSVERSION",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETOSVERSION",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
)
# Proxy settings BuildKit passes to every RUN from the build-args (names compared ignoring case).
PROXY_KINDS: Final = ("http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy")
PROXY_ARGS: Final = frozenset({*PROXY_KINDS, *(k.upper() for k in PROXY_KINDS)})
# ARGs that never become environment variables.
NON_ENV_ARGS: Final = frozenset({"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"})
# Build-args read by the builder itself: never reported as unused.
BUILTIN_ARGS: Final = frozenset(
    {
        "BUILDKIT_CACHE_MOUNT_NS",
        "BUILDKIT_CONTEXT_KEEP_GIT_DIR",
        "BUILDKIT_INLINE_CACHE",
        "BUILDKIT_MULTI_PLATFORM",
        "BUILDKIT_SANDBOX_HOSTNAME",
        "BUILDKIT_SYNTAX",
        "BUILDKIT_BUILD_NAME",
        "BUILDKIT_DOCKERFILE_CHECK",
        "SOURCE_DATE_EPOCH",
        *NON_ENV_ARGS,
    }
)


@dataclass(slots=True)
class StageInfo:
    stage: ir.Stage
    stage_name: str  # the name, else stage-N
    display_name: str  # stage_name, or "" in a single-stage file (BuildKit's progress prefix)
    base_ref: str  # FROM value after global ARG expansion
    platform: Platform | None  # FROM --platform, parsed
    base_stage: int | None
    deps: dict[int, Span]  # stage index -> the instruction that needs it
    triggers: tuple[ir.Instruction, ...] | None = None
    replaced: bool = False  # a --build-context of the stage's name stands in for the stage


class State:
    """One stage's mutable dispatch state: the image config being built and the environment."""

    __slots__ = (
        "args_escaped",
        "author",
        "build_args",
        "cmd",
        "cmd_set",
        "entrypoint",
        "env",
        "healthcheck",
        "history",
        "image",
        "labels",
        "on_build",
        "platform",
        "ports",
        "shell",
        "stop_signal",
        "user",
        "vars",
        "volumes",
        "workdir",
    )

    def __init__(
        self,
        image: ImageConfig,
        platform: Platform,
        variables: dict[str, str],
        build_args: list[tuple[str, str | None]],
    ) -> None:
        c = image.config
        self.image = image
        self.platform = platform
        self.vars = variables  # BuildKit's state env: insertion order = order of last set
        self.build_args = build_args  # ARGs declared so far: (name, value or None)
        self.env = list(c.env)
        self.labels = dict(c.labels)
        self.ports = set(c.exposed_ports)
        self.volumes = set(c.volumes)
        self.user = c.user
        self.workdir = c.working_dir
        self.cmd = c.cmd
        self.entrypoint = c.entrypoint
        self.shell = c.shell
        self.healthcheck = c.healthcheck
        self.stop_signal = c.stop_signal
        self.args_escaped = c.args_escaped
        self.on_build = list(c.on_build)
        self.author = image.author
        self.history = list(image.history)
        self.cmd_set = False

    def child(self) -> State:
        """The starting state of a stage built ``FROM`` this one (OnBuild not inherited)."""
        image = self.to_config()
        image = replace(image, config=replace(image.config, on_build=()))
        return State(image, self.platform, dict(self.vars), list(self.build_args))

    def set_var(self, key: str, value: str) -> None:
        self.vars.pop(key, None)
        self.vars[key] = value

    def set_env(self, key: str, value: str) -> None:
        """BuildKit's ``addEnv`` on the config: replace in place, else append."""
        entry = f"{key}={value}"
        for i, item in enumerate(self.env):
            if item.partition("=")[0] == key:
                self.env[i] = entry
                return
        self.env.append(entry)

    def with_shell(self, args: Iterable[str]) -> tuple[str, ...]:
        shell = self.shell or (WINDOWS_SHELL if self.image.os == "windows" else DEFAULT_SHELL)
        return (*shell, " ".join(args))

    def to_config(self) -> ImageConfig:
        config = replace(
            self.image.config,
            user=self.user,
            exposed_ports=tuple(sorted(self.ports)),
            env=tuple(self.env),
            entrypoint=self.entrypoint,
            cmd=self.cmd,
            volumes=tuple(sorted(self.volumes)),
            working_dir=self.workdir,
            labels=tuple(sorted(self.labels.items())),
            stop_signal=self.stop_signal,
            args_escaped=self.args_escaped,
            healthcheck=self.healthcheck,
            on_build=tuple(self.on_build),
            shell=self.shell,
        )
        return replace(
            self.image,
            created=None,
            author=self.author,
            config=config,
            history=tuple(self.history),
        )


def empty_image(platform: Platform) -> ImageConfig:
    env = () if platform.os == "windows" else (f"PATH={DEFAULT_PATH}",)
    return ImageConfig(
        architecture=platform.architecture,
        os=platform.os,
        variant=platform.variant,
        os_version=platform.os_version,
        os_features=platform.os_features,
        config=ContainerConfig(working_dir="/", env=env),
    )
