"""A rebuild whose inputs did not change is answered from the no-op record
(builder.engine.noop): same image, same progress, and any change still rebuilds."""

from __future__ import annotations

import re
import time

import pytest
from enginekit import Builder

pytestmark = pytest.mark.integration

DOCKERFILE = "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n"


def records(pb: Builder) -> dict[str, int]:
    """noop records of the store -> inode (a rewrite makes a new file)."""
    return {p.name: p.stat().st_ino for p in (pb.store_root / "buildinfo").glob("noop-*.json")}


def progress(stderr: str) -> str:
    return re.sub(r"DONE \d+\.\ds", "DONE", stderr)


def test_an_unchanged_rebuild_replays_and_a_change_rebuilds(pb: Builder) -> None:
    ctx = pb.context({"a.txt": "one\n"})
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    tag = pb.new_tag()
    first = pb.build(None, context_dir=ctx, tag=tag)
    time.sleep(0.3)  # let the context age past the racy window, so a record may be written
    known = records(pb)
    second = pb.build(None, context_dir=ctx, tag=tag)
    assert second.image_id == first.image_id
    assert "CACHED" in second.stderr
    written = {k: v for k, v in records(pb).items() if known.get(k) != v}
    assert len(written) == 1  # the fully cached build wrote its record

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
