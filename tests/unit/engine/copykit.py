"""Helpers for the COPY/ADD tests: a minimal CopyStep, tree builders and readers."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from builder.context.local import LocalContext
from builder.context.sourcefs import DirectorySource, FileSource
from builder.engine.chown import ChownResolver
from builder.engine.copy import CopyResult, apply_copy
from builder.errors import Span

SPAN = Span(file="Dockerfile", line=3)


@dataclass(frozen=True, slots=True, kw_only=True)
class Inline:
    name: str
    data: str | bytes
    mode: int = 0o644


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    sources: tuple[str, ...] = ()
    dest: str = "/"
    workdir: str = "/"
    is_add: bool = False
    inline_files: tuple[Inline, ...] = ()
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    parents: bool = False
    excludes: tuple[str, ...] = ()
    checksum: str | None = None
    unpack: bool | None = None
    span: Span | None = field(default=SPAN)


def write(root: Path, rel: str, data: str | bytes = "x", *, mode: int = 0o644) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    os.chmod(path, mode)
    return path


def tree(root: Path) -> dict[str, str]:
    """Every entry below ``root``: files -> content, dirs -> 'dir', links -> '-> target'."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = "-> " + os.readlink(full)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = "dir"
            else:
                out[rel] = full.read_bytes().decode("utf-8", "replace")
    return out


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def run(
    source: FileSource | Path,
    step: Step,
    out: Path,
    *,
    rootfs: Path | None = None,
    epoch: int | None = None,
) -> CopyResult:
    if isinstance(source, Path):
        source = LocalContext.open(source)
    out.mkdir(parents=True, exist_ok=True)
    return apply_copy(
        source,
        step,
        rootfs=rootfs,
        out_dir=out,
        chown_resolver=ChownResolver(rootfs),
        source_date_epoch=epoch,
    )


def stage(root: Path) -> DirectorySource:
    return DirectorySource(root=root, name="stage")
