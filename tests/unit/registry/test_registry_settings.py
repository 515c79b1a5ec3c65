"""pybuild's registry settings file and Docker's transport rules; progress rendering."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from builder.digest import Digest
from builder.errors import RegistryError
from builder.registry.config import (
    Mirror,
    RegistrySettings,
    is_loopback,
    load_settings,
    settings_path,
    split_host_port,
)
from builder.registry.progress import LayerProgress, Status, TerminalProgress
from builder.units import human_size


def test_settings_path() -> None:
    assert settings_path({"PYBUILD_CONFIG": "/x.json"}) == Path("/x.json")
    assert settings_path({"XDG_CONFIG_HOME": "/c"}) == Path("/c/pybuild/config.json")
    assert settings_path({"HOME": "/h"}) == Path("/h/.config/pybuild/config.json")


def test_load_settings(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    env = {"PYBUILD_CONFIG": str(path)}
    assert load_settings(env) == RegistrySettings()
    path.write_text(
        json.dumps(
            {
                "insecure-registries": ["lan.example:5000", "10.0.0.0/8"],
                "registry-mirrors": ["https://mirror.example", "http://127.0.0.1:5000/"],
                "other-key": True,
            }
        )
    )
    settings = load_settings(env)
    assert settings.insecure_registries == ("lan.example:5000", "10.0.0.0/8")
    assert settings.mirrors == (
        Mirror(scheme="https", host="mirror.example"),
        Mirror(scheme="http", host="127.0.0.1:5000"),
    )
    assert settings.mirrors_for("docker.io") == settings.mirrors
    assert settings.mirrors_for("quay.io") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "expected a JSON object"),
        ("{", "invalid JSON"),
        ('{"insecure-registries": "x"}', "must be a list of strings"),
        ('{"registry-mirrors": ["ftp://m"]}', "invalid registry mirror"),
        ('{"registry-mirrors": ["https://m/path"]}', "only scheme://host"),
    ],
)
def test_bad_settings(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(RegistryError, match=message):
        load_settings({"PYBUILD_CONFIG": str(path)})


def test_loopback_and_insecure_hosts() -> None:
    assert split_host_port("[::1]:5000") == ("::1", 5000)
    assert split_host_port("Host.Example:80") == ("host.example", 80)
    assert split_host_port("host") == ("host", None)
    for host in ("localhost", "localhost:5000", "127.0.0.1", "127.3.4.5:80", "[::1]:5000"):
        assert is_loopback(host), host
    for host in ("10.0.0.1:5000", "example.com", "localhost.example.com", "[::2]:1"):
        assert not is_loopback(host), host
    settings = RegistrySettings(insecure_registries=("lan.example:5000", "10.0.0.0/8", "bare"))
    assert settings.is_insecure("127.0.0.1:5000")
    assert settings.is_insecure("lan.example:5000")
    assert not settings.is_insecure("lan.example:6000")
    assert settings.is_insecure("10.20.30.40:443")
    assert not settings.is_insecure("11.0.0.1")
    assert settings.is_insecure("bare:1234")
    assert not settings.is_insecure("registry-1.docker.io")


# -- progress -----------------------------------------------------------------------------------

DIGEST = Digest.of_bytes(b"layer")


def event(status: Status, current: int = 0, detail: str = "") -> LayerProgress:
    return LayerProgress(digest=DIGEST, status=status, current=current, total=2000, detail=detail)


def test_human_size_is_dockers() -> None:
    assert [human_size(n) for n in (0, 999, 1500, 1_000_000, 12_345_678, 3 * 10**9)] == [
        "0B",
        "999B",
        "1.5kB",
        "1MB",
        "12.3MB",
        "3GB",
    ]


def test_progress_without_a_terminal_prints_final_lines_only() -> None:
    out = io.StringIO()
    render = TerminalProgress(out, tty=False)
    render(event(Status.PREPARING))
    render(event(Status.PUSHING, 1000))
    render(event(Status.MOUNTED, detail="library/base"))
    render(event(Status.DOWNLOADING, 5))
    render(event(Status.PULL_COMPLETE, 2000))
    render.close()
    assert out.getvalue() == (
        f"{DIGEST.short}: Mounted from library/base\n{DIGEST.short}: Pull complete\n"
    )


def test_progress_on_a_terminal_redraws_in_place() -> None:
    out = io.StringIO()
    clock = [0.0]
    render = TerminalProgress(out, tty=True, clock=lambda: clock[0])
    other = Digest.of_bytes(b"other")
    render(event(Status.DOWNLOADING, 1000))
    clock[0] += 1
    render(LayerProgress(digest=other, status=Status.WAITING))
    clock[0] += 1
    render(event(Status.PULL_COMPLETE, 2000))
    render.close()
    text = out.getvalue()
    assert "\x1b[1A" in text
    assert "\x1b[2A" in text
    assert f"{DIGEST.short}: Downloading [" in text
    assert "1kB/2kB" in text
    last_frame = text.rsplit("\x1b[2A", 1)[1]
    assert f"{DIGEST.short}: Pull complete" in last_frame
    assert f"{other.short}: Waiting" in last_frame
