"""Content digests: the ``Digest`` value, streaming sha256 and a verifying reader.

A digest string is validated (``sha256:`` + 64 lowercase hex) before it is used for anything,
in particular before it becomes part of a path (``sha256:../../x`` never reaches the filesystem).
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Final

from builder.errors import DigestMismatchError, StoreError

if TYPE_CHECKING:
    from typing_extensions import Buffer

SHA256: Final = "sha256"
CHUNK_SIZE: Final = 1 << 20
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Digest:
    """A validated ``algorithm:hex`` content digest (only sha256 is supported)."""

    algorithm: str
    hex: str

    def __post_init__(self) -> None:
        if self.algorithm != SHA256:
            raise StoreError(f"unsupported digest algorithm {self.algorithm!r}")
        if _SHA256_HEX.fullmatch(self.hex) is None:
            raise StoreError(f"invalid digest {self.algorithm}:{self.hex[:80]!r}")

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``sha256:<64 lowercase hex>``; anything else raises ``StoreError``."""
        if not isinstance(text, str):
            raise StoreError(f"invalid digest {text!r}: not a string")
        algorithm, sep, hexpart = text.partition(":")
        if not sep:
            raise StoreError(f"invalid digest {text[:80]!r}: missing algorithm")
        if algorithm != SHA256:
            raise StoreError(f"invalid digest {text[:80]!r}: unsupported algorithm")
        if _SHA256_HEX.fullmatch(hexpart) is None:
            raise StoreError(f"invalid digest {text[:80]!r}: want sha256 and 64 lowercase hex")
        return cls(algorithm=algorithm, hex=hexpart)

    @classmethod
    def from_hex(cls, hexpart: str) -> Digest:
        return cls(algorithm=SHA256, hex=hexpart)

    @classmethod
    def of_bytes(cls, data: bytes) -> Digest:
        return cls(algorithm=SHA256, hex=hashlib.sha256(data).hexdigest())

    @property
    def short(self) -> str:
        """The first 12 hex characters, as ``docker images`` shows an ID."""
        return self.hex[:12]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


class Hasher:
    """Streaming sha256 plus a byte count."""

    __slots__ = ("_h", "size")

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.size = 0

    def update(self, data: Buffer) -> None:
        view = memoryview(data)
        self._h.update(view)
        self.size += view.nbytes

    def digest(self) -> Digest:
        return Digest(algorithm=SHA256, hex=self._h.hexdigest())


def digest_stream(stream: BinaryIO, *, chunk_size: int = CHUNK_SIZE) -> tuple[Digest, int]:
    """Hash a stream to its end in constant memory; returns ``(digest, size)``."""
    h = Hasher()
    while chunk := stream.read(chunk_size):
        h.update(chunk)
    return h.digest(), h.size


def chain_id(diff_ids: tuple[Digest, ...]) -> Digest:
    """OCI ChainID of a stack of layers: ``ChainID(n) = sha256(ChainID(n-1) + " " + DiffID(n))``."""
    if not diff_ids:
        raise StoreError("chain ID of an empty layer stack is undefined")
    current = diff_ids[0]
    for nxt in diff_ids[1:]:
        current = Digest.of_bytes(f"{current} {nxt}".encode())
    return current


class VerifyingReader(io.RawIOBase):
    """Reads ``raw`` and checks it is exactly ``size`` bytes hashing to ``expected``.

    Reading past ``size`` raises at once; at EOF a short read or a wrong digest raises
    ``DigestMismatchError``. ``on_mismatch`` runs before the error is raised (the store uses it
    to quarantine the blob). A caller that stops early gets no verdict: only full reads verify.
    """

    def __init__(
        self,
        raw: BinaryIO,
        *,
        expected: Digest,
        size: int,
        name: str = "",
        on_mismatch: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self._raw = raw
        self._expected = expected
        self._size = size
        self._name = name or str(expected)
        self._on_mismatch = on_mismatch
        self._hasher = Hasher()
        self._verified = False

    def readable(self) -> bool:
        return True

    def _fail(self, actual: str, detail: str) -> DigestMismatchError:
        if self._on_mismatch is not None:
            self._on_mismatch()
        return DigestMismatchError(
            f"blob corrupt: {self._name}: {detail}; run `pybuild fsck`",
            expected=str(self._expected),
            actual=actual,
        )

    def readinto(self, buffer: Buffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._verified or len(view) == 0:
            return 0
        # Ask for one byte more than remains so an over-long blob is noticed.
        want = max(1, min(len(view), self._size - self._hasher.size + 1))
        data = self._raw.read(want)
        if data:
            self._hasher.update(data)
            view[: len(data)] = data
            if self._hasher.size > self._size:
                raise self._fail(
                    "size>" + str(self._size), f"longer than its recorded size {self._size}"
                )
            return len(data)
        self._verify_end()
        return 0

    def _verify_end(self) -> None:
        if self._hasher.size != self._size:
            raise self._fail(
                f"size={self._hasher.size}",
                f"size {self._hasher.size} does not match the recorded size {self._size}",
            )
        actual = self._hasher.digest()
        if actual != self._expected:
            raise self._fail(str(actual), f"content hashes to {actual}")
        self._verified = True

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()
