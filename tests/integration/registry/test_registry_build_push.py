"""``build --push`` and ``-o type=registry`` against a real registry: the pushed manifest is the
one ``--metadata-file`` names, and a fresh store pulls it back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.store import Store
from tests.integration.enginekit import busybox_store
from tests.integration.registry.regserver import RegistryServer
from tests.integration.registry.test_registry_build import _pybuild

pytestmark = pytest.mark.integration


def test_push_and_registry_output_pull_back(registry: RegistryServer, tmp_path: Path) -> None:
    host = registry.url.removeprefix("http://")
    root = busybox_store(tmp_path / "builder")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nRUN echo pushed > /p\n")
    meta = tmp_path / "meta.json"
    first = f"{host}/app/x:1"
    built = _pybuild(
        root,
        "build",
        "-t",
        first,
        "--push",
        "--metadata-file",
        str(meta),
        "--progress=plain",
        str(context),
    )
    assert built.returncode == 0, built.stderr
    assert f"pushing {first}" in built.stderr
    metadata = json.loads(meta.read_text())
    assert metadata["image.name"] == first
    second = f"{host}/app/y:2"
    out = _pybuild(root, "build", "-q", "-o", f"type=registry,name={second}", str(context))
    assert out.returncode == 0, out.stderr
    assert Store.open(root).resolve(second).digest == Store.open(root).resolve(first).digest

    fresh = tmp_path / "fresh"
    for name in (first, second):
        pulled = _pybuild(fresh, "pull", name)
        assert pulled.returncode == 0, pulled.stderr
        record = Store.open(fresh).resolve(name)
        assert str(record.digest) == metadata["containerimage.digest"]
        assert str(record.config_digest) == metadata["containerimage.config.digest"]
    ran = _pybuild(fresh, "run", "--rm", first, "cat", "/p")
    assert ran.stdout == "pushed\n", ran.stderr
