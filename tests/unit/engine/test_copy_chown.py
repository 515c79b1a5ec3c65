"""--chown resolution (BuildKit's WithUser/readUser) and --chmod arithmetic (BSD setmode)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from builder.engine.chown import ChownResolver, Owner, parse_chmod
from builder.errors import ContextError, InvalidInstructionError


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    etc = tmp_path / "rootfs" / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "\n"
        "  daemon:x:1:1::/:/usr/sbin/nologin  \n"
        "www-data:x:33:33:www:/var/www:/usr/sbin/nologin\n"
        "broken:x:notanumber\n"
    )
    (etc / "group").write_text("root:x:0:\nstaff:x:50:www-data\nusers:x:100:\n")
    return tmp_path / "rootfs"


@pytest.mark.parametrize(
    ("spec", "owner"),
    [
        ("0", Owner(uid=0, gid=0)),
        ("root", Owner(uid=0, gid=0)),
        ("1000", Owner(uid=1000, gid=1000)),
        ("1000:2000", Owner(uid=1000, gid=2000)),
        ("www-data", Owner(uid=33, gid=33)),
        ("www-data:staff", Owner(uid=33, gid=50)),
        ("www-data:100", Owner(uid=33, gid=100)),
        ("42:users", Owner(uid=42, gid=100)),
        ("daemon", Owner(uid=1, gid=1)),
        ("root:root", Owner(uid=0, gid=0)),
        (":staff", Owner(uid=0, gid=50)),
        ("broken", Owner(uid=0, gid=0)),
        ("+7", Owner(uid=7, gid=7)),
    ],
)
def test_resolve(rootfs: Path, spec: str, owner: Owner) -> None:
    assert ChownResolver(rootfs).resolve(spec) == owner


def test_no_chown() -> None:
    assert ChownResolver(None).resolve(None) is None
    assert ChownResolver(None).resolve("") is None


def test_numeric_ids_need_no_rootfs() -> None:
    assert ChownResolver(None).resolve("10:20") == Owner(uid=10, gid=20)
    assert ChownResolver(None).resolve("root") == Owner(uid=0, gid=0)


def test_names_need_a_rootfs() -> None:
    with pytest.raises(ContextError, match="cannot be resolved with --link"):
        ChownResolver(None).resolve("app")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nobody", "unable to find user nobody: no matching entries in passwd file"),
        ("root:wheel", "unable to find group wheel: no matching entries in group file"),
        ("-1", "invalid negative id -1"),
        ("1:-5", "invalid negative id -5"),
        ("99999999999", "unable to find user 99999999999"),
    ],
)
def test_errors(rootfs: Path, spec: str, message: str) -> None:
    with pytest.raises(ContextError, match=message):
        ChownResolver(rootfs).resolve(spec)


def test_missing_passwd_file(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ContextError, match="unable to find user app"):
        ChownResolver(tmp_path / "empty").resolve("app")


def test_passwd_must_be_regular(tmp_path: Path) -> None:
    (tmp_path / "r" / "etc" / "passwd").mkdir(parents=True)
    with pytest.raises(ContextError, match="not a regular file"):
        ChownResolver(tmp_path / "r").resolve("app")


FILE = stat.S_IFREG
DIR = stat.S_IFDIR


@pytest.mark.parametrize(
    ("spec", "before", "kind", "after"),
    [
        ("755", 0o600, FILE, 0o755),
        ("0644", 0o777, DIR, 0o644),
        ("4755", 0o600, FILE, 0o4755),
        ("7777", 0, FILE, 0o7777),
        ("+x", 0o644, FILE, 0o755),
        ("-w", 0o666, FILE, 0o444),
        ("u=rwX,go=rX", 0o600, FILE, 0o644),
        ("u=rwX,go=rX", 0o700, FILE, 0o755),
        ("u=rwX,go=rX", 0o600, DIR, 0o755),
        ("a+X", 0o644, FILE, 0o644),
        ("a+X", 0o644, DIR, 0o755),
        ("go=", 0o777, FILE, 0o700),
        ("go-w", 0o777, FILE, 0o755),
        ("=rw,+X", 0o744, FILE, 0o777),
        ("=rw,+X", 0o644, FILE, 0o666),
        ("u=rwx,go=u-w", 0o000, FILE, 0o755),
        ("g=u", 0o640, FILE, 0o660),
        ("o+t", 0o755, DIR, 0o755),
        ("+t", 0o755, DIR, 0o1755),
        ("u+s", 0o755, FILE, 0o4755),
        ("g+s,o-rwx", 0o755, DIR, 0o2750),
        ("u=rw,g=r,o=", 0o777, FILE, 0o640),
        ("ug+rw-x", 0o711, FILE, 0o661),
        ("a=", 0o4777, FILE, 0o000),
        ("=", 0o1777, DIR, 0o1000),
    ],
)
def test_chmod(spec: str, before: int, kind: int, after: int) -> None:
    mode = parse_chmod(spec)
    assert mode is not None
    assert oct(mode.apply(kind | before)) == oct(after)


def test_no_chmod_parses_to_none() -> None:
    assert parse_chmod(None) is None
    assert parse_chmod("") is None


@pytest.mark.parametrize("bad", ["999", "10000", "12a", "0o755", "8"])
def test_bad_octal(bad: str) -> None:
    with pytest.raises(
        InvalidInstructionError,
        match=rf"invalid chmod parameter: '{bad}'\. it should be octal string and between 0 and"
        r" 07777",
    ):
        parse_chmod(bad)


@pytest.mark.parametrize("bad", ["u", "x", "u+x,", "u+q", "z=r", ",", "u+x;g"])
def test_bad_symbolic(bad: str) -> None:
    with pytest.raises(InvalidInstructionError, match="invalid syntax"):
        parse_chmod(bad)
