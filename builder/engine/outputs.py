"""Build outputs as the user gives them: ``-o/--output`` (docker's CSV form), ``--push`` and
``--compression``; :mod:`builder.engine.export` writes the image to them.

``parse_output`` reads one ``-o`` value as buildx's ``ParseExports`` does:
``type=T,key=value,...``, a bare ``DIR`` (``type=local,dest=DIR``) or ``-`` (``type=tar`` to
stdout); ``type=registry`` is ``type=image,push=true``. ``resolve_outputs`` folds in ``--push``
and the ``-t`` tags and checks everything before the build starts.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from builder.errors import BuildError
from builder.oci.mediatype import Compression
from builder.reference import parse

_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_LEVELS: Final = {Compression.GZIP: range(10), Compression.ZSTD: range(23)}
_ATTRS: Final = frozenset(
    {"dest", "name", "push", "tar", "compression", "compression-level", "force-compression"}
)


class OutputType(enum.Enum):
    IMAGE = "image"
    OCI = "oci"
    DOCKER = "docker"
    TAR = "tar"
    LOCAL = "local"
    CACHEONLY = "cacheonly"


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerCompression:
    """``--compression gzip|zstd[,level=N]``; ``level`` None is the store's default."""

    compression: Compression
    level: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Output:
    """One ``-o`` value; ``dest`` ``-`` is stdout; ``names`` are the image names it gets."""

    type: OutputType
    dest: str | None = None
    names: tuple[str, ...] = ()
    push: bool = False
    tar: bool = True  # oci/docker: False writes an OCI layout directory
    compression: LayerCompression | None = None

    @property
    def to_stdout(self) -> bool:
        return self.type in _FILE_TYPES and self.tar and self.dest in (None, "-")


_FILE_TYPES: Final = frozenset({OutputType.OCI, OutputType.DOCKER, OutputType.TAR})


