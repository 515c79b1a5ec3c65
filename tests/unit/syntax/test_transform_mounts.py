"""``RUN --mount`` and ``--device`` values: BuildKit's ``commands_runmount.go`` and
``commands_rundevice.go`` semantics, defaults, key aliases and messages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import InvalidInstructionError
from builder.syntax import ir
from builder.syntax.mounts import parse_device, parse_mount
from builder.syntax.parser import parse
from builder.syntax.transform import to_ir
from builder.units import ram_in_bytes


def mount_error(spec: str) -> str:
    with pytest.raises(InvalidInstructionError) as info:
        parse_mount(spec)
    return info.value.message


def test_bind_is_the_default_and_read_only() -> None:
    m = parse_mount("target=/src")
    assert m == ir.Mount(spec="target=/src", type=ir.MountType.BIND, target="/src", readonly=True)


@pytest.mark.parametrize(
    ("spec", "readonly"),
    [
        ("type=bind,target=/x,rw", False),
        ("type=bind,target=/x,readwrite", False),
        ("type=bind,target=/x,rw=true", False),
        ("type=bind,target=/x,rw=false", True),
        ("type=bind,target=/x,readwrite=0", True),
        ("type=cache,target=/x", False),
        ("type=cache,target=/x,ro", True),
        ("type=cache,target=/x,readonly=TRUE", True),
        ("type=tmpfs,target=/x", False),
        ("type=secret,id=a", True),
        ("type=ssh", True),
        ("type=cache,target=/x,ro,rw", False),
    ],
)
def test_readonly_resolution(spec: str, readonly: bool) -> None:
    assert parse_mount(spec).readonly is readonly


def test_key_aliases_and_case() -> None:
    a = parse_mount("TYPE=Cache,SRC=/s,DST=/d,ID=x,Sharing=Locked,from=stage")
    b = parse_mount("type=cache,source=/s,destination=/d,id=x,sharing=locked,from=stage")
    assert a.type is b.type is ir.MountType.CACHE
    assert (a.source, a.target, a.id, a.sharing, a.from_) == (
        "/s",
        "/d",
        "x",
        ir.ShareMode.LOCKED,
        "stage",
    )
    assert (a.source, a.target, a.id, a.sharing, a.from_) == (
        b.source,
        b.target,
        b.id,
        b.sharing,
        b.from_,
    )


def test_cache_options() -> None:
    m = parse_mount("type=cache,target=/root/.cache,mode=0700,uid=1000,gid=1001")
    assert (m.mode, m.uid, m.gid) == (0o700, 1000, 1001)
    assert m.cache_id == "/root/.cache"
    assert m.share_mode is ir.ShareMode.SHARED
    assert parse_mount("type=cache,target=/x,id=pip").cache_id == "pip"


def test_secret_and_ssh_options() -> None:
    s = parse_mount("type=secret,id=token,env=TOKEN,required")
    assert (s.id, s.env, s.required, s.target) == ("token", "TOKEN", True, None)
    s = parse_mount("type=secret,target=/run/x,required=false,env=")
    assert (s.required, s.env) == (False, "")
    ssh = parse_mount("type=ssh,required=true,mode=0600")
    assert (ssh.type, ssh.required, ssh.mode) == (ir.MountType.SSH, True, 0o600)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("100", 100),
        ("1k", 1024),
        ("1K", 1024),
        ("1kb", 1024),
        ("1KiB", 1024),
        ("64m", 64 * 1024**2),
        ("1.5g", int(1.5 * 1024**3)),
        ("1 g", 1024**3),
        ("2b", 2),
        ("1e3", 1000),
    ],
)
def test_tmpfs_size(size: str, expected: int) -> None:
    assert parse_mount(f"type=tmpfs,target=/t,size={size}").size_limit == expected
    assert ram_in_bytes(size) == expected


@pytest.mark.parametrize(
    "size", ["", "k", "-1", "1x", "1kbb", "1kib1", "1bi", "1_000", "inf", "1..2"]
)
def test_tmpfs_size_invalid(size: str) -> None:
    assert ram_in_bytes(size) is None
    assert mount_error(f"type=tmpfs,target=/t,size={size}") == f"invalid value for size: {size}"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("type=cach,target=/x", 'unsupported mount type "cach" (did you mean cache?)'),
        ("type=volume,target=/x", 'unsupported mount type "volume"'),
        (
            "type=cache,target=/x,sharing=lock",
            'unsupported sharing value "lock" (did you mean locked?)',
        ),
        ("target=/x,targt=/y", "unexpected key 'targt' in 'targt=/y' (did you mean target?)"),
        ("target=/x,bogus=1", "unexpected key 'bogus' in 'bogus=1'"),
        ("target=/x,nokey", "invalid field 'nokey' must be a key=value pair"),
        ("target=/x,required", "unexpected key 'required' for mount type 'bind'"),
        ("type=cache,target=/x,required=true", "unexpected key 'required' for mount type 'cache'"),
        ("required,type=secret,id=a", "unexpected key 'required' for mount type 'bind'"),
        ("type=secret,id=a,required=maybe", "invalid value for required: maybe"),
        ("target=/x,ro=yes", "invalid value for ro: yes"),
        ("target=/x,readwrite=2", "invalid value for readwrite: 2"),
        ("size=1m,type=tmpfs,target=/x", "unexpected key 'size' for mount type 'bind'"),
        ("type=cache,target=/x,mode=0800", "invalid value 0800 for mode"),
        ("type=cache,target=/x,mode=0o755", "invalid value 0o755 for mode"),
        ("type=cache,target=/x,uid=-1", "invalid value -1 for uid"),
        ("type=cache,target=/x,gid=4294967296", "invalid value 4294967296 for gid"),
        ("type=bind,target=/x,mode=0755", 'mode not allowed for "bind" type mounts'),
        ("type=tmpfs,target=/x,uid=0", 'uid not allowed for "tmpfs" type mounts'),
        ("type=bind,target=/x,gid=0", 'gid not allowed for "bind" type mounts'),
        ("type=secret,id=a,from=x", "secret mount should not have a from"),
        ("type=secret,id=a,sharing=shared", "secret mount should not define sharing"),
        ("type=secret", "invalid secret mount. one of source, target required"),
        ("type=secret,source=a,id=b", "both source and id can't be set"),
        ("type=bind,target=/x,sharing=private", "invalid cache sharing set for bind mount"),
        (
            "target=/x,from=$STAGE",
            "'from' doesn't support variable expansion, define alias stage instead",
        ),
        ("", "failed to parse csv mounts: EOF"),
        (
            'target="/x',
            "failed to parse csv mounts: "
            'parse error on line 1, column 8: bare " in non-quoted-field',
        ),
        (
            '"target=/x',
            "failed to parse csv mounts: "
            'parse error on line 1, column 2: extraneous or missing " in quoted-field',
        ),
        (
            '"target=/x"y',
            "failed to parse csv mounts: "
            'parse error on line 1, column 11: extraneous or missing " in quoted-field',
        ),
    ],
)
def test_mount_errors(spec: str, message: str) -> None:
    assert mount_error(spec) == message


def test_csv_quoting() -> None:
    m = parse_mount('"target=/a,b",type=bind')
    assert m.target == "/a,b"
    m = parse_mount('"target=/say ""hi"""')
    assert m.target == '/say "hi"'


