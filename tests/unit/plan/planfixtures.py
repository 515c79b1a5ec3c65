"""Shared helpers of the planner tests: a fake image resolver and a one-call planner."""

from __future__ import annotations

from dataclasses import dataclass, field

from builder.digest import Digest
from builder.oci.types import ContainerConfig, History, ImageConfig, Platform
from builder.plan import BuildPlan, PlanRequest, ResolvedImage, StagePlan, Step, plan
from builder.syntax.parser import parse
from builder.syntax.transform import to_ir

AMD64 = Platform(os="linux", architecture="amd64")
ARM64 = Platform(os="linux", architecture="arm64")

BASE_HISTORY = (History(created_by="/bin/sh -c #(nop) ADD file:abc in / "),)


def image_config(
    *,
    env: tuple[str, ...] = ("PATH=/usr/local/bin:/usr/bin:/bin",),
    cmd: tuple[str, ...] = ("/bin/sh",),
    platform: Platform = AMD64,
    **config: object,
) -> ImageConfig:
    return ImageConfig(
        architecture=platform.architecture,
        os=platform.os,
        created="2024-01-01T00:00:00Z",
        config=ContainerConfig(env=env, cmd=cmd, **config),  # type: ignore[arg-type]
        diff_ids=(Digest.of_bytes(b"layer"),),
        history=BASE_HISTORY,
    )


@dataclass
class FakeResolver:
    """Returns configured configs (a default one for unknown refs); records every call."""

    images: dict[str, ImageConfig] = field(default_factory=dict)
    calls: list[tuple[str, Platform]] = field(default_factory=list)

    def resolve(self, ref: str, platform: Platform) -> ResolvedImage:
        self.calls.append((ref, platform))
        config = self.images.get(ref)
        if config is None:
            config = image_config(platform=platform)
        return ResolvedImage(
            ref=f"docker.io/library/{ref}", digest=Digest.of_bytes(ref.encode()), config=config
        )


def make_plan(
    text: str,
    *,
    build_args: tuple[tuple[str, str], ...] = (),
    target: str | None = None,
    resolver: FakeResolver | None = None,
    platform: Platform = AMD64,
    build_platform: Platform = AMD64,
    labels: tuple[tuple[str, str], ...] = (),
    platform_explicit: bool = False,
) -> BuildPlan:
    request = PlanRequest(
        build_args=build_args,
        target=target,
        platform=platform,
        build_platform=build_platform,
        labels=labels,
        platform_explicit=platform_explicit,
    )
    return plan(to_ir(parse(text)), request, resolver or FakeResolver())


def target(text: str, **kwargs: object) -> StagePlan:
    return make_plan(text, **kwargs).target  # type: ignore[arg-type]


def created_by(step: Step) -> str | None:
    history = step.history
    return None if history is None else history.created_by
