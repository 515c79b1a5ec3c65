"""``COPY --chown`` and ``--chmod``: owner lookup in the destination rootfs, mode arithmetic.

``--chown=user[:group]`` follows BuildKit (``llb.WithUser`` + the file op's ``readUser``): each
part is a number (or ``root``, which is 0) or a name. A numeric user without a group gets the
same number as gid; a user name without a group gets that user's primary gid from
``/etc/passwd``; a group name comes from ``/etc/group``. Both files are read from the
destination rootfs in-root, so a symlinked ``/etc/passwd`` cannot leak host data.

Deliberate difference: BuildKit silently uses 0 for a name it cannot find; pybuild stops with
the classic builder's message (``unable to find user X: no matching entries in passwd file``).

``--chmod`` is an octal mode (at most 07777) or a chmod(1) symbolic mode with BSD ``setmode``
semantics and a zero umask (``u=rwX,go=rX``, ``+x``, ``g=u-w``), as BuildKit's
``dchapes-mode``. It applies to files and directories, not to symlinks.
"""

from __future__ import annotations

import enum
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from builder.errors import ContextError, InvalidInstructionError
from builder.fs.passwd import (
    GroupEntry,
    PasswdEntry,
    find_group,
    find_user,
    parse_group,
    parse_passwd,
)
from builder.fs.root import FileTooLargeError, NotRegularFileError, Root

MAX_USER_FILE: Final = 10 << 20
_INT32_MAX: Final = (1 << 31) - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Owner:
    uid: int
    gid: int


def _parse_id(text: str) -> int | None:
    """A numeric id as Go's ``strconv.ParseInt(s, 10, 32)`` reads it; ``root`` is 0."""
    if text == "root":
        return 0
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not body.isascii() or not body.isdigit():
        return None
    value = int(text)
    if value > _INT32_MAX or value < -_INT32_MAX - 1:
        return None
    return value


class ChownResolver:
    """Resolves ``--chown`` specs against a rootfs (None: no image view, e.g. ``--link``)."""

    def __init__(self, rootfs: Path | None) -> None:
        self.rootfs = rootfs
        self._texts: dict[str, str | None] = {}

    def resolve(self, spec: str | None) -> Owner | None:
        """The owner for ``spec``; None when there is no ``--chown``."""
        if spec is None or spec == "":
            return None
        user, sep, group = spec.partition(":")
        uid = gid = 0
        num = _parse_id(user)
        if num is not None:
            uid = gid = self._checked(num, spec)
        elif user:
            entry = self._user(user, spec)
            if entry is None:
                raise ContextError(
                    f"--chown={spec}: unable to find user {user}: no matching entries in"
                    " passwd file"
                )
            uid, gid = _file_id(entry.uid), _file_id(entry.gid)
        if sep:
            gnum = _parse_id(group)
            if gnum is not None:
                gid = self._checked(gnum, spec)
            elif group:
                gentry = self._group(group, spec)
                if gentry is None:
                    raise ContextError(
                        f"--chown={spec}: unable to find group {group}: no matching entries in"
                        " group file"
                    )
                gid = _file_id(gentry.gid)
        return Owner(uid=uid, gid=gid)

    @staticmethod
    def _checked(value: int, spec: str) -> int:
        if value < 0:
            raise ContextError(f"--chown={spec}: invalid negative id {value}")
        return value

    def _user(self, name: str, spec: str) -> PasswdEntry | None:
        text = self._text("/etc/passwd", spec)
        return find_user(parse_passwd(text), name) if text is not None else None

    def _group(self, name: str, spec: str) -> GroupEntry | None:
        text = self._text("/etc/group", spec)
        return find_group(parse_group(text), name) if text is not None else None

    def _text(self, path: str, spec: str) -> str | None:
        """``path`` of the destination rootfs, read in-root (cached); None when missing."""
        if self.rootfs is None:
            raise ContextError(
                f"--chown={spec}: user and group names cannot be resolved with --link"
                " (the copy does not see the image's /etc/passwd); use numeric IDs"
            )
        if path not in self._texts:
            try:
                with Root(self.rootfs) as root:
                    data = root.read(path, limit=MAX_USER_FILE)
            except NotRegularFileError:
                raise ContextError(f"{path} in the image is not a regular file") from None
            except FileTooLargeError:
                raise ContextError(f"{path} in the image exceeds {MAX_USER_FILE} bytes") from None
            except OSError as exc:
                raise ContextError(f"{path}: {exc.strerror}") from None
            self._texts[path] = (
                data.decode("utf-8", "surrogateescape") if data is not None else None
            )
        return self._texts[path]


def _file_id(value: int) -> int:
    """An id read from /etc/passwd or /etc/group: outside 0..2^31-1 it counts as 0."""
    return value if 0 <= value <= _INT32_MAX else 0


# --- --chmod -----------------------------------------------------------------------------------

_SUID: Final = 0o4000
_SGID: Final = 0o2000
_STICKY: Final = 0o1000
_ALL: Final = 0o6777  # u, g, o and the set-id bits ("a"); sticky only via 't'
_CLASS_U: Final = 0o4700
_CLASS_G: Final = 0o2070
_CLASS_O: Final = 0o0007
_EXEC: Final = 0o111


class _Op(enum.Enum):
    CLEAR = "-"
    SET = "+"
    EXEC_IF = "X"
    COPY = "copy"


