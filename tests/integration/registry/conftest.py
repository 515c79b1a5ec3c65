"""Fixtures of the registry integration tests: real ``docker-registry`` servers (no auth,
htpasswd Basic auth, JWT token auth), a fault proxy in front of them, stores and clients.

The registry, htpasswd, openssl and skopeo come from the system set-up (``make test``); when one
is missing the tests fail with a message saying how to install it: they never skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from regserver import (
    PASSWORD,
    USER,
    DictCredentials,
    FaultProxy,
    RegistryServer,
    StorageServer,
    TokenServer,
    ToolMissingError,
    htpasswd_auth,
)

from builder.registry.auth import Credentials
from builder.registry.client import RegistryClient, RetryPolicy, Timeouts
from builder.registry.config import RegistrySettings
from builder.store import Store


def _start(server_factory: Callable[[], RegistryServer]) -> RegistryServer:
    try:
        return server_factory().start()
    except ToolMissingError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry without authentication."""
    server = _start(lambda: RegistryServer(tmp_path_factory.mktemp("registry-open")))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry behind htpasswd (bcrypt) Basic auth."""
    work = tmp_path_factory.mktemp("registry-basic")

    def make() -> RegistryServer:
        return RegistryServer(work, auth_yaml=htpasswd_auth(work, {USER: PASSWORD}))

    server = _start(make)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    try:
        server = TokenServer(tmp_path_factory.mktemp("token"), {USER: PASSWORD}).start()
    except ToolMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory, token_server: TokenServer
) -> Iterator[RegistryServer]:
    """A registry that trusts JWTs from ``token_server`` (``auth: token:``)."""
    work = tmp_path_factory.mktemp("registry-token")
    server = _start(lambda: RegistryServer(work, auth_yaml=token_server.auth_yaml()))
    yield server
    server.stop()


@pytest.fixture
def storage_server() -> Iterator[StorageServer]:
    server = StorageServer()
    yield server
    server.stop()


@pytest.fixture
def make_proxy(storage_server: StorageServer) -> Iterator[Callable[[RegistryServer], FaultProxy]]:
    proxies: list[FaultProxy] = []

    def make(upstream: RegistryServer) -> FaultProxy:
        proxy = FaultProxy(upstream.host, storage=storage_server)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "store")


@pytest.fixture
def other_store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "other-store")


@pytest.fixture
def creds() -> DictCredentials:
    return DictCredentials()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(
    creds: DictCredentials, sleeps: list[float]
) -> Iterator[Callable[..., RegistryClient]]:
    """A client with fast retries (delays are recorded, and slept only briefly)."""
    import time

    clients: list[RegistryClient] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(min(seconds, 0.05))

    def make(
        *,
        attempts: int = 4,
        read_timeout: float = 10.0,
        settings: RegistrySettings | None = None,
        **kwargs: object,
    ) -> RegistryClient:
        client = RegistryClient(
            settings=settings,
            credentials=creds,
            retry=RetryPolicy(attempts=attempts, backoff=0.01, max_backoff=0.05),
            timeouts=Timeouts(connect=5.0, read=read_timeout, probe=2.0),
            sleep=sleep,
            **kwargs,  # type: ignore[arg-type]
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def login(creds: DictCredentials) -> Callable[[str], None]:
    def add(host: str) -> None:
        creds.entries[host] = Credentials(username=USER, password=PASSWORD)

    return add
