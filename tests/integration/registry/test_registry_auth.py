"""Authentication against real registries: htpasswd Basic auth and JWT bearer tokens, the
token cache, credentials never following a redirect, and ``pybuild login``/``logout``."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from regserver import (
    PASSWORD,
    USER,
    DictCredentials,
    Fault,
    FaultProxy,
    RegistryServer,
    StorageServer,
    TokenServer,
    make_image,
)

from builder import cli
from builder.errors import AuthenticationError
from builder.registry.auth import Credentials
from builder.registry.client import RegistryClient
from builder.registry.remote import pull_image, push_image
from builder.store import Store
from builder.store.fsck import fsck

pytestmark = pytest.mark.integration

MakeClient = Callable[..., RegistryClient]


def test_basic_auth_push_and_pull(
    basic_registry: RegistryServer,
    store: Store,
    other_store: Store,
    make_client: MakeClient,
    login: Callable[[str], None],
) -> None:
    ref = f"{basic_registry.host}/basic/app:v1"
    image = make_image(store, (ref,), seed=30)
    with pytest.raises(AuthenticationError) as anonymous:
        push_image(store, ref, client=make_client())
    assert str(anonymous.value).startswith(f"{ref}: blob sha256:")
    assert "unauthorized" in str(anonymous.value)

    login(basic_registry.host)
    client = make_client()
    assert push_image(store, ref, client=client).digest == image.digest
    assert pull_image(other_store, ref, client=client).record.digest == image.digest


def test_basic_auth_wrong_password(
    basic_registry: RegistryServer,
    other_store: Store,
    creds: DictCredentials,
    make_client: MakeClient,
) -> None:
    creds.entries[basic_registry.host] = Credentials(username=USER, password="wrong")
    with pytest.raises(AuthenticationError) as info:
        pull_image(other_store, f"{basic_registry.host}/basic/app:v1", client=make_client())
    assert str(info.value).startswith(f"{basic_registry.host}/basic/app:v1: unauthorized")
    assert "wrong" not in str(info.value)
    assert fsck(other_store).ok


def test_bearer_tokens_anonymous_pull_and_authenticated_push(
    *,
    token_registry: RegistryServer,
    token_server: TokenServer,
    store: Store,
    other_store: Store,
    make_client: MakeClient,
    login: Callable[[str], None],
    creds: DictCredentials,
) -> None:
    ref = f"{token_registry.host}/public/tok:v1"
    image = make_image(store, (ref,), layer_sizes=(2000, 3000, 4000), seed=31)
    with pytest.raises(AuthenticationError):
        push_image(store, ref, client=make_client())

    login(token_registry.host)
    pusher = make_client()
    before = len(token_server.requests)
    assert push_image(store, ref, client=pusher).digest == image.digest
    issued = token_server.requests[before:]
    # one token for the whole push (three layers in parallel, config, manifest): cached
    assert [(r.user, r.scopes) for r in issued] == [(USER, ("repository:public/tok:pull,push",))]
    assert token_server.requests[-1].service == "pybuild-test-registry"

    creds.entries.clear()
    puller = make_client()
    before = len(token_server.requests)
    assert pull_image(other_store, ref, client=puller).record.digest == image.digest
    pull_image(other_store, ref, client=puller)
    issued = token_server.requests[before:]
    assert [(r.user, r.scopes) for r in issued] == [("", ("repository:public/tok:pull",))]


def test_bearer_private_repository_needs_login(
    *,
    token_registry: RegistryServer,
    store: Store,
    other_store: Store,
    make_client: MakeClient,
    login: Callable[[str], None],
    creds: DictCredentials,
) -> None:
    ref = f"{token_registry.host}/private/tok:v1"
    make_image(store, (ref,), seed=32)
    login(token_registry.host)
    push_image(store, ref, client=make_client())
    creds.entries.clear()
    with pytest.raises(AuthenticationError) as info:
        pull_image(other_store, ref, client=make_client())
    assert str(info.value).startswith(f"{ref}: unauthorized:")
    creds.entries[token_registry.host] = Credentials(username=USER, password="nope")
    with pytest.raises(AuthenticationError) as wrong:
        pull_image(other_store, ref, client=make_client())
    assert "incorrect username or password" in str(wrong.value)
    assert other_store.list_images() == ()


def test_cross_repository_mount_with_tokens(
    token_registry: RegistryServer,
    token_server: TokenServer,
    store: Store,
    make_client: MakeClient,
    login: Callable[[str], None],
) -> None:
    login(token_registry.host)
    first = f"{token_registry.host}/team/base:v1"
    image = make_image(store, (first,), seed=33)
    client = make_client()
    push_image(store, first, client=client)
    second = f"{token_registry.host}/team/derived:v1"
    store.tag(first, second)
    before = len(token_server.requests)
    assert push_image(store, second, client=client).digest == image.digest
    scopes = {s for r in token_server.requests[before:] for s in r.scopes}
    assert "repository:team/base:pull" in scopes
    assert "repository:team/derived:pull,push" in scopes


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_credentials_are_not_sent_to_blob_storage_on_another_host(
    *,
    kind: str,
    request: pytest.FixtureRequest,
    store: Store,
    other_store: Store,
    make_proxy: Callable[[RegistryServer], FaultProxy],
    storage_server: StorageServer,
    make_client: MakeClient,
    login: Callable[[str], None],
) -> None:
    upstream: RegistryServer = request.getfixturevalue(f"{kind}_registry")
    proxy = make_proxy(upstream)
    login(proxy.host)
    ref = f"{proxy.host}/public/redirected:v1"
    image = make_image(store, (ref,), seed=34)
    push_image(store, ref, client=make_client())
    proxy.faults = [Fault("GET", r"/blobs/sha256:", "redirect_storage")]
    assert pull_image(other_store, ref, client=make_client()).record.digest == image.digest
    blob_gets = proxy.requests("GET", r"/blobs/sha256:")
    assert blob_gets
    assert all("authorization" in headers for _, _, _, headers in blob_gets)
    assert len(storage_server.seen) == len(blob_gets)
    assert all("authorization" not in headers for headers in storage_server.seen)


# -- login / logout -----------------------------------------------------------------------------


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "docker"
    directory.mkdir()
    path = directory / "config.json"
    path.write_text(
        json.dumps(
            {
                "auths": {"other.example:5000": {"auth": "b3RoZXI6c2VjcmV0"}},
                "psFormat": "table {{.ID}}",
                "currentContext": "default",
            }
        )
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    monkeypatch.setenv("PYBUILD_CONFIG", str(tmp_path / "pybuild.json"))
    return path


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_login_verifies_and_stores_then_logout(
    *,
    kind: str,
    request: pytest.FixtureRequest,
    docker_config: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    store: Store,
) -> None:
    server: RegistryServer = request.getfixturevalue(f"{kind}_registry")
    host = server.host
    code, _, err = _cli(["login", "-u", USER, "-p", "bad-password", host], capsys)
    assert code == 1
    assert err.splitlines()[-1].startswith(
        f"ERROR: login {host}: unauthorized: incorrect username or password"
    )
    assert host not in json.loads(docker_config.read_text())["auths"]

    monkeypatch.setattr("sys.stdin", _Stdin(PASSWORD + "\n"))
    code, out, err = _cli(["login", "-u", USER, "--password-stdin", host], capsys)
    assert (code, err) == (0, "")
    assert out.startswith("Login Succeeded")
    doc = json.loads(docker_config.read_text())
    assert doc["psFormat"] == "table {{.ID}}"
    assert doc["currentContext"] == "default"
    assert doc["auths"]["other.example:5000"] == {"auth": "b3RoZXI6c2VjcmV0"}
    assert base64.b64decode(doc["auths"][host]["auth"]).decode() == f"{USER}:{PASSWORD}"
    assert stat.S_IMODE(os.stat(docker_config).st_mode) == 0o600
    assert PASSWORD not in out + err

    # the stored login is used by push
    ref = f"{host}/public/cli-{kind}:v1"
    image = make_image(store, (ref,), seed=35)
    code, out, _ = _cli(["push", ref, "--root", str(store.root)], capsys)
    assert code == 0
    assert out.splitlines()[-1] == f"v1: digest: {image.digest} size: {len(image.raw_manifest)}"

    code, out, _ = _cli(["logout", host], capsys)
    assert (code, out) == (0, f"Removing login credentials for {host}\n")
    doc = json.loads(docker_config.read_text())
    assert host not in doc["auths"]
    assert doc["auths"]["other.example:5000"] == {"auth": "b3RoZXI6c2VjcmV0"}
    code, out, _ = _cli(["logout", host], capsys)
    assert out == f"Not logged in to {host}\n"


class _Stdin:
    def __init__(self, text: str) -> None:
        self._text = text

    def read(self) -> str:
        return self._text

    def isatty(self) -> bool:
        return False
