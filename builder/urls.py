"""Remote source URLs: what counts as a git repository, what as a plain HTTP(S) download.

Pure string parsing (no I/O), shared by build contexts, ``ADD`` and the planner. The rules are
BuildKit's (``util/gitutil/git_url.go`` ``ParseURL`` and ``frontend/dockerfile/dfgitutil``
``ParseGitRef``):

- ``git://``, ``ssh://`` and SCP-like ``user@host:path`` are always git;
- ``http://`` and ``https://`` are git only when the URL path ends in ``.git``; any other HTTP(S)
  URL is a download (a tarball context, a remote Dockerfile, an ``ADD`` file);
- a fragment ``#ref``, ``#ref:subdir`` or ``#:subdir`` picks a ref and a directory, and the
  query form ``?ref=&tag=&branch=&subdir=&checksum=&keep-git-dir=&submodules=`` does the same
  (BuildKit 0.24 / Dockerfile 1.18); the two may be combined when they agree.

Refs and hosts that git could read as options (leading ``-``), refs with characters git refuses
in ref names, and subdirs that climb out of the repository are refused here, so they never reach
a ``git`` command line (CVE-2019-13139).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from builder.errors import ContextError
from builder.fs import paths
from builder.units import parse_bool

# urllib.parse loads inside the functions that need it: deciding that a local path is not a URL
# must not cost start-up time (the no-op rebuild answers in a few hundred milliseconds).

GitScheme = Literal["https", "http", "git", "ssh"]

_SCHEME: Final = re.compile(r"^([A-Za-z0-9+.-]+)://")
_GIT_SCHEMES: Final[frozenset[str]] = frozenset({"https", "http", "git", "ssh"})
# BuildKit sshutil: user@host:path; a user is required, so `c:/dir` or `a:b` stay local paths.
_SCP: Final = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.+-]*)@([A-Za-z0-9.-]+):(.+)$")
_HEX: Final = re.compile(r"^[0-9a-f]+$")
# Characters git refuses in ref names (git check-ref-format), plus whitespace.
_BAD_REF_CHARS: Final = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_QUERY_KEYS: Final = ("ref", "tag", "branch", "subdir", "checksum", "commit", "keep-git-dir")


@dataclass(frozen=True, slots=True, kw_only=True)
class GitURL:
    """A git repository plus what to take from it.

    ``remote`` is what ``git`` is given (no fragment, no BuildKit query). ``ref`` is a branch, a
    tag, a commit (full or abbreviated) or a full ref name such as ``refs/pull/1/head``; empty
    means the remote's default branch. ``subdir`` is clean and relative ("" = the top).
    ``checksum`` is a (prefix of a) commit ID the ref must resolve to.
    """

    remote: str
    scheme: GitScheme
    host: str
    ref: str = ""
    subdir: str = ""
    checksum: str = ""
    keep_git_dir: bool | None = None
    submodules: bool | None = None

    @property
    def display(self) -> str:
        """The remote with any password removed, for messages and history."""
        return redact(self.remote)

    @property
    def short_name(self) -> str:
        """The repository's directory name (``repo`` for ``…/repo.git``)."""
        tail = self.remote.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        return tail.removesuffix(".git")

    @property
    def full_commit(self) -> str | None:
        """``ref`` when it is a full commit ID (40 or 64 hex digits), else None."""
        return self.ref if is_full_commit(self.ref) else None


def is_full_commit(text: str) -> bool:
    return len(text) in (40, 64) and _HEX.match(text) is not None


def is_http_url(text: str) -> bool:
    """``http://`` or ``https://`` (moby ``urlutil.IsURL``)."""
    return text.lower().startswith(("http://", "https://"))


