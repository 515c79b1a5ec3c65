"""Named contexts in the planner: which references a ``--build-context`` answers (BuildKit's
rules), and a stage named like a context replaced by it."""

from __future__ import annotations

import pytest
from planfixtures import AMD64, FakeResolver

from builder.plan import (
    BuildPlan,
    CopyStep,
    FromImage,
    FromStage,
    ImageBase,
    PlanRequest,
    RunStep,
    StageBase,
    plan,
)
from builder.plan.named import context_key
from builder.syntax.parser import parse
from builder.syntax.transform import to_ir


def plan_named(text: str, names: set[str], resolver: FakeResolver) -> BuildPlan:
    request = PlanRequest(platform=AMD64, build_platform=AMD64, named_contexts=frozenset(names))
    return plan(to_ir(parse(text)), request, resolver)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("alpine", "alpine"),
        ("alpine:latest", "alpine"),
        ("docker.io/library/alpine", "alpine"),
        ("alpine:3.20", "alpine:3.20"),
        ("example.com/team/app", "example.com/team/app"),
        ("build", "build"),
    ],
)
def test_context_key_normalises_like_buildkit(name: str, key: str) -> None:
    assert context_key(name) == key


@pytest.mark.parametrize("name", ["Upper", "a b", "", "-x"])
def test_context_key_of_an_invalid_reference_is_none(name: str) -> None:
    assert context_key(name) is None


def test_a_stage_named_like_a_context_is_replaced() -> None:
    resolver = FakeResolver()
    built = plan_named(
        "FROM alpine AS base\nRUN never\nONBUILD RUN x\n"
        "FROM base\nCOPY --from=base /a /b\nRUN true\n",
        {"base"},
        resolver,
    )
    base = built.stage(0)
    assert base.steps == ()  # its RUN is not planned
    assert isinstance(base.base, ImageBase)
    assert base.base.ref == "base"
    assert [ref for ref, _ in resolver.calls] == ["base"]  # alpine is never looked up
    final = built.target
    assert isinstance(final.base, StageBase)
    assert final.base.index == 0
    copy = final.steps[0]
    assert isinstance(copy, CopyStep)
    assert copy.source == FromStage(index=0)
    assert [s.text for s in final.steps] == ["COPY --from=base /a /b", "RUN true"]  # no ONBUILD


def test_from_copy_and_mount_refs_reach_the_resolver_but_scratch_does_not() -> None:
    resolver = FakeResolver()
    built = plan_named(
        "FROM scratch\nCOPY --from=ctx / /c/\nRUN --mount=from=ctx,target=/m true\n"
        "COPY --from=scratch / /s/\n",
        {"ctx"},
        resolver,
    )
    steps = built.target.steps
    assert isinstance(steps[0], CopyStep)
    assert isinstance(steps[0].source, FromImage)
    assert isinstance(steps[1], RunStep)
    assert isinstance(steps[1].mounts[0].source, FromImage)
    assert [ref for ref, _ in resolver.calls] == ["ctx"]


def test_an_unnamed_stage_still_wins_over_an_image_of_the_same_name() -> None:
    resolver = FakeResolver()
    built = plan_named("FROM alpine AS tools\nFROM tools\n", {"other"}, resolver)
    assert isinstance(built.target.base, StageBase)
    assert [ref for ref, _ in resolver.calls] == ["alpine"]
