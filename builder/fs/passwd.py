"""The one parser of /etc/passwd and /etc/group (moby/sys/user's ``ParsePasswd``/``ParseGroup``).

Lines are trimmed and blank ones skipped; /etc/group also skips ``#`` comments; missing fields
are empty; a number that does not parse (or overflows 64 bits) reads as 0, as Go's
``strconv.Atoi`` with its error ignored. Both ``USER`` (``runtime.users``) and
``COPY --chown`` (``engine.chown``) read the image's files through these functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["GroupEntry", "PasswdEntry", "find_group", "find_user", "parse_group", "parse_passwd"]

_GO_INT: Final = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


def go_atoi(text: str) -> int:
    """Go's ``strconv.Atoi`` with errors ignored (moby's parser treats bad numbers as 0)."""
    if _GO_INT.fullmatch(text) is None:
        return 0
    value = int(text)
    return value if -(1 << 63) <= value < (1 << 63) else 0


def parse_passwd(text: str) -> tuple[PasswdEntry, ...]:
    """``name:pass:uid:gid:gecos:home:shell`` lines; blank lines skipped, missing fields empty."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        f = [*line.split(":"), "", "", "", "", "", "", ""]
        out.append(PasswdEntry(name=f[0], uid=go_atoi(f[2]), gid=go_atoi(f[3]), home=f[5]))
    return tuple(out)


def parse_group(text: str) -> tuple[GroupEntry, ...]:
    """``name:pass:gid:user,user`` lines; blank and ``#`` lines skipped."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        f = [*line.split(":"), "", "", ""]
        members = tuple(f[3].split(",")) if f[3] else ()
        out.append(GroupEntry(name=f[0], gid=go_atoi(f[2]), members=members))
    return tuple(out)


def find_user(entries: tuple[PasswdEntry, ...], name: str) -> PasswdEntry | None:
    """The first entry named ``name`` (the file's order decides duplicates)."""
    return next((e for e in entries if e.name == name), None)


def find_group(entries: tuple[GroupEntry, ...], name: str) -> GroupEntry | None:
    """The first group named ``name``."""
    return next((e for e in entries if e.name == name), None)
