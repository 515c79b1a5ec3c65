"""The pure build planner: Dockerfile IR + request -> stages of steps with cache payloads.

``plan`` resolves the stage graph, ARG/ENV scoping and every instruction's effect on the image
config and history the way BuildKit's Dockerfile frontend does; ``step_cache_payload`` and
``cache_key`` give the content-addressed identity of each step.
"""

from __future__ import annotations

from builder.plan.cachekey import cache_key, describe_inputs, step_cache_payload
from builder.plan.planner import DEFAULT_PATH, PROXY_ARGS, plan
from builder.plan.steps import (
    Base,
    BuildPlan,
    ConfigStep,
    CopySource,
    CopyStep,
    FromContext,
    FromImage,
    FromScratch,
    FromStage,
    GitSource,
    ImageBase,
    ImageConfigResolver,
    InlineFile,
    PathSource,
    PlanRequest,
    ResolvedImage,
    RunFile,
    RunMount,
    RunStep,
    ScratchBase,
    Source,
    StageBase,
    StagePlan,
    Step,
    UrlSource,
    WorkdirStep,
)

__all__ = [
    "DEFAULT_PATH",
    "PROXY_ARGS",
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
    "cache_key",
    "describe_inputs",
    "plan",
    "step_cache_payload",
]
