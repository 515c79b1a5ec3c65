"""``-o/--output``, ``--push`` and ``--compression`` parsed as buildx does, and checked before a
build starts."""

from __future__ import annotations

import pytest

from builder.engine.outputs import (
    LayerCompression,
    Output,
    OutputType,
    parse_compression,
    parse_output,
    resolve_outputs,
    store_names,
)
from builder.errors import BuildError
from builder.oci.mediatype import Compression


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("out", Output(type=OutputType.LOCAL, dest="out")),
        ("-", Output(type=OutputType.TAR, dest="-")),
        ("type=local,dest=d", Output(type=OutputType.LOCAL, dest="d")),
        ("type=tar", Output(type=OutputType.TAR)),
        ("type=oci,dest=x,tar=false", Output(type=OutputType.OCI, dest="x", tar=False)),
        ("type=registry", Output(type=OutputType.IMAGE, push=True)),
        ("type=registry,push=false", Output(type=OutputType.IMAGE)),
        (
            'type=image,"name=a:1,b:2",push=true',
            Output(type=OutputType.IMAGE, names=("a:1", "b:2"), push=True),
        ),
        (
            "TYPE=docker,Dest=f.tar,compression=zstd,compression-level=9,force-compression=true",
            Output(
                type=OutputType.DOCKER,
                dest="f.tar",
                compression=LayerCompression(compression=Compression.ZSTD, level=9),
            ),
        ),
        ("type=cacheonly", Output(type=OutputType.CACHEONLY)),
    ],
)
def test_parse_output(text: str, expected: Output) -> None:
    assert parse_output(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dest=x", "type is required for output"),
        ("type=local,dest", "invalid value dest"),
        ("type=s3,dest=x", "unknown output type 's3'"),
        ("type=oci,dest=x,oci-mediatypes=true", "unsupported attribute 'oci-mediatypes'"),
        ("type=image,push=maybe", "invalid value 'maybe' for push"),
        ('type=image,"name=a', 'extraneous or missing " in quoted-field'),
        ("type=oci,compression=lz4", "unsupported compression type 'lz4'"),
    ],
)
def test_parse_output_errors(text: str, message: str) -> None:
    with pytest.raises(BuildError, match=message):
        parse_output(text)


def test_parse_compression() -> None:
    assert parse_compression("gzip") == LayerCompression(compression=Compression.GZIP)
    assert parse_compression("zstd,level=19") == LayerCompression(
        compression=Compression.ZSTD, level=19
    )
    for bad, message in (
        ("zstd,level=23", "want 0-22"),
        ("gzip,level=10", "want 0-9"),
        ("gzip,level=x", "want a number"),
        ("zstd,speed=1", "want level=N"),
        ("brotli", "unsupported compression type"),
        ("uncompressed,level=1", "not supported for none"),
    ):
        with pytest.raises(BuildError, match=message):
            parse_compression(bad)


def test_resolve_push_tags_and_compression() -> None:
    zstd = LayerCompression(compression=Compression.ZSTD)
    assert resolve_outputs([], tags=["a:1"], push=True) == (
        Output(type=OutputType.IMAGE, names=("a:1",), push=True),
    )
    outs = resolve_outputs(
        [parse_output("type=oci,dest=o.tar"), parse_output("type=tar,dest=r.tar")],
        tags=["a:1"],
        compression=zstd,
    )
    assert outs[0].names == ("a:1",)
    assert outs[0].compression == zstd
    assert outs[1].names == ()
    assert resolve_outputs([], tags=["a"], compression=zstd) == (
        Output(type=OutputType.IMAGE, names=("a",), compression=zstd),
    )
    assert resolve_outputs([], tags=["a"]) == ()


@pytest.mark.parametrize(
    ("outputs", "push", "tags", "message"),
    [
        (["type=tar,dest=x"], True, ["a"], 'push and "tar" output can\'t be used together'),
        ([], True, [], "tag is needed when pushing to registry"),
        (["type=registry"], False, [], "tag is needed when pushing to registry"),
        (["type=local"], False, [], "output directory is required for local exporter"),
        (["type=oci,tar=false"], False, [], "output directory is required for oci exporter"),
        (["type=tar,dest=-", "type=oci,dest=-"], False, [], "only one output can write to"),
        (["type=image,name=Bad:tag"], False, [], "repository name"),
    ],
)
def test_resolve_errors(outputs: list[str], push: bool, tags: list[str], message: str) -> None:
    with pytest.raises(BuildError, match=message):
        resolve_outputs([parse_output(o) for o in outputs], tags=tags, push=push)


def test_store_names() -> None:
    assert store_names((), ["a:1"]) == ("a:1",)
    only_files = resolve_outputs([parse_output("type=oci,dest=x")], tags=["a:1"])
    assert store_names(only_files, ["a:1"]) == ()
    both = resolve_outputs(
        [parse_output("type=image,name=b:2"), parse_output('type=registry,"name=c:3,b:2"')],
        tags=["a:1"],
    )
    assert store_names(both, ["a:1"]) == ("b:2", "c:3")
