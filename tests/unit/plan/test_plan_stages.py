"""The stage graph: bases, --from sources, target pruning, dependencies and stage errors."""

from __future__ import annotations

import pytest
from planfixtures import AMD64, ARM64, FakeResolver, image_config, make_plan

from builder.errors import ExpansionError, InvalidInstructionError, StageError
from builder.plan import (
    CopyStep,
    FromContext,
    FromImage,
    FromScratch,
    FromStage,
    ImageBase,
    RunStep,
    ScratchBase,
    StageBase,
)

MULTI = """\
FROM alpine AS deps
RUN echo deps
FROM alpine AS unused
RUN echo unused
FROM deps AS build
RUN echo build
FROM scratch AS tools
COPY tool /tool
FROM scratch
COPY --from=build /out /out
COPY --from=tools /tool /tool
"""


def test_only_the_stages_the_target_needs_are_planned() -> None:
    p = make_plan(MULTI)
    assert [s.index for s in p.stages] == [0, 2, 3, 4]
    assert p.target_index == 4
    assert dict(p.dependencies) == {0: (), 2: (0,), 3: (), 4: (2, 3)}
    assert p.deps_of(4) == (2, 3)
    assert p.deps_of(1) == ()
    assert p.target.base == ScratchBase()
    assert p.stage(2).base == StageBase(index=0)
    copies = [s for s in p.target.steps if isinstance(s, CopyStep)]
    assert [c.source for c in copies] == [FromStage(index=2), FromStage(index=3)]


def test_target_picks_the_stage_and_prunes_the_rest() -> None:
    p = make_plan(MULTI, target="build")
    assert [s.index for s in p.stages] == [0, 2]
    assert p.target.name == "build"
    p = make_plan(MULTI, target="BUILD")  # names are case-insensitive
    assert p.target_index == 2


def test_unknown_target_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(StageError) as err:
        make_plan(MULTI, target="nope")
    assert err.value.message == 'target stage "nope" could not be found'
    with pytest.raises(StageError) as err:
        make_plan(MULTI, target="buld")
    assert err.value.message == 'target stage "buld" could not be found (did you mean build?)'


def test_an_unused_stage_that_would_fail_is_never_planned() -> None:
    text = """\
FROM alpine AS broken
COPY --from=later /x /x
RUN --mount=type=bind,target=/m,from=later true
ENV A=${NOPE:?unset}
FROM alpine AS later
FROM alpine
RUN true
"""
    resolver = FakeResolver()
    p = make_plan(text, resolver=resolver)
    assert [s.index for s in p.stages] == [2]
    assert resolver.calls == [("alpine", AMD64)]


def test_every_from_line_is_expanded_even_in_unused_stages() -> None:
    text = "FROM alpine:${TAG:?required} AS unused\nFROM alpine\n"
    with pytest.raises(ExpansionError) as err:
        make_plan(text)
    assert "TAG: required" in err.value.message
    assert err.value.span is not None
    assert err.value.span.line == 1


def test_copy_from_a_later_stage_is_an_error_at_the_copy() -> None:
    text = "FROM alpine AS a\nCOPY --from=b /x /x\nFROM alpine AS b\nRUN true\n"
    with pytest.raises(StageError) as err:
        make_plan(text, target="a")
    assert err.value.message == (
        'cannot copy from stage "b", it needs to be defined before current stage "a"'
    )
    assert err.value.span is not None
    assert err.value.span.line == 2


def test_copy_from_a_later_stage_by_index() -> None:
    text = "FROM alpine AS x\nCOPY --from=1 /x /x\nFROM alpine\n"
    # the default target (the last stage) does not need stage 0: no error
    assert [s.index for s in make_plan(text).stages] == [1]
    with pytest.raises(StageError) as err:
        make_plan(text, target="x")
    assert err.value.message == (
        'cannot copy from stage "1", it needs to be defined before current stage "x"'
    )


def test_self_reference_is_a_circular_dependency() -> None:
    with pytest.raises(StageError) as err:
        make_plan("FROM alpine AS a\nRUN true\nCOPY --from=a /x /x\n")
    assert err.value.message == "circular dependency detected on stage: a"
    assert err.value.span is not None
    assert err.value.span.line == 3
    with pytest.raises(StageError) as err:
        make_plan("FROM alpine\nFROM alpine\nCOPY --from=1 /x /x\n")
    assert err.value.message == "circular dependency detected on stage: stage-1"


def test_a_cycle_through_two_stages_is_reported() -> None:
    text = "FROM alpine AS a\nCOPY --from=b /x /x\nFROM alpine AS b\nCOPY --from=a /y /y\n"
    with pytest.raises(StageError) as err:
        make_plan(text)
    assert err.value.message == "circular dependency detected on stage: a"
    assert err.value.span is not None
    assert err.value.span.line == 4


def test_invalid_stage_index() -> None:
    with pytest.raises(StageError) as err:
        make_plan("FROM alpine\nCOPY --from=5 /x /x\n")
    assert err.value.message == "invalid stage index 5"
    assert err.value.span is not None
    assert err.value.span.line == 2


