"""Cache-mount directories: names are hashes whatever the id, ``locked`` excludes, ``private``
moves on to a directory of its own, ``shared`` shares, a new directory is made once, and prune
removes what nobody holds (lock files included) and keeps the rest."""

from __future__ import annotations

import fcntl
from pathlib import Path

from builder.engine import cachemounts
from builder.syntax.ir import ShareMode


def _make(made: list[Path]) -> cachemounts.Create:
    def create(path: Path) -> None:
        made.append(path)
        path.mkdir()
        (path / "seed").write_text("x" * 10)

    return create


def test_names_are_hashes_and_stay_in_the_area(tmp_path: Path) -> None:
    base = tmp_path / "area"
    for cache_id in ("../../x", "/abs", "a/../../b"):
        name = cachemounts.cache_name("", cache_id)
        assert len(name) == 64
        assert set(name) <= set("0123456789abcdef")
        with cachemounts.use(base, name, ShareMode.SHARED, _make([])) as directory:
            assert directory.parent == base
    assert sorted(p.name for p in tmp_path.iterdir()) == ["area"]
    assert cachemounts.cache_name("", "a") != cachemounts.cache_name("", "a", "stage x")
    assert cachemounts.cache_name("ns", "a") != cachemounts.cache_name("", "a")


def test_sharing_modes(tmp_path: Path) -> None:
    made: list[Path] = []
    create = _make(made)
    name = cachemounts.cache_name("", "c")
    lock = tmp_path / f"{name}.lock"
    with cachemounts.use(tmp_path, name, ShareMode.LOCKED, create) as first:
        assert cachemounts._lock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB) is None
        with cachemounts.use(tmp_path, name, ShareMode.PRIVATE, create) as own:
            assert own == tmp_path / f"{name}-1"
    with (
        cachemounts.use(tmp_path, name, ShareMode.SHARED, create) as a,
        cachemounts.use(tmp_path, name, ShareMode.SHARED, create) as b,
    ):
        assert a == b == first
    assert made == [tmp_path / f"{name}.tmp", tmp_path / f"{name}-1.tmp"]  # each made once
    assert (first / "seed").read_text() == "x" * 10


def test_prune_keeps_what_is_held(tmp_path: Path) -> None:
    create = _make([])
    held, free = cachemounts.cache_name("", "held"), cachemounts.cache_name("", "free")
    with cachemounts.use(tmp_path, free, ShareMode.SHARED, create):
        pass
    with cachemounts.use(tmp_path, held, ShareMode.SHARED, create):
        report = cachemounts.prune(tmp_path)
        assert report == cachemounts.PruneReport(removed=(free,), busy=(held,), reclaimed_bytes=10)
        assert sorted(p.name for p in tmp_path.iterdir()) == [held, f"{held}.lock"]
        # the removed lock file is recreated by the next user
        with cachemounts.use(tmp_path, free, ShareMode.LOCKED, create) as again:
            assert (again / "seed").exists()
    report = cachemounts.prune(tmp_path)
    assert sorted(report.removed) == sorted((free, held))
    assert list(tmp_path.iterdir()) == []
