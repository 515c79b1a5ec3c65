"""COPY/ADD sources, classified once: a path in the step's file source, a URL, or git.

BuildKit's ``dispatchCopy`` (``dockerfile2llb/convert.go``) decides the kind of each source and
rejects what needs no execution to be found wrong: URLs and git repositories in COPY, and
``--checksum`` with several sources, a local source, or (for a URL) a value that is not a
digest. The engine then matches on the kinds and never looks at the strings again. Failures raise
:class:`~builder.errors.InvalidInstructionError` without a span; the planner adds the
instruction's.
"""

from __future__ import annotations

from collections.abc import Sequence

from builder.digest import Digest
from builder.errors import ContextError, InvalidInstructionError, StoreError
from builder.plan.steps import CopySource, GitSource, PathSource, UrlSource
from builder.urls import check_checksum, is_git_url, parse_git_url


def _check_git(src: str, checksum: str | None) -> None:
    """A bad ref, subdir, query or checksum fails at planning, before anything is fetched."""
    try:
        parse_git_url(src)
        if checksum:
            check_checksum(checksum, url=src)
    except ContextError as err:
        raise InvalidInstructionError(err.message) from None


def is_http_source(src: str) -> bool:
    return src.startswith(("http://", "https://")) and not is_git_url(src)


def parse_checksum(text: str) -> Digest:
    """``digest.Parse`` with go-digest's messages; pybuild verifies sha256 only."""
    algorithm, sep, encoded = text.partition(":")
    if not sep or not algorithm:
        raise InvalidInstructionError("invalid checksum digest format")
    if algorithm != "sha256":
        raise InvalidInstructionError("unsupported digest algorithm")
    if len(encoded) != 64:
        raise InvalidInstructionError("invalid checksum digest length")
    try:
        return Digest.parse(text)
    except StoreError:
        raise InvalidInstructionError("invalid checksum digest format") from None


def classify_sources(
    sources: Sequence[str], *, is_add: bool, checksum: str | None
) -> tuple[CopySource, ...]:
    """The kind of each source of a COPY (``is_add`` false) or ADD, checked as BuildKit does."""
    if checksum:
        if len(sources) != 1:
            raise InvalidInstructionError("checksum can't be specified for multiple sources")
        if not is_http_source(sources[0]) and not is_git_url(sources[0]):
            raise InvalidInstructionError("checksum requires HTTP(S) or Git sources")
    out: list[CopySource] = []
    for src in sources:
        if is_git_url(src):
            if not is_add:
                raise InvalidInstructionError("source can't be a git ref for COPY")
            _check_git(src, checksum)
            out.append(GitSource(url=src, checksum=checksum or None))
        elif is_http_source(src):
            if not is_add:
                raise InvalidInstructionError("source can't be a URL for COPY")
            out.append(UrlSource(url=src, checksum=parse_checksum(checksum) if checksum else None))
        else:
            out.append(PathSource(path=src))
    return tuple(out)


__all__ = ["classify_sources", "is_http_source", "parse_checksum"]
