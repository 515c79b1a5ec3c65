"""Registry credentials in Docker's ``config.json`` and ``docker-credential-*`` helpers.

The file is ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``. pybuild reads
``auths`` (base64 ``user:pass`` in ``auth``, or ``username``/``password``, ``identitytoken``),
``credHelpers`` (per registry) and ``credsStore`` (default helper). Writing changes only the one
``auths`` entry (or asks the helper), keeps every other key as it was, and replaces the file
atomically with mode 0600, so Docker keeps working with the same file. Secrets are never logged.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from builder.errors import AuthenticationError, RegistryError
from builder.registry.auth import Credentials

DOCKER_HUB_KEY: Final = "https://index.docker.io/v1/"
_HUB_ALIASES: Final = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)
MAX_CONFIG_BYTES: Final = 16 << 20
_HELPER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
HELPER_TIMEOUT: Final = 60.0
_TOKEN_USERNAME: Final = "<token>"


def config_path(env: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if env is None else env
    if environ.get("DOCKER_CONFIG"):
        return Path(environ["DOCKER_CONFIG"]) / "config.json"
    home = environ.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".docker" / "config.json"


def hostname(key: str) -> str:
    """Docker's ``ConvertToHostname``: ``https://host:5000/v2/`` -> ``host:5000``."""
    text = key.strip()
    for prefix in ("http://", "https://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    return text.split("/", 1)[0].lower()


def registry_domain(server: str) -> str:
    """``https://host:5000/v2/`` or ``host:5000`` -> the registry's domain (Hub aliases folded)."""
    host = hostname(server)
    return "docker.io" if host in _HUB_ALIASES else host


def registry_key(registry: str) -> str:
    """The ``auths`` key Docker uses for a registry (Docker Hub has its historic URL)."""
    host = hostname(registry)
    return DOCKER_HUB_KEY if host in _HUB_ALIASES else host


def _same_registry(key: str, registry: str) -> bool:
    a, b = hostname(key), hostname(registry)
    if a in _HUB_ALIASES and b in _HUB_ALIASES:
        return True
    return a == b


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredLogin:
    """Where a login was saved (for ``pybuild login``'s message)."""

    path: Path
    helper: str = ""


class DockerConfig:
    """Credentials from (and to) one Docker ``config.json``; helpers run as subprocesses."""

    def __init__(self, path: Path, *, env: Mapping[str, str] | None = None) -> None:
        self.path = path
        self._env = dict(os.environ if env is None else env)

    @classmethod
    def default(cls, env: Mapping[str, str] | None = None) -> DockerConfig:
        return cls(config_path(env), env=env)

    # -- reading ----------------------------------------------------------------------------

    def _load(self) -> dict[str, object]:
        try:
            with self.path.open("rb") as f:
                data = f.read(MAX_CONFIG_BYTES + 1)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise RegistryError(f"cannot read {self.path}: {exc.strerror}") from None
        if len(data) > MAX_CONFIG_BYTES:
            raise RegistryError(f"{self.path}: larger than {MAX_CONFIG_BYTES} bytes")
        if not data.strip():
            return {}
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise RegistryError(f"{self.path}: invalid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise RegistryError(f"{self.path}: expected a JSON object")
        return doc

    def _helper_for(self, doc: dict[str, object], registry: str) -> str:
        helpers = doc.get("credHelpers")
        if isinstance(helpers, dict):
            for key, name in helpers.items():
                if isinstance(name, str) and name and _same_registry(str(key), registry):
                    return name
        store = doc.get("credsStore")
        return store if isinstance(store, str) else ""

    def get(self, registry: str) -> Credentials | None:
        """Credentials for ``registry`` (a host or ``docker.io``), or None."""
        doc = self._load()
        helper = self._helper_for(doc, registry)
        if helper:
            found = self._helper_get(helper, registry)
            if found is not None:
                return found
        auths = doc.get("auths")
        if not isinstance(auths, dict):
            return None
        want = registry_key(registry)
        entry = auths.get(want)
        if entry is None:
            for key, value in auths.items():
                if _same_registry(str(key), registry):
                    entry = value
                    break
        if not isinstance(entry, dict):
            return None
        return self._decode_entry(entry, registry)

    def _decode_entry(self, entry: dict[str, object], registry: str) -> Credentials | None:
        username = entry.get("username")
        password = entry.get("password")
        user = username if isinstance(username, str) else ""
        secret = password if isinstance(password, str) else ""
        auth = entry.get("auth")
        if isinstance(auth, str) and auth:
            try:
                decoded = base64.b64decode(auth, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise RegistryError(
                    f"{self.path}: the 'auth' entry for {registry} is not valid base64"
                ) from None
            user, sep, secret = decoded.partition(":")
            if not sep:
                raise RegistryError(f"{self.path}: the 'auth' entry for {registry} has no ':'")
        token = entry.get("identitytoken")
        identity = token if isinstance(token, str) else ""
        creds = Credentials(username=user, password=secret, identity_token=identity)
        return None if creds.empty else creds

    # -- helpers ----------------------------------------------------------------------------

    def _run_helper(self, name: str, action: str, payload: str) -> subprocess.CompletedProcess[str]:
        if _HELPER_NAME.fullmatch(name) is None:
            raise RegistryError(f"{self.path}: invalid credential helper name {name!r}")
        program = f"docker-credential-{name}"
        try:
            return subprocess.run(
                [program, action],
                input=payload,
                capture_output=True,
                text=True,
                timeout=HELPER_TIMEOUT,
                env=self._env,
                check=False,
            )
        except FileNotFoundError:
            raise RegistryError(
                f"credential helper {program} (from {self.path}) is not installed"
            ) from None
        except subprocess.TimeoutExpired:
            raise RegistryError(f"credential helper {program} timed out") from None

    def _helper_get(self, name: str, registry: str) -> Credentials | None:
        for server in dict.fromkeys((registry_key(registry), hostname(registry))):
            proc = self._run_helper(name, "get", server)
            if proc.returncode != 0:
                if "credentials not found" in (proc.stdout + proc.stderr).lower():
                    continue
                raise RegistryError(
                    f"credential helper docker-credential-{name} failed for {registry}:"
                    f" {_first_line(proc.stderr or proc.stdout)}"
                )
            try:
                doc = json.loads(proc.stdout)
            except ValueError:
                raise RegistryError(
                    f"credential helper docker-credential-{name} returned invalid JSON"
                ) from None
            if not isinstance(doc, dict):
                raise RegistryError(
                    f"credential helper docker-credential-{name} returned invalid JSON"
                )
            user = doc.get("Username")
            secret = doc.get("Secret")
            user = user if isinstance(user, str) else ""
            secret = secret if isinstance(secret, str) else ""
            if user == _TOKEN_USERNAME:
                return Credentials(identity_token=secret)
            return Credentials(username=user, password=secret)
        return None

    # -- writing ----------------------------------------------------------------------------

    def store(self, registry: str, creds: Credentials) -> StoredLogin:
        """Save ``creds`` for ``registry`` (in its helper if one is configured)."""
        doc = self._load()
        helper = self._helper_for(doc, registry)
        if helper:
            user = _TOKEN_USERNAME if creds.identity_token else creds.username
            secret = creds.identity_token or creds.password
            payload = json.dumps(
                {"ServerURL": registry_key(registry), "Username": user, "Secret": secret}
            )
            proc = self._run_helper(helper, "store", payload)
            if proc.returncode != 0:
                raise AuthenticationError(
                    f"credential helper docker-credential-{helper} could not store the login"
                    f" for {registry}: {_first_line(proc.stderr or proc.stdout)}"
                )
            return StoredLogin(path=self.path, helper=helper)
        auths = doc.get("auths")
        if auths is None:
            auths = {}
        if not isinstance(auths, dict):
            raise RegistryError(f"{self.path}: 'auths' is not a JSON object")
        key = registry_key(registry)
        for existing in list(auths):
            if existing != key and _same_registry(str(existing), registry):
                del auths[existing]
        entry: dict[str, object] = {}
        if creds.identity_token:
            entry["identitytoken"] = creds.identity_token
        else:
            raw = f"{creds.username}:{creds.password}".encode()
            entry["auth"] = base64.b64encode(raw).decode("ascii")
        auths[key] = entry
        doc["auths"] = auths
        self._write(doc)
        return StoredLogin(path=self.path)

    def erase(self, registry: str) -> bool:
        """Forget the login for ``registry``; False when there was none."""
        doc = self._load()
        found = False
        helper = self._helper_for(doc, registry)
        if helper:
            proc = self._run_helper(helper, "erase", registry_key(registry))
            found = proc.returncode == 0
        auths = doc.get("auths")
        if isinstance(auths, dict):
            for key in list(auths):
                if _same_registry(str(key), registry):
                    del auths[key]
                    found = True
            if found:
                self._write(doc)
        return found

    def _write(self, doc: dict[str, object]) -> None:
        target = self.path.resolve() if self.path.is_symlink() else self.path
        directory = target.parent
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            data = (json.dumps(doc, indent="\t") + "\n").encode()
            fd, tmp = tempfile.mkstemp(prefix=".config.json.", dir=directory)
            try:
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise RegistryError(f"cannot write {target}: {exc.strerror}") from None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return "no output"
