"""Remote sources of ADD: HTTP(S) files and git repositories (the planner classified them).

A download goes through :func:`builder.context.download.download`, the one bounded transfer
that tarball contexts use too (10 redirects between http(s) only, never https to http, no
credentials to another origin, a size cap and a total deadline). The file is named after the
``filename`` of a ``Content-Disposition`` header (its base name only, moby's
``getFilenameForDownload``) or else the last element of the URL path (``__unnamed__`` if there is
none), has mode 0600 and the ``Last-Modified`` time, and ``--checksum`` is verified.
``UrlFetcher`` downloads each URL once per build.

A git source is checked out by :func:`builder.context.git.checkout`, shared with git contexts:
kept in the store by commit ID, ``.git`` dropped unless ``--keep-git-dir``, ``--checksum`` (a
commit ID or a prefix of one) compared with the commit the ref resolved to.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from builder.context.download import DownloadLimits, download
from builder.digest import Digest
from builder.errors import ContextError, DigestMismatchError
from builder.oci.descriptor import Descriptor
from builder.store.cas import BlobWriter, ContentStore
from builder.urls import check_checksum, parse_git_url, redact

UNNAMED: Final = "__unnamed__"
_CHUNK: Final = 1 << 20
_MEDIA_TYPE: Final = "application/octet-stream"


def url_filename(url: str) -> str:
    """The file name ADD gives a download: ``path.Base`` of the URL path."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path).rstrip("/")
    base = path.rsplit("/", 1)[-1]
    return base if base not in ("", ".", "..") else UNNAMED


def disposition_filename(value: str | None) -> str | None:
    """The base name of a ``Content-Disposition`` ``filename`` (RFC 6266/2231), if any."""
    if not value:
        return None
    # lazy: the email package loads only for a download that names its file
    import email.message

    msg = email.message.Message()
    msg["Content-Disposition"] = value
    name = msg.get_filename()
    if not name:
        return None
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return base if base not in ("", ".", "..") and "\0" not in base else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Download:
    """A fetched URL: its content is the blob ``blob`` of the content store."""

    url: str
    filename: str
    blob: Descriptor
    mtime_ns: int | None

    @property
    def digest(self) -> Digest:
        return self.blob.digest


class UrlFetcher:
    """Downloads each ADD URL once per build into a content store, and stages copies of it.

    The bytes stream into the store's ingest area (hashed while written) and are committed as
    a blob; with ``--checksum`` the store verifies them before anything is kept. The cache key
    and the copy both read that one blob, so they describe the same bytes. Without ``cas`` a
    private store in a temporary directory is used (removed by ``close``).
    """

    def __init__(
        self, cas: ContentStore | None = None, *, limits: DownloadLimits | None = None
    ) -> None:
        self._cas = cas
        self._own: Path | None = None
        self._given_limits = limits
        self._lock = threading.Lock()
        self._url_locks: dict[str, threading.Lock] = {}
        self._done: dict[str, Download] = {}

    @property
    def _limits(self) -> DownloadLimits:
        """The caller's limits, else ``PYBUILD_MAX_DOWNLOAD``/``PYBUILD_DOWNLOAD_TIMEOUT``."""
        if self._given_limits is None:
            self._given_limits = DownloadLimits.from_environment()
        return self._given_limits

    def _store(self) -> ContentStore:
        if self._cas is None:
            self._own = Path(tempfile.mkdtemp(prefix="pybuild-add-"))
            cas = ContentStore(self._own)
            cas.blobs_dir.mkdir(parents=True)
            cas.ingest_dir.mkdir()
            self._cas = cas
        return self._cas

    def close(self) -> None:
        if self._own is not None:
            shutil.rmtree(self._own, ignore_errors=True)
            self._own = None
            self._cas = None
        self._done.clear()

    def __enter__(self) -> UrlFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(self, url: str, *, checksum: Digest | None = None) -> Download:
        """Download ``url`` (once); a ``checksum`` mismatch raises ``ContextError``."""
        with self._lock:
            url_lock = self._url_locks.setdefault(url, threading.Lock())
        with url_lock:
            done = self._done.get(url)
            if done is None:
                done = self._download(url, checksum)
                self._done[url] = done
        if checksum is not None and done.digest != checksum:
            raise _mismatch(url, checksum, str(done.digest))
        return done

    def stage(self, download: Download, directory: Path) -> Path:
        """Write the download as ``directory/<filename>``: mode 0600, ``Last-Modified`` time."""
        path = directory / download.filename
        with (
            self._store().open(download.blob) as reader,
            open(path, "xb") as out,
        ):
            shutil.copyfileobj(reader, out, _CHUNK)
        os.chmod(path, 0o600)
        if download.mtime_ns is not None:
            os.utime(path, ns=(download.mtime_ns, download.mtime_ns))
        return path

    def _download(self, url: str, checksum: Digest | None) -> Download:
        writer = BlobWriter(
            self._store(), media_type=_MEDIA_TYPE, expected_digest=checksum, expected_size=None
        )
        try:
            got = download(url, writer, limits=self._limits, what="ADD")
            blob = writer.commit()
        except DigestMismatchError as exc:
            raise _mismatch(url, checksum, exc.actual) from None
        finally:
            writer.abort()
        filename = disposition_filename(got.content_disposition) or url_filename(url)
        return Download(
            url=url, filename=filename, blob=blob, mtime_ns=_http_time(got.last_modified)
        )

    def git(
        self, url: str, *, checksum: str | None, keep_git_dir: bool, command: str = "ADD"
    ) -> Path:
        """The directory ``ADD <git URL>`` copies: the checkout of the ref, at its subdir."""
        # lazy: only ADD <git URL> needs the git client
        from builder.context.git import GitOptions, checkout
        from builder.context.prepare import subdir_of

        try:
            parsed = parse_git_url(url)
            if checksum:
                parsed = dataclasses.replace(parsed, checksum=check_checksum(checksum, url=url))
            keep = parsed.keep_git_dir if parsed.keep_git_dir is not None else keep_git_dir
            submodules = parsed.submodules if parsed.submodules is not None else True
            options = GitOptions(keep_git_dir=keep, submodules=submodules)
            done = checkout(parsed, self._store().root, options)
            return subdir_of(done.path, parsed.subdir, label=parsed.display)
        except ContextError as err:
            raise ContextError(f"{command} {err.message}") from None


def _mismatch(url: str, expected: Digest | None, actual: str) -> ContextError:
    return ContextError(f"ADD {redact(url)}: checksum mismatch: expected {expected}, got {actual}")


def _http_time(value: str | None) -> int | None:
    # lazy: only ADD <url> reads HTTP dates
    import calendar
    import email.utils

    if not value:
        return None
    try:
        parsed = email.utils.parsedate_tz(value)
    except (TypeError, ValueError):
        return None
    if parsed is None:
        return None
    seconds = calendar.timegm(parsed[:9]) - (parsed[9] or 0)
    return max(seconds, 0) * 1_000_000_000
