"""``import builder``: the public API's names, parse/check, and image store access.

A real build through ``builder.build`` is in tests/integration/test_public_api_build.py.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

import builder
from builder.oci import mutate
from builder.oci.image import EMPTY, BytesLayer
from builder.oci.layer import LayerEntry, write_layer
from builder.oci.types import ContainerConfig, History
from builder.store import Store


def test_import_loads_nothing_but_the_package() -> None:
    code = "import builder, sys; print(sorted(m for m in sys.modules if m.startswith('builder')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    # and the dataclass bytecode cache, installed before any module makes its dataclasses
    assert out.strip() == "['builder', 'builder._dataclass_code']"


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in builder.__all__:
        assert getattr(builder, name) is not None, name
    assert set(builder.__all__) <= set(dir(builder))
    assert set(builder.__all__) == set(builder._MODULE_OF)  # the lazy table lists them all
    assert builder.BuildError is builder.errors.BuildError
    with pytest.raises(AttributeError):
        _ = builder.no_such_name  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- parse / check


def test_parse_text_gives_the_ir() -> None:
    dockerfile = builder.parse('FROM busybox AS base\nRUN echo hi\nFROM base\nCMD ["sh"]\n')
    assert isinstance(dockerfile, builder.Dockerfile)
    assert [s.name for s in dockerfile.stages] == ["base", None]
    assert dockerfile.stages[0].instructions[0].span.line == 2


def test_parse_path_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "app.Dockerfile"
    path.write_text("FROM scratch\nCOPY a /\n")
    dockerfile = builder.parse(path=path)
    assert dockerfile.path == "app.Dockerfile"
    assert len(dockerfile.stages[0].instructions) == 1


def test_parse_raises_with_the_line_and_column() -> None:
    with pytest.raises(builder.DockerfileError) as info:
        builder.parse("FROM busybox\nRUN --bogus true\n")
    assert info.value.span is not None
    assert (info.value.span.line, info.value.span.column) == (2, 5)
    assert str(info.value) == "Dockerfile:2:5: unknown flag: --bogus"


def test_parse_of_a_missing_file_is_a_context_error(tmp_path: Path) -> None:
    with pytest.raises(builder.ContextError, match=r"failed to read dockerfile: open .*missing"):
        builder.parse(path=tmp_path / "missing")


def test_text_or_path_exactly_one() -> None:
    with pytest.raises(builder.BuildError, match="as text or as path"):
        builder.parse()
    with pytest.raises(builder.BuildError, match="as text or as path"):
        builder.check("FROM scratch\n", path="Dockerfile")


def test_check_reports_errors_and_warnings_in_file_order() -> None:
    found = builder.check("FROM busybox as b\nMAINTAINER me\nRUN --bogus true\n")
    assert [(d.level, d.rule, d.span.line if d.span else 0) for d in found] == [
        (builder.Level.WARNING, "FromAsCasing", 1),
        (builder.Level.WARNING, "MaintainerDeprecated", 2),
        (builder.Level.ERROR, "InvalidInstructionError", 3),
    ]
    assert found[2].message == "unknown flag: --bogus"


def test_check_reports_a_parse_error_instead_of_raising() -> None:
    (only,) = builder.check("FROM busybox\nFRM x\n")
    assert only.level is builder.Level.ERROR
    assert only.span is not None
    assert only.span.line == 2
    assert "unknown instruction: FRM" in only.message


def test_check_reports_a_bad_check_directive_instead_of_raising() -> None:
    (only,) = builder.check("# check=error=maybe\nFROM busybox\n")
    assert only.level is builder.Level.ERROR
    assert only.message == (
        'failed to parse check options: failed to parse check option "error=maybe": '
        'strconv.ParseBool: parsing "maybe": invalid syntax'
    )


def test_check_of_a_clean_file_is_empty(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN true\n")
    assert builder.check(path=tmp_path / "Dockerfile") == ()


# --------------------------------------------------------------------------- images


@pytest.fixture
def root(tmp_path: Path) -> Path:
    out = io.BytesIO()
    written = write_layer([LayerEntry(path="hello", data=b"hi\n")], out, source_date_epoch=0)
    layer = BytesLayer(data=out.getvalue(), diff_id=written.diff_id)
    image = mutate.with_config(
        mutate.append_layer(EMPTY, layer, history=History(created_by="COPY hello /")),
        ContainerConfig(cmd=("cat", "/hello")),
    )
    Store.open(tmp_path / "store").write_image(image, ("docker.io/library/app:1",))
    return tmp_path / "store"


def test_images_lists_every_image_with_its_names(root: Path) -> None:
    (record,) = builder.images(root=root)
    assert record.names == ("docker.io/library/app:1",)


def test_resolve_and_inspect(root: Path) -> None:
    record = builder.resolve("app:1", root=root)
    assert isinstance(record, builder.ImageRecord)
    assert builder.resolve(str(record.id), root=root) == record
    config = builder.inspect("app:1", root=root)
    assert isinstance(config, builder.ImageConfig)
    assert config.config.cmd == ("cat", "/hello")
    assert config.history[0].created_by == "COPY hello /"
    with pytest.raises(builder.StoreError, match="No such image: nope"):
        builder.resolve("nope", root=root)


def test_remove_tag(root: Path) -> None:
    builder.remove_tag("app:1", root=root)
    assert builder.images(root=root) == ()
    with pytest.raises(builder.StoreError, match="No such image: app:1"):
        builder.remove_tag("app:1", root=root)
