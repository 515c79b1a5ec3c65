"""The CONTEXT argument of a build, made into a directory plus the Dockerfile to build.

Detection follows the docker CLI (``cli/command/image/build.go``): ``-`` is stdin (a tar
archive, optionally compressed, is the context; anything else is the Dockerfile with an empty
context); an existing directory is a local context; a git URL (:mod:`builder.urls`) is a git
context; any other ``http(s)://`` URL is downloaded, and is a tarball context when it holds an
archive (compression detected by content) or else the Dockerfile, with an empty context. Anything
else is taken as a local path (and fails as one).

For remote and streamed contexts the Dockerfile (``-f`` is relative to the context root, and to
the subdir of a git URL) is read in-root, so a symlinked ``Dockerfile`` cannot read the host.
Tarballs are extracted into the store's ``tmp/`` with the layer extractor (in-root, entries that
escape refused, decompressed size capped) and removed when the build ends; git checkouts stay in
the store by commit ID (:mod:`builder.context.git`).
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from builder.context.download import DownloadLimits, download
from builder.errors import ContextError
from builder.fs.root import FileTooLargeError, Root
from builder.store import paths
from builder.urls import GitURL, is_git_url, is_http_url, parse_git_url, redact

MAX_DOCKERFILE_BYTES: Final = 64 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedContext:
    """A context directory and its Dockerfile; ``close`` removes a temporary directory."""

    kind: str  # "git", "tarball", "stdin" or "dockerfile" (no context: an empty directory)
    directory: Path
    dockerfile_name: str
    dockerfile: bytes
    dockerfile_path: Path | None  # for the <Dockerfile>.dockerignore lookup and no-op records
    reusable: bool  # the directory stays the same for the same input (no-op records may apply)
    temporary: Path | None = None

    def close(self) -> None:
        if self.temporary is not None:
            shutil.rmtree(self.temporary, ignore_errors=True)


def prepare(
    context: str,
    dockerfile: str | None,
    *,
    store_root: Path,
    stdin: BinaryIO | None = None,
    keep_git_dir: bool = False,
    limits: DownloadLimits | None = None,
) -> PreparedContext:
    """Turn ``context`` (``-`` or a URL; a local directory is read in place by the caller) and
    ``dockerfile`` (``-f``, relative to the context) into a directory."""
    if context == "-":
        if dockerfile == "-":
            raise ContextError(
                "invalid argument: can't use stdin for both build context and dockerfile"
            )
        return _from_stdin(stdin, dockerfile, store_root=store_root, limits=limits)
    if dockerfile == "-":
        raise ContextError(
            f"{redact(context)}: a Dockerfile from stdin needs a local context directory"
        )
    if is_git_url(context):
        return _git(parse_git_url(context), dockerfile, store_root, keep_git_dir=keep_git_dir)
    if is_http_url(context):
        return _from_url(context, dockerfile, store_root=store_root, limits=limits)
    raise ContextError(f"unable to prepare context: {context!r} is not a URL")


# --- git ---------------------------------------------------------------------------------------


def _git_tree(url: GitURL, store_root: Path, *, keep_git_dir: bool) -> Path:
    """The checkout of ``url`` (its subdir) in the store."""
    # lazy: only git contexts need the git client
    from builder.context.git import GitOptions, checkout

    keep = url.keep_git_dir if url.keep_git_dir is not None else keep_git_dir
    submodules = url.submodules if url.submodules is not None else True
    done = checkout(url, store_root, GitOptions(keep_git_dir=keep, submodules=submodules))
    return subdir_of(done.path, url.subdir, label=url.display)


def _git(
    url: GitURL, dockerfile: str | None, store_root: Path, *, keep_git_dir: bool
) -> PreparedContext:
    directory = _git_tree(url, store_root, keep_git_dir=keep_git_dir)
    name, data, path = _read_in_root(directory, dockerfile, label=url.display)
    return PreparedContext(
        kind="git",
        directory=directory,
        dockerfile_name=name,
        dockerfile=data,
        dockerfile_path=path,
        reusable=True,
    )


def subdir_of(tree: Path, subdir: str, *, label: str) -> Path:
    """``tree/subdir`` where every component is a real directory (no symlink is followed)."""
    if not subdir:
        return tree
    comps = tuple(subdir.split("/"))
    with Root(tree) as root:
        try:
            os.close(root.open_dir(comps))
        except OSError:
            raise ContextError(
                f"{label}: subdir {subdir!r} not found in the repository (or not a directory)"
            ) from None
    return tree.joinpath(*comps)


def _read_in_root(
    directory: Path, dockerfile: str | None, *, label: str
) -> tuple[str, bytes, Path]:
    """The Dockerfile ``dockerfile`` (default ``Dockerfile``, then ``dockerfile``) in-root."""
    names = [dockerfile] if dockerfile else ["Dockerfile", "dockerfile"]
    with Root(directory) as root:
        for name in names:
            try:
                entry = root.resolve(name)
            except OSError:
                continue
            if entry.st is None or not entry.comps or not stat.S_ISREG(entry.st.st_mode):
                continue
            try:
                data = root.read("/".join(entry.comps), limit=MAX_DOCKERFILE_BYTES)
            except FileTooLargeError:
                raise ContextError(
                    f"{label}: {name} is larger than {MAX_DOCKERFILE_BYTES} bytes"
                ) from None
            if data is None:
                continue
            return entry.comps[-1], data, directory.joinpath(*entry.comps)
    raise ContextError(f"{label}: failed to read dockerfile: {names[0]!r} not found in the context")


# --- tarballs, remote Dockerfiles and stdin ----------------------------------------------------


def _workdir(store_root: Path) -> Path:
    tmp = store_root / paths.TMP
    tmp.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="context-", dir=tmp))


def _from_url(
    url: str, dockerfile: str | None, *, store_root: Path, limits: DownloadLimits | None
) -> PreparedContext:
    limits = limits or DownloadLimits.from_environment()

    def fill(out: BinaryIO, limits: DownloadLimits) -> None:
        download(url, out, limits=limits, what="unable to prepare context:")

    return _from_body(
        fill, dockerfile, store_root=store_root, limits=limits, label=redact(url), kind="tarball"
    )


def _from_stdin(
    stdin: BinaryIO | None,
    dockerfile: str | None,
    *,
    store_root: Path,
    limits: DownloadLimits | None,
) -> PreparedContext:
    limits = limits or DownloadLimits.from_environment()
    source = stdin if stdin is not None else _stdin()

    def fill(out: BinaryIO, limits: DownloadLimits) -> None:
        total = 0
        while chunk := source.read(1 << 20):
            total += len(chunk)
            if total > limits.max_bytes:
                raise ContextError(
                    f"context from stdin: too large: more than {limits.max_bytes} bytes"
                )
            out.write(chunk)

    return _from_body(
        fill,
        dockerfile,
        store_root=store_root,
        limits=limits,
        label="context from stdin",
        kind="stdin",
    )


def _from_body(
    fill: Callable[[BinaryIO, DownloadLimits], None],
    dockerfile: str | None,
    *,
    store_root: Path,
    limits: DownloadLimits,
    label: str,
    kind: str,
) -> PreparedContext:
    """A streamed context (a URL's body or stdin): ``fill`` writes it to a file in a fresh work
    directory, which then holds the Dockerfile or the extracted archive; on any failure the
    directory goes."""
    work = _workdir(store_root)
    try:
        body = work / "body"
        with open(body, "wb") as out:
            fill(out, limits)
        with open(body, "rb") as fh:
            prepared = _from_bytes_or_archive(
                fh, dockerfile, work=work, label=label, limits=limits, kind=kind
            )
        body.unlink()
        return prepared
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _from_bytes_or_archive(
    fh: BinaryIO,
    dockerfile: str | None,
    *,
    work: Path,
    label: str,
    limits: DownloadLimits,
    kind: str,
) -> PreparedContext:
    # lazy: only tarball contexts need the archive reader
    from builder.context.tarball import extract, is_archive

    directory = work / "context"
    directory.mkdir(mode=0o755)
    if is_archive(fh):
        fh.seek(0)
        extract(fh, directory, label=label, max_bytes=limits.max_bytes)
        name, data, path = _read_in_root(directory, dockerfile, label=label)
        return PreparedContext(
            kind=kind,
            directory=directory,
            dockerfile_name=name,
            dockerfile=data,
            dockerfile_path=path,
            reusable=False,
            temporary=work,
        )
    fh.seek(0)
    data = fh.read(MAX_DOCKERFILE_BYTES + 1)
    if len(data) > MAX_DOCKERFILE_BYTES:
        raise ContextError(f"{label}: not an archive, and too large for a Dockerfile")
    return PreparedContext(
        kind="dockerfile",
        directory=directory,
        dockerfile_name="Dockerfile",
        dockerfile=data,
        dockerfile_path=None,
        reusable=False,
        temporary=work,
    )


def _stdin() -> BinaryIO:
    return sys.stdin.buffer


# --- trees without a Dockerfile (named contexts) -----------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedTree:
    """A fetched file tree (``--build-context NAME=URL``); ``close`` removes a temporary one."""

    kind: str  # "git" or "url"
    directory: Path
    temporary: Path | None = None

    def close(self) -> None:
        if self.temporary is not None:
            shutil.rmtree(self.temporary, ignore_errors=True)


def fetch_tree(
    url: str,
    *,
    store_root: Path,
    keep_git_dir: bool = False,
    limits: DownloadLimits | None = None,
) -> PreparedTree:
    """A git URL's tree (kept in the store by commit), or an http(s) URL's body: a tar archive
    (any compression) extracted, anything else as the one file ``context`` (mode 0600), as
    BuildKit's ``llb.HTTP(url, llb.Filename("context"))`` gives it."""
    if is_git_url(url):
        directory = _git_tree(parse_git_url(url), store_root, keep_git_dir=keep_git_dir)
        return PreparedTree(kind="git", directory=directory)
    if not is_http_url(url):
        raise ContextError(f"{redact(url)}: not a git or http(s) URL")
    # lazy: only tarball sources need the archive reader
    from builder.context.tarball import extract, is_archive

    limits = limits or DownloadLimits.from_environment()
    work = _workdir(store_root)
    try:
        directory = work / "context"
        directory.mkdir(mode=0o755)
        body = work / "download"
        with open(body, "wb") as out:
            download(url, out, limits=limits, what="unable to prepare context:")
        with open(body, "rb") as fh:
            archive = is_archive(fh)
            if archive:
                extract(fh, directory, label=redact(url), max_bytes=limits.max_bytes)
        if archive:
            body.unlink()
        else:
            os.chmod(body, 0o600)
            body.rename(directory / "context")
        return PreparedTree(kind="url", directory=directory, temporary=work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


__all__ = ["PreparedContext", "PreparedTree", "fetch_tree", "prepare"]