@dataclass(frozen=True, slots=True, kw_only=True)
class _ModeCmd:
    op: _Op
    bits: int = 0
    source: str = ""  # COPY: the class whose bits are copied: u, g or o
    targets: str = ""  # COPY: the classes written
    clear: bool = False
    set: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeSpec:
    """A parsed ``--chmod`` value: an absolute ``octal`` or symbolic ``commands``."""

    text: str
    octal: int | None = None
    commands: tuple[_ModeCmd, ...] = ()

    def apply(self, st_mode: int) -> int:
        """The permission and set-id/sticky bits (``0o7777``) for a file of mode ``st_mode``."""
        if self.octal is not None:
            return self.octal
        original = stat.S_IMODE(st_mode)
        new = original
        is_dir = stat.S_ISDIR(st_mode)
        for cmd in self.commands:
            match cmd.op:
                case _Op.CLEAR:
                    new &= ~cmd.bits
                case _Op.SET:
                    new |= cmd.bits
                case _Op.EXEC_IF:
                    if original & _EXEC or is_dir:
                        new |= cmd.bits
                case _Op.COPY:
                    new = _copy_class(new, cmd)
        return new & 0o7777


def _copy_class(mode: int, cmd: _ModeCmd) -> int:
    shift = {"u": 6, "g": 3, "o": 0}
    value = (mode >> shift[cmd.source]) & 0o7
    if cmd.clear:
        cleared = 0o7 if cmd.set else value
        for cls in cmd.targets:
            mode &= ~((cleared << shift[cls]) & cmd.bits)
    if cmd.set:
        for cls in cmd.targets:
            mode |= (value << shift[cls]) & cmd.bits
    return mode


def _bad_chmod(text: str) -> InvalidInstructionError:
    return InvalidInstructionError(
        f"invalid chmod parameter: '{text}'. it should be octal string and between 0 and 07777"
    )


def parse_chmod(text: str | None) -> ModeSpec | None:
    """Parse a ``--chmod`` value (None when absent); bad values raise InvalidInstructionError."""
    if text is None or text == "":
        return None
    if text.isascii() and text.isdigit():
        if any(c in "89" for c in text):
            raise _bad_chmod(text)
        value = int(text, 8)
        if value > 0o7777:
            raise _bad_chmod(text)
        return ModeSpec(text=text, octal=value)
    if text[0].isascii() and text[0].isdigit():
        raise _bad_chmod(text)
    commands = _parse_symbolic(text)
    if commands is None:
        raise InvalidInstructionError(f"invalid chmod parameter: '{text}': invalid syntax")
    return ModeSpec(text=text, commands=commands)


class _SymbolicParser:
    """chmod(1) symbolic modes, BSD ``setmode`` flavour, umask 0."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.cmds: list[_ModeCmd] = []

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def add(self, op: str, who: int, bits: int) -> None:
        if op == "=":
            self.cmds.append(_ModeCmd(op=_Op.CLEAR, bits=who or _ALL))
            op = "+"
        kind = {"+": _Op.SET, "-": _Op.CLEAR, "X": _Op.EXEC_IF}[op]
        self.cmds.append(_ModeCmd(op=kind, bits=(who & bits) if who else bits))

    def add_copy(self, source: str, who: int, op: str) -> None:
        if who:
            targets = "".join(
                c for c, bit in (("u", 0o400), ("g", 0o040), ("o", 0o004)) if who & bit
            )
            bits = 0o7777
        else:
            targets, bits = "ugo", 0o7777
        self.cmds.append(
            _ModeCmd(
                op=_Op.COPY,
                source=source,
                targets=targets,
                bits=bits,
                clear=op in "-=",
                set=op in "+=",
            )
        )

    def parse(self) -> tuple[_ModeCmd, ...] | None:
        if not self.text:
            return None
        while True:
            who = 0
            while (ch := self.peek()) in ("a", "u", "g", "o") and ch:
                who |= {"a": _ALL, "u": _CLASS_U, "g": _CLASS_G, "o": _CLASS_O}[ch]
                self.pos += 1
            if not self.peek():
                return None
            while True:
                op = self.peek()
                self.pos += 1
                if op not in ("+", "-", "="):
                    return None
                self._perms(op, who & ~_STICKY)
                if not self.peek():
                    return tuple(self.cmds)
                if self.peek() == ",":
                    self.pos += 1
                    break

    def _perms(self, op: str, who: int) -> None:
        perm = permx = 0
        equal_done = False
        while True:
            ch = self.peek()
            if ch == "r":
                perm |= 0o444
            elif ch == "w":
                perm |= 0o222
            elif ch == "x":
                perm |= _EXEC
            elif ch == "X":
                if op == "-":
                    perm |= _EXEC
                else:
                    permx = _EXEC
            elif ch == "s":
                if who == 0 or who & ~_CLASS_O:
                    perm |= _SUID | _SGID
            elif ch == "t":
                if who == 0 or who & ~_CLASS_O:
                    who |= _STICKY
                    perm |= _STICKY
            elif ch in ("u", "g", "o") and ch:
                if perm:
                    self.add(op, who, perm)
                    perm = 0
                if op == "=":
                    equal_done = True
                if permx:
                    self.add("X", who, permx)
                    permx = 0
                self.add_copy(ch, who, op)
            else:
                if perm or (op == "=" and not equal_done):
                    self.add(op, who, perm)
                if permx:
                    self.add("X", who, permx)
                return
            self.pos += 1


def _parse_symbolic(text: str) -> tuple[_ModeCmd, ...] | None:
    return _SymbolicParser(text).parse()
