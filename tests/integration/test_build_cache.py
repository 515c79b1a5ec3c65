"""The layer cache across real builds: hits, exact invalidation, explanations, concurrency.

Each test writes a fresh nonce into its files so no other test in the session (they share
one store) can have filled the cache with the same keys.
"""

from __future__ import annotations

import re
import subprocess
import uuid

import pytest
from enginekit import PYBUILD, Builder, Built

pytestmark = pytest.mark.integration

STEP = re.compile(r"^#(\d+) \[(?:[\w.-]+ )?(\d+)/(\d+)\] (.*)$")


def steps(built: Built) -> dict[int, tuple[str, bool]]:
    """Step position -> (instruction text, cached) from the plain progress output."""
    vertex_of: dict[str, int] = {}
    text_of: dict[int, str] = {}
    for line in built.stderr.splitlines():
        match = STEP.match(line)
        if match:
            vertex_of[match.group(1)] = int(match.group(2))
            text_of[int(match.group(2))] = match.group(4)
    cached = {
        vertex_of[line.split()[0][1:]]
        for line in built.stderr.splitlines()
        if line.endswith(" CACHED") and line.split()[0][1:] in vertex_of
    }
    return {pos: (text, pos in cached) for pos, text in text_of.items()}


def cached_by_text(built: Built) -> dict[str, bool]:
    """Instruction text -> whether its step was CACHED (for multi-stage outputs)."""
    vertex_text = {
        m.group(1): m.group(4) for line in built.stderr.splitlines() if (m := STEP.match(line))
    }
    cached = {line.split()[0][1:] for line in built.stderr.splitlines() if line.endswith(" CACHED")}
    return {text: vertex in cached for vertex, text in vertex_text.items()}


def misses(built: Built) -> dict[int, str]:
    """Step position -> the ``cache miss:`` explanation printed for it."""
    vertex_of = {
        m.group(1): int(m.group(2)) for line in built.stderr.splitlines() if (m := STEP.match(line))
    }
    out = {}
    for line in built.stderr.splitlines():
        m = re.match(r"^#(\d+) cache miss: (.*)$", line)
        if m and m.group(1) in vertex_of:
            out[vertex_of[m.group(1)]] = m.group(2)
    return out


def nonce() -> str:
    return uuid.uuid4().hex


DOCKERFILE = (
    "FROM busybox\n"
    "COPY a.txt /a.txt\n"
    "RUN cat /a.txt > /a.copy\n"
    "COPY b.txt /b.txt\n"
    "RUN cat /b.txt > /b.copy\n"
    "COPY --link c.txt /c.txt\n"
    "RUN cat /b.copy /c.txt > /final\n"
)


def test_second_build_is_fully_cached_and_identical(pb: Builder) -> None:
    n = nonce()
    files = {"a.txt": f"a {n}\n", "b.txt": f"b {n}\n", "c.txt": f"c {n}\n"}
    first = pb.build(DOCKERFILE, files)
    first_steps = steps(first)
    assert sorted(first_steps) == [1, 2, 3, 4, 5, 6, 7]
    assert not any(cached for pos, (_, cached) in first_steps.items() if pos > 1)
    second = pb.build(DOCKERFILE, tag=first.tag, context_dir=pb.workdir / "ctx")
    second_steps = steps(second)
    for pos in range(2, 8):
        assert second_steps[pos][1], f"step {pos} was not CACHED:\n{second.stderr}"
    assert "cache miss" not in second.stderr
    assert second.image_id == first.image_id
    assert second.image.digest == first.image.digest


def test_changed_file_reruns_exactly_the_steps_that_read_it(pb: Builder) -> None:
    n = nonce()
    ctx = pb.context({"a.txt": f"a {n}\n", "b.txt": f"b {n}\n", "c.txt": f"c {n}\n"})
    first = pb.build(DOCKERFILE, context_dir=ctx)
    (ctx / "b.txt").write_text(f"b changed {n}\n")
    second = pb.build(DOCKERFILE, tag=first.tag, context_dir=ctx)
    result = {pos: cached for pos, (_, cached) in steps(second).items() if pos > 1}
    assert result == {
        2: True,  # COPY a.txt
        3: True,  # RUN reading a.txt
        4: False,  # COPY b.txt: the changed file
        5: False,  # everything after it on the chain
        6: True,  # COPY --link c.txt does not depend on the layers below
        7: False,  # ... but what follows it does: its rootfs holds the new /b.copy
    }, second.stderr
    explained = misses(second)
    assert "b.txt" in explained[4]
    assert "changed" in explained[4]
    assert second.files["/b.copy"].text == f"b changed {n}\n"
    assert second.files["/final"].text == f"b changed {n}\nc {n}\n"
    assert second.image_id != first.image_id
    # a touch without a content change is not a change (mtime is not part of the key)
    (ctx / "a.txt").touch()
    (ctx / "b.txt").write_text(f"b changed {n}\n")
    third = pb.build(DOCKERFILE, tag=first.tag, context_dir=ctx)
    assert all(cached for pos, (_, cached) in steps(third).items() if pos > 1), third.stderr
    assert third.image_id == second.image_id


