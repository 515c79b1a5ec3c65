"""``pybuild login [-u USER] [-p PASS | --password-stdin] [SERVER]``: like ``docker login``.

The credentials are checked against the registry first, then saved in Docker's
``config.json`` (or the credential helper it configures), where Docker finds them too.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from builder.errors import AuthenticationError
from builder.registry.auth import Credentials
from builder.registry.client import RegistryClient
from builder.registry.credentials import DockerConfig, registry_domain

HELP = "Log in to a registry (like `docker login`); default server: Docker Hub."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")
    parser.add_argument("-u", "--username", metavar="USER")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-p", "--password", metavar="PASS")
    group.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )


def run(args: argparse.Namespace) -> int:
    registry = registry_domain(args.server)
    if not registry:
        raise AuthenticationError("login: empty server name")
    username: str | None = args.username
    password: str | None = args.password
    if password is not None:
        sys.stderr.write(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n"
        )
    if args.password_stdin:
        if not username:
            raise AuthenticationError("login: must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    interactive = sys.stdin.isatty()
    if not username:
        if not interactive:
            raise AuthenticationError(
                f"login {registry}: no username given (use -u) and no terminal to ask for one"
            )
        username = input("Username: ").strip()
    if password is None:
        if not interactive:
            raise AuthenticationError(f"login {registry}: no password given (use --password-stdin)")
        password = getpass.getpass("Password: ")
    if not username or not password:
        raise AuthenticationError(f"login {registry}: username and password are required")
    creds = Credentials(username=username, password=password)
    with RegistryClient.from_environment() as client:
        client.login(registry, creds)
    config = DockerConfig.default()
    stored = config.store(registry, creds)
    if stored.helper:
        print(f"Login Succeeded (credentials stored by docker-credential-{stored.helper})")
    else:
        print(f"Login Succeeded (credentials saved in {stored.path})")
    return 0