def test_copy_from_an_image_is_resolved_for_the_target_platform() -> None:
    resolver = FakeResolver()
    p = make_plan("FROM scratch\nCOPY --from=busybox:1.36 /bin/busybox /b\n", resolver=resolver)
    step = p.target.steps[0]
    assert isinstance(step, CopyStep)
    assert isinstance(step.source, FromImage)
    assert step.source.image.ref == "docker.io/library/busybox:1.36"
    assert resolver.calls == [("busybox:1.36", AMD64)]
    assert p.dependencies == ((0, ()),)


def test_copy_from_scratch_and_context() -> None:
    p = make_plan("FROM scratch\nCOPY --from=scratch /x /x\nCOPY y /y\n")
    sources = [s.source for s in p.target.steps if isinstance(s, CopyStep)]
    assert sources == [FromScratch(), FromContext()]


def test_from_an_image_uses_the_stage_platform_and_caches_lookups() -> None:
    resolver = FakeResolver()
    p = make_plan(
        "FROM --platform=linux/arm64 alpine AS a\nRUN true\nFROM alpine\nCOPY --from=a / /\n"
        "COPY --from=alpine / /\n",
        resolver=resolver,
    )
    first = p.stage(0)
    assert isinstance(first.base, ImageBase)
    assert first.platform == ARM64
    assert first.base.platform == ARM64
    assert resolver.calls == [("alpine", ARM64), ("alpine", AMD64)]


def test_from_platform_errors_are_located() -> None:
    with pytest.raises(InvalidInstructionError) as err:
        make_plan("ARG P\nFROM --platform=$P alpine\n")
    assert err.value.message == "empty platform value from expression $P"
    assert err.value.span is not None
    assert err.value.span.line == 2
    with pytest.raises(InvalidInstructionError) as err:
        make_plan("FROM --platform=nonsense alpine\n")
    assert err.value.message.startswith("failed to parse platform nonsense: ")


def test_blank_base_name() -> None:
    with pytest.raises(InvalidInstructionError) as err:
        make_plan("ARG B\nFROM $B\n")
    assert err.value.message == "base name ($B) should not be blank"


def test_from_a_stage_matches_only_earlier_names() -> None:
    resolver = FakeResolver()
    p = make_plan("FROM later AS first\nFROM alpine AS later\n", target="first", resolver=resolver)
    assert isinstance(p.target.base, ImageBase)
    assert resolver.calls == [("later", AMD64)]


def test_run_mount_from_stage_is_a_dependency() -> None:
    text = """\
FROM alpine AS src
RUN touch /f
FROM alpine
RUN --mount=from=src,target=/src cat /src/f
RUN --mount=type=cache,target=/root/.cache true
RUN --mount=from=busybox,target=/bb true
"""
    p = make_plan(text)
    assert p.deps_of(1) == (0,)
    runs = [s for s in p.target.steps if isinstance(s, RunStep)]
    assert runs[0].mounts[0].source == FromStage(index=0)
    assert runs[1].mounts[0].source == FromScratch()
    assert isinstance(runs[2].mounts[0].source, FromImage)
    assert runs[0].input_sources == (FromStage(index=0),)


def test_run_mount_from_a_later_stage_is_an_error() -> None:
    text = "FROM alpine AS a\nRUN --mount=from=b,target=/b true\nFROM alpine AS b\n"
    with pytest.raises(StageError) as err:
        make_plan(text, target="a")
    assert err.value.message == (
        'cannot mount from stage "b" to "/b", stage needs to be defined before current command'
    )
    assert err.value.span is not None
    assert err.value.span.line == 2


def test_display_names() -> None:
    p = make_plan("FROM alpine AS build\nFROM build\n")
    assert [s.display_name for s in p.stages] == ["build", "stage-1"]
    assert make_plan("FROM alpine\n").target.display_name == ""


def test_onbuild_trigger_can_add_a_stage_dependency() -> None:
    resolver = FakeResolver(images={"onbuild-img": image_config(on_build=("COPY --from=x /a /a",))})
    text = "FROM alpine AS x\nRUN true\nFROM onbuild-img\n"
    p = make_plan(text, resolver=resolver)
    assert [s.index for s in p.stages] == [0, 1]
    assert p.deps_of(1) == (0,)
    step = p.target.steps[0]
    assert isinstance(step, CopyStep)
    assert step.onbuild
    assert step.source == FromStage(index=0)


def test_target_suggestions_include_generated_stage_names() -> None:
    text = "FROM alpine\nFROM alpine AS build\n"
    with pytest.raises(StageError) as err:
        make_plan(text, target="stage-0")  # the generated name is not a target
    assert err.value.message == 'target stage "stage-0" could not be found'
    with pytest.raises(StageError) as err:
        make_plan(text, target="stage-9")
    assert err.value.message == 'target stage "stage-9" could not be found (did you mean stage-0?)'


def test_copy_from_by_index_and_by_name_ignoring_case() -> None:
    p = make_plan(
        "FROM alpine AS Build\nRUN x\nFROM scratch\nCOPY --from=0 /a /a\nCOPY --from=BUILD /b /b\n"
    )
    sources = [s.source for s in p.target.steps if isinstance(s, CopyStep)]
    assert sources == [FromStage(index=0), FromStage(index=0)]
    assert p.deps_of(1) == (0,)


def test_planning_is_deterministic() -> None:
    assert make_plan(MULTI) == make_plan(MULTI)
