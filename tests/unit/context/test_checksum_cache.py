"""Content checksums: entry digests ignore mtime; the stat cache avoids re-reading files."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builder.context.checksum import ContentCache, entry_digest, hashed_xattrs

FAR_FUTURE = 2**62  # any file written during the test run is long "aged" by then


def _opener(path: Path) -> Callable[[], int]:
    return lambda: os.open(path, os.O_RDONLY)


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path ``os.open`` is called with while the test runs."""
    seen: list[str] = []
    real = os.open

    def counting(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        seen.append(os.fsdecode(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting)
    return seen


def test_unchanged_file_is_not_reopened(tmp_path: Path, opens: list[str]) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"hello")
    cache = ContentCache(tmp_path / "state", clock=lambda: FAR_FUTURE)
    want = hashlib.sha256(b"hello").hexdigest()
    assert cache.content_digest(f.lstat(), _opener(f)) == want
    assert opens.count(str(f)) == 1
    assert cache.content_digest(f.lstat(), _opener(f)) == want
    assert opens.count(str(f)) == 1  # served from the stat cache
    cache.close()
    # a new process (new cache object) reads the persisted entry
    again = ContentCache(tmp_path / "state", clock=lambda: FAR_FUTURE)
    assert again.content_digest(f.lstat(), _opener(f)) == want
    assert opens.count(str(f)) == 1
    assert again.hashed == 0
    again.close()


def test_changed_file_is_read_again(tmp_path: Path, opens: list[str]) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"one")
    cache = ContentCache(tmp_path / "state", clock=lambda: FAR_FUTURE)
    first = cache.content_digest(f.lstat(), _opener(f))
    cache.close()
    f.write_bytes(b"two")  # same size, new mtime/ctime
    st = f.lstat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    cache = ContentCache(tmp_path / "state", clock=lambda: FAR_FUTURE)
    second = cache.content_digest(f.lstat(), _opener(f))
    assert opens.count(str(f)) == 2
    assert second == hashlib.sha256(b"two").hexdigest() != first
    cache.close()


def test_racy_entries_are_not_trusted(tmp_path: Path, opens: list[str]) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"data")
    st = f.lstat()
    recorded = max(st.st_mtime_ns, st.st_ctime_ns)  # hashed in the same tick it was written
    cache = ContentCache(None, clock=lambda: recorded)
    cache.content_digest(st, _opener(f))
    cache.content_digest(st, _opener(f))
    assert opens.count(str(f)) == 2
    assert cache.hashed == 2


def test_memory_only_cache(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    cache = ContentCache(clock=lambda: FAR_FUTURE)
    cache.content_digest(f.lstat(), _opener(f))
    cache.content_digest(f.lstat(), _opener(f))
    assert cache.hashed == 1
    cache.close()
    assert not (tmp_path / "context-checksums.sqlite3").exists()


def test_unusable_state_dir_degrades_to_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    cache = ContentCache(blocker / "sub", clock=lambda: FAR_FUTURE)
    assert cache.content_digest(f.lstat(), _opener(f)) == hashlib.sha256(b"abc").hexdigest()
    cache.close()


def test_entry_digest_ignores_mtime_but_not_metadata(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x")
    st = f.lstat()
    content = hashlib.sha256(b"x").hexdigest()
    base = entry_digest(name="/f", st=st, uid=0, gid=0, content=content)
    os.utime(f, ns=(1, 1))
    assert entry_digest(name="/f", st=f.lstat(), uid=0, gid=0, content=content) == base
    assert entry_digest(name="/g", st=st, uid=0, gid=0, content=content) != base
    assert entry_digest(name="/f", st=st, uid=1, gid=0, content=content) != base
    assert entry_digest(name="/f", st=st, uid=0, gid=0, content="0" * 64) != base
    os.chmod(f, 0o755)
    assert entry_digest(name="/f", st=f.lstat(), uid=0, gid=0, content=content) != base
    with_xattr = entry_digest(
        name="/f", st=st, uid=0, gid=0, content=content, xattrs=(("user.a", b"1"),)
    )
    assert with_xattr != base
    selinux_only = entry_digest(
        name="/f", st=st, uid=0, gid=0, content=content, xattrs=(("security.selinux", b"x"),)
    )
    assert selinux_only == base


def test_hashed_xattrs_filter() -> None:
    got = hashed_xattrs(
        (
            ("user.b", b"2"),
            ("security.capability", b"c"),
            ("security.selinux", b"s"),
            ("system.posix_acl_access", b"a"),
            ("user.a", b"1"),
        )
    )
    assert got == (("security.capability", b"c"), ("user.a", b"1"), ("user.b", b"2"))


def test_seeded_digest_is_trusted_in_process_though_racy(tmp_path: Path, opens: list[str]) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"copied")
    st = f.lstat()
    cache = ContentCache(tmp_path / "state", clock=lambda: 0)  # every entry counts as racy
    want = hashlib.sha256(b"copied").hexdigest()
    cache.seed(st, want, len(b"copied"))
    assert cache.cached(st) == want
    assert cache.content_digest(st, _opener(f)) == want
    assert opens.count(str(f)) == 0  # the copy's read stands for the hash
    cache.close()
    # persisted, but a later process applies the racy rule to it
    later = ContentCache(tmp_path / "state", clock=lambda: 0)
    assert later.cached(f.lstat()) is None
    later.close()


def test_seed_of_a_changed_or_short_read_is_not_used(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    st = f.lstat()
    cache = ContentCache(None)
    cache.seed(st, hashlib.sha256(b"ab").hexdigest(), 2)  # the file shrank while it was read
    assert cache.cached(st) is None
    cache.seed(st, hashlib.sha256(b"abc").hexdigest(), 3)
    os.utime(f, ns=(1, 1))  # a new mtime: the seeded entry no longer matches
    assert cache.cached(f.lstat()) is None