def test_from_with_trailing_dollar_is_literal() -> None:
    assert parse_mount("target=/x,from=stage$").from_ == "stage$"


def test_values_with_variables_are_deferred() -> None:
    m = parse_mount("type=cache,target=$HOME/.cache,mode=$MODE,uid=${UID}")
    assert m.dynamic
    assert m.target == "$HOME/.cache"
    assert (m.mode, m.uid) == (None, None)
    # a variable type defers every check that depends on the type
    m = parse_mount("type=$T,target=/x,size=1m,required")
    assert m.dynamic
    assert m.type is ir.MountType.BIND
    # constant values are still checked
    with pytest.raises(InvalidInstructionError):
        parse_mount("type=cache,target=$T,mode=9")
    assert not parse_mount("type=cache,target=/x").dynamic


def test_backtick_escape_marks_values_dynamic() -> None:
    assert parse_mount("target=/a`b", escape="`").dynamic
    assert not parse_mount("target=/a`b").dynamic


def test_mount_errors_are_located_at_the_flag() -> None:
    text = "FROM x\nRUN --network=none \\\n    --mount=type=secret true\n"
    with pytest.raises(InvalidInstructionError) as info:
        to_ir(parse(text))
    err = info.value
    assert err.message == "invalid secret mount. one of source, target required"
    assert err.span is not None
    assert (err.span.line, err.span.column, err.span.end_column) == (3, 5, 23)


