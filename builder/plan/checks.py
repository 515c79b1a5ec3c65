"""Value checks BuildKit makes when it dispatches an instruction, with its messages.

EXPOSE port specs (``convert_expose.go``), STOPSIGNAL names (``moby/sys/signal``), ``--chmod``
values, ``--platform`` values, text that cannot reach a file name, an argv or the image's JSON
(NUL bytes, invalid UTF-8) and working-directory normalisation (COPY/ADD sources are
classified in :mod:`builder.plan.sources`). Every failure raises
:class:`~builder.errors.InvalidInstructionError` without a span; the planner adds the
instruction's.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from typing import Final

from builder.errors import InvalidInstructionError, Span, StoreError
from builder.fs import paths
from builder.oci.types import Platform
from builder.syntax.gotext import go_quote

# --------------------------------------------------------------------------- text

# The Dockerfile is read with ``surrogateescape``: an undecodable byte is a lone surrogate.
_UNUSABLE: Final = re.compile("[\x00\ud800-\udfff]")


def check_text(value: object, instruction: str) -> None:
    """Raise when a string in ``value`` (an instruction, its words, a build arg) holds a NUL
    byte (no file name, argv or environment can carry one) or invalid UTF-8 (image configs and
    history are JSON, which is UTF-8). Spans are not looked into."""
    match value:
        case str():
            found = _UNUSABLE.search(value)
            if found is None:
                return
            what = "a NUL byte" if found.group() == "\x00" else "invalid UTF-8"
            raise InvalidInstructionError(f"{instruction} contains {what}")
        case tuple() | list():
            for item in value:
                check_text(item, instruction)
        case Span():
            return
        case _ if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                check_text(getattr(value, f.name), instruction)
        case _:
            return


# --------------------------------------------------------------------------- EXPOSE

_PROTOCOLS: Final = frozenset({"tcp", "udp", "sctp"})


class _PortError(Exception):
    pass


def _port_number(raw: str) -> int:
    if raw == "":
        raise _PortError("value is empty")
    if re.fullmatch(r"[+-]?[0-9]+", raw) is None:
        raise _PortError("invalid syntax")
    port = int(raw)
    if port < 0 or port > 65535:
        raise _PortError("value out of range (0–65535)")
    return port


def _port_range(ports: str) -> tuple[int, int]:
    if ports == "":
        raise _PortError("empty string specified for ports")
    start, sep, end = ports.partition("-")
    first = _port_number(start)
    if not sep or start == end:
        return first, first
    last = _port_number(end)
    if last < first:
        raise _PortError(f"invalid port range: {ports}")
    return first, last


def _valid_ip(ip: str) -> bool:
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return False
    return True


def parse_port(raw: str) -> tuple[str, ...]:
    """``80`` -> ``("80/tcp",)``; ``8000-8001/udp`` -> two entries; raises on a bad spec."""
    parts = raw.split(":")
    if len(parts) == 1:
        ip, host_port, container = "", "", parts[0]
    elif len(parts) == 2:
        ip, host_port, container = "", parts[0], parts[1]
    else:
        ip, host_port, container = ":".join(parts[:-2]), parts[-2], parts[-1]
    port, _, proto = container.partition("/")
    if port == "":
        raise InvalidInstructionError(f"invalid port: {go_quote(raw)}: no port specified")
    if proto.lower() not in ("", *_PROTOCOLS):
        raise InvalidInstructionError(f"invalid port: {go_quote(raw)}: invalid proto: {proto}")
    proto = proto or "tcp"
    if ip.startswith("["):
        if not ip.endswith("]"):
            raise InvalidInstructionError(f"invalid IP address {ip}")
        ip = ip[1:-1]
    if ip and not _valid_ip(ip):
        raise InvalidInstructionError(f"invalid IP address: {ip}")
    try:
        start, end = _port_range(port)
    except _PortError:
        raise InvalidInstructionError(f"invalid containerPort: {port}") from None
    if host_port:
        try:
            host_start, host_end = _port_range(host_port)
        except _PortError:
            raise InvalidInstructionError(f"invalid hostPort: {host_port}") from None
        if end - start != host_end - host_start and end != start:
            raise InvalidInstructionError(
                f"invalid ranges specified for container and host Ports: {port} and {host_port}"
            )
    proto = proto.lower()
    return tuple(f"{p}/{proto}" for p in range(start, end + 1))


# --------------------------------------------------------------------------- STOPSIGNAL

_SIGNALS: Final = frozenset(
    {
        *[
            "ABRT",
            "ALRM",
            "BUS",
            "CHLD",
            "CLD",
            "CONT",
            "FPE",
            "HUP",
            "ILL",
            "INT",
            "IO",
            "IOT",
            "KILL",
            "PIPE",
            "POLL",
            "PROF",
            "PWR",
            "QUIT",
            "SEGV",
            "STKFLT",
            "STOP",
            "SYS",
            "TERM",
            "TRAP",
            "TSTP",
            "TTIN",
            "TTOU",
            "URG",
            "USR1",
            "USR2",
            "VTALRM",
            "WINCH",
            "XCPU",
            "XFSZ",
            "RTMIN",
            "RTMAX",
        ],
        *(f"RTMIN+{i}" for i in range(1, 16)),
        *(f"RTMAX-{i}" for i in range(1, 15)),
    }
)


def check_signal(raw: str) -> None:
    """moby's ``signal.ParseSignal``: a non-zero number or a known name, ``SIG`` optional."""
    if re.fullmatch(r"[+-]?[0-9]+", raw) is not None:
        if int(raw) != 0:
            return
    else:
        name = raw.upper()
        name = name.removeprefix("SIG")
        if name in _SIGNALS:
            return
    raise InvalidInstructionError(f"invalid signal: {raw}")


