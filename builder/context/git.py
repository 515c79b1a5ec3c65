"""Git sources (build contexts and ``ADD <git URL>``): fetched with the ``git`` command, kept by
commit ID in the store.

``git`` itself does the transfer, so users' credential helpers, ``~/.ssh``, ``GIT_SSH_COMMAND``
and proxy settings work as they do for ``git clone``. A ref is resolved with ``git ls-remote``
(a full commit ID needs no network at all); the commit is then looked up in the store's ``git/``
directory, and only on a miss fetched, shallow (``--depth=1``, only that ref) where the server
allows it, with submodules, into the store's ``tmp/`` and renamed into place. A second build of
the same commit fetches nothing.

Hardening (CVE-2019-13139 and BuildKit's ``util/gitutil/git_cli.go``): refs were checked by
:mod:`builder.urls` and are passed after ``--``; ``GIT_ALLOW_PROTOCOL`` admits http, https, git
and ssh only (``ext::``, ``fd::`` and ``file://`` submodules are refused) unless the caller
allows ``file`` for a local source; there is no prompt (``GIT_TERMINAL_PROMPT=0``, no stdin,
no controlling terminal), and every git run has a deadline. ``.git`` (and each submodule's
``.git`` file) is removed from the tree unless ``keep_git_dir``, and a kept ``.git`` never
records a password from the URL.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from builder.errors import ContextError
from builder.store import paths
from builder.urls import GitURL, is_full_commit, redact

DEFAULT_TIMEOUT: Final = 1800.0  # seconds for one whole fetch
_PROTOCOLS: Final = "https:http:git:ssh"
_ABBREV: Final = re.compile(r"^[0-9a-f]{4,39}$")
_STDERR_LIMIT: Final = 64 << 10


@dataclass(frozen=True, slots=True, kw_only=True)
class GitOptions:
    keep_git_dir: bool = False
    submodules: bool = True
    allow_file: bool = False  # file:// transports (only for a repository that is itself local)
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkout:
    """A commit's tree in the store; ``fetched`` is False when it came from the cache."""

    url: GitURL
    commit: str
    path: Path
    fetched: bool


