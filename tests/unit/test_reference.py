"""Reference parsing and normalisation, checked against distribution/reference behaviour."""

from __future__ import annotations

import pytest

from builder.errors import InvalidReferenceError
from builder.reference import parse, parse_normalized

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/user/app", "docker.io/user/app:latest", "user/app:latest"),
        ("user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"),
        ("example.com:5000/a/b/c:t", "example.com:5000/a/b/c:t", "example.com:5000/a/b/c:t"),
        ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
        ("127.0.0.1:5000/x:1", "127.0.0.1:5000/x:1", "127.0.0.1:5000/x:1"),
        ("Registry/app", "Registry/app:latest", "Registry/app:latest"),
        ("a__b/c--d.e_f", "docker.io/a__b/c--d.e_f:latest", "a__b/c--d.e_f:latest"),
        ("docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
        (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
        (
            f"busybox:1@{DIGEST}",
            f"docker.io/library/busybox:1@{DIGEST}",
            f"busybox:1@{DIGEST}",
        ),
    ],
)
def test_normalisation(text: str, full: str, familiar: str) -> None:
    ref = parse(text)
    assert str(ref) == full
    assert ref.familiar == familiar


def test_parts_and_docker_ref() -> None:
    ref = parse(f"localhost:5000/team/app:v2@{DIGEST}")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (
        "localhost:5000",
        "team/app",
        "v2",
        DIGEST,
    )
    assert ref.name == "localhost:5000/team/app"
    assert str(ref.docker_ref()) == f"localhost:5000/team/app@{DIGEST}"
    assert str(parse_normalized("busybox")) == "docker.io/library/busybox"
    assert str(parse("busybox").with_tag("x")) == "docker.io/library/busybox:x"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "BusyBox",
            r"^invalid reference format: repository name \(library/BusyBox\) must be lowercase$",
        ),
        (
            "docker.io/Library/x",
            r"^invalid reference format: repository name \(Library/x\) must be lowercase$",
        ),
        ("busybox:", "^invalid reference format$"),
        (":tag", "^invalid reference format$"),
        ("-leading", "^invalid reference format$"),
        ("a//b", "^invalid reference format$"),
        ("x:bad tag", "^invalid reference format$"),
        ("x:" + "t" * 129, "^invalid reference format$"),
        ("x@sha256:abc", "^invalid reference format$"),
        ("https://example.com/x", "^invalid reference format$"),
        ("", "^invalid reference format$"),
        ("a" * 64, "cannot specify 64-byte hexadecimal strings"),
        ("x/" + "a" * 260, "must not be more than 255 characters"),
        ("x@md5:" + "0" * 32, "unsupported digest algorithm"),
        ("x@sha256:" + "0" * 32, "invalid checksum digest format"),
        ("a" * 5000, "^invalid reference format$"),
    ],
)
def test_errors_use_docker_wording(text: str, message: str) -> None:
    with pytest.raises(InvalidReferenceError, match=message):
        parse(text)


def test_tag_validation() -> None:
    with pytest.raises(InvalidReferenceError, match="invalid tag format"):
        parse("x").with_tag("-bad")


def test_hostile_input_is_fast_to_reject() -> None:
    """Backtracking-shaped input (long domain-ish runs) is bounded by the input length cap."""
    with pytest.raises(InvalidReferenceError):
        parse("a-" * 2000 + "!")


def test_errors_escape_control_characters_and_stay_one_line() -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse("\x00\nAbusybox")
    assert str(info.value) == (
        "invalid reference format: repository name (library/\\x00\\nAbusybox) must be lowercase"
    )