def is_git_url(text: str) -> bool:
    """Whether BuildKit would take ``text`` for a git repository (a bad ref still counts)."""
    scheme = _scheme(text)
    if scheme is None:
        return _SCP.match(text) is not None and not text.startswith(("./", "../", "/"))
    if scheme not in _GIT_SCHEMES:
        return False
    if scheme in ("http", "https"):
        # lazy: urllib.parse only for URLs, never for a local path (start-up)
        import urllib.parse

        path = urllib.parse.urlsplit(text).path
        return path.endswith(".git")
    return True


def redact(url: str) -> str:
    """``url`` with the password of its user info replaced by ``xxxxx`` (as BuildKit prints)."""
    # lazy: urllib.parse only for URLs, never for a local path (start-up)
    import urllib.parse

    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:xxxxx@{host}"))


def parse_git_url(text: str) -> GitURL:
    """Parse a git URL in any form docker accepts; ``ContextError`` names what is wrong."""
    # lazy: urllib.parse only for URLs, never for a local path (start-up)
    import urllib.parse

    scheme = _scheme(text)
    fragment = ""
    query: list[tuple[str, str]] = []
    if scheme is None:
        match = _SCP.match(text)
        if match is None or text.startswith(("./", "../", "/")):
            raise ContextError(f"{text!r} is not a git repository URL")
        user, host, rest = match.groups()
        rest, _, fragment = rest.partition("#")
        rest, sep, query_text = rest.partition("?")
        if sep:
            query = _parse_query(text, query_text)
        remote = f"{user}@{host}:{rest}"
        git_scheme: GitScheme = "ssh"
    else:
        if scheme not in _GIT_SCHEMES:
            raise ContextError(f"{redact(text)}: unsupported git transport {scheme!r}")
        user = ""
        try:
            parts = urllib.parse.urlsplit(text)
            host = parts.hostname or ""
            _ = parts.port  # a malformed port raises here
        except ValueError as exc:
            raise ContextError(f"{redact(text)}: invalid URL: {exc}") from None
        if scheme in ("http", "https") and not parts.path.endswith(".git"):
            raise ContextError(
                f"{redact(text)}: an HTTP(S) git URL must end in .git (else it is a download)"
            )
        if not host:
            raise ContextError(f"{redact(text)}: git URL has no host")
        if parts.query:
            query = _parse_query(text, parts.query)
        fragment = parts.fragment
        remote = urllib.parse.urlunsplit(parts._replace(query="", fragment=""))
        git_scheme = _git_scheme(scheme)
        user = parts.username or ""
    if host.startswith("-") or user.startswith("-"):
        raise ContextError(f"{redact(text)}: invalid git URL: host or user starts with '-'")
    ref, _, subdir = fragment.partition(":")
    result = _apply_query(text, ref, subdir, query)
    return GitURL(
        remote=remote,
        scheme=git_scheme,
        host=host,
        ref=check_ref(result.ref, url=text),
        subdir=clean_subdir(result.subdir, url=text),
        checksum=check_checksum(result.checksum, url=text),
        keep_git_dir=result.keep_git_dir,
        submodules=result.submodules,
    )


def check_ref(ref: str, *, url: str) -> str:
    """Refuse refs git could read as an option or would not accept as a ref name."""
    if not ref:
        return ""
    bad = (
        ref.startswith("-")
        or _BAD_REF_CHARS.search(ref) is not None
        or ".." in ref
        or "@{" in ref
        or ref.endswith((".", "/", ".lock"))
        or "//" in ref
    )
    if bad:
        raise ContextError(f"{redact(url)}: invalid refspec {ref!r}")
    return ref


def clean_subdir(subdir: str, *, url: str) -> str:
    """A repository subdirectory as a clean relative path; climbing out of the top is refused."""
    if not subdir:
        return ""
    if "\x00" in subdir:
        raise ContextError(f"{redact(url)}: invalid subdir {subdir!r}")
    depth = 0
    for part in subdir.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                raise ContextError(f"{redact(url)}: subdir {subdir!r} is outside of the repository")
        elif part not in ("", "."):
            depth += 1
    cleaned = paths.clean_abs(subdir).lstrip("/")
    return "" if cleaned in ("", ".") else cleaned


