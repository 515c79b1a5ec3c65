"""The init layer (moby's): which system mount roots a layer stack holds as non-directories,
and the layer of plain directories that masks them (plain directories, no mounts)."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from builder.snapshot.overlay import init_layer, masked_roots
from tests.conftest import require, try_setxattr

NAMES = ("proc", "dev", "sys")


def _layers(base: Path, *specs: dict[str, str]) -> list[Path]:
    """Layer directories bottom -> top under ``base``; each spec maps a name to "dir", "file"
    or a symlink target."""
    out = []
    for i, spec in enumerate(specs):
        layer = base / f"layer{i}"
        layer.mkdir(parents=True)
        for name, kind in spec.items():
            if kind == "dir":
                (layer / name).mkdir()
            elif kind == "file":
                (layer / name).write_text("x")
            else:
                os.symlink(kind, layer / name)
        out.append(layer)
    return out


def test_the_topmost_entry_decides(tmp_path: Path) -> None:
    lowers = _layers(
        tmp_path,
        {"proc": "dir", "dev": "dir", "sys": "dir"},
        {"dev": "../../../../tmp/pwn", "sys": "file"},
        {"sys": "dir"},
    )
    assert masked_roots(lowers, NAMES) == ("dev",)
    assert masked_roots(lowers[:2], NAMES) == ("dev", "sys")
    assert masked_roots(lowers[:1], NAMES) == ()


def test_absent_names_need_no_mask(tmp_path: Path) -> None:
    assert masked_roots(_layers(tmp_path, {"bin": "dir"}), NAMES) == ()
    assert masked_roots([], NAMES) == ()


def test_an_opaque_root_hides_the_layers_below(tmp_path: Path) -> None:
    lowers = _layers(tmp_path, {"dev": "/tmp/pwn"}, {"bin": "dir"})
    if require(try_setxattr(lowers[1], "user.overlay.opaque"), "user xattrs"):
        assert masked_roots(lowers, NAMES) == ()


@contextlib.contextmanager
def _scratch(path: Path) -> Iterator[Path]:
    path.mkdir()
    yield path


def test_init_layer_adds_plain_directories_on_top_only_when_needed(tmp_path: Path) -> None:
    plain = _layers(tmp_path / "a", {"dev": "dir"})
    with init_layer(plain, NAMES, lambda: _scratch(tmp_path / "unused")) as lowers:
        assert lowers == tuple(plain)
    assert not (tmp_path / "unused").exists()

    linked = _layers(tmp_path / "b", {"dev": "/tmp/pwn", "proc": "dir"})
    with init_layer(linked, NAMES, lambda: _scratch(tmp_path / "init")) as lowers:
        assert lowers == (*linked, tmp_path / "init")
        assert sorted(os.listdir(tmp_path / "init")) == ["dev"]
        st = (tmp_path / "init" / "dev").lstat()
        assert stat.S_ISDIR(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o755
