"""USER resolution with Docker/BuildKit semantics, reading the rootfs in-root (no root needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import ExecutionError
from builder.fs.passwd import GroupEntry, PasswdEntry, parse_group, parse_passwd
from builder.runtime.users import (
    ResolvedUser,
    exec_user,
    read_file_in_root,
    resolve_user,
)

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin

app:x:1000:1000:App User:/home/app:/bin/sh
  spaced:x:1001:1001::/home/spaced:/bin/sh
bad:x:notanumber:7:::
2000:x:3000:3000::/home/numeric:/bin/sh
"""
GROUP = """root:x:0:root
# a comment
wheel:x:10:root,app
staff:x:50:app,other
app:x:1000:
dev:x:60:spaced
"""


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    return root


def test_parse_passwd_like_moby() -> None:
    entries = parse_passwd(PASSWD)
    assert entries[0] == PasswdEntry(name="root", uid=0, gid=0, home="/root")
    assert PasswdEntry(name="spaced", uid=1001, gid=1001, home="/home/spaced") in entries
    # non-numeric ids parse as 0 (conversion errors ignored, as moby/sys/user does)
    assert PasswdEntry(name="bad", uid=0, gid=7, home="") in entries
    assert len(entries) == 6
    assert parse_passwd("short:x:5") == (PasswdEntry(name="short", uid=5, gid=0, home=""),)


def test_parse_group_skips_comments() -> None:
    groups = parse_group(GROUP)
    assert [g.name for g in groups] == ["root", "wheel", "staff", "app", "dev"]
    assert groups[1] == GroupEntry(name="wheel", gid=10, members=("root", "app"))
    assert groups[3].members == ()


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("", ResolvedUser(uid=0, gid=0, additional_gids=(0, 10), home="/root")),
        ("root", ResolvedUser(uid=0, gid=0, additional_gids=(0, 10), home="/root")),
        ("app", ResolvedUser(uid=1000, gid=1000, additional_gids=(10, 50), home="/home/app")),
        ("1000", ResolvedUser(uid=1000, gid=1000, additional_gids=(10, 50), home="/home/app")),
        ("app:staff", ResolvedUser(uid=1000, gid=50, home="/home/app")),
        ("app:77", ResolvedUser(uid=1000, gid=77, home="/home/app")),
        ("4242", ResolvedUser(uid=4242, gid=0)),
        ("4242:wheel", ResolvedUser(uid=4242, gid=10)),
        ("spaced", ResolvedUser(uid=1001, gid=1001, additional_gids=(60,), home="/home/spaced")),
        # a numeric name is always a uid, never a user name
        ("2000", ResolvedUser(uid=2000, gid=0)),
        # the fast path: both numeric (or "root"), nothing read but HOME
        ("1000:1000", ResolvedUser(uid=1000, gid=1000, home="/home/app")),
        ("root:root", ResolvedUser(uid=0, gid=0, home="/root")),
        ("5:6", ResolvedUser(uid=5, gid=6)),
        # Go's Atoi accepts a sign
        ("+1000", ResolvedUser(uid=1000, gid=1000, additional_gids=(10, 50), home="/home/app")),
    ],
)
def test_resolve_user(rootfs: Path, user: str, expected: ResolvedUser) -> None:
    assert resolve_user(rootfs, user) == expected


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("ghost", "unable to find user ghost: no matching entries in passwd file"),
        ("ghost:wheel", "unable to find user ghost: no matching entries in passwd file"),
        ("app:ghosts", "unable to find group ghosts: no matching entries in group file"),
        ("-1", "uids and gids must be in range 0-2147483647"),
        ("2147483648", "uids and gids must be in range 0-2147483647"),
        ("app:-5", "uids and gids must be in range 0-2147483647"),
    ],
)
def test_resolve_user_errors(rootfs: Path, user: str, message: str) -> None:
    with pytest.raises(ExecutionError) as info:
        resolve_user(rootfs, user)
    assert str(info.value) == message


def test_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert resolve_user(empty, "") == ResolvedUser(uid=0, gid=0)
    assert resolve_user(empty, "123") == ResolvedUser(uid=123, gid=0)
    assert resolve_user(empty, "123:456") == ResolvedUser(uid=123, gid=456)
    with pytest.raises(ExecutionError, match="unable to find user app"):
        resolve_user(empty, "app")
    with pytest.raises(ExecutionError, match="unable to find group g"):
        resolve_user(empty, "1:g")


def test_passwd_symlink_is_resolved_inside_the_rootfs(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "users").write_text("inside:x:77:77::/in:/bin/sh\n")
    # absolute and ../-escaping links both land inside the rootfs
    os.symlink("/data/users", root / "etc" / "passwd")
    os.symlink("../../../../../../data/users", root / "etc" / "group")
    assert resolve_user(root, "inside") == ResolvedUser(uid=77, gid=77, home="/in")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("escaped:x:5:5::/:/bin/sh\n")
    os.unlink(root / "etc" / "passwd")
    os.symlink("../../../../../../../.." + str(outside / "passwd"), root / "etc" / "passwd")
    with pytest.raises(ExecutionError, match="unable to find user escaped"):
        resolve_user(root, "escaped")  # the host file is never read


def test_etc_dir_symlink_escape_stays_in_root(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    root.mkdir()
    os.symlink("/etc", root / "etc")  # in-root this is a loop to itself: no passwd file
    with pytest.raises(ExecutionError, match="unable to find user root"):
        resolve_user(root, "root")


def test_non_regular_and_oversized_files(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    os.mkfifo(root / "etc" / "passwd")  # would block a naive reader
    with pytest.raises(ExecutionError, match="/etc/passwd is not a regular file"):
        read_file_in_root(root, "/etc/passwd")
    with pytest.raises(ExecutionError, match="is not a regular file"):
        resolve_user(root, "app")
    (root / "etc" / "group").write_text("x" * 2048)
    with pytest.raises(ExecutionError, match="exceeds 1024 bytes"):
        read_file_in_root(root, "/etc/group", limit=1024)
    assert read_file_in_root(root, "/etc/missing") is None
    os.symlink("loop", root / "etc" / "loop")  # a loop cannot be opened: no file (BuildKit)
    assert read_file_in_root(root, "/etc/loop") is None


ids = st.integers(min_value=0, max_value=(1 << 31) - 1)


@settings(max_examples=60, deadline=None)
@given(uid=ids, gid=ids, with_group=st.booleans())
def test_numeric_specs_round_trip(uid: int, gid: int, with_group: bool) -> None:
    passwd = parse_passwd(PASSWD)
    group = parse_group(GROUP)
    spec = f"{uid}:{gid}" if with_group else str(uid)
    got = exec_user(spec, passwd, group)
    assert got.uid == uid
    if with_group:
        assert got.gid == gid
        assert got.additional_gids == ()
    else:
        known = {e.uid: e.gid for e in reversed(passwd)}
        assert got.gid == known.get(uid, 0)


@settings(max_examples=60, deadline=None)
@given(name=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-", min_size=1, max_size=12))
def test_unknown_names_always_fail(name: str) -> None:
    passwd = parse_passwd(PASSWD)
    known = {e.name for e in passwd}
    if name in known:
        assert exec_user(name, passwd, ()).uid >= 0
    else:
        with pytest.raises(ExecutionError, match=f"unable to find user {name}:"):
            exec_user(name, passwd, ())