def check_checksum(checksum: str, *, url: str) -> str:
    """A commit ID or a prefix of one (lowercase hex)."""
    if not checksum:
        return ""
    lowered = checksum.lower()
    if len(lowered) > 64 or _HEX.match(lowered) is None:
        raise ContextError(
            f"{redact(url)}: invalid checksum {checksum!r}: want a commit ID or a prefix of one"
        )
    return lowered


def _git_scheme(scheme: str) -> GitScheme:
    match scheme:
        case "https" | "http" | "git" | "ssh":
            return scheme
        case _:
            raise ContextError(f"unsupported git transport {scheme!r}")


def _scheme(text: str) -> str | None:
    match = _SCHEME.match(text)
    return match.group(1).lower() if match else None


def _parse_query(url: str, text: str) -> list[tuple[str, str]]:
    """Go's ``url.ParseQuery``: ``k=v`` pairs split on ``&``; a bare ``k`` has an empty value."""
    # lazy: urllib.parse only for URLs, never for a local path (start-up)
    import urllib.parse

    out: list[tuple[str, str]] = []
    for pair in text.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        try:
            key = urllib.parse.unquote_plus(key, errors="strict")
            value = urllib.parse.unquote_plus(value, errors="strict")
        except UnicodeDecodeError:
            raise ContextError(f"{redact(url)}: invalid query {text!r}") from None
        out.append((key, value))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class _Options:
    ref: str
    subdir: str
    checksum: str = ""
    keep_git_dir: bool | None = None
    submodules: bool | None = None


def _apply_query(url: str, ref: str, subdir: str, query: list[tuple[str, str]]) -> _Options:
    """BuildKit ``GitRef.loadQuery``: merge ``?ref=&tag=&branch=...`` with the fragment."""
    seen: dict[str, str] = {}
    for key, value in query:
        if key in seen:
            raise ContextError(f"{redact(url)}: query {key!r} has multiple values")
        if key not in (*_QUERY_KEYS, "submodules"):
            raise ContextError(f"{redact(url)}: unexpected query {key!r}")
        if not value and key not in ("submodules", "keep-git-dir"):
            raise ContextError(f"{redact(url)}: query {key!r} has no value")
        seen[key] = value

    def conflict(what: str, a: str, b: str) -> ContextError:
        return ContextError(f"{redact(url)}: {what} conflicts: {a!r} vs {b!r}")

    if "ref" in seen:
        if ref and ref != seen["ref"]:
            raise conflict("ref", ref, seen["ref"])
        ref = seen["ref"]
    if "subdir" in seen:
        if subdir and subdir != seen["subdir"]:
            raise conflict("subdir", subdir, seen["subdir"])
        subdir = seen["subdir"]
    tag, branch = seen.get("tag", ""), seen.get("branch", "")
    if tag:
        tag = tag if tag.startswith("refs/tags/") else "refs/tags/" + tag
        if ref and ref != tag:
            raise conflict("ref", ref, tag)
        ref = tag
    if branch:
        if tag:
            raise ContextError(f"{redact(url)}: branch conflicts with tag")
        branch = branch if branch.startswith("refs/heads/") else "refs/heads/" + branch
        if ref and ref != branch:
            raise conflict("ref", ref, branch)
        ref = branch
    checksum = seen.get("checksum") or seen.get("commit") or ""
    if checksum and not ref:
        ref = checksum
    return _Options(
        ref=ref,
        subdir=subdir,
        checksum=checksum,
        keep_git_dir=_bool(url, "keep-git-dir", seen),
        submodules=_bool(url, "submodules", seen),
    )


def _bool(url: str, key: str, seen: dict[str, str]) -> bool | None:
    if key not in seen:
        return None
    value = seen[key]
    if value == "":
        return True
    flag = parse_bool(value)
    if flag is not None:
        return flag
    raise ContextError(f"{redact(url)}: invalid {key} value: {value!r}")
