"""Docker ``config.json`` credentials: reading, writing without breaking Docker's file, and
``docker-credential-*`` helpers (a fake helper script stands in for a real one)."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from builder.errors import RegistryError
from builder.registry.auth import Credentials
from builder.registry.credentials import (
    DOCKER_HUB_KEY,
    DockerConfig,
    config_path,
    hostname,
    registry_domain,
    registry_key,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write(path: Path, doc: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def test_locations_and_key_normalisation() -> None:
    assert config_path({"DOCKER_CONFIG": "/d"}) == Path("/d/config.json")
    assert config_path({"HOME": "/home/u"}) == Path("/home/u/.docker/config.json")
    assert hostname("https://Registry.Example:5000/v2/") == "registry.example:5000"
    assert hostname("localhost:5000") == "localhost:5000"
    assert registry_key("docker.io") == DOCKER_HUB_KEY
    assert registry_key("index.docker.io") == DOCKER_HUB_KEY
    assert registry_key("quay.io") == "quay.io"
    assert registry_domain("https://index.docker.io/v1/") == "docker.io"
    assert registry_domain("http://127.0.0.1:5000") == "127.0.0.1:5000"


def test_reading_auths_in_every_spelling(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    write(
        path,
        {
            "auths": {
                DOCKER_HUB_KEY: {"auth": b64("hubuser:hubpass")},
                "https://quay.io/v2/": {"auth": b64("q:colon:in:password")},
                "old.example": {"username": "o", "password": "p"},
                "tok.example": {"identitytoken": "refresh"},
                "empty.example": {},
            }
        },
    )
    config = DockerConfig(path, env={})
    assert config.get("docker.io") == Credentials(username="hubuser", password="hubpass")
    assert config.get("quay.io") == Credentials(username="q", password="colon:in:password")
    assert config.get("old.example") == Credentials(username="o", password="p")
    assert config.get("tok.example") == Credentials(identity_token="refresh")
    assert config.get("empty.example") is None
    assert config.get("nowhere.example") is None
    assert DockerConfig(tmp_path / "missing.json", env={}).get("docker.io") is None


def test_bad_files_are_reported_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    config = DockerConfig(path, env={})
    with pytest.raises(RegistryError, match="invalid JSON"):
        config.get("quay.io")
    with pytest.raises(RegistryError, match="invalid JSON"):
        config.store("quay.io", Credentials(username="u", password="p"))
    assert path.read_text() == "{not json"
    write(path, {"auths": {"quay.io": {"auth": "%%%"}}})
    with pytest.raises(RegistryError, match="not valid base64"):
        config.get("quay.io")


def test_store_changes_only_its_entry_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "docker" / "config.json"
    original = {
        "auths": {"other.example": {"auth": b64("a:b")}, "http://quay.io": {"auth": b64("x:y")}},
        "HttpHeaders": {"User-Agent": "Docker-Client"},
        "detachKeys": "ctrl-e,e",
        "plugins": {"x": {"y": "z"}},
    }
    write(path, original)
    path.chmod(0o644)
    config = DockerConfig(path, env={})
    saved = config.store("quay.io", Credentials(username="new", password="pw"))
    assert saved.path == path
    assert saved.helper == ""
    doc = json.loads(path.read_text())
    assert doc["auths"] == {
        "other.example": {"auth": b64("a:b")},
        "quay.io": {"auth": b64("new:pw")},
    }
    for key in ("HttpHeaders", "detachKeys", "plugins"):
        assert doc[key] == original[key]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.get("quay.io") == Credentials(username="new", password="pw")

    config.store("docker.io", Credentials(username="hub", password="h"))
    assert DOCKER_HUB_KEY in json.loads(path.read_text())["auths"]

    assert config.erase("quay.io")
    assert not config.erase("quay.io")
    assert "quay.io" not in json.loads(path.read_text())["auths"]
    assert list(path.parent.iterdir()) == [path]  # no temp files left


def test_store_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.json"
    DockerConfig(path, env={}).store("r.example", Credentials(username="u", password="p"))
    assert json.loads(path.read_text()) == {"auths": {"r.example": {"auth": b64("u:p")}}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


HELPER = """#!/bin/sh
# fake docker-credential helper: records calls, answers for one server
log="$(dirname "$0")/calls.log"
input="$(cat)"
echo "$1 $input" >> "$log"
case "$1" in
  get)
    if [ "$input" = "helped.example" ]; then
      echo '{"ServerURL":"helped.example","Username":"hu","Secret":"hs"}'
    elif [ "$input" = "token.example" ]; then
      echo '{"ServerURL":"token.example","Username":"<token>","Secret":"idtok"}'
    else
      echo "credentials not found in native keychain"; exit 1
    fi ;;
  store) exit 0 ;;
  erase) exit 0 ;;
esac
"""


@pytest.fixture
def helper_env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker-credential-fake"
    script.write_text(HELPER)
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_credential_helpers(tmp_path: Path, helper_env: dict[str, str]) -> None:
    path = tmp_path / "config.json"
    write(
        path,
        {
            "credHelpers": {"helped.example": "fake", "token.example": "fake"},
            "auths": {"plain.example": {"auth": b64("pu:pp")}},
        },
    )
    config = DockerConfig(path, env=helper_env)
    assert config.get("helped.example") == Credentials(username="hu", password="hs")
    assert config.get("token.example") == Credentials(identity_token="idtok")
    assert config.get("plain.example") == Credentials(username="pu", password="pp")

    saved = config.store("helped.example", Credentials(username="n", password="secret-pw"))
    assert saved.helper == "fake"
    assert "secret-pw" not in path.read_text()  # went to the helper, not the file
    calls = (tmp_path / "bin" / "calls.log").read_text().splitlines()
    stored = json.loads(calls[-1].split(" ", 1)[1])
    assert stored == {"ServerURL": "helped.example", "Username": "n", "Secret": "secret-pw"}
    assert config.erase("helped.example")


def test_creds_store_is_the_default_helper(tmp_path: Path, helper_env: dict[str, str]) -> None:
    path = tmp_path / "config.json"
    write(path, {"credsStore": "fake", "auths": {"other.example": {"auth": b64("o:p")}}})
    config = DockerConfig(path, env=helper_env)
    assert config.get("helped.example") == Credentials(username="hu", password="hs")
    # not found in the helper: the file's entry still counts
    assert config.get("other.example") == Credentials(username="o", password="p")


def test_bad_or_missing_helpers(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    write(path, {"credHelpers": {"a.example": "../../bin/sh", "b.example": "absent-helper"}})
    config = DockerConfig(path, env={"PATH": str(tmp_path)})
    with pytest.raises(RegistryError, match="invalid credential helper name"):
        config.get("a.example")
    with pytest.raises(RegistryError, match=r"docker-credential-absent-helper .* is not installed"):
        config.get("b.example")