# --------------------------------------------------------------------------- --chmod

_SYMBOLIC_CLAUSE = r"[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+"
_SYMBOLIC = re.compile(f"{_SYMBOLIC_CLAUSE}(?:,{_SYMBOLIC_CLAUSE})*")


def check_chmod(raw: str) -> None:
    """Octal up to 07777, or a symbolic mode (``u+x``, ``go=rX``, ``+x``)."""
    message = f"invalid chmod parameter: '{raw}'. it should be octal string and between 0 and 07777"
    if re.fullmatch(r"[0-7]+", raw) is not None:
        if int(raw, 8) > 0o7777:
            raise InvalidInstructionError(message)
        return
    if _SYMBOLIC.fullmatch(raw) is None:
        raise InvalidInstructionError(message)


# --------------------------------------------------------------------------- platforms

_KNOWN_OS: Final = frozenset(
    [
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "hurd",
        "illumos",
        "ios",
        "js",
        "linux",
        "nacl",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "wasip1",
        "windows",
        "zos",
    ]
)
_KNOWN_ARCH: Final = frozenset(
    [
        "386",
        "amd64",
        "amd64p32",
        "arm",
        "armbe",
        "arm64",
        "arm64be",
        "ppc64",
        "ppc64le",
        "loong64",
        "mips",
        "mipsle",
        "mips64",
        "mips64le",
        "mips64p32",
        "mips64p32le",
        "ppc",
        "riscv",
        "riscv64",
        "s390",
        "s390x",
        "sparc",
        "sparc64",
        "wasm",
        "x86_64",
        "x86-64",
        "aarch64",
        "armhf",
        "armel",
        "i386",
        "i686",
    ]
)


def parse_platform(text: str, default: Platform) -> Platform:
    """A ``--platform`` value: ``os/arch[/variant]``, or just an os or an architecture."""
    value = text.strip()
    if "/" not in value:
        lowered = value.lower()
        if lowered in _KNOWN_OS:
            return Platform(os=lowered, architecture=default.architecture, variant=default.variant)
        if lowered in _KNOWN_ARCH:
            return Platform.parse(f"linux/{lowered}")
        raise InvalidInstructionError(
            f"{go_quote(value)}: unknown operating system or architecture: invalid argument"
        )
    try:
        return Platform.parse(value)
    except StoreError as err:
        raise InvalidInstructionError(err.message) from None


# --------------------------------------------------------------------------- paths


def normalize_workdir(current: str, new: str) -> str:
    """BuildKit's ``system.NormalizeWorkdir`` for Linux.

    A relative ``new`` joins onto ``current`` (made absolute first); an absolute one is kept
    as written (not cleaned); an empty one keeps ``current``.
    """
    parent = current or "/"
    if not parent.startswith("/"):
        parent = paths.join("/", parent)
    if new == "":
        new = parent
    if not new.startswith("/"):
        new = paths.join(parent, new)
    return new


__all__ = [
    "check_chmod",
    "check_signal",
    "normalize_workdir",
    "parse_platform",
    "parse_port",
]