def _bool(key: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BuildError(f"invalid value {value!r} for {key}: want true or false")


def _level(compression: Compression, text: str) -> int:
    levels = _LEVELS.get(compression)
    if levels is None:
        raise BuildError(f"compression level is not supported for {compression.value}")
    try:
        level = int(text)
    except ValueError:
        raise BuildError(f"invalid compression level {text!r}: want a number") from None
    if level not in levels:
        raise BuildError(
            f"invalid compression level {level} for {compression.value}:"
            f" want {levels.start}-{levels.stop - 1}"
        )
    return level


def _compression(text: str) -> Compression:
    match text:
        case "gzip":
            return Compression.GZIP
        case "zstd":
            return Compression.ZSTD
        case "uncompressed":
            return Compression.NONE
        case _:
            raise BuildError(
                f"unsupported compression type {text!r}: use gzip, zstd or uncompressed"
            )


def parse_compression(text: str) -> LayerCompression:
    """``gzip``, ``zstd`` or ``uncompressed``, optionally ``,level=N``."""
    kind, _, rest = text.partition(",")
    compression = _compression(kind.strip())
    level = None
    for field in filter(None, rest.split(",")):
        key, sep, value = field.partition("=")
        if not sep or key.strip() != "level":
            raise BuildError(f"invalid compression option {field!r}: want level=N")
        level = _level(compression, value)
    return LayerCompression(compression=compression, level=level)


def _fields(text: str) -> list[str]:
    """Go ``encoding/csv`` fields of one line (double quotes group, ``""`` is a quote)."""
    out: list[str] = []
    field: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == '"' and text[i + 1 : i + 2] == '"':
                field.append('"')
                i += 1
            elif c == '"':
                quoted = False
            else:
                field.append(c)
        elif c == '"' and not field:
            quoted = True
        elif c == ",":
            out.append("".join(field))
            field = []
        else:
            field.append(c)
        i += 1
    if quoted:
        raise BuildError(f'invalid output {text!r}: extraneous or missing " in quoted-field')
    out.append("".join(field))
    return out


def parse_output(text: str) -> Output:
    """One ``-o/--output`` value, as buildx's ``ParseExports`` reads it."""
    if "=" not in text and not text.startswith("type="):
        if text == "-":
            return Output(type=OutputType.TAR, dest="-")
        return Output(type=OutputType.LOCAL, dest=text)
    attrs: dict[str, str] = {}
    kind = ""
    for field in _fields(text):
        key, sep, value = field.partition("=")
        if not sep:
            raise BuildError(f"invalid value {field}")
        key = key.strip().lower()
        if key == "type":
            kind = value
        else:
            attrs[key] = value
    if not kind:
        raise BuildError("type is required for output")
    if kind == "registry":
        kind = "image"
        attrs.setdefault("push", "true")
    try:
        out_type = OutputType(kind)
    except ValueError:
        known = ", ".join(t.value for t in OutputType)
        raise BuildError(f"unknown output type {kind!r}: use registry, {known}") from None
    unknown = sorted(set(attrs) - _ATTRS)
    if unknown:
        raise BuildError(f"output type={kind}: unsupported attribute {unknown[0]!r}")
    compression = None
    if "compression" in attrs:
        compression = LayerCompression(compression=_compression(attrs["compression"]))
    if "compression-level" in attrs:
        base = compression.compression if compression else Compression.GZIP
        compression = LayerCompression(
            compression=base, level=_level(base, attrs["compression-level"])
        )
    if "force-compression" in attrs:
        _bool("force-compression", attrs["force-compression"])  # always forced here
    return Output(
        type=out_type,
        dest=attrs.get("dest"),
        names=tuple(n.strip() for n in attrs.get("name", "").split(",") if n.strip()),
        push=_bool("push", attrs["push"]) if "push" in attrs else False,
        tar=_bool("tar", attrs["tar"]) if "tar" in attrs else True,
        compression=compression,
    )


def resolve_outputs(
    outputs: Sequence[Output],
    *,
    tags: Sequence[str],
    push: bool = False,
    compression: LayerCompression | None = None,
) -> tuple[Output, ...]:
    """The outputs of a build: ``--push`` folded in (buildx: an image output that pushes),
    ``-t`` tags as the names of image, oci and docker outputs without ``name=``, the
    ``--compression`` default applied; checked before anything is built."""
    outs = list(outputs)
    if not outs and compression is not None:
        outs = [Output(type=OutputType.IMAGE)]
    if push:
        if not outs:
            outs = [Output(type=OutputType.IMAGE, push=True)]
        elif outs[0].type is OutputType.IMAGE:
            outs[0] = replace(outs[0], push=True)
        else:
            raise BuildError(f'push and "{outs[0].type.value}" output can\'t be used together')
    named = (OutputType.IMAGE, OutputType.OCI, OutputType.DOCKER)
    done: list[Output] = []
    for out in outs:
        if out.type in named and not out.names and tags:
            out = replace(out, names=tuple(tags))
        if out.compression is None and compression is not None:
            out = replace(out, compression=compression)
        for name in out.names:
            parse(name)  # a bad name fails before the build
        if out.type is OutputType.IMAGE and out.push and not out.names:
            raise BuildError("tag is needed when pushing to registry")
        if out.type is OutputType.LOCAL and not out.dest:
            raise BuildError("output directory is required for local exporter")
        if (
            out.type in (OutputType.OCI, OutputType.DOCKER)
            and not out.tar
            and out.dest
            in (
                None,
                "-",
            )
        ):
            raise BuildError(f"output directory is required for {out.type.value} exporter")
        if out.to_stdout and sys.stdout.isatty():
            raise BuildError(
                f"output file is required for {out.type.value} exporter."
                " refusing to write to console"
            )
        done.append(out)
    if sum(out.to_stdout for out in done) > 1:
        raise BuildError("only one output can write to stdout")
    return tuple(done)


def store_names(outputs: Sequence[Output], tags: Sequence[str]) -> tuple[str, ...]:
    """The names the build gives the image in the store: the ``-t`` tags without ``-o``,
    else those of the image outputs (an oci, tar or local output alone names nothing)."""
    if not outputs:
        return tuple(tags)
    names: list[str] = []
    for out in outputs:
        if out.type is OutputType.IMAGE:
            names.extend(n for n in out.names if n not in names)
    return tuple(names)


__all__ = [
    "LayerCompression",
    "Output",
    "OutputType",
    "parse_compression",
    "parse_output",
    "resolve_outputs",
    "store_names",
]
