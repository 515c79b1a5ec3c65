"""Multi-stage builds (--target, stage pruning, COPY --from) and .dockerignore, built for real."""

from __future__ import annotations

import pytest
from enginekit import Builder

pytestmark = pytest.mark.integration

STAGES = (
    "FROM busybox AS deps\n"
    "RUN echo deps > /deps.txt\n"
    "FROM deps AS build\n"
    "RUN cat /deps.txt > /build.txt && echo built >> /build.txt\n"
    "FROM busybox AS broken\n"
    "RUN echo this stage must never run && exit 7\n"
    "FROM scratch AS final\n"
    "COPY --from=build /build.txt /out/build.txt\n"
    "COPY --from=deps /deps.txt /out/\n"
)


def test_target_builds_only_what_it_needs(pb: Builder) -> None:
    built = pb.build(STAGES, args=["--target", "build"])
    assert built.files["/build.txt"].text == "deps\nbuilt\n"
    assert "/out" not in built.files
    assert "never run" not in built.stderr
    assert "[final" not in built.stderr
    assert "[broken" not in built.stderr
    assert any("[build 2/2] RUN" in line for line in built.stderr.splitlines())


def test_unused_failing_stage_never_runs(pb: Builder) -> None:
    built = pb.build(STAGES)
    assert built.ok
    assert "never run" not in built.stderr
    assert "[broken" not in built.stderr
    files = built.files
    assert set(files) == {"/out", "/out/build.txt", "/out/deps.txt"}
    assert files["/out/build.txt"].text == "deps\nbuilt\n"


def test_failing_stage_fails_when_targeted(pb: Builder) -> None:
    built = pb.build(STAGES, args=["--target", "broken"], check=False)
    assert built.returncode == 1
    assert "exit code: 7" in built.stderr
    assert not pb.tagged(built.tag)


def test_unknown_target(pb: Builder) -> None:
    built = pb.build(STAGES, args=["--target", "nope"], check=False)
    assert built.returncode == 1
    assert 'target stage "nope" could not be found' in built.stderr


def test_final_scratch_image_is_small(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox AS build\n"
        "RUN mkdir /out && echo small > /out/artifact\n"
        "FROM scratch\n"
        "COPY --from=build /out/artifact /artifact\n"
        'CMD ["/artifact"]\n'
    )
    built = pb.build(dockerfile)
    image = built.image
    assert len(image.layers) == 1
    assert image.layers[0].descriptor.size < 1024
    assert built.layer_names(0) == ["artifact"]
    assert built.config["Cmd"] == ["/artifact"]
    # nothing of the build stage leaks into the config or history
    assert built.created_by() == [
        ("COPY /out/artifact /artifact # buildkit", False),
        ('CMD ["/artifact"]', True),
    ]


def test_stages_by_index_and_parallel_branches(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox\n"
        "RUN echo zero > /zero\n"
        "FROM busybox\n"
        "RUN echo one > /one\n"
        "FROM busybox\n"
        "COPY --from=0 /zero /merged/\n"
        "COPY --from=1 /one /merged/\n"
        "RUN cat /merged/zero /merged/one > /merged/both\n"
    )
    built = pb.build(dockerfile)
    assert built.files["/merged/both"].text == "zero\none\n"
    assert "/zero" not in built.files
    assert "/one" not in built.files
    names = [line for line in built.stderr.splitlines() if "[stage-" in line]
    assert any("[stage-0 2/2] RUN echo zero > /zero" in n for n in names)
    assert any("[stage-2 4/4] RUN cat /merged/zero /merged/one > /merged/both" in n for n in names)


def test_steps_before_a_copy_from_run_while_the_source_stage_builds(pb: Builder) -> None:
    # A handshake through a shared cache mount: stage "a" finishes only once stage "b" has run
    # its first RUN, which comes before b's COPY --from=a. A scheduler that starts b after a
    # (BuildKit does not) makes a give up after 60 s and fail the build.
    cache = "--mount=type=cache,target=/c,id=handshake,sharing=shared"
    dockerfile = (
        "FROM busybox AS a\n"
        f"RUN {cache} i=0; while [ ! -f /c/b-ran ]; do"
        " i=$((i+1)); [ $i -gt 600 ] && exit 9; sleep 0.1; done; echo a > /a\n"
        "FROM busybox AS b\n"
        f"RUN {cache} echo b > /c/b-ran\n"
        "COPY --from=a /a /a\n"
    )
    built = pb.build(dockerfile, args=["--no-cache"])
    assert built.files["/a"].text == "a\n"


