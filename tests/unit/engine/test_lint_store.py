"""What the build checks learn from a real store: a base image's platform, variables, SHELL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.cli import main
from builder.engine.checks import base_images
from builder.lint.inputs import BaseImage
from builder.oci import mutate
from builder.oci.image import EMPTY
from builder.oci.types import ContainerConfig, ImageConfig, Platform
from builder.store import Store

AMD64 = Platform.parse("linux/amd64")
REF = "localhost:5000/team/go:1"


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    config = ContainerConfig(env=("PATH=/usr/bin", "GOPATH=/go"), shell=("/bin/bash", "-c"))
    image = mutate.with_image_config(
        EMPTY, ImageConfig(architecture="arm64", os="linux", config=config)
    )
    Store.open(root).write_image(image, (REF,))
    return root


def test_base_images_answers_from_the_store(store_root: Path) -> None:
    lookup = base_images(Store.open(store_root))
    assert lookup(REF, AMD64) == BaseImage(
        platform=Platform.parse("linux/arm64"),
        env=(("PATH", "/usr/bin"), ("GOPATH", "/go")),
        shell=True,
    )
    assert lookup("localhost:5000/team/absent:1", AMD64) is None


def test_check_uses_the_store(
    store_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM {REF}\nENV BIN=$GOPATH/bin:$GOPAHT\nCMD serve\n")
    argv = ["check", "--root", str(store_root), "--platform", "linux/amd64", "--format", "json"]
    assert main([*argv, "-f", str(dockerfile)]) == 0
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert [(p["rule"], p["message"]) for p in problems] == [
        (
            "InvalidBaseImagePlatform",
            f'Base image {REF} was pulled with platform "linux/arm64", expected "linux/amd64" '
            "for current build",
        ),
        ("UndefinedVar", "Usage of undefined variable '$GOPAHT' (did you mean $GOPATH?)"),
    ]  # no JSONArgsRecommended: the image sets a SHELL
