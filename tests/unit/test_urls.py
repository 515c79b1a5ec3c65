"""Git URL and download URL parsing (BuildKit's ParseGitRef / gitutil.ParseURL rules)."""

from __future__ import annotations

import pytest

from builder.errors import ContextError
from builder.urls import GitURL, is_git_url, is_http_url, parse_git_url, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "https://example.com/foo.git",
            GitURL(remote="https://example.com/foo.git", scheme="https", host="example.com"),
        ),
        (
            "https://example.com/foo.git#deadbeef",
            GitURL(
                remote="https://example.com/foo.git",
                scheme="https",
                host="example.com",
                ref="deadbeef",
            ),
        ),
        (
            "https://example.com/foo.git#release/1.2",
            GitURL(
                remote="https://example.com/foo.git",
                scheme="https",
                host="example.com",
                ref="release/1.2",
            ),
        ),
        (
            "git://example.com/foo",
            GitURL(remote="git://example.com/foo", scheme="git", host="example.com"),
        ),
        (
            "git://127.0.0.1:9418/repo.git#v1:app",
            GitURL(
                remote="git://127.0.0.1:9418/repo.git",
                scheme="git",
                host="127.0.0.1",
                ref="v1",
                subdir="app",
            ),
        ),
        (
            "git@github.com:moby/buildkit.git",
            GitURL(remote="git@github.com:moby/buildkit.git", scheme="ssh", host="github.com"),
        ),
        (
            "git@github.com:moby/buildkit#main:docs/x",
            GitURL(
                remote="git@github.com:moby/buildkit",
                scheme="ssh",
                host="github.com",
                ref="main",
                subdir="docs/x",
            ),
        ),
        (
            "ssh://git@host:2222/o/r.git#refs/pull/7/head",
            GitURL(
                remote="ssh://git@host:2222/o/r.git",
                scheme="ssh",
                host="host",
                ref="refs/pull/7/head",
            ),
        ),
        (
            "https://github.com/foo/bar.git#baz/qux:quux/quuz",
            GitURL(
                remote="https://github.com/foo/bar.git",
                scheme="https",
                host="github.com",
                ref="baz/qux",
                subdir="quux/quuz",
            ),
        ),
        (
            "https://github.com/docker/docker.git#:myfolder",
            GitURL(
                remote="https://github.com/docker/docker.git",
                scheme="https",
                host="github.com",
                subdir="myfolder",
            ),
        ),
        (
            "https://github.com/docker/docker.git?ref=v1.0.0&subdir=/subdir",
            GitURL(
                remote="https://github.com/docker/docker.git",
                scheme="https",
                host="github.com",
                ref="v1.0.0",
                subdir="subdir",
            ),
        ),
        (
            "https://h/r.git?tag=v1&keep-git-dir=true&submodules=false",
            GitURL(
                remote="https://h/r.git",
                scheme="https",
                host="h",
                ref="refs/tags/v1",
                keep_git_dir=True,
                submodules=False,
            ),
        ),
        (
            "https://h/r.git?branch=dev&keep-git-dir",
            GitURL(
                remote="https://h/r.git",
                scheme="https",
                host="h",
                ref="refs/heads/dev",
                keep_git_dir=True,
            ),
        ),
        (
            "https://h/r.git?checksum=ABCDEF1",
            GitURL(
                remote="https://h/r.git",
                scheme="https",
                host="h",
                ref="ABCDEF1",
                checksum="abcdef1",
            ),
        ),
        (
            "https://h/r.git#v2?ref=v2",  # the query is part of the fragment here, as in Go
            GitURL(remote="https://h/r.git", scheme="https", host="h", ref="v2?ref=v2"),
        ),
        (
            "git@h:o/r.git?ref=v1#v1:sub",
            GitURL(remote="git@h:o/r.git", scheme="ssh", host="h", ref="v1", subdir="sub"),
        ),
    ],
)
def test_parse_git_url(text: str, expected: GitURL) -> None:
    if "?" in expected.ref:
        with pytest.raises(ContextError, match="invalid refspec"):
            parse_git_url(text)
        return
    assert parse_git_url(text) == expected
    assert is_git_url(text)


@pytest.mark.parametrize(
    "text",
    [
        "https://example.com/",
        "https://example.com/foo",
        "https://example.com/foo.git/",
        "https://example.com/foo.git.bar",
        "http://github.com/docker/docker.git:#branch",
        "custom.xyz/moby/buildkit.git",
        "./.git",
        ".git",
        "/abs/dir",
        "c:/x",
        "ftp://h/r.git",
        "ext::sh -c touch% /tmp/pwn",
        "fd::17",
        "file:///srv/repo.git",
    ],
)
def test_not_git(text: str) -> None:
    assert not is_git_url(text)
    with pytest.raises(ContextError):
        parse_git_url(text)


@pytest.mark.parametrize(
    "fragment",
    ["--foo bar", "--upload-pack=sleep;:", "-B", "with space", "a..b", "x~1", "m^{}", "r@{0}"],
)
def test_refs_that_could_be_options_are_refused(fragment: str) -> None:
    with pytest.raises(ContextError, match="invalid refspec"):
        parse_git_url(f"https://h/r.git#{fragment}")


@pytest.mark.parametrize("subdir", ["../../x", "a/../../x", ".."])
def test_subdir_outside_the_repository_is_refused(subdir: str) -> None:
    with pytest.raises(ContextError, match="outside of the repository"):
        parse_git_url(f"https://h/r.git#main:{subdir}")


def test_subdir_is_cleaned() -> None:
    assert parse_git_url("https://h/r.git#:a/./b/../c/").subdir == "a/c"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("https://h/r.git?ref=a#b", "ref conflicts"),
        ("https://h/r.git?tag=a&branch=b", "branch conflicts with tag"),
        ("https://h/r.git?subdir=a#:b", "subdir conflicts"),
        ("https://h/r.git?foo=1", "unexpected query 'foo'"),
        ("https://h/r.git?ref=", "query 'ref' has no value"),
        ("https://h/r.git?ref=a&ref=a", "multiple values"),
        ("https://h/r.git?keep-git-dir=maybe", "invalid keep-git-dir value"),
        ("https://h/r.git?checksum=xyz", "invalid checksum"),
        ("ssh://-oProxyCommand=x/r.git", "starts with '-'"),
    ],
)
def test_bad_query_or_host(text: str, message: str) -> None:
    with pytest.raises(ContextError, match=message):
        parse_git_url(text)


def test_password_is_redacted() -> None:
    url = parse_git_url("https://u:secret@h/r.git#main")
    assert url.remote == "https://u:secret@h/r.git"
    assert url.display == "https://u:xxxxx@h/r.git"
    assert redact("https://h/x.tar") == "https://h/x.tar"
    with pytest.raises(ContextError) as info:
        parse_git_url("https://u:secret@h/r.git#-x")
    assert "secret" not in str(info.value)


def test_full_commit_and_short_name() -> None:
    sha = "a" * 40
    assert parse_git_url(f"https://h/o/r.git#{sha}").full_commit == sha
    assert parse_git_url("https://h/o/r.git#abc1234").full_commit is None
    assert parse_git_url("git@h:o/r.git").short_name == "r"


def test_is_http_url() -> None:
    assert is_http_url("HTTPS://h/x.tar.gz")
    assert is_http_url("http://h/")
    assert not is_http_url("git://h/r")
    assert not is_http_url("./http:")