def test_run_mounts_in_order() -> None:
    df = to_ir(
        parse(
            "FROM x\nRUN --mount=type=cache,target=/a --mount=type=secret,id=s "
            "--mount=type=bind,from=b,source=/o,target=/i true\n"
        )
    )
    run = df.stages[0].instructions[0]
    assert isinstance(run, ir.Run)
    assert [m.type for m in run.mounts] == [
        ir.MountType.CACHE,
        ir.MountType.SECRET,
        ir.MountType.BIND,
    ]
    assert run.mounts[2].from_ == "b"
    assert run.flags_used == ("mount",)


# --------------------------------------------------------------------------- devices


@pytest.mark.parametrize(
    ("spec", "name", "required"),
    [
        ("vendor1.com/device=foo", "vendor1.com/device=foo", False),
        ("vendor1.com/device", "vendor1.com/device", False),
        ("vendor1.com/device=foo,required", "vendor1.com/device=foo", True),
        ("vendor1.com/device=foo,required=true", "vendor1.com/device=foo", True),
        ("vendor1.com/device=foo,required=false", "vendor1.com/device=foo", False),
        ("name=vendor1.com/device=foo", "vendor1.com/device=foo", False),
        ("name=vendor1.com/device=foo,required", "vendor1.com/device=foo", True),
    ],
)
def test_parse_device(spec: str, name: str, required: bool) -> None:
    assert parse_device(spec) == ir.Device(name=name, required=required)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "vendor1.com/device=foo,name=vendor2.com/device=bar",
            "device name already set to vendor1.com/device=foo",
        ),
        ("a,b", "invalid field 'b' must be a key=value pair"),
        ("a,required=x", "invalid value for required: x"),
        ("a,nme=x", "unexpected key 'nme' in 'nme=x' (did you mean name?)"),
        ("", "failed to parse csv devices: EOF"),
    ],
)
def test_parse_device_errors(spec: str, message: str) -> None:
    with pytest.raises(InvalidInstructionError) as info:
        parse_device(spec)
    assert info.value.message == message


_SAFE = st.text(alphabet="abcxyz/._-019", min_size=1, max_size=10)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(list(ir.MountType)),
    _SAFE,
    st.one_of(st.none(), _SAFE),
    st.sampled_from(["", ",ro", ",rw", ",readonly=false", ",readwrite=true"]),
)
def test_valid_mounts_round_trip(
    kind: ir.MountType, target: str, source: str | None, access: str
) -> None:
    spec = f"type={kind.value},target={target}" + (f",source={source}" if source else "") + access
    if kind is ir.MountType.TMPFS and source:
        spec += ",size=1k"
    m = parse_mount(spec)
    assert m.type is kind
    assert m.target == target
    assert m.source == source
    assert not m.dynamic
    # the record depends on the value, not on how it was spelled
    assert parse_mount(spec.replace("target=", "dst=")).target == target


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='abtypeciurdsmol=,"$\\/0179 \t', max_size=40))
def test_any_mount_text_gives_a_mount_or_a_clear_error(spec: str) -> None:
    try:
        m = parse_mount(spec)
    except InvalidInstructionError as err:
        message = err.message
        assert message
        assert "\n" not in message
        return
    assert m.spec == spec
    assert isinstance(m.type, ir.MountType)


def test_huge_sizes_do_not_overflow() -> None:
    assert ram_in_bytes("1e999") is None
    assert ram_in_bytes("1e300p") == 2**63 - 1