def test_a_failing_source_stage_fails_the_stage_copying_from_it(pb: Builder) -> None:
    dockerfile = (
        "FROM busybox AS broken\n"
        "RUN exit 5\n"
        "FROM busybox\n"
        "RUN echo before > /before\n"
        "COPY --from=broken /x /x\n"
        "RUN echo after must never run\n"
    )
    built = pb.build(dockerfile, check=False)
    assert built.returncode == 1
    assert "exit code: 5" in built.stderr
    assert "after must never run" not in built.stderr
    assert not pb.tagged(built.tag)


def test_copy_from_a_later_stage_is_an_error(pb: Builder) -> None:
    dockerfile = "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\n"
    # as in BuildKit, only a stage that is built is checked: the default target (b) builds
    assert pb.build(dockerfile, context_name="c0").ok
    built = pb.build(dockerfile, args=["--target", "a"], check=False)
    assert built.returncode == 1
    assert 'cannot copy from stage "b", it needs to be defined before current stage "a"' in (
        built.stderr
    )


# --------------------------------------------------------------------------- .dockerignore

CONTEXT = {
    "app/main.py": "main\n",
    "app/test_main.py": "test\n",
    "app/__pycache__/main.pyc": "pyc\n",
    "app/deep/__pycache__/x.pyc": "pyc\n",
    "logs/a.log": "a\n",
    "logs/keep.log": "keep\n",
    "secret.env": "TOKEN=1\n",
    "README.md": "readme\n",
    "docs/notes.md": "notes\n",
    "docs/important.md": "important\n",
}


def _files(built: object) -> set[str]:
    return {p for p, e in built.files.items() if e.type == "file"}  # type: ignore[attr-defined]


def test_dockerignore_excludes_and_exceptions(pb: Builder) -> None:
    ignore = (
        "# comments and blank lines are ignored\n"
        "\n"
        "**/__pycache__\n"
        "logs/*.log\n"
        "!logs/keep.log\n"
        "secret.env\n"
        "docs\n"
        "!docs/important.md\n"
        "app/test_*\n"
    )
    files = dict(CONTEXT, **{".dockerignore": ignore})
    built = pb.build("FROM scratch\nCOPY . /ctx/\n", files)
    assert _files(built) == {
        "/ctx/app/main.py",
        "/ctx/logs/keep.log",
        "/ctx/README.md",
        "/ctx/docs/important.md",
        "/ctx/.dockerignore",
        "/ctx/Dockerfile",
    }
    # an excluded file is invisible to COPY: naming it is "not found"
    missing = pb.build("FROM scratch\nCOPY secret.env /s\n", files, context_name="c2", check=False)
    assert missing.returncode == 1
    assert '"/secret.env": not found' in missing.stderr
    # a glob skips excluded files
    globbed = pb.build("FROM scratch\nCOPY logs/*.log /logs/\n", files, context_name="c3")
    assert _files(globbed) == {"/logs/keep.log"}


def test_double_star_excludes_everything_but_exceptions(pb: Builder) -> None:
    files = dict(CONTEXT, **{".dockerignore": "**\n!app/main.py\n!README.md\n"})
    built = pb.build("FROM scratch\nCOPY . /ctx/\n", files)
    assert _files(built) == {"/ctx/app/main.py", "/ctx/README.md"}


def test_dockerfile_specific_ignore_file_replaces_the_root_one(pb: Builder) -> None:
    files = dict(
        CONTEXT,
        **{
            ".dockerignore": "README.md\n",
            "build.Dockerfile.dockerignore": "secret.env\nlogs\ndocs\napp\nbuild.Dockerfile*\n",
        },
    )
    built = pb.build("FROM scratch\nCOPY . /ctx/\n", files, dockerfile_name="build.Dockerfile")
    # README.md is back (the root .dockerignore is not used); the per-Dockerfile one applies
    assert _files(built) == {"/ctx/README.md", "/ctx/.dockerignore"}
