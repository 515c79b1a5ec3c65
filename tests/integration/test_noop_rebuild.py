"""A rebuild whose inputs did not change is answered from the no-op record
(builder.engine.noop): same image, same progress, and any change still rebuilds."""

from __future__ import annotations

import hashlib
import re
import time

import pytest
from enginekit import Builder

pytestmark = pytest.mark.integration

DOCKERFILE = "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n"


def records(pb: Builder) -> dict[str, str]:
    """noop records of the store -> sha256 of their bytes (each write records its scan time in
    ns, so a rewrite differs; an inode can be reused once the old record is deleted)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (pb.store_root / "buildinfo").glob("noop-*.json")
    }


def progress(stderr: str) -> str:
    shown = "".join(line for line in stderr.splitlines(True) if not line.startswith("#timings"))
    return re.sub(r"DONE \d+\.\ds", "DONE", shown)


def test_an_unchanged_rebuild_replays_and_a_change_rebuilds(pb: Builder) -> None:
    ctx = pb.context({"a.txt": "one\n"})
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    tag = pb.new_tag()
    known = records(pb)
    first = pb.build(None, context_dir=ctx, tag=tag)
    time.sleep(0.3)  # let the context age past the racy window, so a record may be written
    second = pb.build(None, context_dir=ctx, tag=tag)
    assert second.image_id == first.image_id
    assert "CACHED" in second.stderr
    # Written by the first build (when its context scan was not racy) or else by the second.
    written = {k: v for k, v in records(pb).items() if known.get(k) != v}
    assert len(written) == 1

    third = pb.build(None, context_dir=ctx, tag=tag)
    assert third.image_id == first.image_id
    assert progress(third.stderr) == progress(second.stderr)
    assert records(pb).items() >= written.items()  # answered from the record, not rewritten
    assert third.files["/b.txt"].text == "one\n"

    (ctx / "a.txt").write_text("two\n")
    fourth = pb.build(None, context_dir=ctx, tag=tag)
    assert fourth.image_id != first.image_id
    assert fourth.files["/b.txt"].text == "two\n"
    assert "cache miss" in fourth.stderr


def test_the_first_rebuild_after_a_build_that_ran_steps_is_answered_from_the_record(
    pb: Builder,
) -> None:
    ctx = pb.context({"a.txt": "first\n"})
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    time.sleep(0.3)  # the context ages past the racy window before the first build scans it
    tag = pb.new_tag()
    known = records(pb)
    first = pb.build(None, context_dir=ctx, tag=tag, args=["--debug-timings"])
    assert "cache miss" in first.stderr  # COPY and RUN ran
    assert "note: no-op record written" in first.stderr
    written = {k: v for k, v in records(pb).items() if known.get(k) != v}
    assert len(written) == 1  # the build that ran steps wrote its record

    second = pb.build(None, context_dir=ctx, tag=tag, args=["--debug-timings"])
    assert second.image_id == first.image_id
    assert "note: no-op record matched" in second.stderr  # the fast path answered
    assert "imports: parser, planner, engine" not in second.stderr
    assert records(pb).items() >= written.items()  # answered from the record, not rewritten
    assert "cache miss" not in second.stderr
    assert "#6 [3/3] RUN cat /a.txt > /b.txt\n#6 CACHED" in second.stderr
    assert "first" not in second.stderr  # the RUN's output is not replayed

    # The replay shows what the ordinary path shows for a fully cached build.
    (pb.store_root / "buildinfo" / next(iter(written))).unlink()
    third = pb.build(None, context_dir=ctx, tag=tag)
    assert third.image_id == first.image_id
    assert progress(second.stderr) == progress(third.stderr)
    assert second.files["/b.txt"].text == "first\n"


def test_a_no_cache_build_writes_the_record_a_plain_rebuild_uses(pb: Builder) -> None:
    ctx = pb.context({"a.txt": "no-cache\n"})
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    time.sleep(0.3)
    tag = pb.new_tag()
    pb.build(None, context_dir=ctx, tag=tag)
    known = records(pb)
    cold = pb.build(None, context_dir=ctx, tag=tag, args=["--no-cache"])
    assert "CACHED" not in cold.stderr  # --no-cache never answers from a record
    written = {k: v for k, v in records(pb).items() if known.get(k) != v}
    assert len(written) == 1
    again = pb.build(None, context_dir=ctx, tag=tag)
    assert again.image_id == cold.image_id
    assert records(pb).items() >= written.items()  # answered from the record
    assert "#6 [3/3] RUN cat /a.txt > /b.txt\n#6 CACHED" in again.stderr


def test_a_changed_build_arg_or_moved_tag_is_not_a_noop(pb: Builder) -> None:
    ctx = pb.context({"a.txt": "arg\n"})
    (ctx / "Dockerfile").write_text("FROM busybox\nARG V=1\nRUN echo $V > /v\n")
    tag = pb.new_tag()
    pb.build(None, context_dir=ctx, tag=tag)
    time.sleep(0.3)
    pb.build(None, context_dir=ctx, tag=tag)  # records
    other = pb.build(None, context_dir=ctx, tag=tag, args=["--build-arg", "V=2"])
    assert other.files["/v"].text == "2\n"
    # the tag now names the V=2 image: the V=1 record must not answer
    back = pb.build(None, context_dir=ctx, tag=tag)
    assert back.files["/v"].text == "1\n"
    assert pb.tagged(tag)
