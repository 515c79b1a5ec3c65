"""The direct ustar encoder gives exactly the bytes ``tarfile`` gives, and defers to it whenever
a field needs a PAX record."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from builder.oci.tarformat import (
    EntryType,
    TarHeader,
    _plain_ustar,
    encode_header,
    encode_header_tarfile,
)

# Names around the 100- and 32-character limits, ASCII and not, with and without a trailing /.
texts = st.one_of(
    st.text(alphabet="ab/._-", min_size=0, max_size=110),
    st.text(min_size=0, max_size=40),
    st.sampled_from(["", "x" * 99, "x" * 100, "x" * 101, "d/" * 50, "é", "a/"]),
)
numbers = st.one_of(
    st.integers(min_value=0, max_value=70_000),
    st.integers(min_value=0, max_value=70_000),
    st.integers(min_value=0, max_value=2**40),
    st.sampled_from([0, 8**7 - 1, 8**7, 8**11 - 1, 8**11]),
)
headers = st.builds(
    TarHeader,
    name=texts.filter(bool),
    type=st.sampled_from(list(EntryType)),
    mode=st.integers(min_value=0, max_value=0o177777),
    uid=numbers,
    gid=numbers,
    size=numbers,
    mtime_ns=numbers.map(lambda n: n * 1_000_000_000 + 123),
    linkname=texts,
    uname=texts,
    gname=texts,
    devmajor=numbers,
    devminor=numbers,
    xattrs=st.sampled_from([(), (("user.a", b"1"),)]),
)


@settings(max_examples=600, deadline=None)
@given(header=headers)
def test_plain_headers_match_tarfile_and_others_fall_back(header: TarHeader) -> None:
    plain = _plain_ustar(header)
    try:
        expected = encode_header_tarfile(header)
    except ValueError:  # tarfile cannot encode it (a device number too large): neither can we
        assert plain is None
        return
    if plain is not None:
        assert plain == expected
        assert len(plain) == 512
    assert encode_header(header) == expected


small = st.integers(min_value=0, max_value=8**7 - 1)
plain_headers = st.builds(
    TarHeader,
    name=st.text(alphabet="abz09/._-", min_size=1, max_size=99),
    type=st.sampled_from(list(EntryType)),
    mode=st.integers(min_value=0, max_value=0o177777),
    uid=small,
    gid=small,
    size=st.integers(min_value=0, max_value=8**11 - 1),
    mtime_ns=st.integers(min_value=0, max_value=8**11 - 1).map(lambda n: n * 10**9 + 999),
    linkname=st.text(alphabet="abz09/._-", max_size=100),
    uname=st.text(alphabet="abcdefgh", max_size=32),
    gname=st.text(alphabet="abcdefgh", max_size=32),
    devmajor=small,
    devminor=small,
)


@settings(max_examples=400, deadline=None)
@given(header=plain_headers)
def test_every_plain_header_is_built_directly_and_identically(header: TarHeader) -> None:
    plain = _plain_ustar(header)
    assert plain is not None
    assert plain == encode_header_tarfile(header)


def test_the_common_entries_take_the_direct_path() -> None:
    for header in (
        TarHeader(name="usr/bin/app", type=EntryType.FILE, size=10, mtime_ns=10**18),
        TarHeader(name="usr", type=EntryType.DIR, mode=0o755),
        TarHeader(name="bin/sh", type=EntryType.SYMLINK, linkname="busybox"),
        TarHeader(name="dev/null", type=EntryType.CHAR, devmajor=1, devminor=3),
    ):
        plain = _plain_ustar(header)
        assert plain is not None
        assert plain == encode_header_tarfile(header)
    needs_pax = TarHeader(name="n" * 101, type=EntryType.FILE)
    assert _plain_ustar(needs_pax) is None
    assert len(encode_header(needs_pax)) > 512
