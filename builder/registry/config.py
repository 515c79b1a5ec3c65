"""pybuild's registry settings and Docker's transport rules.

Settings come from ``$PYBUILD_CONFIG`` or ``$XDG_CONFIG_HOME/pybuild/config.json`` (default
``~/.config/pybuild/config.json``)::

    {"insecure-registries": ["registry.lan:5000", "10.0.0.0/8"],
     "registry-mirrors": ["https://mirror.example.com"]}

Transport rules are Docker's: plain HTTP (and TLS without verification) only for loopback hosts
(``localhost``, 127.0.0.0/8, ``::1``) and registries listed as insecure; everything else is
HTTPS with certificate verification. Mirrors serve ``docker.io`` pulls only.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from builder.errors import RegistryError

MAX_CONFIG_BYTES: Final = 1 << 20
DOCKER_HUB: Final = "docker.io"
DOCKER_HUB_ENDPOINT: Final = "registry-1.docker.io"


def split_host_port(host: str) -> tuple[str, int | None]:
    """``host[:port]`` or ``[v6]:port`` -> (hostname without brackets, port)."""
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return host, None
        name, rest = host[1:end], host[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    elif host.count(":") == 1:
        name, _, port = host.partition(":")
    else:
        name, port = host, ""
    return name.lower(), int(port) if port.isdigit() else None


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1`` (with or without a port)."""
    name, _ = split_host_port(host)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class Mirror:
    """A pull-through mirror of Docker Hub: ``scheme://host[:port]``."""

    scheme: str
    host: str

    @classmethod
    def parse(cls, text: str) -> Mirror:
        parts = urlsplit(text.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryError(f"invalid registry mirror {text!r}: want http(s)://host[:port]")
        if parts.path.strip("/") or parts.query or parts.username or parts.password:
            raise RegistryError(f"invalid registry mirror {text!r}: only scheme://host[:port]")
        return cls(scheme=parts.scheme, host=parts.netloc.lower())


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrySettings:
    insecure_registries: tuple[str, ...] = ()
    mirrors: tuple[Mirror, ...] = ()

    def is_insecure(self, host: str) -> bool:
        """May ``host`` be reached over plain HTTP or TLS without verification?"""
        if is_loopback(host):
            return True
        host = host.lower()
        name, _ = split_host_port(host)
        for entry in self.insecure_registries:
            entry = entry.lower()
            if entry in (host, name):
                return True
            if "/" in entry:
                try:
                    net = ipaddress.ip_network(entry, strict=False)
                    if ipaddress.ip_address(name) in net:
                        return True
                except ValueError:
                    continue
        return False

    def mirrors_for(self, domain: str) -> tuple[Mirror, ...]:
        return self.mirrors if domain == DOCKER_HUB else ()


def settings_path(env: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if env is None else env
    if environ.get("PYBUILD_CONFIG"):
        return Path(environ["PYBUILD_CONFIG"])
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".config"
    )
    return Path(base) / "pybuild" / "config.json"


def _str_list(value: object, key: str, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RegistryError(f"{path}: {key!r} must be a list of strings")
    return tuple(str(v) for v in value)


def load_settings(env: Mapping[str, str] | None = None) -> RegistrySettings:
    """Read pybuild's config file; a missing file means defaults."""
    path = settings_path(env)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return RegistrySettings()
    except OSError as exc:
        raise RegistryError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise RegistryError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        doc = json.loads(data or b"{}")
    except ValueError as exc:
        raise RegistryError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{path}: expected a JSON object")
    insecure = _str_list(doc.get("insecure-registries"), "insecure-registries", path)
    mirrors = _str_list(doc.get("registry-mirrors"), "registry-mirrors", path)
    return RegistrySettings(
        insecure_registries=insecure, mirrors=tuple(Mirror.parse(m) for m in mirrors)
    )