def checkout(url: GitURL, store_root: Path, options: GitOptions | None = None) -> Checkout:
    """The tree of ``url``'s ref (cached by commit ID under ``store_root/git``)."""
    options = options or GitOptions()
    runner = _Git(url, options)
    cache = store_root / paths.GIT
    commit = url.full_commit
    fetch_ref = commit
    if commit is None:
        commit, fetch_ref = runner.resolve(url.ref)
    if commit is not None:
        _check_checksum(url, commit)
        cached = cache / _entry_name(commit, options)
        if cached.is_dir():
            return Checkout(url=url, commit=commit, path=cached, fetched=False)
    tmp_root = store_root / paths.TMP
    tmp_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="git-", dir=tmp_root))
    try:
        tree = work / "tree"
        commit = runner.fetch(tree, commit=commit, fetch_ref=fetch_ref)
        _check_checksum(url, commit)
        if not options.keep_git_dir:
            _strip_git(tree)
        cache.mkdir(mode=0o700, exist_ok=True)
        final = cache / _entry_name(commit, options)
        with contextlib.suppress(FileExistsError, OSError):
            os.rename(tree, final)  # a concurrent build may have put the same commit there
        if not final.is_dir():
            raise ContextError(f"{url.display}: cannot store the checkout in {cache}")
        return Checkout(url=url, commit=commit, path=final, fetched=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _entry_name(commit: str, options: GitOptions) -> str:
    return (
        commit + (".git" if options.keep_git_dir else "") + ("" if options.submodules else ".nosub")
    )


def _check_checksum(url: GitURL, commit: str) -> None:
    if url.checksum and not commit.startswith(url.checksum):
        raise ContextError(
            f"{url.display}: expected checksum to match {url.checksum}, got {commit}"
        )


def _strip_git(tree: Path) -> None:
    """Remove ``.git`` directories and submodule ``.git`` files; symlinks are never followed."""
    for dirpath, dirnames, filenames in os.walk(tree, followlinks=False):
        if ".git" in dirnames:
            dirnames.remove(".git")
            shutil.rmtree(os.path.join(dirpath, ".git"))
        if ".git" in filenames:
            os.unlink(os.path.join(dirpath, ".git"))


class _Git:
    """Runs ``git`` for one URL under one deadline."""

    def __init__(self, url: GitURL, options: GitOptions) -> None:
        self.url = url
        self.options = options
        self.deadline = time.monotonic() + options.timeout
        env = dict(os.environ)
        env.update(
            GIT_TERMINAL_PROMPT="0",
            GIT_ALLOW_PROTOCOL=_PROTOCOLS + (":file" if options.allow_file else ""),
            GIT_CONFIG_NOSYSTEM="1",
            LC_ALL="C",
            LANGUAGE="C",
        )
        env.pop("GIT_DIR", None)
        env.pop("GIT_WORK_TREE", None)
        self.env = env

    def resolve(self, ref: str) -> tuple[str | None, str | None]:
        """(commit, ref name to fetch) from ``git ls-remote``; (None, None) for an abbreviated
        commit ID the remote does not advertise, which needs a full fetch."""
        wanted = ref or "HEAD"
        patterns = [wanted, wanted + "^{}"]  # the peeled commit of an annotated tag
        out = self.run(["ls-remote", "--", self.url.remote, *patterns], what="ls-remote")
        refs: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            if is_full_commit(sha) and name:
                refs[name] = sha
        if wanted == "HEAD" and "HEAD" in refs:
            return refs["HEAD"], "HEAD"
        # git rev-parse's order: the exact name, then tags (peeled), then branches.
        for name in (wanted, f"refs/tags/{wanted}", f"refs/heads/{wanted}"):
            if name in refs:
                return refs.get(f"{name}^{{}}", refs[name]), name
        if _ABBREV.match(ref) or is_full_commit(ref):
            return None, None
        raise ContextError(f"{self.url.display}: unknown ref {ref or 'HEAD'!r}")

    def fetch(self, tree: Path, *, commit: str | None, fetch_ref: str | None) -> str:
        """Fetch into a new repository at ``tree`` and check out; returns the commit ID."""
        self.run(["init", "-q", "--", str(tree)], what="init")
        self.run(["remote", "add", "--", "origin", self.url.remote], cwd=tree, what="remote")
        shallow = ["fetch", "-q", "--depth=1", "--no-tags", "--", "origin"]
        got: str | None = None
        if fetch_ref is not None:
            try:
                self.run([*shallow, fetch_ref], cwd=tree, what="fetch")
                got = self.rev_parse(tree, "FETCH_HEAD")
            except ContextError:
                if commit is None or fetch_ref != commit:
                    raise
                got = None  # the server refuses a commit it does not advertise: fetch it all
        if got is None:
            self.run(
                [
                    "fetch",
                    "-q",
                    "--",
                    "origin",
                    "+refs/heads/*:refs/remotes/origin/*",
                    "+refs/tags/*:refs/tags/*",
                ],
                cwd=tree,
                what="fetch",
            )
            wanted = commit or self.url.ref
            try:
                got = self.rev_parse(tree, wanted)
            except ContextError:
                raise ContextError(f"{self.url.display}: unknown ref {self.url.ref!r}") from None
        self.run(
            ["-c", "advice.detachedHead=false", "checkout", "-q", got], cwd=tree, what="checkout"
        )
        if self.options.submodules and (tree / ".gitmodules").is_file():
            self._submodules(tree)
        if self.options.keep_git_dir and self.url.display != self.url.remote:
            self.run(
                ["remote", "set-url", "--", "origin", self.url.display], cwd=tree, what="remote"
            )
        return got

    def _submodules(self, tree: Path) -> None:
        base = ["submodule", "update", "--init", "--recursive"]
        try:
            self.run([*base, "--depth=1"], cwd=tree, what="submodule update")
        except ContextError as err:
            if "not allowed" in err.message:
                raise
            self.run(base, cwd=tree, what="submodule update")

    def rev_parse(self, tree: Path, rev: str) -> str:
        out = self.run(
            ["rev-parse", "-q", "--verify", "--end-of-options", f"{rev}^{{commit}}"],
            cwd=tree,
            what="rev-parse",
        )
        sha = out.strip()
        if not is_full_commit(sha):
            raise ContextError(f"{self.url.display}: unknown ref {rev!r}")
        return sha

    def run(self, args: list[str], *, what: str, cwd: Path | None = None) -> str:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ContextError(f"{self.url.display}: timed out after {self.options.timeout:g}s")
        try:
            proc = subprocess.Popen(
                ["git", *args],
                cwd=cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # no controlling terminal: ssh cannot prompt
            )
        except FileNotFoundError:
            raise ContextError(
                f"{self.url.display}: git is not installed (needed for git sources)"
            ) from None
        try:
            out, err = proc.communicate(timeout=remaining)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise ContextError(
                f"{self.url.display}: timed out after {self.options.timeout:g}s ({what})"
            ) from None
        if proc.returncode != 0:
            raise ContextError(f"{self.url.display}: {describe_failure(err, what)}")
        return out.decode("utf-8", "replace")


def describe_failure(stderr: bytes, what: str) -> str:
    """One line for a failed git command, from its stderr."""
    text = redact_text(stderr[-_STDERR_LIMIT:].decode("utf-8", "replace"))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    low = text.lower()
    if "transport" in low and "not allowed" in low:
        detail = next((ln for ln in lines if "not allowed" in ln), lines[-1] if lines else "")
        return f"{detail.removeprefix('fatal: ')} (refused)"
    auth_markers = (
        "authentication failed",
        "could not read username",
        "could not read password",
        "terminal prompts disabled",
        "permission denied (publickey",
        "invalid username or password",
        "http basic: access denied",
        "401",
    )
    if any(m in low for m in auth_markers):
        return "authentication required"
    unreachable = (
        "could not resolve host",
        "connection refused",
        "unable to connect",
        "failed to connect",
        "unable to look up",
        "network is unreachable",
        "no route to host",
        "connection timed out",
    )
    if any(m in low for m in unreachable):
        errno = next((ln.split("errno=", 1)[1] for ln in lines if "errno=" in ln), "")
        return f"unreachable host ({errno or _last(lines)})"
    missing = ("not found", "does not appear to be a git repository", "not exported")
    if any(m in low for m in missing):
        return f"repository not found ({_last(lines)})"
    if "couldn't find remote ref" in low or "unknown revision" in low:
        return f"unknown ref ({_last(lines)})"
    return f"git {what} failed: {_last(lines) or 'no error output'}"


def _last(lines: list[str]) -> str:
    for line in reversed(lines):
        if line.startswith(("fatal:", "error:")):
            return line.split(":", 1)[1].strip()
    return lines[-1] if lines else ""


_URL_PASSWORD: Final = re.compile(r"([a-z][a-z0-9+.-]*://[^/@\s:]*:)[^/@\s]*@", re.IGNORECASE)


def redact_text(text: str) -> str:
    """Replace passwords in any URL inside ``text``."""
    return _URL_PASSWORD.sub(r"\1xxxxx@", text)


__all__ = ["Checkout", "GitOptions", "checkout", "describe_failure", "redact", "redact_text"]
