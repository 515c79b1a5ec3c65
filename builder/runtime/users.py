"""``USER`` resolution against a rootfs's /etc/passwd and /etc/group, read as data in-root.

Semantics are BuildKit's (``executor/oci/user.go``) over moby/sys/user's ``GetExecUser``:

- ``""`` means uid 0 looked up as ``"0"``; if that lookup fails, plain root (0:0, no groups).
- ``uid:gid`` with both numeric (or ``root``) is taken as is: no file is read, no extra groups.
- otherwise the user part is a name (must exist: ``unable to find user X: no matching entries
  in passwd file``) or a number (used even without an entry; gid then comes from the entry or
  is 0); the group part is a name (must exist in /etc/group) or a number.
- supplementary gids are the /etc/group entries listing the user, only when no group was given.
- ids must be in 0..2147483647 (``uids and gids must be in range 0-2147483647``).

The files are read through ``builder.fs.root`` (symlinks resolved inside the rootfs, never
outside it) and parsed by ``builder.fs.passwd``; they must be regular files of at most 10 MiB.
Nothing in the image is executed or loaded (no NSS, no chroot).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from builder.errors import ExecutionError
from builder.fs.passwd import GroupEntry, PasswdEntry, parse_group, parse_passwd
from builder.fs.root import FileTooLargeError, NotRegularFileError, Root

MAX_ID: Final = (1 << 31) - 1
MAX_USER_FILE_BYTES: Final = 10 << 20
_GO_INT: Final = re.compile(r"[+-]?[0-9]+")
_UINT: Final = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = ""


def _parse_numeric(value: str) -> int | None:
    """moby's ``parseNumeric``: None for a name; out-of-range numbers are an error."""
    if not value or _GO_INT.fullmatch(value) is None:
        return None
    number = int(value)
    if not 0 <= number <= MAX_ID:
        raise ExecutionError(f"uids and gids must be in range 0-{MAX_ID}")
    return number


def _fast_id(text: str) -> int | None:
    """BuildKit's ``parseUID``: ``root`` or an unsigned 32-bit decimal."""
    if text == "root":
        return 0
    if _UINT.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value < (1 << 32) else None


def exec_user(
    spec: str, passwd: tuple[PasswdEntry, ...] | None, group: tuple[GroupEntry, ...] | None
) -> ResolvedUser:
    """moby/sys/user ``GetExecUser`` with no defaults (``None`` = the file is missing)."""
    fields = [*spec.split(":"), ""]
    user_arg, group_arg = fields[0], fields[1]
    uid_arg = _parse_numeric(user_arg)
    gid_arg = _parse_numeric(group_arg)
    uid, gid, home = 0, 0, ""
    sgids: tuple[int, ...] = ()

    def user_matches(u: PasswdEntry) -> bool:
        if not user_arg:
            return u.uid == 0
        if uid_arg is not None:
            return u.uid == uid_arg
        return u.name == user_arg

    users = [u for u in passwd or () if user_matches(u)]
    matched = ""
    if users:
        matched, uid, gid, home = users[0].name, users[0].uid, users[0].gid, users[0].home
    elif user_arg:
        if uid_arg is None:
            raise ExecutionError(
                f"unable to find user {user_arg}: no matching entries in passwd file"
            )
        uid = uid_arg

    if group_arg or matched:

        def group_matches(g: GroupEntry) -> bool:
            if not group_arg:
                return matched in g.members
            if gid_arg is not None:
                return g.gid == gid_arg
            return g.name == group_arg

        groups = [g for g in group or () if group_matches(g)]
        if group_arg:
            if groups:
                gid = groups[0].gid
            elif gid_arg is None:
                raise ExecutionError(
                    f"unable to find group {group_arg}: no matching entries in group file"
                )
            else:
                gid = gid_arg
        elif groups:
            sgids = tuple(g.gid for g in groups)
    return ResolvedUser(uid=uid, gid=gid, additional_gids=sgids, home=home)


def read_file_in_root(rootfs: Path, path: str, *, limit: int = MAX_USER_FILE_BYTES) -> str | None:
    """Text of the regular file ``path`` inside ``rootfs`` (symlinks resolved in-root).

    None when it cannot be opened: missing, a symlink loop, a non-directory on the way (as
    BuildKit's ``openUserFile``, whose ``RootPath`` error means "no file"). Larger than
    ``limit`` or not a regular file: ``ExecutionError``.
    """
    try:
        with Root(rootfs) as root:
            data = root.read(path, limit=limit)
    except NotRegularFileError:
        raise ExecutionError(f"{path} is not a regular file") from None
    except FileTooLargeError:
        raise ExecutionError(f"{path!r} exceeds {limit} bytes") from None
    except OSError:
        return None
    return data.decode("utf-8", errors="surrogateescape") if data is not None else None


def resolve_user(rootfs: Path, user: str) -> ResolvedUser:
    """The uid, gid, supplementary gids and home directory ``user`` means in ``rootfs``."""
    is_default = user == ""
    spec = "0" if is_default else user
    if ":" in spec:
        uid_text, gid_text = spec.split(":", 1)
        uid, gid = _fast_id(uid_text), _fast_id(gid_text)
        if uid is not None and gid is not None:
            return ResolvedUser(uid=uid, gid=gid, home=_home_of(rootfs, uid))
    passwd_text = read_file_in_root(rootfs, "/etc/passwd")
    group_text = read_file_in_root(rootfs, "/etc/group")
    passwd = parse_passwd(passwd_text) if passwd_text is not None else None
    group = parse_group(group_text) if group_text is not None else None
    try:
        return exec_user(spec, passwd, group)
    except ExecutionError:
        if is_default:
            return ResolvedUser(uid=0, gid=0)
        raise


def _home_of(rootfs: Path, uid: int) -> str:
    """Home directory of ``uid`` per /etc/passwd (for HOME), ``""`` if unknown."""
    try:
        text = read_file_in_root(rootfs, "/etc/passwd")
    except ExecutionError:
        return ""
    for entry in parse_passwd(text or ""):
        if entry.uid == uid:
            return entry.home
    return ""
