"""RUN failure messages (BuildKit wording), output tails and in-root path resolution."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.engine.run import _Tail, failure_message, go_quote, resolve_in_root
from builder.errors import ExecutionError
from builder.runtime.oci import ExitStatus


def test_exit_code_message_matches_buildkit() -> None:
    msg = failure_message(("/bin/sh", "-c", "exit 3"), ExitStatus(code=3))
    assert msg == 'process "/bin/sh -c exit 3" did not complete successfully: exit code: 3'


def test_oom_message_names_the_limit() -> None:
    status = ExitStatus(code=137, oom_killed=True, memory_limit=64 << 20)
    assert failure_message(("x",), status) == (
        'process "x" did not complete successfully: exit code: 137:'
        " killed: out of memory (limit 64MiB)"
    )
    odd = ExitStatus(code=137, oom_killed=True, memory_limit=10_000_001)
    assert failure_message(("x",), odd).endswith("(limit 10000001 bytes)")
    assert failure_message(("x",), ExitStatus(code=137, oom_killed=True)).endswith(
        "killed: out of memory"
    )


def test_runtime_error_is_appended() -> None:
    status = ExitStatus(code=1, runtime_error="runc run failed: exec: no such file")
    assert failure_message(("/nope",), status) == (
        'process "/nope" did not complete successfully: exit code: 1:'
        " runc run failed: exec: no such file"
    )


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("echo hi", '"echo hi"'),
        ('say "x"', '"say \\"x\\""'),
        ("a\\b", '"a\\\\b"'),
        ("line1\nline2\t", '"line1\\nline2\\t"'),
        ("\x00\x1b", '"\\x00\\x1b"'),
        ("héllo ☃", '"héllo ☃"'),
        ("\u200b", '"\\u200b"'),
    ],
)
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


def test_tail_keeps_the_last_lines_and_forwards_everything() -> None:
    seen: list[bytes] = []
    tail = _Tail(seen.append)
    for i in range(1, 201):
        tail(f"line {i}\n".encode())
    assert len(seen) == 200
    assert tail.text().splitlines() == [f"line {i}" for i in range(181, 201)]
    tail(b"no newline at end")
    assert tail.text().splitlines()[-1] == "no newline at end"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=5000), min_size=1, max_size=60))
def test_tail_is_bounded_and_a_suffix(chunks: list[bytes]) -> None:
    tail = _Tail(lambda _b: None)
    for c in chunks:
        tail(c)
    kept = b"".join(tail.chunks)
    assert b"".join(chunks).endswith(kept)
    assert tail.size == len(kept)
    assert len(kept) - len(tail.chunks[0]) < 64 * 1024


def test_resolve_in_root(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "file").write_text("x")
    os.symlink("/dir", root / "abs")
    os.symlink("../../../../dir/file", root / "dir" / "sub" / "up")
    os.symlink("/", root / "top")
    assert resolve_in_root(root, "/") == root
    assert resolve_in_root(root, "abs/file") == root / "dir" / "file"
    assert resolve_in_root(root, "dir/sub/up") == root / "dir" / "file"
    assert resolve_in_root(root, "top/top/dir") == root / "dir"
    assert resolve_in_root(root, "dir/sub/..") == root / "dir"
    assert resolve_in_root(root, "top/etc/passwd") is None  # never the host's /etc
    assert resolve_in_root(root, "missing/x") is None
    os.symlink("loop", root / "loop")
    with pytest.raises(ExecutionError, match="too many levels"):
        resolve_in_root(root, "loop")


def test_pids_limit_message_names_the_limit() -> None:
    status = ExitStatus(code=2, pids_exhausted=True, pids_limit=20)
    assert failure_message(("/bin/sh", "-c", "bomb"), status) == (
        'process "/bin/sh -c bomb" did not complete successfully: exit code: 2:'
        " pids limit reached (20)"
    )
    assert failure_message(("x",), ExitStatus(code=2, pids_limit=20)) == (
        'process "x" did not complete successfully: exit code: 2'
    )
