"""COPY of many files: the background writes (``WriteBack``) give the same tree as one by one.

More files than one write batch, so the worker pool runs; overwrites, hardlinks, a file that a
later source turns into a directory's parent, and rootfs merges all cross batch boundaries.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from copykit import Step, mode_of, run, tree, write

from builder.engine.writeback import WriteBack
from builder.errors import ContextError

N = 600  # past the batches run inline (256 files): several batches of background writes


def _many(root: Path, prefix: str, text: str) -> None:
    for i in range(N):
        write(root, f"{prefix}/d{i % 7}/f{i:03d}", f"{text}{i}", mode=0o600 | (i % 2) * 0o055)


def test_many_files_copied_with_contents_modes_and_times(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    _many(root, "src", "v")
    for i in range(N):
        os.utime(root / f"src/d{i % 7}/f{i:03d}", ns=(i * 10**9, i * 10**9))
    res = run(root, Step(sources=("src",), dest="/app/"), tmp_path / "out")
    out = tmp_path / "out" / "app"
    for i in range(N):
        path = out / f"d{i % 7}" / f"f{i:03d}"
        assert path.read_text() == f"v{i}"
        assert mode_of(path) == 0o600 | (i % 2) * 0o055
        assert path.stat().st_mtime_ns == i * 10**9
        assert (path.stat().st_uid, path.stat().st_gid) == (0, 0)
    assert len([i for i in res.items if i.kind == "file"]) == N


def test_later_source_overwrites_each_of_many_files(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    _many(root, "one", "first")
    _many(root, "two", "second")
    run(root, Step(sources=("one", "two"), dest="/d/"), tmp_path / "out")
    got = tree(tmp_path / "out")
    files = {k: v for k, v in got.items() if v != "dir"}
    assert len(files) == N
    assert all(v.startswith("second") for v in files.values())


def test_many_hardlinks_stay_links(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    _many(root, "src", "v")
    for i in range(0, N, 3):
        os.link(root / f"src/d{i % 7}/f{i:03d}", root / f"src/d{i % 7}/link{i:03d}")
    run(root, Step(sources=("src",), dest="/x/"), tmp_path / "out")
    for i in range(0, N, 3):
        a = tmp_path / f"out/x/d{i % 7}/f{i:03d}"
        b = tmp_path / f"out/x/d{i % 7}/link{i:03d}"
        assert a.stat().st_ino == b.stat().st_ino
        assert b.read_text() == f"v{i}"


def test_many_files_merge_with_rootfs_directories(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    for i in range(7):
        write(rootfs, f"app/d{i}/old", "old")
        os.chmod(rootfs / f"app/d{i}", 0o750)
    write(rootfs, "app/d0/f000", "image")
    root = tmp_path / "ctx"
    _many(root, "src", "v")
    run(root, Step(sources=("src",), dest="/app/"), tmp_path / "out", rootfs=rootfs)
    out = tmp_path / "out" / "app"
    assert (out / "d0/f000").read_text() == "v0"  # hides the image's file
    assert not (out / "d0/old").exists()  # the layer holds only what COPY wrote
    # a directory in both takes the source directory's mode (BuildKit's copy)
    assert mode_of(out / "d3") == mode_of(root / "src/d3") != 0o750


def test_file_where_a_later_source_needs_a_directory_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    _many(root, "one", "x")
    write(root, "one/zz", "a file")  # copied in the last batch of the first source
    write(root, "two/zz/inner", "needs zz to be a directory")
    with pytest.raises(ContextError):
        run(root, Step(sources=("one", "two"), dest="/d/"), tmp_path / "out")


# --- WriteBack itself ---------------------------------------------------------------------------


def test_writeback_runs_every_job_and_settles_a_pending_path(tmp_path: Path) -> None:
    done: list[int] = []
    wb = WriteBack()
    for i in range(N):
        wb.submit(("d", f"f{i}"), lambda i=i: done.append(i))
    wb.settle(("d", f"f{N - 1}", "below"))  # a path below a queued one waits for everything
    assert sorted(done) == list(range(N))
    wb.submit(("e",), lambda: done.append(-1))
    wb.settle(("other",))  # unrelated: nothing waits
    wb.drain()
    assert -1 in done
    wb.close()


def test_writeback_raises_the_first_error_after_running_every_job() -> None:
    ran: list[int] = []

    def fail(i: int) -> None:
        ran.append(i)
        if i in (5, 450):  # one in an inline batch, one in a pooled one
            raise OSError(28, f"No space left on device {i}")

    wb = WriteBack()
    for i in range(N):
        wb.submit(("f", str(i)), lambda i=i: fail(i))
    with pytest.raises(OSError, match="No space left"):
        wb.drain()
    assert sorted(ran) == list(range(N))  # every job ran (each closes what it was given)
    wb.drain()  # the error was reported once
    wb.close()


@pytest.mark.parametrize("files", [3, 256])
def test_small_copies_run_inline(files: int) -> None:
    import threading

    wb = WriteBack()
    names: list[str] = []
    for i in range(files):
        wb.submit((str(i),), lambda: names.append(threading.current_thread().name))
    wb.drain()
    wb.close()
    assert names == [threading.current_thread().name] * files


def test_a_big_copy_hands_files_to_the_pool_after_the_first_batches() -> None:
    import threading

    wb = WriteBack()
    names: list[str] = []
    for i in range(2000):
        wb.submit((str(i),), lambda: names.append(threading.current_thread().name))
    wb.drain()
    wb.close()
    caller = threading.current_thread().name
    assert names[:256] == [caller] * 256  # the first 8 batches: no hand-over
    assert len(names) == 2000
    assert set(names[256:]) - {caller}  # the rest went to the pool threads
