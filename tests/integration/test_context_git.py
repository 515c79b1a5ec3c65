"""Git build contexts against real servers on 127.0.0.1: ``git daemon`` (git://), ``git
http-backend`` behind a CGI server (http://, one repository behind Basic auth), and the ssh
forms through ``GIT_SSH_COMMAND``. Covers refs of every kind, subdirs, ``-f``, submodules, the
query form, the by-commit cache (a rebuild fetches nothing) and the refusals."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from enginekit import Builder, Built
from gitkit import (
    GitDaemon,
    SmartHTTP,
    add_submodule,
    commit,
    git,
    git_daemon,
    make_repo,
    publish,
    smart_http,
    ssh_command,
    write_files,
)

pytestmark = pytest.mark.integration

ROOT_DOCKERFILE = "FROM scratch\nCOPY . /ctx/\n"
APP_DOCKERFILE = "FROM scratch\nCOPY . /app/\n"


@dataclass
class Repos:
    base: Path
    v1: str  # the commit tagged v1 (app/hello.txt = v1)
    head: str  # main's tip (app/hello.txt = v2)
    dev: str
    pr: str


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Repos:
    top = tmp_path_factory.mktemp("gitsrv")
    base = top / "srv"
    base.mkdir()
    lib = make_repo(top / "lib", {"lib.txt": "library\n"})
    publish(lib, base, "lib.git")
    work = make_repo(
        top / "work",
        {
            "Dockerfile": ROOT_DOCKERFILE,
            "app/Dockerfile": APP_DOCKERFILE,
            "app/Dockerfile.alt": "FROM scratch\nCOPY hello.txt /alt.txt\n",
            "app/hello.txt": "v1\n",
        },
    )
    (work / "app-link").symlink_to("/etc")
    (work / "evil.Dockerfile").symlink_to("/etc/passwd")
    v1 = commit(work, "links")
    git("tag", "-a", "v1", "-m", "release 1", cwd=work)
    git("submodule", "add", "-q", str(base / "lib.git"), "lib", cwd=work)
    # the submodule URL is relative: it resolves against whatever URL the context is built from
    git("config", "-f", ".gitmodules", "submodule.lib.url", "../lib.git", cwd=work)
    write_files(work, {"app/hello.txt": "v2\n"})
    head = commit(work, "v2 with a submodule")
    git("checkout", "-q", "-b", "dev", cwd=work)
    write_files(work, {"dev.txt": "dev\n"})
    dev = commit(work, "dev")
    git("checkout", "-q", "--detach", v1, cwd=work)
    write_files(work, {"pr.txt": "pull request\n"})
    pr = commit(work, "pr")
    git("update-ref", "refs/pull/1/head", pr, cwd=work)
    git("checkout", "-q", "main", cwd=work)
    bare = publish(work, base, "repo.git")
    git("push", "-q", str(bare), "refs/pull/1/head:refs/pull/1/head", cwd=work)
    return Repos(base=base, v1=v1, head=head, dev=dev, pr=pr)


@pytest.fixture(scope="module")
def daemon(repos: Repos, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitDaemon]:
    log = tmp_path_factory.mktemp("daemonlog") / "daemon.log"
    with git_daemon(repos.base, log) as served:
        yield served


@pytest.fixture(scope="module")
def http_git(repos: Repos) -> Iterator[SmartHTTP]:
    (repos.base / "private").mkdir(exist_ok=True)
    with smart_http(repos.base) as served:
        yield served


def files(built: Built, prefix: str) -> dict[str, str]:
    return {
        path: entry.text
        for path, entry in built.files.items()
        if path.startswith(prefix) and entry.type == "file"
    }


# --- refs and subdirs over git:// ------------------------------------------------------------


def test_tag_and_subdir(pb: Builder, daemon: GitDaemon) -> None:
    built = pb.build_context(f"{daemon.url}/repo.git#v1:app")
    assert files(built, "/app/") == {
        "/app/Dockerfile": APP_DOCKERFILE,
        "/app/Dockerfile.alt": "FROM scratch\nCOPY hello.txt /alt.txt\n",
        "/app/hello.txt": "v1\n",
    }


def test_default_branch_with_submodule_and_no_git_dir(pb: Builder, daemon: GitDaemon) -> None:
    built = pb.build_context(f"{daemon.url}/repo.git")
    tree = files(built, "/ctx/")
    assert tree["/ctx/app/hello.txt"] == "v2\n"
    assert tree["/ctx/lib/lib.txt"] == "library\n"
    assert not [p for p in built.files if p.endswith("/.git") or "/.git/" in p]


def test_submodules_can_be_turned_off(pb: Builder, daemon: GitDaemon) -> None:
    built = pb.build_context(f"{daemon.url}/repo.git?submodules=false")
    assert built.files["/ctx/lib"].type == "dir"
    assert "/ctx/lib/lib.txt" not in built.files


@pytest.mark.parametrize(
    ("ref", "path", "content"),
    [
        ("dev", "/ctx/dev.txt", "dev\n"),
        ("refs/pull/1/head", "/ctx/pr.txt", "pull request\n"),
    ],
)
def test_branch_and_pull_ref(
    pb: Builder, daemon: GitDaemon, ref: str, path: str, content: str
) -> None:
    built = pb.build_context(f"{daemon.url}/repo.git#{ref}")
    assert built.files[path].text == content


def test_full_and_short_commit(pb: Builder, daemon: GitDaemon, repos: Repos) -> None:
    full = pb.build_context(f"{daemon.url}/repo.git#{repos.v1}:app")
    short = pb.build_context(f"{daemon.url}/repo.git#{repos.v1[:10]}:app")
    assert full.files["/app/hello.txt"].text == "v1\n"
    assert short.image_id == full.image_id


def test_dockerfile_flag_is_relative_to_the_subdir(pb: Builder, daemon: GitDaemon) -> None:
    built = pb.build_context(f"{daemon.url}/repo.git#v1:app", args=["-f", "Dockerfile.alt"])
    assert built.files["/alt.txt"].text == "v1\n"


@pytest.mark.parametrize(
    ("query", "path", "content"),
    [
        ("?ref=v1&subdir=app", "/app/hello.txt", "v1\n"),
        ("?tag=v1&subdir=app", "/app/hello.txt", "v1\n"),
        ("?branch=dev", "/ctx/dev.txt", "dev\n"),
    ],
)
def test_query_form(pb: Builder, daemon: GitDaemon, query: str, path: str, content: str) -> None:
    built = pb.build_context(f"{daemon.url}/repo.git{query}")
    assert built.files[path].text == content


def test_keep_git_dir_and_checksum(pb: Builder, daemon: GitDaemon, repos: Repos) -> None:
    built = pb.build_context(f"{daemon.url}/repo.git?branch=dev&keep-git-dir=true")
    assert built.files["/ctx/.git/HEAD"].text.strip() == repos.dev
    ok = pb.build_context(f"{daemon.url}/repo.git?tag=v1&checksum={repos.v1[:12]}&subdir=app")
    assert ok.files["/app/hello.txt"].text == "v1\n"
    bad = pb.build_context(f"{daemon.url}/repo.git?tag=v1&checksum={repos.dev}", check=False)
    assert f"expected checksum to match {repos.dev}, got {repos.v1}" in bad.error_line()


def test_a_rebuild_of_the_same_commit_fetches_nothing(
    pb: Builder, daemon: GitDaemon, repos: Repos
) -> None:
    url = f"{daemon.url}/repo.git#{repos.head}:app"
    first = pb.build_context(url)
    before = daemon.requests()
    second = pb.build_context(url)
    assert daemon.requests() == before  # a full commit ID: not even ls-remote
    assert second.image_id == first.image_id
    cached = pb.store_root / "git" / repos.head
    assert (cached / "app" / "hello.txt").read_text() == "v2\n"


# --- http:// through git http-backend ---------------------------------------------------------


def test_http_tag_and_subdir_then_cached(
    pb: Builder, http_git: SmartHTTP, repos: Repos, tmp_path: Path
) -> None:
    marker = uuid.uuid4().hex  # a commit no other test fetched (the cache is per store)
    work = make_repo(tmp_path / "web", {"app/Dockerfile": APP_DOCKERFILE, "app/id": marker})
    git("tag", "v1", cwd=work)
    name = f"web-{marker[:8]}.git"
    publish(work, repos.base, name)
    url = f"{http_git.url}/{name}#v1:app"
    first = pb.build_context(url)
    assert first.files["/app/id"].text == marker
    fetched = http_git.fetches()
    assert fetched >= 1
    second = pb.build_context(url)
    assert http_git.fetches() == fetched  # only the ref listing went to the server
    assert second.image_id == first.image_id


def test_http_auth_required_then_credential_helper(
    pb: Builder, http_git: SmartHTTP, repos: Repos, tmp_path: Path
) -> None:
    marker = uuid.uuid4().hex
    work = make_repo(tmp_path / "secret", {"Dockerfile": ROOT_DOCKERFILE, "dev.txt": marker})
    name = f"secret-{marker[:8]}.git"
    publish(work, repos.base / "private", name)
    url = f"{http_git.url}/private/{name}#main"
    denied = pb.build_context(url, check=False)
    assert denied.error_line() == f"ERROR: {http_git.url}/private/{name}: authentication required"
    helper = tmp_path / "credential-helper"
    helper.write_text(
        "#!/bin/sh\n"
        'test "$1" = get || exit 0\n'
        f"echo username={http_git.user}\necho password={http_git.password}\n"
    )
    helper.chmod(0o755)
    env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "credential.helper"}
    env["GIT_CONFIG_VALUE_0"] = str(helper)
    built = pb.build_context(url, env=env)
    assert built.files["/ctx/dev.txt"].text == marker
    assert http_git.password not in built.stderr


# --- ssh forms through GIT_SSH_COMMAND ---------------------------------------------------------


@pytest.mark.parametrize("form", ["scp", "ssh"])
def test_ssh_forms(pb: Builder, repos: Repos, tmp_path: Path, form: str) -> None:
    log = tmp_path / "ssh.log"
    env = {"GIT_SSH_COMMAND": ssh_command(tmp_path, repos.base, log)}
    url = (
        "git@gitserver:repo.git#v1:app"
        if form == "scp"
        else f"ssh://git@gitserver{repos.base}/repo.git#v1:app"
    )
    built = pb.build_context(url, env=env)
    assert built.files["/app/hello.txt"].text == "v1\n"
    assert "git-upload-pack" in log.read_text()


# --- failures: one line naming the URL and the cause -----------------------------------------


def test_unknown_ref_missing_subdir_missing_dockerfile(pb: Builder, daemon: GitDaemon) -> None:
    repo = f"{daemon.url}/repo.git"
    line = pb.build_context(f"{repo}#nope", check=False).error_line()
    assert line == f"ERROR: {repo}: unknown ref 'nope'"
    line = pb.build_context(f"{repo}#v1:nope", check=False).error_line()
    assert line == f"ERROR: {repo}: subdir 'nope' not found in the repository (or not a directory)"
    line = pb.build_context(f"{repo}#v1:app", args=["-f", "Nope"], check=False).error_line()
    assert line == f"ERROR: {repo}: failed to read dockerfile: 'Nope' not found in the context"
    line = pb.build_context(f"{daemon.url}/missing.git", check=False).error_line()
    assert line.startswith(f"ERROR: {daemon.url}/missing.git: repository not found")


def test_unreachable_host(pb: Builder) -> None:
    from gitkit import free_port

    url = f"git://127.0.0.1:{free_port()}/repo.git"
    line = pb.build_context(url, check=False).error_line()
    assert line.startswith(f"ERROR: {url}: unreachable host")


def test_symlinked_subdir_and_dockerfile_stay_in_the_checkout(
    pb: Builder, daemon: GitDaemon
) -> None:
    repo = f"{daemon.url}/repo.git"
    line = pb.build_context(f"{repo}#v1:app-link", check=False).error_line()
    assert "subdir 'app-link' not found" in line
    # evil.Dockerfile -> /etc/passwd resolves inside the checkout, where there is no /etc/passwd
    line = pb.build_context(f"{repo}#v1", args=["-f", "evil.Dockerfile"], check=False).error_line()
    assert "'evil.Dockerfile' not found in the context" in line


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        ("#--upload-pack=touch${IFS}PWN", "invalid refspec"),
        ("#-B", "invalid refspec"),
        ("#with space", "invalid refspec"),
        ("#main:../../PWN", "outside of the repository"),
    ],
)
def test_refs_and_subdirs_never_become_options(
    pb: Builder, daemon: GitDaemon, tmp_path: Path, fragment: str, message: str
) -> None:
    pwn = Path("/tmp") / f"pwn-{uuid.uuid4().hex}"
    url = f"{daemon.url}/repo.git{fragment.replace('PWN', str(pwn))}"
    before = daemon.requests()
    assert message in pb.build_context(url, check=False).error_line()
    assert not pwn.exists()
    assert daemon.requests() == before  # refused before git ran


@pytest.mark.parametrize("transport", ["ext", "fd", "file"])
def test_dangerous_submodule_transports_are_refused(
    pb: Builder, daemon: GitDaemon, repos: Repos, tmp_path: Path, transport: str
) -> None:
    pwn = Path("/tmp") / f"pwn-{uuid.uuid4().hex}"
    target = tmp_path / "target"
    make_repo(target, {"secret.txt": "host file\n"})
    url = {
        "ext": f"ext::sh -c touch% {pwn}",
        "fd": "fd::0",
        "file": f"file://{target}",
    }[transport]
    work = make_repo(tmp_path / f"evil-{transport}", {"Dockerfile": ROOT_DOCKERFILE})
    add_submodule(work, target, url)
    name = f"evil-{transport}-{uuid.uuid4().hex[:8]}.git"
    publish(work, repos.base, name)
    line = pb.build_context(f"{daemon.url}/{name}", check=False).error_line()
    assert "not allowed" in line
    assert not pwn.exists()
    assert not list((pb.store_root / "git").glob("*/x/secret.txt"))
