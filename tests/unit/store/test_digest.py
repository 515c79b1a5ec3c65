"""Digest values, streaming hash, chain IDs and the verifying reader."""

from __future__ import annotations

import hashlib
import io

import pytest

from builder.digest import Digest, VerifyingReader, chain_id, digest_stream
from builder.errors import DigestMismatchError, StoreError

HEX = hashlib.sha256(b"abc").hexdigest()


def test_parse_and_str() -> None:
    d = Digest.parse(f"sha256:{HEX}")
    assert str(d) == f"sha256:{HEX}"
    assert d.short == HEX[:12]
    assert d == Digest.of_bytes(b"abc")


@pytest.mark.parametrize(
    "text",
    [
        "sha256:../../x",
        f"sha256:{HEX.upper()}",
        f"sha256:{HEX[:-1]}",
        f"sha256:{HEX}0",
        f"sha512:{HEX}",
        HEX,
        "",
        f"sha256:{HEX}\n",
    ],
)
def test_invalid_digests_are_refused(text: str) -> None:
    with pytest.raises(StoreError, match="digest"):
        Digest.parse(text)


def test_constructor_validates_too() -> None:
    with pytest.raises(StoreError):
        Digest(algorithm="sha256", hex="../../etc/passwd")


def test_digest_stream() -> None:
    assert digest_stream(io.BytesIO(b"abc" * 1000), chunk_size=7) == (
        Digest.of_bytes(b"abc" * 1000),
        3000,
    )


def test_chain_id() -> None:
    a, b = Digest.of_bytes(b"a"), Digest.of_bytes(b"b")
    assert chain_id((a,)) == a
    assert chain_id((a, b)) == Digest.of_bytes(f"{a} {b}".encode())
    with pytest.raises(StoreError):
        chain_id(())


def test_verifying_reader_passes_good_content() -> None:
    data = b"x" * 100_000
    reader = VerifyingReader(io.BytesIO(data), expected=Digest.of_bytes(data), size=len(data))
    assert reader.read() == data


@pytest.mark.parametrize(
    ("content", "size", "message"),
    [
        (b"abd", 3, "hashes to"),
        (b"ab", 3, "size 2 does not match"),
        (b"abcd", 3, "longer than its recorded size"),
    ],
)
def test_verifying_reader_detects_tampering(content: bytes, size: int, message: str) -> None:
    called: list[bool] = []
    reader = VerifyingReader(
        io.BytesIO(content),
        expected=Digest.of_bytes(b"abc"),
        size=size,
        on_mismatch=lambda: called.append(True),
    )
    with pytest.raises(DigestMismatchError, match=message) as info:
        reader.read()
    assert info.value.expected == str(Digest.of_bytes(b"abc"))
    assert called == [True]
