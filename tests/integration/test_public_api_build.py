"""``builder.build`` from Python: a real busybox build (root, runc), as ``pybuild build`` does."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from enginekit import Builder

import builder

pytestmark = pytest.mark.integration


def test_build_returns_what_pybuild_images_reports(pb: Builder) -> None:
    tag = pb.new_tag("api")
    context = pb.context(
        {
            "Dockerfile": "FROM busybox\nARG WORD\nCOPY hello.txt /\nRUN echo $WORD > /word\n",
            "hello.txt": tag,
        }
    )
    events: list[builder.Event] = []
    result = builder.build(
        context,
        tags=tag,
        build_args={"WORD": tag},
        root=pb.store_root,
        on_event=events.append,
    )
    assert isinstance(result, builder.BuildResult)
    listed = pb.cli("images", "--no-trunc", "-q", tag, check=True).stdout.split()
    assert listed == [str(result.image_id)]
    row = json.loads(pb.cli("images", "--digests", "--format", "json", tag, check=True).stdout)
    assert row["Digest"] == str(result.digest)
    assert result.tags == (f"docker.io/library/{tag}",)
    assert [(s.text, s.cached) for s in result.steps] == [
        ("COPY hello.txt /", False),
        ("RUN echo $WORD > /word", False),
    ]
    config = builder.inspect(tag, root=pb.store_root)
    assert [s.diff_id for s in result.steps] == list(config.diff_ids[-2:])
    assert all(s.duration > 0 for s in result.steps)
    # the callback saw the build's progress: each step started, then finished
    names = [e.name for e in events if isinstance(e, builder.VertexStarted)]
    assert "[2/3] COPY hello.txt /" in names
    assert "[3/3] RUN echo $WORD > /word" in names
    output = b"".join(e.data for e in events if isinstance(e, builder.VertexLog))
    assert output == b""  # echo writes to the file, not the log
    assert sum(isinstance(e, builder.VertexDone) for e in events) >= len(names)

    again: list[builder.Event] = []
    cached = builder.build(
        context, tags=[tag], build_args={"WORD": tag}, root=pb.store_root, on_event=again.append
    )
    assert cached.image_id == result.image_id
    assert [(s.text, s.cached) for s in cached.steps] == [
        ("COPY hello.txt /", True),
        ("RUN echo $WORD > /word", True),
    ]
    assert [s.layer for s in cached.steps] == [s.layer for s in result.steps]
    assert any(isinstance(e, builder.VertexCached) for e in again)
    # a third build is answered from the no-op record (nothing changed): same steps
    noop = builder.build(context, tags=[tag], build_args={"WORD": tag}, root=pb.store_root)
    assert noop.image_id == result.image_id
    assert [(s.text, s.cached, s.layer) for s in noop.steps] == [
        (s.text, True, s.layer) for s in result.steps
    ]


def test_build_raises_pybuilds_errors_with_the_step_line(pb: Builder) -> None:
    context = pb.context({"Dockerfile": "FROM busybox\n\nRUN echo failing; exit 5\n"})
    with pytest.raises(builder.RunStepError) as info:
        builder.build(context, root=pb.store_root, no_cache=True)
    assert info.value.exit_code == 5
    assert info.value.span is not None
    assert info.value.span.line == 3
    assert "failing" in info.value.output_tail


def test_build_with_outputs(pb: Builder, tmp_path: Path) -> None:
    tag = pb.new_tag("apiout")
    context = pb.context({"Dockerfile": "FROM busybox\nRUN echo out > /out\n"}, name="apiout")
    archive, local = tmp_path / "img.tar", tmp_path / "local"
    result = builder.build(
        context,
        tags=tag,
        root=pb.store_root,
        outputs=[f"type=oci,dest={archive}", f"type=local,dest={local}"],
    )
    assert (local / "out").read_text() == "out\n"
    assert result.tags == (f"docker.io/library/{tag}",)
    assert result.descriptor is not None
    assert result.descriptor.digest == result.digest
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
    assert index["manifests"][0]["digest"] == str(result.digest)
    assert not pb.tagged(tag)  # no image output: the store does not name it
