"""Helpers for the COPY/ADD tests: planner-made CopySteps, tree builders and readers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from builder.context.local import LocalContext
from builder.context.sourcefs import DirectorySource, FileSource
from builder.engine.chown import ChownResolver
from builder.engine.copy import CopyResult, apply_copy
from builder.errors import Span
from builder.oci.config import History
from builder.plan.sources import classify_sources
from builder.plan.steps import CopyStep, FromContext, InlineFile

SPAN = Span(file="Dockerfile", line=3)


Inline = InlineFile


def Step(  # a CopyStep as the planner makes it, with defaults for what a test leaves out
    *,
    sources: tuple[str, ...] = (),
    dest: str = "/",
    workdir: str = "/",
    is_add: bool = False,
    inline_files: tuple[InlineFile, ...] = (),
    chown: str | None = None,
    chmod: str | None = None,
    link: bool = False,
    parents: bool = False,
    excludes: tuple[str, ...] = (),
    checksum: str | None = None,
    unpack: bool | None = None,
    span: Span = SPAN,
) -> CopyStep:
    keyword = "ADD" if is_add else "COPY"
    text = " ".join([keyword, *sources, dest])
    return CopyStep(
        span=span,
        text=text,
        history=History(created_by=text),
        is_add=is_add,
        sources=classify_sources(sources, is_add=is_add, checksum=checksum),
        dest=dest,
        workdir=workdir,
        source=FromContext(),
        inline_files=inline_files,
        chown=chown,
        chmod=chmod,
        link=link,
        parents=parents,
        excludes=excludes,
        unpack=unpack,
    )


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