def test_build_arg_change_invalidates_at_first_use(pb: Builder) -> None:
    n = nonce()
    dockerfile = (
        "FROM busybox\n"
        f"RUN echo {n} > /before\n"
        "ARG V=1\n"
        "COPY a.txt /a.txt\n"
        "RUN echo $V > /v\n"
        "RUN echo after > /after\n"
    )
    ctx = pb.context({"a.txt": n})
    first = pb.build(dockerfile, context_dir=ctx, args=["--build-arg", "V=one"])
    second = pb.build(dockerfile, context_dir=ctx, args=["--build-arg", "V=two"], tag=first.tag)
    result = {pos: cached for pos, (_, cached) in steps(second).items() if pos > 1}
    # the COPY does not see the ARG: it hits; the first RUN after the ARG misses
    assert result == {2: True, 3: True, 4: False, 5: False}, second.stderr
    explained = misses(second)
    assert "V" in explained[4]
    assert "one" in explained[4]
    assert "two" in explained[4]
    assert second.files["/v"].text == "two\n"
    # back to the first value: everything is cached again
    third = pb.build(dockerfile, context_dir=ctx, args=["--build-arg", "V=one"], tag=first.tag)
    assert all(cached for pos, (_, cached) in steps(third).items() if pos > 1), third.stderr
    assert third.image_id == first.image_id


def test_no_cache_rebuilds_every_step(pb: Builder) -> None:
    n = nonce()
    dockerfile = (
        f"FROM busybox\nCOPY a.txt /\nRUN echo {n} > /n && cat /proc/sys/kernel/random/uuid"
        " > /stamp\n"
    )
    ctx = pb.context({"a.txt": n})
    first = pb.build(dockerfile, context_dir=ctx)
    second = pb.build(dockerfile, context_dir=ctx, args=["--no-cache"], tag=first.tag)
    result = steps(second)
    assert not any(cached for pos, (_, cached) in result.items() if pos > 1), second.stderr
    assert "CACHED" not in second.stderr
    assert second.files["/stamp"].content != first.files["/stamp"].content
    # --no-cache still records the new layers: the next build hits them
    third = pb.build(dockerfile, context_dir=ctx, tag=first.tag)
    assert all(cached for pos, (_, cached) in steps(third).items() if pos > 1), third.stderr
    assert third.files["/stamp"].content == second.files["/stamp"].content


def test_changed_instruction_misses_from_there(pb: Builder) -> None:
    n = nonce()
    ctx = pb.context({})
    base = f"FROM busybox\nRUN echo {n} > /one\nRUN echo two > /two\nRUN echo three > /three\n"
    pb.build(base, context_dir=ctx)
    changed = base.replace("echo two", "echo TWO")
    second = pb.build(changed, context_dir=ctx)
    result = {pos: cached for pos, (_, cached) in steps(second).items() if pos > 1}
    assert result == {2: True, 3: False, 4: False}
    explained = misses(second)
    assert explained[4] == "a previous step changed"


def test_copy_from_a_changed_stage_hits_when_its_files_are_unchanged(pb: Builder) -> None:
    n = nonce()
    dockerfile = (
        "FROM busybox AS gen\n"
        "COPY stable.txt volatile.txt /src/\n"
        "RUN cat /src/volatile.txt > /out-volatile\n"
        "FROM busybox\n"
        "COPY --from=gen /src/stable.txt /stable.txt\n"
        "COPY --from=gen /out-volatile /volatile\n"
    )
    ctx = pb.context({"stable.txt": f"stable {n}\n", "volatile.txt": f"v1 {n}\n"})
    first = pb.build(dockerfile, context_dir=ctx)
    (ctx / "volatile.txt").write_text(f"v2 {n}\n")
    second = pb.build(dockerfile, context_dir=ctx, tag=first.tag)
    result = {k: v for k, v in cached_by_text(second).items() if not k.startswith("FROM")}
    assert result == {
        "COPY stable.txt volatile.txt /src/": False,
        "RUN cat /src/volatile.txt > /out-volatile": False,
        # content-addressed: the file it reads did not change, so it hits again
        "COPY --from=gen /src/stable.txt /stable.txt": True,
        "COPY --from=gen /out-volatile /volatile": False,
    }, second.stderr
    assert second.files["/volatile"].text == f"v2 {n}\n"
    assert second.files["/stable.txt"].text == f"stable {n}\n"


def test_concurrent_builds_on_one_store(pb: Builder) -> None:
    n = nonce()
    procs = []
    for i in range(2):
        ctx = pb.context({"f.txt": f"{i} {n}\n"}, name=f"ctx{i}")
        (ctx / "Dockerfile").write_text(
            "FROM busybox\n"
            f"RUN echo {n} > /shared && sleep 1\n"  # the same key in both builds
            "COPY f.txt /f.txt\n"
            f"RUN cat /f.txt > /copy{i}\n"
        )
        procs.append(
            subprocess.Popen(
                [PYBUILD, "build", "--progress=plain", "-t", f"concurrent{i}-{n[:8]}", str(ctx)],
                env=pb.environ(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for i, proc in enumerate(procs):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"build {i} failed:\n{err}"
    for i in range(2):
        assert pb.tagged(f"concurrent{i}-{n[:8]}")
    fsck = pb.cli("fsck", check=True)
    assert fsck.stdout.startswith("ok:"), fsck.stdout
