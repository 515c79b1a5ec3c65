"""``RUN --mount`` and ``RUN --device`` option values: BuildKit's CSV parsing, checks and messages.

A value is one CSV record of ``key=value`` fields (``go-csvvalue``); :func:`parse_mount` and
:func:`parse_device` turn it into :class:`ir.Mount` / :class:`ir.Device` or raise
:class:`InvalidInstructionError` with BuildKit's wording.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from builder.errors import InvalidInstructionError
from builder.syntax import ir
from builder.syntax.flags import suggest
from builder.syntax.gotext import go_quote, utf8_len
from builder.units import parse_bool, ram_in_bytes

_MOUNT_KEYS = (
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
)
# Options whose value is checked (not just stored): an unexpanded variable defers the check.
_TYPED_MOUNT_KEYS = frozenset(
    {
        "type",
        "readonly",
        "ro",
        "readwrite",
        "rw",
        "required",
        "size",
        "sharing",
        "mode",
        "uid",
        "gid",
    }
)
_FILE_INFO_TYPES = frozenset({ir.MountType.SECRET, ir.MountType.SSH, ir.MountType.CACHE})


def _parse_uint32(value: str, base: int) -> int | None:
    """Go's ``strconv.ParseUint(value, base, 32)``; ``None`` when invalid or out of range."""
    digits = "0123456789"[:base]
    if not value or any(c not in digits for c in value):
        return None
    number = int(value, base)
    return number if number < 2**32 else None


class _CsvError(Exception):
    pass


def _csv_fields(line: str) -> list[str]:
    """``go-csvvalue``'s ``Fields``: one CSV record, with ``encoding/csv``'s error texts."""
    if line.endswith("\r\n"):
        line = line[:-2]
    elif line.endswith("\n"):
        line = line[:-1]
    if not line:
        raise _CsvError("EOF")

    def error(at: int, reason: str) -> _CsvError:
        column = utf8_len(line[:at]) + 1
        return _CsvError(f"parse error on line 1, column {column}: {reason}")

    fields: list[str] = []
    i = 0
    n = len(line)
    while True:
        if i >= n or line[i] != '"':
            comma = line.find(",", i)
            field = line[i:comma] if comma >= 0 else line[i:]
            quote = field.find('"')
            if quote >= 0:
                raise error(i + quote, 'bare " in non-quoted-field')
            fields.append(field)
            if comma < 0:
                return fields
            i = comma + 1
            continue
        i += 1
        half_open = False
        while True:
            quote = line.find('"', i)
            if quote < 0:
                raise error(i, 'extraneous or missing " in quoted-field')
            if half_open:
                fields[-1] += line[i:quote]
            else:
                fields.append(line[i:quote])
            half_open = False
            i = quote + 1
            nxt = line[i] if i < n else ""
            if nxt == '"':
                fields[-1] += '"'
                i += 1
                half_open = True
            elif nxt == ",":
                i += 1
                break
            elif nxt == "":
                return fields
            else:
                raise error(i - 1, 'extraneous or missing " in quoted-field')


def _may_expand(value: str, escape: str) -> bool:
    return "$" in value or "'" in value or '"' in value or escape in value


def _with_suggestion(message: str, value: str, options: Sequence[str]) -> InvalidInstructionError:
    guess = suggest(value, options, case_sensitive=True)
    if guess is None:
        return InvalidInstructionError(message)
    return InvalidInstructionError(
        f"{message} (did you mean {guess}?)", hint=f"did you mean {guess}?"
    )


