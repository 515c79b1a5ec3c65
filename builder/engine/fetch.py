"""Remote sources of ADD: URLs fetched over HTTP(S), and how a source string is classified.

The file is named after the last element of the URL path (``__unnamed__`` if there is none),
has mode 0600 and the ``Last-Modified`` time, and ``--checksum`` is verified. ``UrlFetcher``
downloads each URL once per build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from builder.digest import Digest
from builder.errors import ContextError, StoreError

UNNAMED: Final = "__unnamed__"
_CHUNK: Final = 1 << 20


def is_url(src: str) -> bool:
    return src.startswith(("http://", "https://"))


def is_git_source(src: str) -> bool:
    """Sources BuildKit treats as git repositories (not supported by pybuild)."""
    if src.startswith(("git://", "git@", "ssh://")):
        return True
    if not is_url(src):
        return False
    path = urllib.parse.urlsplit(src).path
    return path.endswith((".git", ".git/"))


def url_filename(url: str) -> str:
    """The file name ADD gives a download: ``path.Base`` of the URL path."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path).rstrip("/")
    base = path.rsplit("/", 1)[-1]
    return base if base not in ("", ".", "..") else UNNAMED


def parse_checksum(text: str) -> Digest:
    try:
        return Digest.parse(text)
    except StoreError:
        raise ContextError(
            f"invalid checksum {text!r}: want sha256:<64 lowercase hex digits>"
        ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Download:
    """A fetched URL: ``directory/filename`` holds the content."""

    url: str
    directory: Path
    filename: str
    digest: Digest
    mtime_ns: int | None


class UrlFetcher:
    """Downloads ADD URLs once per build; files live in ``directory`` (a temp dir if None)."""

    def __init__(self, directory: Path | None = None, *, timeout: float = 60.0) -> None:
        self._given = directory
        self._dir: Path | None = None
        self._timeout = timeout
        self._done: dict[str, Download] = {}

    def _workdir(self) -> Path:
        if self._dir is None:
            if self._given is not None:
                self._given.mkdir(parents=True, exist_ok=True)
                self._dir = Path(tempfile.mkdtemp(prefix="add-", dir=self._given))
            else:
                self._dir = Path(tempfile.mkdtemp(prefix="pybuild-add-"))
        return self._dir

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self._done.clear()

    def __enter__(self) -> UrlFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(self, url: str, *, checksum: Digest | None = None) -> Download:
        """Download ``url`` (once); a ``checksum`` mismatch raises ``ContextError``."""
        done = self._done.get(url)
        if done is None:
            done = self._download(url)
            self._done[url] = done
        if checksum is not None and done.digest != checksum:
            raise ContextError(
                f"ADD {url}: checksum mismatch: expected {checksum}, got {done.digest}"
            )
        return done

    def _download(self, url: str) -> Download:
        import urllib.error
        import urllib.request

        filename = url_filename(url)
        target = self._workdir() / hashlib.sha256(url.encode()).hexdigest()[:32]
        target.mkdir()
        path = target / filename
        request = urllib.request.Request(url, headers={"User-Agent": "pybuild"})
        h = hashlib.sha256()
        try:
            with (
                urllib.request.urlopen(request, timeout=self._timeout) as resp,
                open(path, "wb") as out,
            ):
                modified = resp.headers.get("Last-Modified")
                while chunk := resp.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
        except urllib.error.HTTPError as exc:
            raise ContextError(
                f"ADD {url}: invalid response status {exc.code} {exc.reason}"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ContextError(f"ADD {url}: download failed: {reason}") from None
        os.chmod(path, 0o600)
        mtime_ns = _http_time(modified)
        if mtime_ns is not None:
            os.utime(path, ns=(mtime_ns, mtime_ns))
        return Download(
            url=url,
            directory=target,
            filename=filename,
            digest=Digest.from_hex(h.hexdigest()),
            mtime_ns=mtime_ns,
        )


def _http_time(value: str | None) -> int | None:
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