def parse_mount(
    spec: str, *, escape: str = "\\", expand: Callable[[str], str] | None = None
) -> ir.Mount:
    """One ``--mount`` value -> :class:`ir.Mount`, with BuildKit's checks and messages.

    Without ``expand`` the values stay as written; a value that variable expansion could change
    marks the mount ``dynamic`` and its checks are left for the call with ``expand`` (made by
    :func:`builder.syntax.substitute.substitute`). ``from`` never accepts a variable.
    """
    try:
        fields = _csv_fields(spec)
    except _CsvError as err:
        raise InvalidInstructionError(f"failed to parse csv mounts: {err}") from None
    mount_type = ir.MountType.BIND
    type_known = True  # False while the type is an unexpanded variable
    from_ = source = target = cache_id = env = None
    readonly, ro_auto, required = True, True, False
    size_limit = 0
    sharing: ir.ShareMode | None = None
    mode = uid = gid = None
    dynamic = False

    def unexpected_for_type(key: str) -> InvalidInstructionError:
        return InvalidInstructionError(
            f"unexpected key '{key}' for mount type '{mount_type.value}'"
        )

    for field in fields:
        key, sep, value = field.partition("=")
        key = key.lower()
        if not sep:
            if key in ("readonly", "ro"):
                readonly, ro_auto = True, False
            elif key in ("readwrite", "rw"):
                readonly, ro_auto = False, False
            elif key == "required":
                if mount_type in (ir.MountType.SECRET, ir.MountType.SSH):
                    required = True
                elif type_known:
                    raise unexpected_for_type(key)
            else:
                raise InvalidInstructionError(f"invalid field '{field}' must be a key=value pair")
            continue
        if expand is not None:
            value = expand(value)
        else:
            if key == "from":
                dollar = value.find("$")
                if dollar != -1 and dollar != len(value) - 1:
                    raise InvalidInstructionError(
                        f"'{key}' doesn't support variable expansion, define alias stage instead"
                    )
            if _may_expand(value, escape):
                dynamic = True
                if key in _TYPED_MOUNT_KEYS:
                    if key == "type":
                        type_known = False
                    continue
        match key:
            case "type":
                try:
                    mount_type = ir.MountType(value.lower())
                except ValueError:
                    raise _with_suggestion(
                        f"unsupported mount type {go_quote(value)}",
                        value,
                        [t.value for t in ir.MountType],
                    ) from None
                type_known = True
            case "from":
                from_ = value
            case "source" | "src":
                source = value
            case "target" | "dst" | "destination":
                target = value
            case "readonly" | "ro" | "readwrite" | "rw":
                flag = parse_bool(value)
                if flag is None:
                    raise InvalidInstructionError(f"invalid value for {key}: {value}")
                readonly = flag if key in ("readonly", "ro") else not flag
                ro_auto = False
            case "required":
                if mount_type in (ir.MountType.SECRET, ir.MountType.SSH):
                    flag = parse_bool(value)
                    if flag is None:
                        raise InvalidInstructionError(f"invalid value for {key}: {value}")
                    required = flag
                elif type_known:
                    raise unexpected_for_type(key)
            case "size":
                if mount_type is ir.MountType.TMPFS:
                    size = ram_in_bytes(value)
                    if size is None:
                        raise InvalidInstructionError(f"invalid value for {key}: {value}")
                    size_limit = size
                elif type_known:
                    raise unexpected_for_type(key)
            case "id":
                cache_id = value
            case "sharing":
                try:
                    sharing = ir.ShareMode(value.lower())
                except ValueError:
                    raise _with_suggestion(
                        f"unsupported sharing value {go_quote(value)}",
                        value,
                        [m.value for m in ir.ShareMode],
                    ) from None
            case "mode":
                mode = _parse_uint32(value, 8)
                if mode is None:
                    raise InvalidInstructionError(f"invalid value {value} for mode")
            case "uid":
                uid = _parse_uint32(value, 10)
                if uid is None:
                    raise InvalidInstructionError(f"invalid value {value} for uid")
            case "gid":
                gid = _parse_uint32(value, 10)
                if gid is None:
                    raise InvalidInstructionError(f"invalid value {value} for gid")
            case "env":
                env = value
            case _:
                raise _with_suggestion(f"unexpected key '{key}' in '{field}'", key, _MOUNT_KEYS)

    if ro_auto:
        readonly = mount_type not in (ir.MountType.CACHE, ir.MountType.TMPFS)
    if not dynamic:
        quoted_type = go_quote(mount_type.value)
        if mount_type not in _FILE_INFO_TYPES:
            for name, given in (("mode", mode), ("uid", uid), ("gid", gid)):
                if given is not None:
                    raise InvalidInstructionError(
                        f"{name} not allowed for {quoted_type} type mounts"
                    )
        if mount_type is ir.MountType.SECRET:
            if from_:
                raise InvalidInstructionError("secret mount should not have a from")
            if sharing is not None:
                raise InvalidInstructionError("secret mount should not define sharing")
            if not source and not target and not cache_id:
                raise InvalidInstructionError(
                    "invalid secret mount. one of source, target required"
                )
            if source and cache_id:
                raise InvalidInstructionError("both source and id can't be set")
        if sharing is not None and mount_type is not ir.MountType.CACHE:
            raise InvalidInstructionError(f"invalid cache sharing set for {mount_type.value} mount")
    return ir.Mount(
        spec=spec,
        type=mount_type,
        from_=from_ or None,
        source=source or None,
        target=target or None,
        readonly=readonly,
        size_limit=size_limit,
        id=cache_id or None,
        sharing=sharing,
        required=required,
        env=env,
        mode=mode,
        uid=uid,
        gid=gid,
        dynamic=dynamic,
    )


def parse_device(spec: str) -> ir.Device:
    """One ``RUN --device`` value (BuildKit's ``ParseDevice``)."""
    try:
        fields = _csv_fields(spec)
    except _CsvError as err:
        raise InvalidInstructionError(f"failed to parse csv devices: {err}") from None
    name = ""
    required = False
    for field in fields:
        key, sep, value = field.partition("=")
        key = key.lower()
        if not sep:
            if key == "required":
                required = True
            elif not name:
                name = field
            else:
                raise InvalidInstructionError(f"invalid field '{field}' must be a key=value pair")
            continue
        if key == "name":
            if name:
                raise InvalidInstructionError(f"device name already set to {name}")
            name = value
        elif key == "required":
            flag = parse_bool(value)
            if flag is None:
                raise InvalidInstructionError(f"invalid value for {key}: {value}")
            required = flag
        elif not name:
            name = field
        else:
            raise _with_suggestion(
                f"unexpected key '{key}' in '{field}'", key, ("name", "required")
            )
    return ir.Device(name=name, required=required)
